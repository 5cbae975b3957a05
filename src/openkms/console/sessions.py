"""Web console sessions: sealed, self-contained cookies with a server-side expiry.

A session is the signed-in access key id, the region, a CSRF token and an expiry, sealed by
the root key (AES-256-GCM through ``RootKey.wrap``, bound to a console-only label), so the
cookie is opaque, cannot be forged or altered, and any worker process or node opens it
without a database read, as STS session tokens are. The expiry inside is checked against the
injected clock on every request; the browser's own cookie lifetime is only a courtesy. No
secret access key is in it: the principal is looked up by access key id on each request, so
a deactivated access key ends its console sessions at once.

Signing out records, per access key, when it signed out (``SignOuts``, a server setting): a
session issued before that is refused by every worker and node, so a copied cookie is dead
after sign-out, not only after its expiry. Signing out so ends all of that access key's
console sessions, in every browser.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import orjson

from openkms.clock import Clock
from openkms.crypto.integrity import IntegrityError
from openkms.seal import RootKey
from openkms.storage import Database
from openkms.storage.errors import DuplicateEntry

COOKIE_NAME = "openkms_console"
DEFAULT_LIFETIME_SECONDS = 900.0
_BINDING = b"openkms/console-session/v1\x00"
_VERSION = 1
# A cookie larger than this was not made here.
_MAX_COOKIE_CHARS = 4096


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    access_key_id: str
    region: str
    csrf_token: str
    issued_at: dt.datetime
    expires_at: dt.datetime

    def csrf_matches(self, given: str | None) -> bool:
        if not given:
            return False
        return hmac.compare_digest(self.csrf_token.encode(), given.encode("utf-8", "replace"))


class ConsoleSessions:
    def __init__(self, root_key: RootKey, clock: Clock, lifetime_seconds: float) -> None:
        self._root_key = root_key
        self._clock = clock
        self.lifetime_seconds = lifetime_seconds

    def issue(self, access_key_id: str, region: str) -> tuple[str, ConsoleSession]:
        """A new session and the cookie value that carries it."""
        now = self._clock.now()
        expires = now + dt.timedelta(seconds=self.lifetime_seconds)
        session = ConsoleSession(access_key_id, region, secrets.token_urlsafe(32), now, expires)
        payload = orjson.dumps(
            {
                "v": _VERSION,
                "k": access_key_id,
                "r": region,
                "c": session.csrf_token,
                "i": now.timestamp(),
                "e": expires.timestamp(),
            }
        )
        sealed = self._root_key.wrap(payload, _BINDING)
        return base64.urlsafe_b64encode(sealed).decode().rstrip("="), session

    def open(self, cookie: str | None) -> ConsoleSession | None:
        """The session a cookie carries, or None: missing, forged, altered or expired."""
        if not cookie or len(cookie) > _MAX_COOKIE_CHARS:
            return None
        try:
            sealed = base64.urlsafe_b64decode(cookie + "=" * (-len(cookie) % 4))
            payload = orjson.loads(self._root_key.unwrap(sealed, _BINDING))
            if payload.get("v") != _VERSION:
                return None
            session = ConsoleSession(
                str(payload["k"]),
                str(payload["r"]),
                str(payload["c"]),
                dt.datetime.fromtimestamp(float(payload["i"]), dt.UTC),
                dt.datetime.fromtimestamp(float(payload["e"]), dt.UTC),
            )
        except (IntegrityError, ValueError, KeyError, TypeError, binascii.Error):
            return None  # not sealed here, altered, or not a session
        if self._clock.now() >= session.expires_at:
            return None
        return session


class SignOuts:
    """When each access key last signed out of the console (one setting per access key)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @staticmethod
    def _name(access_key_id: str) -> str:
        # Setting names are at most 64 characters; access key ids may be longer.
        return "console-signed-out:" + hashlib.sha256(access_key_id.encode()).hexdigest()[:40]

    def sign_out(self, session: ConsoleSession, at: dt.datetime) -> None:
        value = str(at.timestamp()).encode()
        try:
            with self._db.transaction() as tx:
                tx.replace_setting(self._name(session.access_key_id), value)
        except DuplicateEntry:
            pass  # another worker signed the same key out at this moment: so is this one

    def still_valid(self, session: ConsoleSession) -> bool:
        with self._db.transaction(readonly=True) as tx:
            stored = tx.get_setting(self._name(session.access_key_id))
        if stored is None:
            return True
        return session.issued_at.timestamp() > float(stored.decode())
