"""Opaque list markers.

A marker names the list it came from and the last item's sort key, with a check value, all
base64url-encoded, so any value (tag keys may hold any Unicode) fits the model's Latin-1 marker
pattern. Decoding is strict: a marker this server did not make for this list — garbage, an
edited one, or one from another operation — is ``InvalidMarkerException``, never a silently
different page. (The check value detects edits, it is not a secret: a marker only ever selects
among the caller's own resources.)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable

from openkms.errors import InvalidMarkerException

_SEPARATOR = b"\n"
_CHECK_BYTES = 8
INVALID_MARKER_MESSAGE = (
    "The request was rejected because the marker that specifies where pagination should "
    "next begin is not valid."
)


def encode_marker(last_sort_key: str, kind: str) -> str:
    payload = kind.encode() + _SEPARATOR + last_sort_key.encode()
    return base64.urlsafe_b64encode(payload + _check(payload)).decode("ascii")


def decode_marker(
    marker: str | None, kind: str, valid: Callable[[str], bool] | None = None
) -> str | None:
    """The sort key ``marker`` carries, checked to be a ``kind`` marker (and ``valid``)."""
    if marker is None:
        return None
    try:
        raw = base64.b64decode(marker.encode("ascii"), altchars=b"-_", validate=True)
    except (binascii.Error, UnicodeError, ValueError):
        raise InvalidMarkerException(INVALID_MARKER_MESSAGE) from None
    payload, check = raw[:-_CHECK_BYTES], raw[-_CHECK_BYTES:]
    if len(raw) <= _CHECK_BYTES or not hmac.compare_digest(check, _check(payload)):
        raise InvalidMarkerException(INVALID_MARKER_MESSAGE)
    marker_kind, separator, sort_key_bytes = payload.partition(_SEPARATOR)
    try:
        sort_key = sort_key_bytes.decode("utf-8")
    except UnicodeError:
        raise InvalidMarkerException(INVALID_MARKER_MESSAGE) from None
    if (
        not separator
        or marker_kind != kind.encode()
        or not sort_key
        or (valid is not None and not valid(sort_key))
    ):
        raise InvalidMarkerException(INVALID_MARKER_MESSAGE)
    return sort_key


def _check(payload: bytes) -> bytes:
    return hashlib.blake2b(payload, digest_size=_CHECK_BYTES, person=b"openkms-marker").digest()
