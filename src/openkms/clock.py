"""The one clock every period in openkms reads.

Rotation periods, deletion windows, SigV4 skew and expiries all ask a ``Clock``; tests move a
``ManualClock`` instead of sleeping. A server started with ``OPENKMS_CLOCK_FILE`` reads an
offset in seconds from that file (development and test use only), so end-to-end tests can
move a running server's time without restarting it.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Protocol


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


class ManualClock:
    """A clock that only moves when told to."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._now = start or dt.datetime.now(dt.UTC)

    def now(self) -> dt.datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += dt.timedelta(seconds=seconds)

    def set(self, when: dt.datetime) -> None:
        self._now = when


class OffsetFileClock:
    """System time plus an offset in seconds read from a file (tests move a running server).

    The file is re-read when its modification time changes; only a server started with
    ``OPENKMS_CLOCK_FILE`` pays for that ``stat``.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._offset = 0.0
        self._mtime: int | None = None

    def now(self) -> dt.datetime:
        try:
            mtime = self._path.stat().st_mtime_ns
            if mtime != self._mtime:
                # The offset first: a reader that sees the new mtime must see the new offset.
                self._offset = float(self._path.read_text().strip() or 0)
                self._mtime = mtime
        except (OSError, ValueError):
            self._offset = 0.0
        return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self._offset)


def clock_from_environment() -> Clock:
    path = os.environ.get("OPENKMS_CLOCK_FILE")
    return OffsetFileClock(Path(path)) if path else SystemClock()
