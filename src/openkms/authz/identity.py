"""The identity-based policies of a principal, read from the database once and cached like
key metadata (invalidated by the change feed when they change, at most ``ttl`` old from a
node that missed the change). A user's are its inline policies; a role session's are its
role's (looked up by the role's ARN, so a session of a deleted role has none)."""

from __future__ import annotations

from collections.abc import Iterable

from openkms.authz.policy import PolicyDocument, parse_policy
from openkms.storage import Database
from openkms.storage.changes import Change, EverythingChanged, IdentityChanged
from openkms.timed_lru import TimedLru


class IdentityPolicies:
    def __init__(self, db: Database, ttl_seconds: float = 60.0) -> None:
        self._db = db
        self._ttl = ttl_seconds
        self._cache: TimedLru[str, tuple[PolicyDocument, ...]] = TimedLru(50_000)
        db.add_change_listener(self._changed)

    def _changed(self, changes: Iterable[Change]) -> None:
        for change in changes:
            if isinstance(change, IdentityChanged):
                self._cache.invalidate(change.principal_arn)
            elif isinstance(change, EverythingChanged):
                self._cache.clear()

    def of(self, principal_arn: str) -> tuple[PolicyDocument, ...]:
        found, cached = self._cache.get(principal_arn)
        if found and cached is not None:
            return cached
        epoch = self._cache.epoch()
        with self._db.transaction(readonly=True) as tx:
            if ":role/" in principal_arn:
                texts = tx.role_policies(principal_arn)
            else:
                texts = tx.user_policies(principal_arn)
        documents = tuple(parse_policy(text, require_principal=False) for _, text in texts)
        self._cache.put(principal_arn, documents, self._ttl, epoch)
        return documents
