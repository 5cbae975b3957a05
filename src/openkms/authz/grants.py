"""Grants as the authorizer uses them: a key's grants, read once and cached like key metadata
(invalidated through the change feed), and whether one of them allows a request.

A grant allows its grantee the grant's operations on its key, and nothing else: not another
key, not another operation, not a request whose encryption context breaks the grant's
constraint. A grant allowing CreateGrant lets its grantee pass on at most what the grant
itself gives (AWS: the new grant's operations are a subset, its constraints as strict).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from openkms.storage import Database
from openkms.storage.changes import Change, EverythingChanged, GrantsChanged
from openkms.storage.records import GrantRecord
from openkms.timed_lru import TimedLru

# The operations a grant can give (botocore's GrantOperation enum).
GRANT_OPERATIONS = frozenset(
    {
        "Decrypt",
        "Encrypt",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "ReEncryptFrom",
        "ReEncryptTo",
        "Sign",
        "Verify",
        "GetPublicKey",
        "CreateGrant",
        "RetireGrant",
        "DescribeKey",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
        "GenerateMac",
        "VerifyMac",
        "DeriveSharedSecret",
        "Encapsulate",
        "Decapsulate",
    }
)

EQUALS = "EncryptionContextEquals"
SUBSET = "EncryptionContextSubset"
SOURCE_ARN = "SourceArn"

# The request member holding the encryption context a constraint is checked against, per
# grant operation (ReEncrypt: the side the operation names).
CONTEXT_MEMBER = {
    "Encrypt": "EncryptionContext",
    "Decrypt": "EncryptionContext",
    "GenerateDataKey": "EncryptionContext",
    "GenerateDataKeyWithoutPlaintext": "EncryptionContext",
    "GenerateDataKeyPair": "EncryptionContext",
    "GenerateDataKeyPairWithoutPlaintext": "EncryptionContext",
    "ReEncryptFrom": "SourceEncryptionContext",
    "ReEncryptTo": "DestinationEncryptionContext",
    "CreateGrant": None,  # the new grant's constraints are compared instead
}


@dataclass(frozen=True, slots=True)
class Grant:
    grant_id: str
    key_id: str
    name: str | None
    grantee: str
    retiring: str | None
    operations: tuple[str, ...]
    constraints: Mapping[str, Mapping[str, str]]  # EQUALS or SUBSET -> pairs; may be empty
    source_arn: str | None  # the SourceArn constraint
    issuing_account: str
    record: GrantRecord

    @classmethod
    def from_record(cls, record: GrantRecord) -> Grant:
        operations = tuple(json.loads(record.operations))
        constraints = json.loads(record.constraints) if record.constraints else {}
        source_arn = constraints.pop(SOURCE_ARN, None)
        return cls(
            grant_id=record.grant_id,
            key_id=record.key_id,
            name=record.name,
            grantee=record.grantee_principal,
            retiring=record.retiring_principal,
            operations=operations,
            constraints=constraints,
            source_arn=source_arn,
            issuing_account=record.issuing_account,
            record=record,
        )

    def allows(self, operation: str, parameters: Mapping[str, Any]) -> bool:
        """Whether this grant covers ``operation`` (a grant operation name, "Encrypt") on
        a request with these parameters; the grantee was matched already."""
        if operation not in self.operations:
            return False
        if self.source_arn is not None:
            # AWS: the grant allows only requests made on behalf of that resource (its
            # aws:SourceArn), RetireGrant excepted (decided apart, by _grant_lets_retire). Only
            # an AWS service acting for a resource sends aws:SourceArn, and none calls openkms.
            return False
        if operation == "CreateGrant":
            return self._may_pass_on(parameters)
        if not self.constraints:
            return True
        member = CONTEXT_MEMBER.get(operation)
        if member is None:
            # An operation without an encryption context (DescribeKey, RetireGrant, …):
            # AWS lets the constraint through, as there is nothing to constrain.
            return True
        return context_satisfies(self.constraints, parameters.get(member) or {})

    def _may_pass_on(self, parameters: Mapping[str, Any]) -> bool:
        wanted = set(parameters.get("Operations") or ())
        if not wanted <= set(self.operations):
            return False
        if not self.constraints:
            return True
        new = parameters.get("Constraints") or {}
        return at_least_as_strict(new, self.constraints)


def context_satisfies(
    constraints: Mapping[str, Mapping[str, str]], context: Mapping[str, str]
) -> bool:
    equals = constraints.get(EQUALS)
    if equals is not None and dict(context) != dict(equals):
        return False
    subset = constraints.get(SUBSET)
    if subset is not None:
        return all(context.get(name) == value for name, value in subset.items())
    return True


def at_least_as_strict(
    new: Mapping[str, Mapping[str, str]], old: Mapping[str, Mapping[str, str]]
) -> bool:
    """Whether every context the ``new`` constraints admit, ``old`` admits too."""
    new_equals, new_subset = new.get(EQUALS), new.get(SUBSET)
    if new_equals is not None:
        # One context exactly: the old constraints must admit it (and the new subset too).
        if new_subset is not None and not context_satisfies({SUBSET: new_subset}, new_equals):
            return True  # admits nothing at all
        return context_satisfies(old, new_equals)
    if old.get(EQUALS) is not None:
        return False  # a subset (or nothing) admits more than one exact context
    old_subset = old.get(SUBSET) or {}
    pairs = new_subset or {}
    return all(pairs.get(name) == value for name, value in old_subset.items())


class GrantDirectory:
    """Each key's grants by grantee, read on first need and kept until the change feed says
    they changed (at most ``ttl_seconds`` from a node that missed the change)."""

    # A grant token naming a grant not in the cache makes the key's grants be read again,
    # but no more often than this per key: a token of a retired grant must not turn every
    # request into a database read.
    _TOKEN_REFRESH_SECONDS = 0.5

    def __init__(self, db: Database, ttl_seconds: float = 60.0) -> None:
        self._db = db
        self._ttl = ttl_seconds
        self._grants: TimedLru[str, _KeyGrants] = TimedLru(100_000)
        db.add_change_listener(self._changed)

    def _changed(self, changes: Iterable[Change]) -> None:
        for change in changes:
            if isinstance(change, GrantsChanged):
                self._grants.invalidate(change.key_id)
            elif isinstance(change, EverythingChanged):
                self._grants.clear()

    def for_grantee(
        self, key_id: str, grantees: Iterable[str], token_grant_ids: Iterable[str] = ()
    ) -> list[Grant]:
        """The grants of ``key_id`` whose grantee is one of ``grantees`` (the names the caller
        answers to)."""
        found, cached = self._grants.get(key_id)
        if found and cached is not None:
            wanted = [g for g in token_grant_ids if g not in cached.ids]
            if wanted and time.monotonic() - cached.loaded_at > self._TOKEN_REFRESH_SECONDS:
                cached = self._load(key_id)
        else:
            cached = self._load(key_id)
        matched: list[Grant] = []
        for grantee in grantees:
            matched.extend(cached.by_grantee.get(grantee, ()))
        return matched

    def _load(self, key_id: str) -> _KeyGrants:
        epoch = self._grants.epoch()
        with self._db.transaction(readonly=True) as tx:
            records = tx.list_grants(key_id)
        by_grantee: dict[str, list[Grant]] = {}
        for record in records:
            grant = Grant.from_record(record)
            by_grantee.setdefault(grant.grantee, []).append(grant)
        loaded = _KeyGrants(
            {name: tuple(grants) for name, grants in by_grantee.items()},
            frozenset(r.grant_id for r in records),
            time.monotonic(),
        )
        self._grants.put(key_id, loaded, self._ttl, epoch)
        return loaded


@dataclass(frozen=True, slots=True)
class _KeyGrants:
    by_grantee: Mapping[str, tuple[Grant, ...]]
    ids: frozenset[str]
    loaded_at: float
