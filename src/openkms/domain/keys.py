"""Writes that change a key, as rules a handler or a background job calls.

Each runs in one transaction with the key's row locked, re-reads the key under the lock and
re-checks the key-state table there, so two concurrent requests (or a request and a job) can
never both act on a state that only one of them saw. Cache invalidation is not the caller's
business: the repository records each change and the database publishes it on commit.
"""

from __future__ import annotations

from openkms.domain.key_states import KeyState, check_state, check_transition
from openkms.errors import NotFoundException
from openkms.storage import Database, KeyRecord
from openkms.storage.repository import Transaction

# Operations that succeed on an Unavailable key without changing its state (AWS's footnote 12).
_WHILE_UNAVAILABLE = frozenset({"EnableKey", "DisableKey"})


def locked_key(tx: Transaction, key_id: str, operation: str) -> KeyRecord:
    """The key as it is now, locked until the transaction ends, checked for ``operation``."""
    record = tx.lock_key(key_id)
    if record is None:
        # Deleted between resolution and this write.
        raise NotFoundException(f"Key '{key_id}' does not exist")
    check_state(operation, record.arn, record.key_state)
    return record


def change_key_state(db: Database, key_id: str, operation: str, target: str) -> KeyRecord:
    """Move a key to ``target`` for ``operation`` (EnableKey, DisableKey, a deletion job, …)."""
    with db.transaction() as tx:
        record = locked_key(tx, key_id, operation)
        if record.key_state == KeyState.UNAVAILABLE and operation in _WHILE_UNAVAILABLE:
            # AWS: the call succeeds, but the key stays Unavailable until its custom key
            # store is connected again.
            return record
        check_transition(record.key_state, target)
        if record.key_state != target:
            tx.set_key_state(key_id, target)
    return record


def change_key_description(db: Database, key_id: str, description: str) -> None:
    with db.transaction() as tx:
        locked_key(tx, key_id, "UpdateKeyDescription")
        tx.set_key_description(key_id, description)


def change_key_policy(db: Database, key_id: str, policy: str) -> None:
    with db.transaction() as tx:
        locked_key(tx, key_id, "PutKeyPolicy")
        tx.set_key_policy(key_id, policy)
