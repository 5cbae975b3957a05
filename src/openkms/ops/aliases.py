"""Aliases: CreateAlias, UpdateAlias, DeleteAlias, ListAliases."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError

from openkms.errors import (
    AlreadyExistsException,
    NotAuthorizedException,
    NotFoundException,
    ValidationException,
)
from openkms.ops.arns import alias_arn
from openkms.ops.context import RequestContext, Services
from openkms.ops.key_directory import LoadedKey
from openkms.ops.key_resolution import resolve_key
from openkms.ops.key_state import require_manageable
from openkms.ops.pagination import decode_marker, encode_marker
from openkms.storage import AliasRecord

_PREFIX = "alias/"
_RESERVED_PREFIX = "alias/aws/"
_MARKER_KIND = "aliases"
_MAX_PAGE = 100


def create_alias(services: Services, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    name = _check_alias_name(req["AliasName"])
    target = _target_key(services, ctx, req["TargetKeyId"], "kms:CreateAlias")
    now = services.clock.now()
    record = AliasRecord(ctx.account_id, ctx.region, name, target.record.key_id, now, now)
    try:
        with services.db.transaction() as tx:
            if tx.get_alias(ctx.account_id, ctx.region, name) is not None:
                raise _exists(services, ctx, name)
            tx.insert_alias(record)
    except IntegrityError:
        # Another node created the same alias between our read and our insert.
        raise _exists(services, ctx, name) from None
    services.keys.invalidate_alias(ctx.account_id, ctx.region, name)
    return {}


def update_alias(services: Services, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    name = _check_alias_name(req["AliasName"])
    target = _target_key(services, ctx, req["TargetKeyId"], "kms:UpdateAlias")
    with services.db.transaction() as tx:
        current = tx.get_alias(ctx.account_id, ctx.region, name)
        if current is None:
            raise _not_found(services, ctx, name)
        tx.update_alias_target(
            ctx.account_id, ctx.region, name, target.record.key_id, services.clock.now()
        )
    services.keys.invalidate_alias(ctx.account_id, ctx.region, name)
    return {}


def delete_alias(services: Services, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    name = _check_alias_name(req["AliasName"])
    with services.db.transaction() as tx:
        if tx.get_alias(ctx.account_id, ctx.region, name) is None:
            raise _not_found(services, ctx, name)
        tx.delete_alias(ctx.account_id, ctx.region, name)
    services.keys.invalidate_alias(ctx.account_id, ctx.region, name)
    return {}


def list_aliases(services: Services, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    target_key_id = None
    if "KeyId" in req:
        target_key_id = resolve_key(
            services, ctx, req["KeyId"], allow_alias=False, action="kms:ListAliases"
        ).record.key_id
    # The model allows up to 1000; AWS documents 1 to 100 and answers at most that many.
    limit = min(req.get("Limit", 50), _MAX_PAGE)
    after = decode_marker(req.get("Marker"), _MARKER_KIND, lambda name: name.startswith(_PREFIX))
    with services.db.transaction(readonly=True) as tx:
        rows = tx.list_aliases(ctx.account_id, ctx.region, target_key_id, after, limit + 1)
    page = rows[:limit]
    response: dict[str, Any] = {
        "Aliases": [
            {
                "AliasName": row.alias_name,
                "AliasArn": alias_arn(
                    services.partition, ctx.region, ctx.account_id, row.alias_name
                ),
                "TargetKeyId": row.target_key_id,
                "CreationDate": row.creation_date,
                "LastUpdatedDate": row.last_updated_date,
            }
            for row in page
        ],
        "Truncated": len(rows) > limit,
    }
    if len(rows) > limit:
        response["NextMarker"] = encode_marker(page[-1].alias_name, _MARKER_KIND)
    return response


def _check_alias_name(name: str) -> str:
    if not name.startswith(_PREFIX) or name == _PREFIX:
        raise ValidationException(
            'Alias must start with the prefix "alias/". Please see '
            "https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html"
        )
    if name.startswith(_RESERVED_PREFIX):
        raise NotAuthorizedException()
    if ":" in name:
        # The model's pattern admits ':', but an alias name may not hold one (it would make
        # alias ARNs ambiguous); AWS answers in these words.
        raise ValidationException(f"{name} contains invalid characters for an alias")
    return name


def _target_key(services: Services, ctx: RequestContext, key_id: str, action: str) -> LoadedKey:
    if key_id.startswith(_PREFIX) or ":alias/" in key_id:
        raise ValidationException("Aliases must refer to keys. Not aliases")
    key = resolve_key(services, ctx, key_id, allow_alias=False, action=action)
    require_manageable(key.record)
    return key


def _exists(services: Services, ctx: RequestContext, name: str) -> AlreadyExistsException:
    arn = alias_arn(services.partition, ctx.region, ctx.account_id, name)
    return AlreadyExistsException(f"An alias with the name {arn} already exists")


def _not_found(services: Services, ctx: RequestContext, name: str) -> NotFoundException:
    arn = alias_arn(services.partition, ctx.region, ctx.account_id, name)
    return NotFoundException(f"Alias {arn} is not found.")
