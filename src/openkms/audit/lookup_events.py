"""CloudTrail's LookupEvents on the trail: the events a caller's account may see, newest
first, filtered by one lookup attribute and a time range, a page at a time.

What a caller sees: the events of its own account in the region it signed for, as CloudTrail
delivers them. An event belongs to the account that called (``userIdentity.accountId``) and
to the account whose key it used (``recipientAccountId``), so a cross-account use is seen
by both. An event of a request whose caller was never known (failed authentication) belongs
to no account; the operator finds it with ``openkms audit lookup``.

The store's look-up columns narrow the candidates in SQL (the account's id in the caller's
ARN or a resource, the attribute's column where it has one); each candidate's record then
decides exactly. A call reads at most ``SCAN_LIMIT`` candidates: one that finds fewer than
it asked for in them answers what it found with a NextToken to go on from there, as
CloudTrail may answer a page with fewer events than MaxResults.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import ColumnElement, and_, or_, select

from openkms.audit.store import AuditStore, event_time_within, events
from openkms.errors import (
    InvalidEventCategoryException,
    InvalidLookupAttributesException,
    InvalidMaxResultsException,
    InvalidNextTokenException,
    InvalidTimeRangeException,
)

DEFAULT_MAX_RESULTS = 50
# Candidates read per SQL query, and at most per call.
_CHUNK = 500
SCAN_LIMIT = 10_000
ATTRIBUTE_KEYS = (
    "EventId",
    "EventName",
    "ReadOnly",
    "Username",
    "ResourceType",
    "ResourceName",
    "EventSource",
    "AccessKeyId",
)


@dataclass(frozen=True)
class LookupQuery:
    account_id: str
    region: str
    attribute: tuple[str, str] | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    max_results: int = DEFAULT_MAX_RESULTS
    next_token: str | None = None


def check_query(params: dict[str, Any]) -> None:
    """CloudTrail's own errors for LookupEvents input the model alone would call a
    ValidationException: run before the model's check."""
    attributes = params.get("LookupAttributes")
    if isinstance(attributes, list):
        if len(attributes) > 1:
            raise InvalidLookupAttributesException(
                "You can specify only one lookup attribute in a request."
            )
        for attribute in attributes:
            if not isinstance(attribute, dict):
                continue
            key, value = attribute.get("AttributeKey"), attribute.get("AttributeValue")
            if isinstance(key, str) and key not in ATTRIBUTE_KEYS:
                raise InvalidLookupAttributesException(
                    f"{key} is not a valid lookup attribute key. Valid keys: "
                    + ", ".join(ATTRIBUTE_KEYS)
                )
            if isinstance(value, str) and not 1 <= _attribute_length(value) <= 2000:
                raise InvalidLookupAttributesException(
                    "The lookup attribute value must be 1 to 2000 characters long."
                )
            if key == "ReadOnly" and isinstance(value, str) and value not in ("true", "false"):
                raise InvalidLookupAttributesException(
                    "The ReadOnly lookup attribute value must be true or false."
                )
    category = params.get("EventCategory")
    if isinstance(category, str) and category != "insight":
        raise InvalidEventCategoryException("The only event category is insight.")
    maximum = params.get("MaxResults")
    if isinstance(maximum, int) and not isinstance(maximum, bool) and not 1 <= maximum <= 50:
        raise InvalidMaxResultsException("MaxResults must be between 1 and 50.")


def _attribute_length(value: str) -> int:
    # CloudTrail counts '_', ' ', ',' and a newline twice towards the 2000.
    return len(value) + sum(value.count(c) for c in "_ ,\n")


def query_of(account_id: str, region: str, params: dict[str, Any]) -> LookupQuery:
    """The validated request as a query; its time range checked."""
    attributes = params.get("LookupAttributes") or []
    attribute = None
    if attributes:
        attribute = (attributes[0]["AttributeKey"], attributes[0]["AttributeValue"])
    start, end = params.get("StartTime"), params.get("EndTime")
    if start is not None and end is not None and start > end:
        raise InvalidTimeRangeException("The start time must be before the end time.")
    return LookupQuery(
        account_id,
        region,
        attribute,
        start,
        end,
        params.get("MaxResults", DEFAULT_MAX_RESULTS),
        params.get("NextToken"),
    )


def lookup_events(store: AuditStore, query: LookupQuery) -> dict[str, Any]:
    """LookupEvents' answer: ``Events`` and, if more may follow, ``NextToken``."""
    position = _read_token(query) if query.next_token is not None else None
    matches = _matcher(query)
    found: list[dict[str, Any]] = []
    scanned = 0
    exhausted = False
    while len(found) < query.max_results and scanned < SCAN_LIMIT:
        rows = _candidates(store, query, position, _CHUNK)
        consumed = 0
        for row in rows:
            consumed += 1
            scanned += 1
            position = (row.event_time, row.writer_id, int(row.seq))
            record = orjson.loads(row.record)
            if _visible(record, query) and matches(record):
                found.append(_event(record, row.record))
                if len(found) == query.max_results:
                    break
        if len(rows) < _CHUNK and consumed == len(rows):
            exhausted = True  # nothing is left after the last row read
            break
    answer: dict[str, Any] = {"Events": found}
    if not exhausted and position is not None and _candidates(store, query, position, 1):
        answer["NextToken"] = _token(query, position)
    return answer


# -- SQL: the candidates --------------------------------------------------------------------


