"""Session tokens of STS temporary credentials: sealed, self-contained, verifiable anywhere.

A token carries everything a request signed with the temporary credentials needs: the
principal (account, ARN, user id, tags, MFA time), the expiry and the secret access key. It is
sealed by the root key (AES-256-GCM through ``RootKey.wrap``, so it names the root-key
generation and survives a root-key rotation) and bound to its access key id, so any worker
process or cluster node opens it without a database read, and no session is stored anywhere.
The secret is inside the sealed value only: a token in a log or a proxy reveals nothing.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import secrets
import string
from dataclasses import dataclass, field
from typing import Any

import orjson

from openkms.crypto.integrity import IntegrityError
from openkms.iam.principal import Principal
from openkms.seal import RootKey
from openkms.seal.root_key import WrappedFormat

_BINDING = b"openkms/session-token/v1\x00"
_VERSION = 1
# A token larger than this was not made here (50 tags at their largest fit well within it).
MAX_TOKEN_CHARS = 65_536
_ALPHABET = string.ascii_uppercase + "234567"


@dataclass(frozen=True, slots=True)
class OpenedSession:
    principal: Principal
    expires_at: dt.datetime
    secret_access_key: str = field(repr=False)


def new_session_access_key_id() -> str:
    # AWS's temporary access key ids start ASIA (long-term ones AKIA).
    return "ASIA" + "".join(secrets.choice(_ALPHABET) for _ in range(16))


class SessionTokens:
    def __init__(self, root_key: RootKey) -> None:
        self._root_key = root_key

    def seal(
        self,
        principal: Principal,
        secret_access_key: str,
        expires_at: dt.datetime,
        issued_at: dt.datetime | None = None,
    ) -> str:
        mfa = principal.mfa_authenticated_at
        payload = {
            "v": _VERSION,
            "account": principal.account_id,
            "arn": principal.arn,
            "user_id": principal.user_id,
            "secret": secret_access_key,
            "expires": expires_at.timestamp(),
            "tags": [list(tag) for tag in principal.tags],
            "mfa": None if mfa is None else mfa.timestamp(),
            "issued": None if issued_at is None else issued_at.timestamp(),
        }
        sealed = self._root_key.wrap(orjson.dumps(payload), _binding(principal.access_key_id))
        return base64.b64encode(sealed).decode("ascii")

    def open(self, token: str, access_key_id: str) -> OpenedSession | None:
        """The session, or None for a token not sealed here for this access key id (forged,
        altered, truncated, or presented with another access key id)."""
        if len(token) > MAX_TOKEN_CHARS or not access_key_id.startswith("ASIA"):
            return None
        try:
            sealed = base64.b64decode(token, validate=True)
            if not sealed or sealed[0] != WrappedFormat.AES_GCM_V1:
                return None  # tokens were never written in the legacy format
            payload: Any = orjson.loads(self._root_key.unwrap(sealed, _binding(access_key_id)))
        except (binascii.Error, ValueError, IntegrityError):
            return None
        if not isinstance(payload, dict) or payload.get("v") != _VERSION:
            return None
        mfa, issued = payload["mfa"], payload.get("issued")  # older tokens lack "issued"
        principal = Principal(
            account_id=payload["account"],
            arn=payload["arn"],
            user_id=payload["user_id"],
            access_key_id=access_key_id,
            tags=tuple((str(k), str(v)) for k, v in payload["tags"]),
            temporary=True,
            mfa_authenticated_at=None if mfa is None else _from_epoch(mfa),
            session_issued_at=None if issued is None else _from_epoch(issued),
        )
        return OpenedSession(principal, _from_epoch(payload["expires"]), payload["secret"])


def _binding(access_key_id: str) -> bytes:
    return _BINDING + access_key_id.encode()


def _from_epoch(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)
