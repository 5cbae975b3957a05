"""Key management: CreateKey, DescribeKey, ListKeys, EnableKey, DisableKey,
UpdateKeyDescription."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from openkms.errors import (
    CustomKeyStoreNotFoundException,
    UnsupportedOperationException,
    ValidationException,
)
from openkms.ops.arns import key_arn
from openkms.ops.context import RequestContext, Services
from openkms.ops.default_policy import default_key_policy
from openkms.ops.key_directory import LoadedKey
from openkms.ops.key_metadata import key_metadata
from openkms.ops.key_resolution import is_key_id, resolve_key
from openkms.ops.key_state import DISABLED, ENABLED, require_manageable
from openkms.ops.pagination import decode_marker, encode_marker
from openkms.ops.policy_document import check_policy_document
from openkms.ops.tags import check_new_tags, store_tags
from openkms.storage import KeyRecord, MaterialRecord

SYMMETRIC_DEFAULT = "SYMMETRIC_DEFAULT"
ENCRYPT_DECRYPT = "ENCRYPT_DECRYPT"
_KEYS_MARKER = "keys"


def create_key(services: Services, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    if "KeySpec" in req and "CustomerMasterKeySpec" in req:
        raise ValidationException(
            "You cannot specify KeySpec and CustomerMasterKeySpec in the same request. "
            "CustomerMasterKeySpec is deprecated."
        )
    key_spec = req.get("KeySpec", req.get("CustomerMasterKeySpec", SYMMETRIC_DEFAULT))
    key_usage = req.get("KeyUsage", ENCRYPT_DECRYPT)
    origin = req.get("Origin", "AWS_KMS")
    if key_spec != SYMMETRIC_DEFAULT:
        raise UnsupportedOperationException(
            f"KeySpec {key_spec} is not supported by this openkms server yet."
        )
    if key_usage != ENCRYPT_DECRYPT:
        raise ValidationException(
            f"The operation failed because the KeyUsage value of the CMK is {key_usage}. "
            "To perform this operation, the KeyUsage value must be ENCRYPT_DECRYPT."
        )
    if "CustomKeyStoreId" in req:
        raise CustomKeyStoreNotFoundException(
            f"Custom key store '{req['CustomKeyStoreId']}' does not exist."
        )
    if origin != "AWS_KMS":
        raise UnsupportedOperationException(
            f"Origin {origin} is not supported by this openkms server yet."
        )
    if req.get("MultiRegion"):
        raise UnsupportedOperationException(
            "Multi-Region keys are not supported by this openkms server yet."
        )
    if "Policy" in req:
        check_policy_document(req["Policy"])
    tags = check_new_tags(req.get("Tags", []))

    key_id = str(uuid.uuid4())
    arn = key_arn(services.partition, ctx.region, ctx.account_id, key_id)
    now = services.clock.now()
    record = KeyRecord(
        key_id=key_id,
        account_id=ctx.account_id,
        region=ctx.region,
        arn=arn,
        description=req.get("Description", ""),
        key_usage=key_usage,
        key_spec=key_spec,
        origin=origin,
        key_manager="CUSTOMER",
        key_state=ENABLED,
        creation_date=now,
        policy=req.get("Policy") or default_key_policy(services.partition, ctx.account_id),
        multi_region=False,
        current_version=1,
    )
    material = MaterialRecord(
        key_id=key_id,
        version=1,
        material_id=secrets.token_hex(32),
        wrapped_material=services.keystore.new_symmetric_material(arn, 1),
        created_at=now,
    )
    with services.db.transaction() as tx:
        tx.insert_key(record)
        tx.insert_material(material)
        store_tags(tx, key_id, tags)
    return {"KeyMetadata": key_metadata(LoadedKey(record, {1: material}))}


def describe_key(services: Services, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    key = resolve_key(services, ctx, req["KeyId"], action="kms:DescribeKey")
    return {"KeyMetadata": key_metadata(key)}


def list_keys(services: Services, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    limit = req.get("Limit", 100)
    after = decode_marker(req.get("Marker"), _KEYS_MARKER, is_key_id)
    if "SELF" not in req.get("ResourceOwners", ["SELF"]):
        # Only keys shared with the caller through RAM were asked for; nothing is shared
        # (openkms has no RAM), so there are none.
        return {"Keys": [], "Truncated": False}
    with services.db.transaction(readonly=True) as tx:
        rows = tx.list_keys(ctx.account_id, ctx.region, after, limit + 1)
    page = rows[:limit]
    response: dict[str, Any] = {
        "Keys": [{"KeyId": r.key_id, "KeyArn": r.arn} for r in page],
        "Truncated": len(rows) > limit,
    }
    if len(rows) > limit:
        response["NextMarker"] = encode_marker(page[-1].key_id, _KEYS_MARKER)
    return response


def enable_key(services: Services, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    _set_state(services, ctx, req["KeyId"], ENABLED, "kms:EnableKey")
    return {}


def disable_key(services: Services, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    _set_state(services, ctx, req["KeyId"], DISABLED, "kms:DisableKey")
    return {}


def update_key_description(
    services: Services, ctx: RequestContext, req: dict[str, Any]
) -> dict[str, Any]:
    key = resolve_key(
        services, ctx, req["KeyId"], allow_alias=False, action="kms:UpdateKeyDescription"
    )
    require_manageable(key.record)
    with services.db.transaction() as tx:
        tx.update_key(key.record.key_id, description=req["Description"])
    services.keys.invalidate_key(key.record.key_id)
    return {}


def _set_state(
    services: Services, ctx: RequestContext, key_id: str, state: str, action: str
) -> None:
    key = resolve_key(services, ctx, key_id, allow_alias=False, action=action)
    require_manageable(key.record)
    with services.db.transaction() as tx:
        current = tx.get_key(key.record.key_id)
        if current is not None:
            require_manageable(current)
            tx.update_key(key.record.key_id, key_state=state)
    services.keys.invalidate_key(key.record.key_id)
