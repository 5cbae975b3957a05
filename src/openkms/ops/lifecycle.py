"""Rotation and deletion: EnableKeyRotation, DisableKeyRotation, GetKeyRotationStatus,
RotateKeyOnDemand, ListKeyRotations, ScheduleKeyDeletion, CancelKeyDeletion.

The rules live in ``openkms.domain.lifecycle``; the background jobs (``openkms.jobs``) carry
out what is scheduled here."""

from __future__ import annotations

from typing import Any

from openkms.domain import lifecycle
from openkms.domain.key_states import KeyState
from openkms.ops.context import Services
from openkms.ops.declaration import Call, handles
from openkms.ops.pagination import decode_marker, encode_marker
from openkms.storage import MaterialRecord

_ROTATIONS_MARKER = "rotations"


@handles("EnableKeyRotation")
def enable_key_rotation(services: Services, call: Call) -> dict[str, Any]:
    period = call.params.get("RotationPeriodInDays", lifecycle.DEFAULT_ROTATION_DAYS)
    lifecycle.enable_rotation(services.db, call.key.record.key_id, period, services.clock.now())
    return {}


@handles("DisableKeyRotation")
def disable_key_rotation(services: Services, call: Call) -> dict[str, Any]:
    lifecycle.disable_rotation(services.db, call.key.record.key_id)
    return {}


@handles("GetKeyRotationStatus")
def get_key_rotation_status(services: Services, call: Call) -> dict[str, Any]:
    record = call.key.record
    if record.origin != "AWS_KMS":
        lifecycle.check_rotatable(record)
    # Asymmetric and HMAC keys answer "not enabled", as AWS's (Terraform asks every key); a
    # key pending deletion too, and its schedule returns if the deletion is cancelled.
    enabled = record.rotation_enabled and record.key_state != KeyState.PENDING_DELETION
    response: dict[str, Any] = {"KeyId": record.key_id, "KeyRotationEnabled": enabled}
    if enabled:
        response["RotationPeriodInDays"] = record.rotation_period_days
        response["NextRotationDate"] = record.next_rotation_date
    # On-demand rotations complete within the request, so none is ever in progress and
    # OnDemandRotationStartDate never appears.
    return response


@handles("RotateKeyOnDemand")
def rotate_key_on_demand(services: Services, call: Call) -> dict[str, Any]:
    record = call.key.record
    lifecycle.rotate_on_demand(services.db, services.keystore, record.key_id, services.clock.now())
    return {"KeyId": record.arn}


@handles("ListKeyRotations")
def list_key_rotations(services: Services, call: Call) -> dict[str, Any]:
    key, req = call.key, call.params
    lifecycle.check_rotatable(key.record, external=True)
    everything = req.get("IncludeKeyMaterial", "ROTATIONS_ONLY") == "ALL_KEY_MATERIAL"
    limit = req.get("Limit", 100)
    after = decode_marker(req.get("Marker"), _ROTATIONS_MARKER, str.isdigit)
    listed = [
        m
        for version, m in sorted(key.materials.items())
        if (everything or m.rotation_date is not None) and (after is None or version > int(after))
    ]
    page = listed[:limit]
    response: dict[str, Any] = {
        "Rotations": [
            _rotation_entry(key.record.key_id, key.record.current_version, m) for m in page
        ],
        "Truncated": len(listed) > limit,
    }
    if len(listed) > limit:
        response["NextMarker"] = encode_marker(str(page[-1].version), _ROTATIONS_MARKER)
    return response


def _rotation_entry(key_id: str, current_version: int, material: MaterialRecord) -> dict[str, Any]:
    if material.version == current_version:
        state = "CURRENT"
    elif material.version > current_version:
        state = "PENDING_ROTATION"
    else:
        state = "NON_CURRENT"
    entry: dict[str, Any] = {
        "KeyId": key_id,
        "KeyMaterialId": material.material_id,
        "KeyMaterialState": state,
    }
    if material.rotation_date is not None:
        entry["RotationDate"] = material.rotation_date
        entry["RotationType"] = material.rotation_type
    if material.import_state is not None:
        entry["ImportState"] = material.import_state
        if material.expiration_model is not None:
            entry["ExpirationModel"] = material.expiration_model
        if material.valid_to is not None:
            entry["ValidTo"] = material.valid_to
        if material.description is not None:
            entry["KeyMaterialDescription"] = material.description
    return entry


@handles("ScheduleKeyDeletion")
def schedule_key_deletion(services: Services, call: Call) -> dict[str, Any]:
    window = call.params.get("PendingWindowInDays", lifecycle.DEFAULT_PENDING_WINDOW_DAYS)
    record, deletion_date = lifecycle.schedule_deletion(
        services.db, call.key.record.key_id, window, services.clock.now()
    )
    return {
        "KeyId": record.arn,
        "DeletionDate": deletion_date,
        "KeyState": KeyState.PENDING_DELETION.value,
        "PendingWindowInDays": window,
    }


@handles("CancelKeyDeletion")
def cancel_key_deletion(services: Services, call: Call) -> dict[str, Any]:
    record = call.key.record
    lifecycle.cancel_deletion(services.db, record.key_id)
    return {"KeyId": record.arn}
