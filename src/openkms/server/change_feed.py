"""Following the change log, so a change made by any worker process or any node reaches
every cache within a bound.

- Every committed write appends to the change log in its own transaction
  (``Transaction.log_changes``), in commit order.
- On one node, the worker processes share an 8-byte counter in a memory-mapped file in the
  data directory: the highest sequence number committed there. Each request compares it with
  what its process has applied (one memory read); a process that is behind catches up on a
  worker thread before it answers, so a client's next request sees its own write whichever
  worker serves it.
- Across nodes, PostgreSQL's NOTIFY (sent on commit, on a channel named after the schema)
  wakes a follower thread in each process at once; it catches up with one query. A listening
  connection that drops is re-made, and the follower then catches up unconditionally, so no
  notification is lost unnoticed. The bound for another node is one notification and one
  query: milliseconds, well under a second. The cache lifetime (``--cache-seconds``) stays
  as a last safety net.

A follower that fell behind the log's retention (a process paused for an hour) forgets
everything it cached, rather than miss a change. Writers prune rows older than an hour now
and then; nothing polls, so an idle server does no I/O.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import logging
import mmap
import os
import struct
import threading
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from openkms.storage import Database
from openkms.storage.changes import EverythingChanged
from openkms.storage.repository import change_channel

log = logging.getLogger(__name__)

_COUNTER = struct.Struct("<Q")
_BATCH = 5000
RETENTION = dt.timedelta(hours=1)
_PRUNE_EVERY_CHANGES = 256


class SharedSequence:
    """The highest change-log sequence committed on this node, shared by its processes."""

    def __init__(self, path: Path) -> None:
        self._path = path
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < _COUNTER.size:
                os.write(fd, bytes(_COUNTER.size))
            self._map = mmap.mmap(fd, _COUNTER.size)
        finally:
            os.close(fd)
        self._lock_fd = os.open(path, os.O_RDWR)

    def value(self) -> int:
        return int(_COUNTER.unpack_from(self._map, 0)[0])

    def advance(self, first: int, last: int) -> None:
        # Writers take the file lock so two of them cannot move the counter backwards.
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            if last > self.value():
                _COUNTER.pack_into(self._map, 0, last)
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def not_above(self, seq: int) -> None:
        """Lower the counter to ``seq`` if it is higher: the file outlived its database (a
        restored or replaced one), and a counter ahead of the log would never be reached."""
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            if self.value() > seq:
                _COUNTER.pack_into(self._map, 0, seq)
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def close(self) -> None:
        self._map.close()
        os.close(self._lock_fd)


class ChangeFollower:
    def __init__(
        self, db: Database, shared: SharedSequence | None, poll_seconds: float = 0.25
    ) -> None:
        self._db = db
        self._shared = shared
        self._poll = poll_seconds
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._prune_due = threading.Event()
        with db.transaction(readonly=True) as tx:
            self._applied = tx.change_log_bounds()[1]
        if shared is not None:
            shared.not_above(self._applied)
            db.add_sequence_listener(shared.advance)
        db.add_sequence_listener(self.committed)

    @property
    def applied(self) -> int:
        return self._applied

    def is_behind(self) -> bool:
        """One memory read: has another process on this node committed what we have not
        applied yet?"""
        return self._shared is not None and self._shared.value() > self._applied

    def catch_up(self, wait: float = -1) -> None:
        """Apply every logged change this process has not seen (blocking: a worker thread).

        ``wait`` bounds how long to wait for another thread already catching up (-1: as long
        as it takes); that thread applies what this one would have."""
        if not self._lock.acquire(timeout=wait):
            return
        try:
            while True:
                with self._db.transaction(readonly=True) as tx:
                    low, _ = tx.change_log_bounds()
                    rows = tx.changes_after(self._applied, _BATCH)
                if low > self._applied + 1 and self._applied:
                    # Rows we never saw were pruned: we cannot know what they changed.
                    self._db.publish([EverythingChanged()])
                if not rows:
                    return
                self._db.publish(change for _, change in rows)
                self._applied = rows[-1][0]
                if len(rows) < _BATCH:
                    return
        finally:
            self._lock.release()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="openkms-changes", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def close(self) -> None:
        """Stop following and let go of the node's counter."""
        self.stop()
        if self._shared is not None:
            self._shared.close()

    def _run(self) -> None:
        """Catch up whenever there is something to catch up on: the node's counter moved, a
        notification came, or the listening connection was (re)made. Nothing else reads the
        database, so an idle process stays idle."""
        postgres = self._db.dialect == "postgresql"
        listener: _Listener | None = None
        failures = 0
        while not self._stop.is_set():
            try:
                woken = False
                if postgres and listener is None:
                    listener = _Listener(self._db)
                    woken = True  # notifications may have been missed while it was down
                if listener is not None:
                    woken = listener.wait(self._poll) or woken
                else:
                    self._stop.wait(self._poll)
                if woken or self.is_behind():
                    self.catch_up()
                if self._prune_due.is_set():
                    self._prune()
                failures = 0
            except Exception as error:  # noqa: BLE001 - the feed must outlive any failure
                failures += 1
                if failures in (1, 10) or failures % 100 == 0:
                    log.warning(
                        "change feed: %s (attempt %d); retrying", type(error).__name__, failures
                    )
                if listener is not None:
                    listener.close()
                    listener = None
                self._stop.wait(min(5.0, self._poll * failures))
        if listener is not None:
            listener.close()

    def committed(self, first: int, last: int) -> None:
        """After each commit in this process (its own changes are already applied here):
        count it as applied when nothing of another process lies between, and now and then
        have the follower thread drop old change-log rows. Never I/O in the writer's path:
        its answer must not depend on housekeeping."""
        with self._lock:
            if first == self._applied + 1:
                self._applied = last
        if last // _PRUNE_EVERY_CHANGES != (first - 1) // _PRUNE_EVERY_CHANGES:
            self._prune_due.set()

    def _prune(self) -> None:
        self._prune_due.clear()
        with self._db.transaction() as tx:
            tx.prune_change_log(dt.datetime.now(dt.UTC) - RETENTION)


class _Listener:
    """A PostgreSQL connection that LISTENs for the change channel."""

    def __init__(self, db: Database) -> None:
        import psycopg
        from psycopg import sql

        url = make_url(db.engine.url.render_as_string(hide_password=False))
        plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._connection: Any = psycopg.connect(plain, autocommit=True)
        row = self._connection.execute("SELECT current_schema()").fetchone()
        channel = change_channel(str(row[0]) if row else "public")
        self._connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))

    def wait(self, seconds: float) -> bool:
        """Whether a notification came within ``seconds``."""
        return any(True for _ in self._connection.notifies(timeout=seconds, stop_after=1))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._connection.close()
