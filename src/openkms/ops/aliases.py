"""Aliases: CreateAlias, UpdateAlias, DeleteAlias, ListAliases. The dispatcher has checked
the alias name, found the keys and checked their states."""

from __future__ import annotations

from typing import Any

from openkms.domain.keys import locked_key
from openkms.errors import AlreadyExistsException, NotFoundException
from openkms.ops.arns import alias_arn
from openkms.ops.context import RequestContext, Services
from openkms.ops.declaration import Call, handles
from openkms.ops.pagination import decode_marker, encode_marker
from openkms.ops.resolution import ALIAS_PREFIX
from openkms.storage import AliasRecord, DuplicateEntry

_MARKER_KIND = "aliases"
_MAX_PAGE = 100


@handles("CreateAlias")
def create_alias(services: Services, call: Call) -> dict[str, Any]:
    ctx, name = call.ctx, _name(call)
    target = call.key.record.key_id
    now = services.clock.now()
    record = AliasRecord(ctx.account_id, ctx.region, name, target, now, now)
    try:
        with services.db.transaction() as tx:
            locked_key(tx, target, "CreateAlias")
            if tx.get_alias(ctx.account_id, ctx.region, name) is not None:
                raise _exists(services, ctx, name)
            tx.insert_alias(record)
    except DuplicateEntry:
        # Another node created the same alias between our read and our insert.
        raise _exists(services, ctx, name) from None
    return {}


@handles("UpdateAlias")
def update_alias(services: Services, call: Call) -> dict[str, Any]:
    ctx, name = call.ctx, _name(call)
    target = call.key.record.key_id
    with services.db.transaction() as tx:
        locked_key(tx, target, "UpdateAlias")
        if tx.get_alias(ctx.account_id, ctx.region, name) is None:
            raise _not_found(services, ctx, name)
        tx.update_alias_target(ctx.account_id, ctx.region, name, target, services.clock.now())
    return {}


@handles("DeleteAlias")
def delete_alias(services: Services, call: Call) -> dict[str, Any]:
    ctx, name = call.ctx, _name(call)
    with services.db.transaction() as tx:
        if tx.get_alias(ctx.account_id, ctx.region, name) is None:
            raise _not_found(services, ctx, name)
        tx.delete_alias(ctx.account_id, ctx.region, name)
    return {}


@handles("ListAliases")
def list_aliases(services: Services, call: Call) -> dict[str, Any]:
    req, ctx = call.params, call.ctx
    key = call.resolved.keys.get("key")
    target_key_id = key.record.key_id if key is not None else None
    # The model allows up to 1000; AWS documents 1 to 100 and answers at most that many.
    limit = min(req.get("Limit", 50), _MAX_PAGE)
    after = decode_marker(req.get("Marker"), _MARKER_KIND, lambda n: n.startswith(ALIAS_PREFIX))
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


def _name(call: Call) -> str:
    assert call.resolved.alias_name is not None
    return call.resolved.alias_name


def _exists(services: Services, ctx: RequestContext, name: str) -> AlreadyExistsException:
    arn = alias_arn(services.partition, ctx.region, ctx.account_id, name)
    return AlreadyExistsException(f"An alias with the name {arn} already exists")


def _not_found(services: Services, ctx: RequestContext, name: str) -> NotFoundException:
    arn = alias_arn(services.partition, ctx.region, ctx.account_id, name)
    return NotFoundException(f"Alias {arn} is not found.")
