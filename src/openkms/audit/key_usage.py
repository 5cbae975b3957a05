"""GetKeyLastUsage from the trail: a key's last successful cryptographic operation.

Read when asked, never kept up to date on the way: the hot path (Encrypt) writes its event and
nothing more. The query reads the key's successful KMS events of the tracked operations
newest first, from the later of the key's creation and the trail's start, and the first whose
record names the key among its resources is the answer (the look-up column narrows by a LIKE
on the key's ARN; the record decides exactly). ReEncrypt counts for both of its keys.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
from sqlalchemy import func, select

from openkms.audit.store import AuditStore, events, signing_keys
from openkms.model import ServiceModel

_BATCH = 100


class KeyUsage:
    def __init__(self, store: AuditStore, model: ServiceModel) -> None:
        self._store = store
        self._operations = tuple(model.shape("KeyLastUsageTrackingOperation")["enum"])
        self._tracking_start: dt.datetime | None = None

    def tracking_start(self) -> dt.datetime | None:
        """When the trail began: its first signing key's making (None if it has none yet)."""
        if self._tracking_start is None:
            with self._store.engine.connect() as connection:
                first = connection.execute(select(func.min(signing_keys.c.created_at))).scalar()
            if isinstance(first, str):  # SQLite's min() gives the stored text
                first = dt.datetime.fromisoformat(first)
            if first is not None and first.tzinfo is None:
                first = first.replace(tzinfo=dt.UTC)
            self._tracking_start = first
        return self._tracking_start

    def last_usage(self, key_arn: str, since: dt.datetime) -> dict[str, Any] | None:
        """KeyLastUsageData of ``key_arn``'s newest successful tracked operation, or None."""
        c = events.c
        escaped = key_arn.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        after: tuple[Any, str, int] | None = None
        while True:
            statement = select(c.event_time, c.writer_id, c.seq, c.record).where(
                c.event_source == "kms.amazonaws.com",
                c.event_name.in_(self._operations),
                c.error_code.is_(None),
                c.event_time >= since.replace(microsecond=0),
                c.resources.like(f"%{escaped}%", escape="\\"),
            )
            if after is not None:
                time, writer, seq = after
                statement = statement.where(
                    (c.event_time < time)
                    | ((c.event_time == time) & (c.writer_id < writer))
                    | ((c.event_time == time) & (c.writer_id == writer) & (c.seq < seq))
                )
            statement = statement.order_by(
                c.event_time.desc(), c.writer_id.desc(), c.seq.desc()
            ).limit(_BATCH)
            with self._store.engine.connect() as connection:
                rows = connection.execute(statement).all()
            for row in rows:
                record = orjson.loads(row.record)
                if any(r.get("ARN") == key_arn for r in record.get("resources") or []):
                    return {
                        "Operation": record["eventName"],
                        "Timestamp": dt.datetime.strptime(
                            record["eventTime"], "%Y-%m-%dT%H:%M:%SZ"
                        ).replace(tzinfo=dt.UTC),
                        "CloudTrailEventId": record["eventID"],
                        "KmsRequestId": record.get("requestID"),
                    }
            if len(rows) < _BATCH:
                return None
            last = rows[-1]
            after = (last.event_time, last.writer_id, int(last.seq))

    def close(self) -> None:
        self._store.dispose()
