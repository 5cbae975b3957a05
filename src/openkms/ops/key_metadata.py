"""KeyMetadata as DescribeKey and CreateKey return it."""

from __future__ import annotations

from typing import Any

from openkms.crypto.key_specs import KeySpec, metadata_algorithms
from openkms.domain.key_states import KeyState
from openkms.ops.key_directory import LoadedKey


def key_metadata(key: LoadedKey) -> dict[str, Any]:
    record = key.record
    metadata: dict[str, Any] = {
        "AWSAccountId": record.account_id,
        "KeyId": record.key_id,
        "Arn": record.arn,
        "CreationDate": record.creation_date,
        "Enabled": record.key_state == KeyState.ENABLED,
        "Description": record.description,
        "KeyUsage": record.key_usage,
        "KeyState": record.key_state,
        "Origin": record.origin,
        "KeyManager": record.key_manager,
        "CustomerMasterKeySpec": record.key_spec,
        "KeySpec": record.key_spec,
        **metadata_algorithms(record.key_spec, record.key_usage),
        "MultiRegion": record.multi_region,
    }
    if record.custom_key_store_id is not None:
        metadata["CustomKeyStoreId"] = record.custom_key_store_id
        metadata["CloudHsmClusterId"] = record.cloud_hsm_cluster_id
    if record.deletion_date is not None:
        # PendingDeletionWindowInDays is for a multi-Region primary pending replica deletion.
        metadata["DeletionDate"] = record.deletion_date
    current = key.materials.get(record.current_version)
    if current is not None and record.key_spec == KeySpec.SYMMETRIC_DEFAULT:
        # Still shown after the current imported material was deleted, as AWS does.
        metadata["CurrentKeyMaterialId"] = current.material_id
    if record.origin == "EXTERNAL" and current is not None and current.wrapped_material:
        # Over the materials permanently associated with the key (pending ones are not):
        # ValidTo is the earliest expiry (AWS), and the key's material expires if any does.
        held = [
            m
            for version, m in key.materials.items()
            if version <= record.current_version and m.wrapped_material is not None
        ]
        expiries = [m.valid_to for m in held if m.valid_to is not None]
        metadata["ExpirationModel"] = (
            "KEY_MATERIAL_EXPIRES" if expiries else "KEY_MATERIAL_DOES_NOT_EXPIRE"
        )
        if expiries:
            metadata["ValidTo"] = min(expiries)
    return metadata
