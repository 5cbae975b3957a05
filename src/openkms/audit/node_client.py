"""A worker process's side of its node's trail writer (``openkms.audit.node_writer``).

No thread: a request's record is rendered on the event loop as its event is submitted, the
records of one loop turn go out as one frame, and the writer's answers are read by the loop
(``add_reader``) and settle the waiting requests. Fail closed as the writer itself does: a
frame whose commit failed, or a lost connection to the writer, answers its requests 500
and makes the sink unavailable (the envelope then refuses requests) until a later frame is
committed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import socket
import threading
from collections.abc import Awaitable

from openkms.audit.cloudtrail import CloudTrailRenderer, RecordKeys
from openkms.audit.events import AuditEvent
from openkms.audit.node_protocol import DOWN, OK, UP, encode_frame
from openkms.audit.sink import AuditUnavailable, LogAuditSink
from openkms.audit.writer import render_event, settle_futures

log = logging.getLogger("openkms.audit")

_READ_BYTES = 65536
_NOTICES = (DOWN[0], UP[0])


class NodeTrailClient:
    def __init__(self, path: str, renderer: CloudTrailRenderer, log_sink: LogAuditSink) -> None:
        self._renderer = renderer
        self._log = log_sink
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.connect(path)
        self._sock.setblocking(False)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()  # the lifecycle jobs submit from their own thread
        self._records: list[tuple[bytes, RecordKeys]] = []
        self._futures: list[asyncio.Future[None]] = []
        self._flush_scheduled = False
        self._unsent = bytearray()
        # Per frame sent and not yet answered, in order: its record count and its waiters.
        self._in_flight: collections.deque[tuple[int, list[asyncio.Future[None]]]] = (
            collections.deque()
        )
        self._available = True
        self._lost = False

    @property
    def available(self) -> bool:
        return self._available

    @property
    def queue_depth(self) -> int:
        return len(self._records) + sum(count for count, _ in self._in_flight)

    def start(self) -> None:
        """Serve on the running event loop (the server's lifespan start-up)."""
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._sock, self._on_answers)
        self._schedule()

    def log_only(self, event: AuditEvent) -> None:
        self._log.record(event)

    def submit(self, event: AuditEvent, wait: bool = True) -> Awaitable[None] | None:
        self._log.record(event)
        record = render_event(self._renderer, event)
        loop = self._loop
        future = None
        if wait:
            future = asyncio.get_running_loop().create_future()
            if self._lost:
                future.set_exception(AuditUnavailable())
                return future
        with self._lock:
            self._records.append(record)
            if future is not None:
                self._futures.append(future)
        if loop is None:
            return future  # sent once the server starts serving
        if future is not None:
            self._schedule()  # on the loop: a request's submission
        else:
            with contextlib.suppress(RuntimeError):  # the loop has closed
                loop.call_soon_threadsafe(self._schedule)
        return future

    def close(self) -> None:
        """Send what is held (the server is stopping: nobody waits for the answers)."""
        if self._loop is not None:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(self._sock)
        with self._lock:
            records, self._records = self._records, []
        data = bytes(self._unsent) + (encode_frame(records) if records else b"")
        if data and not self._lost:
            try:
                self._sock.setblocking(True)
                self._sock.settimeout(10)
                self._sock.sendall(data)
            except OSError as error:
                log.error("audit trail: %d events not sent at shutdown (%s)", len(records), error)
        self._sock.close()
        self._log.close()

    # -- on the event loop ------------------------------------------------------------------

    def _schedule(self) -> None:
        if not self._flush_scheduled and self._loop is not None:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        """One frame for everything submitted since the last (a loop turn's requests)."""
        self._flush_scheduled = False
        with self._lock:
            records, self._records = self._records, []
            futures, self._futures = self._futures, []
        if not records:
            return
        if self._lost:
            settle_futures(futures, AuditUnavailable())
            return
        self._in_flight.append((len(records), futures))
        self._unsent += encode_frame(records)
        self._send()

    def _send(self) -> None:
        assert self._loop is not None
        try:
            sent = self._sock.send(self._unsent)
        except BlockingIOError:
            sent = 0
        except OSError as error:
            self._connection_lost(error)
            return
        del self._unsent[:sent]
        if self._unsent:
            self._loop.add_writer(self._sock, self._send_more)

    def _send_more(self) -> None:
        assert self._loop is not None
        self._loop.remove_writer(self._sock)
        self._send()

    def _on_answers(self) -> None:
        try:
            answers = self._sock.recv(_READ_BYTES)
        except BlockingIOError:
            return
        except OSError as error:
            self._connection_lost(error)
            return
        if not answers:
            self._connection_lost(None)
            return
        for answer in answers:
            if answer in _NOTICES:
                self._available = answer == UP[0]
                continue
            if not self._in_flight:
                self._connection_lost(RuntimeError("an answer to no frame"))
                return
            _, futures = self._in_flight.popleft()
            committed = answer == OK[0]
            settle_futures(futures, None if committed else AuditUnavailable())
            self._available = committed

    def _connection_lost(self, error: Exception | None) -> None:
        if self._lost:
            return
        self._lost = True
        self._available = False
        log.error(
            "audit trail: the node's writer is gone (%s): refusing requests",
            type(error).__name__ if error is not None else "closed",
        )
        if self._loop is not None:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(self._sock)
                self._loop.remove_writer(self._sock)
        while self._in_flight:
            settle_futures(self._in_flight.popleft()[1], AuditUnavailable())
        with self._lock:
            futures, self._futures = self._futures, []
            self._records = []
        settle_futures(futures, AuditUnavailable())
