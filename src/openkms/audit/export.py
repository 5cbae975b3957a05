"""The trail as a file: JSON Lines, one writer, event or digest per line, records verbatim.

An exported file verifies exactly as the store it came from (``openkms audit verify --file``):
the stored JSON of each record is carried as a string, byte for byte, so nothing is
re-serialised between what was hashed and what is checked.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

import orjson

from openkms.audit.store import AuditStore
from openkms.audit.verify import Trail

_WRITER_FIELDS = ("writer_id", "position", "record", "hash", "signature")
_DIGEST_FIELDS = ("writer_id", "digest_seq", "last_seq", "record", "signature")
_EVENT_FIELDS = ("writer_id", "seq", "record", "hash")


def trail_of(store: AuditStore) -> Trail:
    return Trail(store.all_writers(), store.all_digests(), store.all_events())


def export_trail(store: AuditStore, out: IO[bytes]) -> int:
    """Write the whole trail to ``out``; the number of events written."""
    for row in store.all_writers():
        out.write(_line("writer", row, _WRITER_FIELDS))
    for row in store.all_digests():
        out.write(_line("digest", row, _DIGEST_FIELDS))
    count = 0
    for row in store.all_events():
        out.write(_line("event", row, _EVENT_FIELDS))
        count += 1
    return count


def load_trail(path: Path) -> Trail:
    writers: list[dict[str, Any]] = []
    digests: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    with path.open("rb") as source:
        for number, line in enumerate(source, start=1):
            if not line.strip():
                continue
            try:
                row = orjson.loads(line)
                kind = row.pop("type")
            except (orjson.JSONDecodeError, AttributeError, KeyError):
                raise ValueError(f"{path}:{number}: not a line of an exported trail") from None
            target = {"writer": writers, "digest": digests, "event": events}.get(kind)
            if target is None:
                raise ValueError(f"{path}:{number}: unknown line type {kind!r}")
            target.append(row)
    # The file's order is not trusted: verify reads each chain by its sequence numbers.
    events.sort(key=lambda r: (str(r.get("writer_id")), int(r.get("seq", 0))))
    return Trail(writers, digests, iter(events))


def _line(kind: str, row: dict[str, Any], fields: tuple[str, ...]) -> bytes:
    return orjson.dumps({"type": kind, **{name: row[name] for name in fields}}) + b"\n"
