"""``openkms audit lookup``: find events by key, event name, principal, error and time."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import select

from openkms.audit.store import AuditStore, event_time_within, events


@dataclass(frozen=True)
class Filters:
    key: str | None = None  # a key id or key ARN (alias names match requests that named them)
    event_name: str | None = None
    principal: str | None = None  # a principal ARN, or an access key id
    error_code: str | None = None  # an error code, or "*" for any error
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    limit: int = 50


def lookup(store: AuditStore, filters: Filters) -> list[dict[str, Any]]:
    """The matching events' CloudTrail records, newest first."""
    query = select(events.c.record)
    if filters.key:
        escaped = filters.key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(events.c.resources.like(f"%{escaped}%", escape="\\"))
    if filters.event_name:
        query = query.where(events.c.event_name == filters.event_name)
    if filters.principal:
        query = query.where(
            (events.c.principal_arn == filters.principal)
            | (events.c.access_key_id == filters.principal)
        )
    if filters.error_code == "*":
        query = query.where(events.c.error_code.is_not(None))
    elif filters.error_code:
        query = query.where(events.c.error_code == filters.error_code)
    for condition in event_time_within(filters.start, filters.end):
        query = query.where(condition)
    query = query.order_by(
        events.c.event_time.desc(), events.c.writer_id, events.c.seq.desc()
    ).limit(filters.limit)
    with store.engine.connect() as connection:
        rows = connection.execute(query).scalars().all()
    return [orjson.loads(row) for row in rows]


_COLUMNS = ("eventTime", "eventName", "principal", "sourceIPAddress", "errorCode", "resource")


def table(records: list[dict[str, Any]]) -> str:
    """The records as a plain text table, one line each."""
    rows = [list(_COLUMNS)]
    for record in records:
        identity = record.get("userIdentity") or {}
        resources = record.get("resources") or []
        rows.append(
            [
                str(record.get("eventTime", "")),
                str(record.get("eventName", "")),
                str(identity.get("arn") or identity.get("type") or ""),
                str(record.get("sourceIPAddress") or ""),
                str(record.get("errorCode") or "-"),
                ",".join(str(r.get("ARN")) for r in resources) or "-",
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
