"""Canonical, unambiguous encoding of an encryption context.

Pairs are sorted by the UTF-8 bytes of their keys and each string is length-prefixed, so
{"ab": "c"} and {"a": "bc"} encode differently and key order never matters.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping


def canonical_encryption_context(context: Mapping[str, str] | None) -> bytes:
    if not context:
        return b"\x00\x00\x00\x00"
    items = sorted((k.encode("utf-8"), v.encode("utf-8")) for k, v in context.items())
    parts = [struct.pack(">I", len(items))]
    for key, value in items:
        parts.append(struct.pack(">I", len(key)))
        parts.append(key)
        parts.append(struct.pack(">I", len(value)))
        parts.append(value)
    return b"".join(parts)
