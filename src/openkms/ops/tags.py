"""TagResource, UntagResource, ListResourceTags, and the tag rules CreateKey shares."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from openkms.domain.keys import locked_key
from openkms.errors import TagException
from openkms.ops.context import Services
from openkms.ops.declaration import Call, handles
from openkms.ops.pagination import decode_marker, encode_marker
from openkms.storage import Database
from openkms.storage.repository import Transaction

MAX_TAGS_PER_KEY = 50
_MARKER_KIND = "tags"
_RESERVED = "aws:"


def check_new_tags(tags: list[dict[str, str]]) -> list[tuple[str, str]]:
    """Validate the tags a request adds (AWS's checks, in AWS's order)."""
    pairs: dict[str, str] = {}
    for tag in tags:
        if tag["TagKey"] in pairs:
            raise TagException("Duplicate tag keys")
        pairs[tag["TagKey"]] = tag["TagValue"]
    if len(pairs) > MAX_TAGS_PER_KEY:
        raise TagException("Too many tags")
    _refuse_reserved(pairs)
    return list(pairs.items())


def _refuse_reserved(tag_keys: Any) -> None:
    for tag_key in tag_keys:
        if tag_key.lower().startswith(_RESERVED):
            raise TagException("Tags beginning with aws: are reserved")


def stored_tags_reader(db: Database, key_id: str) -> Callable[[], dict[str, str]]:
    """A reader of the key's tags, for aws:ResourceTag conditions: called only when a
    condition asks (tags are not in the key cache), so only such requests leave the event
    loop."""

    def read() -> dict[str, str]:
        with db.transaction(readonly=True) as tx:
            return dict(tx.list_tags(key_id, None, MAX_TAGS_PER_KEY))

    return read


def store_tags(tx: Transaction, key_id: str, pairs: list[tuple[str, str]]) -> None:
    existing = {k for k, _ in tx.list_tags(key_id)}
    if len(existing | {k for k, _ in pairs}) > MAX_TAGS_PER_KEY:
        raise TagException("Too many tags")
    tx.put_tags(key_id, pairs)


@handles("TagResource")
def tag_resource(services: Services, call: Call) -> dict[str, Any]:
    key_id = call.key.record.key_id
    pairs = check_new_tags(call.params["Tags"])
    _write(services, key_id, "TagResource", lambda tx: store_tags(tx, key_id, pairs))
    return {}


@handles("UntagResource")
def untag_resource(services: Services, call: Call) -> dict[str, Any]:
    key_id = call.key.record.key_id
    tag_keys = call.params["TagKeys"]
    _refuse_reserved(tag_keys)
    _write(services, key_id, "UntagResource", lambda tx: tx.delete_tags(key_id, tag_keys))
    return {}


@handles("ListResourceTags")
def list_resource_tags(services: Services, call: Call) -> dict[str, Any]:
    req = call.params
    # The model allows up to 1000; AWS documents 1 to 50 and answers at most that many.
    limit = min(req.get("Limit", MAX_TAGS_PER_KEY), MAX_TAGS_PER_KEY)
    after = decode_marker(req.get("Marker"), _MARKER_KIND)
    with services.db.transaction(readonly=True) as tx:
        rows = tx.list_tags(call.key.record.key_id, after, limit + 1)
    page = rows[:limit]
    response: dict[str, Any] = {
        "Tags": [{"TagKey": k, "TagValue": v} for k, v in page],
        "Truncated": len(rows) > limit,
    }
    if len(rows) > limit:
        response["NextMarker"] = encode_marker(page[-1][0], _MARKER_KIND)
    return response


def _write(
    services: Services, key_id: str, operation: str, change: Callable[[Transaction], None]
) -> None:
    """Run one tag change with the key's row locked (and its state re-checked), so concurrent
    TagResource calls on one key run one after the other: the 50-tag bound holds and no insert
    collides."""
    with services.db.transaction() as tx:
        locked_key(tx, key_id, operation)
        change(tx)
