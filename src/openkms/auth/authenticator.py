"""Authenticating a request: SigV4 checks in AWS's order, against stored access keys.

Checked in this order: the header's form, clock skew, credential scope, the access key (or
the session token and its expiry), the signature. Access keys and derived signing keys are
cached for a short time so a warm request reads no database. The access-key cache holds the
secret only wrapped: it is unwrapped for the moment a signing key (per day, region and
service) is derived, and the plaintext secret is dropped right after. Session tokens
(``session_tokens``) are opened without the database; an opened token's principal and expiry
are cached by the token, its secret is not (the token itself is the wrapped secret).
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from openkms.auth.session_tokens import SessionTokens
from openkms.auth.sigv4 import (
    SignedRequest,
    check_clock_skew,
    check_scope,
    derive_signing_key,
    parse_authorization,
    verify_signature,
)
from openkms.clock import Clock
from openkms.errors import (
    THROTTLED_MESSAGE,
    ExpiredTokenException,
    ThrottlingException,
    UnrecognizedClientException,
)
from openkms.iam.accounts import is_access_key_id, secret_label
from openkms.iam.principal import Principal
from openkms.seal import RootKey
from openkms.seal.secrets import unwrap_secret
from openkms.storage import Database
from openkms.storage.blocking import check_may_block
from openkms.storage.changes import (
    AccessKeyChanged,
    Change,
    EverythingChanged,
    IdentityChanged,
)
from openkms.timed_lru import TimedLru
from openkms.token_buckets import TokenBuckets

_INVALID_TOKEN = "The security token included in the request is invalid."  # noqa: S105
_EXPIRED_TOKEN = "The security token included in the request is expired"  # noqa: S105
# Database look-ups of access keys per source address and second (a burst of as many).
LOOKUPS_PER_SOURCE_PER_SECOND = 50.0
_MAX_TRACKED_PRINCIPALS = 50_000


@dataclass(frozen=True, slots=True)
class Authenticated:
    principal: Principal
    region: str


class Authenticator:
    def __init__(
        self,
        db: Database,
        root_key: RootKey,
        clock: Clock,
        region_allowed: Callable[[str], bool],
        cache_seconds: float = 5.0,
    ) -> None:
        self._db = db
        self._root_key = root_key
        self._clock = clock
        self._region_allowed = region_allowed
        self._cache_seconds = cache_seconds
        # access key id -> (principal, its secret as stored: wrapped under the root key)
        self._principals: TimedLru[str, tuple[Principal | None, bytes]] = TimedLru(10_000)
        self._signing_keys: TimedLru[tuple[str, str, str, str], bytes] = TimedLru(10_000)
        # principal ARN -> its access key ids in the cache, to forget them when its tags change
        self._keys_of: dict[str, set[str]] = {}
        self._keys_lock = threading.Lock()
        self.session_tokens = SessionTokens(root_key)
        # session token -> (its principal, its expiry): a warm session request unwraps nothing.
        self._sessions: TimedLru[str, tuple[Principal, float]] = TimedLru(10_000)
        self._lookups = TokenBuckets()
        db.add_change_listener(self._changed)

    def forget_secrets(self) -> None:
        """Drop derived signing keys and opened sessions (the service is being sealed)."""
        self._signing_keys.clear()
        self._sessions.clear()
        self._principals.clear()

    def _changed(self, changes: Iterable[Change]) -> None:
        for change in changes:
            if isinstance(change, AccessKeyChanged):
                self._principals.invalidate(change.access_key_id)
            elif isinstance(change, IdentityChanged):
                # A user's tags are part of its principal, cached by access key id.
                with self._keys_lock:
                    keys = self._keys_of.pop(change.principal_arn, set())
                for access_key_id in keys:
                    self._principals.invalidate(access_key_id)
                # Never a cached key: it bumps the epoch, so a look-up in flight (not yet
                # tracked) cannot cache the tags as they were.
                self._principals.invalidate(change.principal_arn)
            elif isinstance(change, EverythingChanged):
                self._principals.clear()
                self._signing_keys.clear()

    def authenticate(
        self, request: SignedRequest, service: str, source: str | None = None
    ) -> Authenticated:
        auth = parse_authorization(request)
        check_clock_skew(auth, self._clock.now())
        check_scope(auth, service, self._region_allowed)
        credential = auth.credential
        if auth.security_token is not None:
            session = self._session(credential.access_key_id, auth.security_token)
            signing_key = self._session_signing_key(
                auth.security_token, credential.access_key_id, credential.date,
                credential.region, service,
            )  # fmt: skip
            verify_signature(request, auth, signing_key)
            return Authenticated(session, credential.region)
        principal, wrapped_secret = self._lookup(credential.access_key_id, source)
        if principal is None:
            raise UnrecognizedClientException(_INVALID_TOKEN)
        signing_key = self._signing_key(
            credential.access_key_id, wrapped_secret, credential.date, credential.region, service
        )
        verify_signature(request, auth, signing_key)
        return Authenticated(principal, credential.region)

    def verify_secret(
        self, access_key_id: str, secret_access_key: str, source: str | None = None
    ) -> Principal | None:
        """The principal of a long-term access key whose secret is ``secret_access_key``
        (the web console's sign-in), else None. The same look-up (cache, throttle, active
        keys only) as a signed request's, and a constant-time comparison."""
        principal, wrapped_secret = self._lookup(access_key_id, source)
        given = secret_access_key.encode("utf-8", "surrogateescape")
        if principal is None:
            hmac.compare_digest(given, given)  # about as long as a real comparison
            return None
        secret = unwrap_secret(self._root_key, secret_label(access_key_id), wrapped_secret)
        matches = hmac.compare_digest(secret, given)
        del secret
        return principal if matches else None

    def principal_of(self, access_key_id: str, source: str | None = None) -> Principal | None:
        """The principal of an active long-term access key (a console session's, looked up
        on every request so a deactivated or deleted key ends its sessions at once)."""
        return self._lookup(access_key_id, source)[0]

    def _session(self, access_key_id: str, token: str) -> Principal:
        found, cached = self._sessions.get(token)
        if found and cached is not None:
            principal, expires = cached
        else:
            epoch = self._sessions.epoch()
            opened = self.session_tokens.open(token, access_key_id)
            if opened is None:
                raise UnrecognizedClientException(_INVALID_TOKEN)
            principal, expires = opened.principal, opened.expires_at.timestamp()
            self._sessions.put(token, (principal, expires), self._cache_seconds, epoch)
        if principal.access_key_id != access_key_id:
            raise UnrecognizedClientException(_INVALID_TOKEN)
        if self._clock.now().timestamp() >= expires:
            raise ExpiredTokenException(_EXPIRED_TOKEN)
        return principal

    def _session_signing_key(
        self, token: str, access_key_id: str, date: str, region: str, service: str
    ) -> bytes:
        cache_key = (access_key_id, date, region, service)
        found, cached = self._signing_keys.get(cache_key)
        if found and cached is not None:
            return cached
        epoch = self._signing_keys.epoch()
        opened = self.session_tokens.open(token, access_key_id)
        if opened is None:  # opened a moment ago: only a root key gone meanwhile gets here
            raise UnrecognizedClientException(_INVALID_TOKEN)
        key = derive_signing_key(opened.secret_access_key.encode(), date, region, service)
        del opened
        self._signing_keys.put(cache_key, key, self._cache_seconds, epoch)
        return key

    def _lookup(self, access_key_id: str, source: str | None) -> tuple[Principal | None, bytes]:
        found, cached = self._principals.get(access_key_id)
        if found and cached is not None:
            return cached
        if not is_access_key_id(access_key_id):
            return None, b""
        # Access keys not in the cache cost a database read: a source that asks for many
        # (unknown ones, typically) is throttled before it can crowd out real callers.
        check_may_block()  # on the event loop: go to a thread before taking a token
        if not self._lookups.take((source or "-",), LOOKUPS_PER_SOURCE_PER_SECOND):
            raise ThrottlingException(THROTTLED_MESSAGE)
        epoch = self._principals.epoch()
        with self._db.transaction(readonly=True) as tx:
            record = tx.get_access_key(access_key_id)
            active = record is not None and record.status == "Active"
            tags = tx.principal_tags(record.principal_arn) if record and active else []
        principal: Principal | None = None
        wrapped = b""
        if record is not None and active:
            wrapped = record.wrapped_secret
            principal = Principal(
                record.account_id,
                record.principal_arn,
                record.user_id,
                access_key_id,
                tags=tuple(tags),
            )
        if principal is not None:
            with self._keys_lock:
                if len(self._keys_of) > _MAX_TRACKED_PRINCIPALS:
                    self._keys_of.clear()
                    self._principals.clear()  # nothing cached may go untracked
                self._keys_of.setdefault(principal.arn, set()).add(access_key_id)
        # An unknown access key is remembered only briefly: it may be created on another node.
        lifetime = self._cache_seconds if principal else min(self._cache_seconds, 1.0)
        self._principals.put(access_key_id, (principal, wrapped), lifetime, epoch)
        return principal, wrapped

    def _signing_key(
        self, access_key_id: str, wrapped_secret: bytes, date: str, region: str, service: str
    ) -> bytes:
        cache_key = (access_key_id, date, region, service)
        found, cached = self._signing_keys.get(cache_key)
        if found and cached is not None:
            return cached
        epoch = self._signing_keys.epoch()
        secret = unwrap_secret(self._root_key, secret_label(access_key_id), wrapped_secret)
        key = derive_signing_key(secret, date, region, service)
        del secret
        self._signing_keys.put(cache_key, key, self._cache_seconds, epoch)
        return key
