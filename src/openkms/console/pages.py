"""What the console's pages show, read through KMS operations as the signed-in caller.

Every value comes from an operation's answer (ListKeys, DescribeKey, ListAliases, …), so a
page shows exactly what the caller could read with the API, and a section the caller may not
read says so instead of failing the page.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import orjson

from openkms.console.calls import Caller, ConsoleCalls
from openkms.errors import KmsError

# Keys a list page describes (one DescribeKey each); more are counted, not shown.
LIST_LIMIT = 200
# A key page's events: how many it shows, and how many pages of the trail (50 each) it reads
# at most to find them.
EVENTS_SHOWN = 20
EVENT_PAGES = 6


@dataclass
class Section:
    """One part of a page: its data, or why it could not be read."""

    data: Any = None
    error: str | None = None


@dataclass
class KeyPage:
    metadata: dict[str, Any]
    aliases: Section = field(default_factory=Section)
    tags: Section = field(default_factory=Section)
    policy: Section = field(default_factory=Section)
    grants: Section = field(default_factory=Section)
    rotation: Section = field(default_factory=Section)
    rotations: Section = field(default_factory=Section)
    events: Section = field(default_factory=Section)


def describe_error(error: KmsError) -> str:
    return f"{error.code}: {error.message}" if error.message else error.code


async def _section(calls: ConsoleCalls, caller: Caller, operation: str, body: Any) -> Section:
    try:
        return Section(await calls.kms(caller, operation, body))
    except KmsError as error:
        return Section(error=describe_error(error))


async def _all_pages(
    calls: ConsoleCalls, caller: Caller, operation: str, body: dict[str, Any], member: str
) -> list[Any]:
    items: list[Any] = []
    marker: str | None = None
    while len(items) < LIST_LIMIT:
        page = await calls.kms(
            caller, operation, {**body, **({"Marker": marker} if marker else {})}
        )
        items += page.get(member, [])
        if not page.get("Truncated"):
            break
        marker = page.get("NextMarker")
    return items


async def key_list(calls: ConsoleCalls, caller: Caller) -> tuple[list[dict[str, Any]], int]:
    """Each key's metadata with its alias names, newest first; and how many keys there are.
    Raises the ``KmsError`` of ListKeys (e.g. access denied)."""
    keys = await _all_pages(calls, caller, "ListKeys", {"Limit": 1000}, "Keys")
    try:
        aliases = await _all_pages(calls, caller, "ListAliases", {"Limit": 100}, "Aliases")
    except KmsError:
        aliases = []  # the keys are still worth showing without their aliases
    names: dict[str, list[str]] = {}
    for alias in aliases:
        if alias.get("TargetKeyId"):
            names.setdefault(alias["TargetKeyId"], []).append(alias["AliasName"])
    rows = []
    for key in keys[:LIST_LIMIT]:
        try:
            metadata = (await calls.kms(caller, "DescribeKey", {"KeyId": key["KeyId"]}))[
                "KeyMetadata"
            ]
        except KmsError as error:
            metadata = {"KeyId": key["KeyId"], "Arn": key["KeyArn"], "error": describe_error(error)}
        metadata["Aliases"] = sorted(names.get(key["KeyId"], []))
        rows.append(metadata)
    rows.sort(key=lambda m: m.get("CreationDate") or dt.datetime.min.replace(tzinfo=dt.UTC))
    rows.reverse()
    return rows, len(keys)


async def key_page(
    calls: ConsoleCalls, caller: Caller, key_id: str, all_events: bool = False
) -> KeyPage:
    """Everything the key's page shows. Raises DescribeKey's ``KmsError``."""
    metadata = (await calls.kms(caller, "DescribeKey", {"KeyId": key_id}))["KeyMetadata"]
    key_id = metadata["KeyId"]
    page = KeyPage(metadata)
    page.aliases = await _section(calls, caller, "ListAliases", {"KeyId": key_id})
    page.tags = await _section(calls, caller, "ListResourceTags", {"KeyId": key_id})
    page.policy = await _section(
        calls, caller, "GetKeyPolicy", {"KeyId": key_id, "PolicyName": "default"}
    )
    if page.policy.data is not None:
        page.policy.data = _pretty(page.policy.data.get("Policy", ""))
    page.grants = await _section(calls, caller, "ListGrants", {"KeyId": key_id})
    if metadata.get("KeySpec") == "SYMMETRIC_DEFAULT":
        page.rotation = await _section(calls, caller, "GetKeyRotationStatus", {"KeyId": key_id})
        page.rotations = await _section(calls, caller, "ListKeyRotations", {"KeyId": key_id})
    else:
        # Not asked: AWS rotates symmetric encryption keys only.
        page.rotation = Section(error="Only symmetric encryption keys rotate.")
        page.rotations = Section(error="Only symmetric encryption keys rotate.")
    try:
        page.events = Section(await _recent_events(calls, caller, metadata["Arn"], all_events))
    except KmsError as error:
        page.events = Section(error=describe_error(error))
    return page


async def _recent_events(
    calls: ConsoleCalls, caller: Caller, key_arn: str, all_events: bool
) -> list[dict[str, Any]]:
    """The key's latest events: by default its changes and refusals only, as every page view
    reads the key several times and its reads would bury them (``all_events``: every one)."""
    rows: list[dict[str, Any]] = []
    token: str | None = None
    for _ in range(EVENT_PAGES):
        found = await calls.key_events(caller, key_arn, token=token)
        for event in found.get("Events", []):
            row = _event_row(event)
            if all_events or not row["read_only"] or row["error"]:
                rows.append(row)
        token = found.get("NextToken")
        if len(rows) >= EVENTS_SHOWN or not token:
            break
    return rows[:EVENTS_SHOWN]


def _pretty(policy: str) -> str:
    # As stored, indented for reading and editing; a policy that is not JSON stays as it is.
    try:
        return json.dumps(json.loads(policy), indent=2)
    except ValueError:
        return policy


def _event_row(event: dict[str, Any]) -> dict[str, Any]:
    try:
        record = orjson.loads(event.get("CloudTrailEvent") or "{}")
    except orjson.JSONDecodeError:
        record = {}
    identity = record.get("userIdentity") or {}
    return {
        "time": event.get("EventTime"),
        "name": event.get("EventName"),
        "who": identity.get("arn") or identity.get("type") or event.get("Username") or "",
        "source": record.get("sourceIPAddress") or "",
        "error": record.get("errorCode") or "",
        "id": event.get("EventId"),
        "read_only": bool(record.get("readOnly")),
    }
