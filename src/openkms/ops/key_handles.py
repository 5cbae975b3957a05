"""The key-store handle of one of a key's materials."""

from __future__ import annotations

from openkms.keystore import KeyHandle
from openkms.ops.key_directory import LoadedKey
from openkms.storage import MaterialRecord


def handle_of(key: LoadedKey, material: MaterialRecord) -> KeyHandle:
    # Only imported material that was deleted or expired has no wrapped value, and the
    # callers check for that first (the key-state table refuses such keys).
    assert material.wrapped_material is not None
    record = key.record
    return KeyHandle(
        record.arn,
        material.version,
        material.wrapped_material,
        record.key_spec,
        record.custom_key_store_id,
    )


def current_handle(key: LoadedKey) -> KeyHandle:
    return handle_of(key, key.current_material)
