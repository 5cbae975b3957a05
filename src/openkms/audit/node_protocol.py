"""The frames between a node's worker processes and its one trail writer (the supervisor).

A worker sends its rendered records as frames: a 4-byte big-endian length, then an orjson
array of records, each ``[record, event_id, event_time, event_source, event_name,
principal_arn, access_key_id, error_code, resources]`` (the record's JSON and its look-up
columns, ``RecordKeys``). The writer answers each frame, in order, with one byte: ``OK``
once every record of the frame is committed, ``FAILED`` if the commit failed (the records
are kept and written later; their callers were answered 500). Between answers the writer
may say ``DOWN`` or ``UP``, answering no frame: the trail has just failed, or is back, so
that every worker of the node refuses requests at once, not each at its own next commit.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson

from openkms.audit.cloudtrail import RecordKeys

OK = b"\x01"
FAILED = b"\x00"
DOWN = b"\x02"
UP = b"\x03"
HEADER_BYTES = 4
# Far above any frame a worker sends (a loop turn's records); a longer length is a broken peer.
MAX_FRAME_BYTES = 64 * 1024 * 1024
# Where a worker finds its node's trail writer.
SOCKET_ENV = "OPENKMS_AUDIT_SOCKET"


class FrameError(ValueError):
    """A frame that no worker of this node would send."""


def encode_frame(records: list[tuple[bytes, RecordKeys]]) -> bytes:
    body = orjson.dumps(
        [
            [
                record.decode(),
                keys.event_id,
                keys.event_time.isoformat(),
                keys.event_source,
                keys.event_name,
                keys.principal_arn,
                keys.access_key_id,
                keys.error_code,
                keys.resources,
            ]
            for record, keys in records
        ]
    )
    return len(body).to_bytes(HEADER_BYTES, "big") + body


def take_frames(buffer: bytearray) -> list[list[tuple[bytes, RecordKeys]]]:
    """The complete frames at the head of ``buffer``, removed from it."""
    frames = []
    while len(buffer) >= HEADER_BYTES:
        size = int.from_bytes(buffer[:HEADER_BYTES], "big")
        if size > MAX_FRAME_BYTES:
            raise FrameError(f"a frame of {size} bytes")
        if len(buffer) < HEADER_BYTES + size:
            break
        body = bytes(buffer[HEADER_BYTES : HEADER_BYTES + size])
        del buffer[: HEADER_BYTES + size]
        frames.append(_decode(body))
    return frames


def _decode(body: bytes) -> list[tuple[bytes, RecordKeys]]:
    try:
        rows = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise FrameError("a frame that is not JSON") from None
    if not isinstance(rows, list) or not rows:
        raise FrameError("a frame without records")
    return [_record(row) for row in rows]


def _record(row: Any) -> tuple[bytes, RecordKeys]:
    if not isinstance(row, list) or len(row) != 9:
        raise FrameError("a record of the wrong shape")
    record, event_id, when, source, name, principal, access_key, error, resources = row
    texts = (record, event_id, when, source, name, resources)
    optional = (principal, access_key, error)
    if not all(isinstance(v, str) for v in texts) or not all(
        v is None or isinstance(v, str) for v in optional
    ):
        raise FrameError("a record of the wrong shape")
    try:
        event_time = dt.datetime.fromisoformat(when)
    except ValueError:
        raise FrameError("a record with a bad time") from None
    if event_time.tzinfo is None:
        raise FrameError("a record with a bad time")
    keys = RecordKeys(event_id, event_time, source, name, principal, access_key, error, resources)
    return record.encode(), keys
