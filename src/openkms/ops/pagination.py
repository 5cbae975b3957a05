"""Opaque list markers. A marker is the last item's sort key, base64url-encoded, so any
value (tag keys may hold any Unicode) fits the model's Latin-1 marker pattern."""

from __future__ import annotations

import base64
import binascii

from openkms.errors import InvalidMarkerException


def encode_marker(last_sort_key: str) -> str:
    return base64.urlsafe_b64encode(last_sort_key.encode("utf-8")).decode("ascii")


def decode_marker(marker: str | None) -> str | None:
    if marker is None:
        return None
    try:
        return base64.urlsafe_b64decode(marker.encode("ascii")).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        raise InvalidMarkerException("Invalid marker") from None
