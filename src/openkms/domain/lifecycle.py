"""Rotation and deletion as rules a handler or a background job calls.

Like ``openkms.domain.keys``, each rule runs in one transaction with the key's row locked and
re-checks what it depends on under the lock. That is what makes a background job do its work
exactly once however many worker processes and nodes run it: two jobs that both saw a key
due queue on the row lock, and the second finds it no longer due.
"""

from __future__ import annotations

import datetime as dt
import secrets

from openkms.crypto.key_specs import KeySpec
from openkms.domain import imports
from openkms.domain.key_states import KeyState, check_transition
from openkms.domain.keys import locked_key
from openkms.errors import LimitExceededException, UnsupportedOperationException
from openkms.keystore import KeyHandle, KeyStore
from openkms.storage import Database, KeyRecord, MaterialRecord
from openkms.storage.repository import Transaction

DEFAULT_ROTATION_DAYS = 365
# AWS's on-demand rotation resource quota (per key, not adjustable).
ON_DEMAND_ROTATION_LIMIT = 25
DEFAULT_PENDING_WINDOW_DAYS = 30


class RotationType:
    AUTOMATIC = "AUTOMATIC"
    ON_DEMAND = "ON_DEMAND"


def _days(count: int) -> dt.timedelta:
    return dt.timedelta(days=count)


def check_rotatable(record: KeyRecord, external: bool = False) -> None:
    """Only symmetric encryption keys rotate, and automatically only those whose material
    openkms generated (AWS: not asymmetric, HMAC or custom key store keys; keys with
    imported material only on demand, which ``external`` allows)."""
    if record.key_spec != KeySpec.SYMMETRIC_DEFAULT:
        # AWS answers with no message here; openkms says why.
        raise UnsupportedOperationException(
            f"{record.arn} key spec {record.key_spec} is not valid for this operation."
        )
    if record.origin != "AWS_KMS" and not (external and record.origin == "EXTERNAL"):
        raise UnsupportedOperationException(
            f"{record.arn} origin is {record.origin} which is not valid for this operation."
        )


# -- automatic rotation --------------------------------------------------------------------


def enable_rotation(db: Database, key_id: str, period_days: int, now: dt.datetime) -> None:
    """Turn automatic rotation on, or change its period.

    Turned on, the first rotation is due a period from now. A new period on a key that
    already rotates keeps the schedule's anchor (the last rotation, or when rotation was
    turned on): the next date moves by the difference, and is never earlier than now.
    """
    with db.transaction() as tx:
        record = locked_key(tx, key_id, "EnableKeyRotation")
        check_rotatable(record)
        if record.rotation_period_days is None or record.next_rotation_date is None:
            next_rotation = now + _days(period_days)
        else:
            anchor = record.next_rotation_date - _days(record.rotation_period_days)
            next_rotation = max(anchor + _days(period_days), now)
        tx.set_rotation_schedule(key_id, period_days, next_rotation)


def disable_rotation(db: Database, key_id: str) -> None:
    with db.transaction() as tx:
        record = locked_key(tx, key_id, "DisableKeyRotation")
        check_rotatable(record)
        if record.rotation_period_days is not None:
            tx.set_rotation_schedule(key_id, None, None)


def rotate_on_demand(
    db: Database, keystore: KeyStore, key_id: str, now: dt.datetime
) -> MaterialRecord:
    """A new current material at once; the automatic schedule is left as it is. A key with
    imported material rotates to the material imported for it (PENDING_ROTATION)."""
    with db.transaction() as tx:
        record = locked_key(tx, key_id, "RotateKeyOnDemand")
        check_rotatable(record, external=True)
        if record.on_demand_rotations >= ON_DEMAND_ROTATION_LIMIT:
            raise LimitExceededException(
                "The on-demand rotations limit has been reached for the given keyId. No more "
                f"on-demand rotations can be performed for this key: {record.arn}"
            )
        if record.origin == imports.EXTERNAL:
            return imports.rotate_to_pending(
                tx, record, now, RotationType.ON_DEMAND, record.on_demand_rotations + 1
            )
        return _new_current_material(
            tx, keystore, record, now, RotationType.ON_DEMAND, record.on_demand_rotations + 1
        )


