"""A new key's record and first material, as CreateKey and AWS managed keys make them.

Building the values is separate from storing them, so each caller writes them in its own
transaction next to whatever else belongs with the key (CreateKey its tags, an AWS managed
key its alias).
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid

from openkms.domain.key_states import KeyState
from openkms.ops.arns import key_arn
from openkms.ops.context import Services
from openkms.storage import KeyRecord, MaterialRecord
from openkms.storage.records import CustomKeyStoreRecord


def new_key_record(
    services: Services,
    account_id: str,
    region: str,
    now: dt.datetime,
    *,
    description: str,
    key_usage: str,
    key_spec: str,
    origin: str,
    policy: str,
    key_manager: str = "CUSTOMER",
    rotation_period_days: int | None = None,
    custom_key_store: CustomKeyStoreRecord | None = None,
) -> KeyRecord:
    """The key's record alone (its material is made once nothing can refuse the key)."""
    external = origin == "EXTERNAL"
    key_id = str(uuid.uuid4())
    return KeyRecord(
        key_id=key_id,
        account_id=account_id,
        region=region,
        arn=key_arn(services.partition, region, account_id, key_id),
        description=description,
        key_usage=key_usage,
        key_spec=key_spec,
        origin=origin,
        key_manager=key_manager,
        key_state=KeyState.PENDING_IMPORT if external else KeyState.ENABLED,
        creation_date=now,
        policy=policy,
        multi_region=False,
        current_version=0 if external else 1,
        rotation_period_days=rotation_period_days,
        next_rotation_date=(
            None if rotation_period_days is None else now + dt.timedelta(days=rotation_period_days)
        ),
        custom_key_store_id=custom_key_store.custom_key_store_id if custom_key_store else None,
        cloud_hsm_cluster_id=custom_key_store.cluster_id if custom_key_store else None,
    )


def first_material(record: KeyRecord, opaque: bytes, now: dt.datetime) -> MaterialRecord:
    """Version 1 of a key's material, whose handle's opaque bytes the key store gave."""
    return MaterialRecord(
        key_id=record.key_id,
        version=1,
        material_id=secrets.token_hex(32),
        wrapped_material=opaque,
        created_at=now,
    )
