"""TagResource, UntagResource, ListResourceTags, and the tag rules CreateKey shares."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from openkms.errors import TagException
from openkms.ops.context import RequestContext, Services
from openkms.ops.key_resolution import resolve_key
from openkms.ops.key_state import require_manageable
from openkms.ops.pagination import decode_marker, encode_marker
from openkms.storage.repository import Transaction

MAX_TAGS_PER_KEY = 50
_MARKER_KIND = "tags"


def check_new_tags(tags: list[dict[str, str]]) -> list[tuple[str, str]]:
    """Validate the tags a request adds (AWS's checks, in AWS's order)."""
    pairs: dict[str, str] = {}
    for tag in tags:
        if tag["TagKey"] in pairs:
            raise TagException("Duplicate tag keys")
        pairs[tag["TagKey"]] = tag["TagValue"]
    if len(pairs) > MAX_TAGS_PER_KEY:
        raise TagException("Too many tags")
    for tag_key in pairs:
        if tag_key.lower().startswith("aws:"):
            raise TagException("Tags beginning with aws: are reserved")
    return list(pairs.items())


def store_tags(tx: Transaction, key_id: str, pairs: list[tuple[str, str]]) -> None:
    existing = {k for k, _ in tx.list_tags(key_id)}
    if len(existing | {k for k, _ in pairs}) > MAX_TAGS_PER_KEY:
        raise TagException("Too many tags")
    tx.put_tags(key_id, pairs)


def tag_resource(services: Services, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    key = resolve_key(services, ctx, req["KeyId"], allow_alias=False, action="kms:TagResource")
    require_manageable(key.record)
    pairs = check_new_tags(req["Tags"])
    _write(services, key.record.key_id, lambda tx: store_tags(tx, key.record.key_id, pairs))
    return {}


def untag_resource(services: Services, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    key = resolve_key(services, ctx, req["KeyId"], allow_alias=False, action="kms:UntagResource")
    require_manageable(key.record)
    for tag_key in req["TagKeys"]:
        if tag_key.lower().startswith("aws:"):
            raise TagException("Tags beginning with aws: are reserved")
    _write(
        services, key.record.key_id, lambda tx: tx.delete_tags(key.record.key_id, req["TagKeys"])
    )
    return {}


def list_resource_tags(
    services: Services, ctx: RequestContext, req: dict[str, Any]
) -> dict[str, Any]:
    key = resolve_key(services, ctx, req["KeyId"], allow_alias=False, action="kms:ListResourceTags")
    # The model allows up to 1000; AWS documents 1 to 50 and answers at most that many.
    limit = min(req.get("Limit", MAX_TAGS_PER_KEY), MAX_TAGS_PER_KEY)
    after = decode_marker(req.get("Marker"), _MARKER_KIND)
    with services.db.transaction(readonly=True) as tx:
        rows = tx.list_tags(key.record.key_id, after, limit + 1)
    page = rows[:limit]
    response: dict[str, Any] = {
        "Tags": [{"TagKey": k, "TagValue": v} for k, v in page],
        "Truncated": len(rows) > limit,
    }
    if len(rows) > limit:
        response["NextMarker"] = encode_marker(page[-1][0], _MARKER_KIND)
    return response


def _write(services: Services, key_id: str, change: Callable[[Transaction], None]) -> None:
    """Run one tag change with the key's row locked, so concurrent TagResource calls on one
    key run one after the other: the 50-tag bound holds and no insert collides."""
    with services.db.transaction() as tx:
        tx.lock_key(key_id)
        change(tx)
