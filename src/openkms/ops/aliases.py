"""Aliases: CreateAlias, UpdateAlias, DeleteAlias, ListAliases. The dispatcher has checked
the alias name, found the keys and checked their states."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from openkms.domain.keys import locked_key
from openkms.domain.managed_keys import ALIAS_PREFIX as MANAGED_ALIAS_PREFIX
from openkms.domain.managed_keys import PREDEFINED_ALIASES
from openkms.errors import AlreadyExistsException, NotFoundException
from openkms.ops.arns import alias_arn
from openkms.ops.context import RequestContext, Services
from openkms.ops.declaration import Call, handles
from openkms.ops.pagination import decode_marker, encode_marker
from openkms.ops.resolution import ALIAS_PREFIX
from openkms.storage import AliasRecord, Database, DuplicateEntry, KeyRecord

_MARKER_KIND = "aliases"
_MAX_PAGE = 100
# AWS evaluates kms:ResourceAliases over at most 50 aliases of a key.
_RESOURCE_ALIASES = 50


def stored_aliases_reader(db: Database, key: KeyRecord) -> Callable[[], list[str]]:
    """A reader of the key's alias names, for kms:ResourceAliases conditions: called only when
    a condition asks (the key cache does not hold a key's aliases)."""

    def read() -> list[str]:
        with db.transaction(readonly=True) as tx:
            records = tx.list_aliases(
                key.account_id, key.region, key.key_id, None, _RESOURCE_ALIASES
            )
        return [record.alias_name for record in records]

    return read


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
    # The model allows up to 1000; AWS documents 1 to 100 and answers at most that many.
    limit = min(req.get("Limit", 50), _MAX_PAGE)
    after = decode_marker(req.get("Marker"), _MARKER_KIND, lambda n: n.startswith(ALIAS_PREFIX))
    with services.db.transaction(readonly=True) as tx:
        if key is not None:
            # Only the aliases that name this key: never a predefined one without a key.
            rows = tx.list_aliases(ctx.account_id, ctx.region, key.record.key_id, after, limit + 1)
            listed = [_entry(services, ctx, row) for row in rows]
        else:
            # Before the listing: an alias/aws/ alias made between the two reads is then
            # listed (once, with its key) rather than skipped.
            taken = tx.alias_names_with_prefix(ctx.account_id, ctx.region, MANAGED_ALIAS_PREFIX)
            rows = tx.list_aliases(ctx.account_id, ctx.region, None, after, limit + 1)
            entries = {
                name: _predefined_entry(services, ctx, name)
                for name in PREDEFINED_ALIASES
                if name not in taken and (after is None or name > after)
            }
            entries.update((row.alias_name, _entry(services, ctx, row)) for row in rows)
            # Both sources are in code point order and each holds at least its first
            # limit + 1 names after the marker: so the first limit + 1 of the two are right.
            listed = [entries[name] for name in sorted(entries)[: limit + 1]]
    page = listed[:limit]
    response: dict[str, Any] = {"Aliases": page, "Truncated": len(listed) > limit}
    if len(listed) > limit:
        response["NextMarker"] = encode_marker(page[-1]["AliasName"], _MARKER_KIND)
    return response


def _entry(services: Services, ctx: RequestContext, row: AliasRecord) -> dict[str, Any]:
    return {
        "AliasName": row.alias_name,
        "AliasArn": alias_arn(services.partition, ctx.region, ctx.account_id, row.alias_name),
        "TargetKeyId": row.target_key_id,
        "CreationDate": row.creation_date,
        "LastUpdatedDate": row.last_updated_date,
    }


def _predefined_entry(services: Services, ctx: RequestContext, name: str) -> dict[str, Any]:
    """A predefined alias whose AWS managed key does not exist yet: AWS lists it with no
    TargetKeyId, and (the alias having never been created in the account) no dates."""
    return {
        "AliasName": name,
        "AliasArn": alias_arn(services.partition, ctx.region, ctx.account_id, name),
    }


def _name(call: Call) -> str:
    assert call.resolved.alias_name is not None
    return call.resolved.alias_name


def _exists(services: Services, ctx: RequestContext, name: str) -> AlreadyExistsException:
    arn = alias_arn(services.partition, ctx.region, ctx.account_id, name)
    return AlreadyExistsException(f"An alias with the name {arn} already exists")


def _not_found(services: Services, ctx: RequestContext, name: str) -> NotFoundException:
    arn = alias_arn(services.partition, ctx.region, ctx.account_id, name)
    return NotFoundException(f"Alias {arn} is not found.")