def _candidates(
    store: AuditStore,
    query: LookupQuery,
    after: tuple[dt.datetime, str, int] | None,
    limit: int,
) -> list[Any]:
    c = events.c
    account = _like_escape(query.account_id)
    conditions: list[ColumnElement[bool]] = [
        or_(
            c.principal_arn.like(f"%::{account}:%", escape="\\"),
            c.resources.like(f"%:{account}:%", escape="\\"),
        )
    ]
    conditions.extend(event_time_within(query.start, query.end))
    if after is not None:
        time, writer, seq = after
        conditions.append(
            or_(
                c.event_time < time,
                and_(c.event_time == time, c.writer_id < writer),
                and_(c.event_time == time, c.writer_id == writer, c.seq < seq),
            )
        )
    if query.attribute is not None:
        condition = _attribute_condition(*query.attribute)
        if condition is not None:
            conditions.append(condition)
    statement = (
        select(c.event_time, c.writer_id, c.seq, c.record)
        .where(and_(*conditions))
        .order_by(c.event_time.desc(), c.writer_id.desc(), c.seq.desc())
        .limit(limit)
    )
    with store.engine.connect() as connection:
        return list(connection.execute(statement).all())


def _attribute_condition(key: str, value: str) -> ColumnElement[bool] | None:
    """A column condition every matching event meets (the record decides exactly)."""
    c = events.c
    escaped = _like_escape(value)
    if key == "EventId":
        return c.event_id == value
    if key == "EventName":
        return c.event_name == value
    if key == "EventSource":
        return c.event_source == value
    if key == "AccessKeyId":
        return c.access_key_id == value
    if key == "ResourceName":
        return c.resources.like(f"%{escaped}%", escape="\\")
    if key == "Username":
        if value == "root":
            return c.principal_arn.like("%:root")
        return c.principal_arn.like(f"%/{escaped}", escape="\\")
    return None  # ReadOnly, ResourceType: read from the record


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# -- the record: exactly --------------------------------------------------------------------


def _visible(record: dict[str, Any], query: LookupQuery) -> bool:
    identity = record.get("userIdentity") or {}
    accounts = (record.get("recipientAccountId"), identity.get("accountId"))
    return query.account_id in accounts and record.get("awsRegion") == query.region


def _matcher(query: LookupQuery) -> Callable[[dict[str, Any]], bool]:
    if query.attribute is None:
        return lambda record: True
    key, value = query.attribute
    if key == "EventId":
        return lambda record: record.get("eventID") == value
    if key == "EventName":
        return lambda record: record.get("eventName") == value
    if key == "EventSource":
        return lambda record: record.get("eventSource") == value
    if key == "ReadOnly":
        return lambda record: _read_only(record) == value
    if key == "AccessKeyId":
        return lambda record: (record.get("userIdentity") or {}).get("accessKeyId") == value
    if key == "Username":
        return lambda record: username(record) == value
    if key == "ResourceType":
        return lambda record: any(r.get("type") == value for r in record.get("resources") or [])
    return lambda record: any(r.get("ARN") == value for r in record.get("resources") or [])


def username(record: dict[str, Any]) -> str | None:
    """LookupEvents' Username: an IAM user's name, ``root``, or a role session's name."""
    identity = record.get("userIdentity") or {}
    kind = identity.get("type")
    if kind == "Root":
        return "root"
    if kind == "IAMUser":
        return identity.get("userName")
    if kind == "AssumedRole":
        return str(identity.get("arn") or "").rsplit("/", 1)[-1] or None
    return None


def _read_only(record: dict[str, Any]) -> str:
    return "true" if record.get("readOnly") else "false"


def _event(record: dict[str, Any], text: str) -> dict[str, Any]:
    event: dict[str, Any] = {
        "EventId": record.get("eventID"),
        "EventName": record.get("eventName"),
        "ReadOnly": _read_only(record),
    }
    access_key = (record.get("userIdentity") or {}).get("accessKeyId")
    if access_key:
        event["AccessKeyId"] = access_key
    event["EventTime"] = _parse_time(str(record.get("eventTime")))
    event["EventSource"] = record.get("eventSource")
    name = username(record)
    if name:
        event["Username"] = name
    event["Resources"] = [
        {"ResourceType": r.get("type"), "ResourceName": r.get("ARN")}
        for r in record.get("resources") or []
    ]
    event["CloudTrailEvent"] = text
    return event


def _parse_time(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


# -- NextToken ------------------------------------------------------------------------------


def _fingerprint(query: LookupQuery) -> str:
    """What a token is bound to: the account, region, attribute and time range it was
    given for (CloudTrail: a token goes with the same parameters as the call that gave it)."""
    parts = [
        query.account_id,
        query.region,
        query.attribute,
        query.start.isoformat() if query.start else None,
        query.end.isoformat() if query.end else None,
    ]
    return hashlib.sha256(orjson.dumps(parts)).hexdigest()[:32]


def _token(query: LookupQuery, position: tuple[dt.datetime, str, int]) -> str:
    time, writer, seq = position
    stamp = time.astimezone(dt.UTC) if time.tzinfo else time.replace(tzinfo=dt.UTC)
    body = orjson.dumps({"t": stamp.isoformat(), "w": writer, "s": seq, "q": _fingerprint(query)})
    return base64.urlsafe_b64encode(body).decode("ascii").rstrip("=")


def _read_token(query: LookupQuery) -> tuple[dt.datetime, str, int]:
    token = query.next_token or ""
    invalid = InvalidNextTokenException("Invalid NextToken.")
    try:
        body = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        time = dt.datetime.fromisoformat(body["t"])
        writer, seq, bound = body["w"], body["s"], body["q"]
    except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        raise invalid from None
    if not (isinstance(writer, str) and isinstance(seq, int) and isinstance(bound, str)):
        raise invalid
    if bound != _fingerprint(query):
        raise InvalidNextTokenException(
            "The NextToken was given for other parameters: pass it with the lookup attribute "
            "and time range of the call that returned it."
        )
    return time, writer, seq