def rotate_if_due(db: Database, keystore: KeyStore, key_id: str, now: dt.datetime) -> bool:
    """The rotation job's step for one key: rotate it if (still) due; True if it did."""
    with db.transaction() as tx:
        record = tx.lock_key(key_id)
        if (
            record is None
            or record.key_state != KeyState.ENABLED
            or record.rotation_period_days is None
            or record.next_rotation_date is None
            or record.next_rotation_date > now
        ):
            return False
        _new_current_material(
            tx, keystore, record, now, RotationType.AUTOMATIC, record.on_demand_rotations
        )
        # Catching up after downtime rotates once, not once per missed period.
        tx.set_next_rotation(key_id, now + _days(record.rotation_period_days))
        return True


def _new_current_material(
    tx: Transaction,
    keystore: KeyStore,
    record: KeyRecord,
    now: dt.datetime,
    rotation_type: str,
    on_demand_rotations: int,
) -> MaterialRecord:
    version = max(m.version for m in tx.list_materials(record.key_id)) + 1
    material = MaterialRecord(
        key_id=record.key_id,
        version=version,
        material_id=secrets.token_hex(32),
        wrapped_material=keystore.generate(record.key_spec, record.arn, version),
        created_at=now,
        rotation_type=rotation_type,
        rotation_date=now,
    )
    tx.insert_material(material)
    tx.make_material_current(record.key_id, version, on_demand_rotations)
    return material


# -- deletion ------------------------------------------------------------------------------


def schedule_deletion(
    db: Database, key_id: str, window_days: int, now: dt.datetime
) -> tuple[KeyRecord, dt.datetime]:
    """PendingDeletion until ``now`` + the window; returns the key (as before) and the date."""
    deletion_date = now + _days(window_days)
    with db.transaction() as tx:
        record = locked_key(tx, key_id, "ScheduleKeyDeletion")
        check_transition(record.key_state, KeyState.PENDING_DELETION)
        tx.set_deletion(key_id, KeyState.PENDING_DELETION, deletion_date, window_days)
    return record, deletion_date


def cancel_deletion(db: Database, key_id: str) -> None:
    """Back to Disabled (as AWS does: the caller enables the key when ready), or to
    PendingImport for a key whose imported material is not all there (never imported, or
    deleted or expired while the key was pending deletion): it has nothing to be enabled
    with."""
    with db.transaction() as tx:
        record = locked_key(tx, key_id, "CancelKeyDeletion")
        target = KeyState.DISABLED
        if record.origin == imports.EXTERNAL and not imports.material_held(tx, record):
            target = KeyState.PENDING_IMPORT
        check_transition(record.key_state, target)
        tx.set_deletion(key_id, target, None, None)


def delete_if_due(db: Database, key_id: str, now: dt.datetime) -> list[KeyHandle] | None:
    """The deletion job's step for one key: destroy it (material, aliases, tags, the key) if
    its window has ended. Returns the handle of every material destroyed, for the key store
    to forget (and a token to destroy), or None if the key was not (or no longer) due. Its
    ciphertexts can never be decrypted again."""
    with db.transaction() as tx:
        record = tx.lock_key(key_id)
        if (
            record is None
            or record.key_state != KeyState.PENDING_DELETION
            or record.deletion_date is None
            or record.deletion_date > now
        ):
            return None
        handles = [
            KeyHandle(
                record.arn,
                m.version,
                m.wrapped_material,
                record.key_spec,
                record.custom_key_store_id,
            )
            for m in tx.list_materials(key_id)
            if m.wrapped_material is not None
        ]
        tx.delete_key(key_id)
        return handles
