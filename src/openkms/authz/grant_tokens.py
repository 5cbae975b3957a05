"""Grant tokens: what CreateGrant hands back so that its grant can be used at once, before
every node has read it.

A token is not a secret (AWS says so too): it names its grant, and a grant gives nothing to
anyone but its grantee. What the format adds is a check value, so that a mistyped or made-up
token is told from a well-formed one (``InvalidGrantTokenException``), and a per-issue nonce,
so that each CreateGrant returns a token of its own, as AWS's do.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets

from openkms.errors import InvalidGrantTokenException

_VERSION = b"\x01"
_GRANT_ID = re.compile(r"[0-9a-f]{64}", re.ASCII)
_NONCE_BYTES = 8
_CHECK_BYTES = 8
_LENGTH = 1 + 32 + _NONCE_BYTES + _CHECK_BYTES
INVALID_GRANT_TOKEN = "Invalid grant token."  # noqa: S105 - a message, not a secret


def new_grant_id() -> str:
    return secrets.token_hex(32)


def is_grant_id(text: str) -> bool:
    return _GRANT_ID.fullmatch(text) is not None


def issue_token(grant_id: str) -> str:
    body = _VERSION + bytes.fromhex(grant_id) + secrets.token_bytes(_NONCE_BYTES)
    token = body + _check(body)
    return base64.urlsafe_b64encode(token).rstrip(b"=").decode("ascii")


def grant_id_of(token: str) -> str:
    """The grant a token names; ``InvalidGrantTokenException`` if it is not a token."""
    padded = token + "=" * (-len(token) % 4)
    try:
        raw = base64.urlsafe_b64decode(padded.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise InvalidGrantTokenException(INVALID_GRANT_TOKEN) from None
    if len(raw) != _LENGTH or raw[:1] != _VERSION:
        raise InvalidGrantTokenException(INVALID_GRANT_TOKEN)
    body, check = raw[:-_CHECK_BYTES], raw[-_CHECK_BYTES:]
    if not secrets.compare_digest(check, _check(body)):
        raise InvalidGrantTokenException(INVALID_GRANT_TOKEN)
    return body[1:33].hex()


def grant_ids_of(tokens: list[str] | None) -> tuple[str, ...]:
    return tuple(grant_id_of(token) for token in tokens or ())


def _check(body: bytes) -> bytes:
    return hashlib.sha256(b"openkms/grant-token/v1" + body).digest()[:_CHECK_BYTES]
