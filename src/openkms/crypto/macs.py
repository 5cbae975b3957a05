"""HMAC as AWS KMS computes it (RFC 2104 over the message, with the key's hash)."""

from __future__ import annotations

import hashlib
import hmac

_DIGESTS = {
    "HMAC_SHA_224": hashlib.sha224,
    "HMAC_SHA_256": hashlib.sha256,
    "HMAC_SHA_384": hashlib.sha384,
    "HMAC_SHA_512": hashlib.sha512,
}


def mac(key: bytes, algorithm: str, message: bytes) -> bytes:
    return hmac.digest(key, message, _DIGESTS[algorithm])


def mac_matches(key: bytes, algorithm: str, message: bytes, tag: bytes) -> bool:
    """Constant-time comparison: a caller must not learn how much of a guess was right."""
    return hmac.compare_digest(mac(key, algorithm, message), tag)
