"""Key management: CreateKey, DescribeKey, ListKeys, EnableKey, DisableKey,
UpdateKeyDescription."""

from __future__ import annotations

import contextlib
from typing import Any

from openkms.authz.lockout import check_no_lockout
from openkms.authz.policy import check_key_policy
from openkms.crypto.key_pairs import IMPORTABLE_SPECS
from openkms.crypto.key_specs import KeySpec, KeyUsage, spec_info
from openkms.domain.key_states import KeyState
from openkms.domain.keys import change_key_description, change_key_state
from openkms.errors import (
    UnsupportedOperationException,
    ValidationException,
)
from openkms.iam.principal_names import check_policy_principals
from openkms.ops.context import Services
from openkms.ops.custom_key_stores import store_for_new_key
from openkms.ops.declaration import Call, handles
from openkms.ops.default_policy import default_key_policy
from openkms.ops.key_directory import LoadedKey
from openkms.ops.key_handles import handle_of
from openkms.ops.key_metadata import key_metadata
from openkms.ops.key_policies import lockout_request
from openkms.ops.key_records import first_material, new_key_record
from openkms.ops.pagination import decode_marker, encode_marker
from openkms.ops.resolution import is_key_id
from openkms.ops.tags import check_new_tags, store_tags

_KEYS_MARKER = "keys"


@handles("CreateKey")
def create_key(services: Services, call: Call) -> dict[str, Any]:
    req, ctx = call.params, call.ctx
    if "KeySpec" in req and "CustomerMasterKeySpec" in req:
        raise ValidationException(
            "You cannot specify KeySpec and CustomerMasterKeySpec in the same request. "
            "CustomerMasterKeySpec is deprecated."
        )
    key_spec = req.get("KeySpec", req.get("CustomerMasterKeySpec", KeySpec.SYMMETRIC_DEFAULT))
    spec = spec_info(key_spec)
    origin = req.get("Origin", "AWS_KMS")
    if not spec.supported:
        # AWS serves SM2 only in its China Regions, and openkms does not serve it at all
        # (docs/behaviour.md); elsewhere AWS answers in these words.
        raise UnsupportedOperationException(f"KeySpec {key_spec} is not supported in this Region")
    if "KeyUsage" not in req and key_spec != KeySpec.SYMMETRIC_DEFAULT:
        raise ValidationException(
            "You must specify a KeyUsage value for all KMS keys except for symmetric "
            "encryption keys."
        )
    key_usage = req.get("KeyUsage", KeyUsage.ENCRYPT_DECRYPT)
    if key_usage not in spec.usages:
        raise ValidationException(f"KeyUsage {key_usage} is not compatible with KeySpec {key_spec}")
    store = None
    if "CustomKeyStoreId" in req or origin == "AWS_CLOUDHSM":
        store = store_for_new_key(services, call, str(key_spec), str(key_usage), origin)
    elif origin not in ("AWS_KMS", "EXTERNAL"):
        raise UnsupportedOperationException(
            f"Origin {origin} is not supported by this openkms server yet."
        )
    if (
        origin == "EXTERNAL"
        and key_spec != KeySpec.SYMMETRIC_DEFAULT
        and key_spec not in IMPORTABLE_SPECS
    ):
        raise UnsupportedOperationException(
            f"Origin EXTERNAL is not supported for KeySpec {key_spec}: this openkms server "
            "imports symmetric, HMAC, RSA and ECC key material."
        )
    if req.get("MultiRegion"):
        raise UnsupportedOperationException(
            "Multi-Region keys are not supported by this openkms server yet."
        )
    if "Policy" in req:
        check_policy_principals(services.db, check_key_policy(req["Policy"]))
    tags = check_new_tags(req.get("Tags", []))

    now = services.clock.now()
    record = new_key_record(
        services,
        ctx.account_id,
        ctx.region,
        now,
        description=req.get("Description", ""),
        key_usage=str(key_usage),
        key_spec=str(key_spec),
        origin=origin,
        policy=req.get("Policy") or default_key_policy(services.partition, ctx.account_id),
        custom_key_store=store,
    )
    if "Policy" in req:
        # Decided on the key as it will be: its ARN, spec and usage are condition keys.
        assert services.authorizer is not None  # the runtime always gives one
        requested_tags = dict(tags)
        check_no_lockout(
            services.authorizer,
            lockout_request(services, ctx, LoadedKey(record, {}), req, lambda: requested_tags),
            req["Policy"],
        )
    # Made last, once nothing else can refuse the key: in a token, making it is a change.
    materials = {}
    if origin != "EXTERNAL":
        if store is None:
            opaque = services.keystore.generate(record.key_spec, record.arn, 1)
        else:
            assert services.tokens is not None  # the runtime always gives one
            opaque = services.tokens.generate(store.custom_key_store_id, record.arn, 1)
        materials[1] = first_material(record, opaque, now)
    try:
        with services.db.transaction() as tx:
            tx.insert_key(record)
            for stored in materials.values():
                tx.insert_material(stored)
            store_tags(tx, record.key_id, tags)
    except BaseException:
        if store is not None:  # a key in a store always has its first material
            # Not left behind in the token for a key that does not exist.
            with contextlib.suppress(Exception):
                services.keystore.discard(handle_of(LoadedKey(record, materials), materials[1]))
        raise
    return {"KeyMetadata": key_metadata(LoadedKey(record, materials))}


@handles("DescribeKey")
def describe_key(services: Services, call: Call) -> dict[str, Any]:
    return {"KeyMetadata": key_metadata(call.key)}


@handles("ListKeys")
def list_keys(services: Services, call: Call) -> dict[str, Any]:
    req, ctx = call.params, call.ctx
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


@handles("EnableKey")
def enable_key(services: Services, call: Call) -> dict[str, Any]:
    change_key_state(services.db, call.key.record.key_id, "EnableKey", KeyState.ENABLED)
    return {}


@handles("DisableKey")
def disable_key(services: Services, call: Call) -> dict[str, Any]:
    change_key_state(services.db, call.key.record.key_id, "DisableKey", KeyState.DISABLED)
    return {}


@handles("UpdateKeyDescription")
def update_key_description(services: Services, call: Call) -> dict[str, Any]:
    change_key_description(services.db, call.key.record.key_id, call.params["Description"])
    return {}
