"""Where audit events go: the ``AuditSink`` interface, and the request log line.

The trail itself, durable before the answer leaves, is ``openkms.audit.writer``; it writes the
log line too."""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Awaitable
from typing import Protocol

from openkms.audit.events import AuditEvent

log = logging.getLogger("openkms.requests")

# How often buffered request lines are written out.
FLUSH_SECONDS = 0.1


class AuditUnavailable(Exception):
    """The event could not be made durable; the request must not be answered as asked."""


class AuditSink(Protocol):
    @property
    def available(self) -> bool:
        """Whether events can be kept now; the envelope refuses requests while not."""
        ...

    def submit(self, event: AuditEvent, wait: bool = True) -> Awaitable[None] | None:
        """Keep ``event``. With ``wait``, what to await before answering (None: nothing);
        it raises ``AuditUnavailable`` if the event could not be kept."""
        ...

    def start(self) -> None:
        """Begin on the running event loop (the server's lifespan start-up)."""
        ...

    def log_only(self, event: AuditEvent) -> None:
        """The request log line of ``event``, not kept in the trail: a sealed node's refusals
        (its trail's signing key is under the seal; nothing ran)."""
        ...

    def close(self) -> None:
        """Write out whatever is held; the server is stopping."""
        ...


class LogAuditSink:
    """One line per request — request id, operation, HTTP status, error code or OK — in the
    server log's format, on the server log's stream.

    The line is formatted here and written in batches by a background thread every
    ``FLUSH_SECONDS``: Python's logging machinery and a write per line cost a fifth of a
    warm Encrypt. (A log line is not the audit trail: that one is durable before the
    answer leaves, ``openkms.audit.writer``.)"""

    def __init__(self, stream_fd: int | None = None, log_format: str = "text") -> None:
        self._json = log_format == "json"
        self._enabled = log.isEnabledFor(logging.INFO)
        self._fd = sys.stderr.fileno() if stream_fd is None else stream_fd
        self._pid = os.getpid()
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._second = -1
        self._stamp = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if self._enabled:
            self._thread = threading.Thread(target=self._run, name="openkms-log", daemon=True)
            self._thread.start()
            atexit.register(self.close)

    available = True

    def start(self) -> None:
        """Nothing to do: the flushing thread runs from the start."""

    def submit(self, event: AuditEvent, wait: bool = True) -> None:
        self.record(event)

    def log_only(self, event: AuditEvent) -> None:
        self.record(event)

    def record(self, event: AuditEvent) -> None:
        if not self._enabled:
            return
        facts = event.facts
        latency_ms = round((time.perf_counter() - facts.started) * 1000, 3)
        caller = facts.principal.arn if facts.principal is not None else "-"
        key = next((arn for role, arn in facts.resources if role != "alias"), "-")
        # Only these facts: a caller's ARN, an operation's name, a key's ARN, the outcome.
        # No request or response member reaches the line (plaintexts, blobs, signatures).
        if self._json:
            line = json.dumps(
                {
                    "time": self._iso_timestamp(),
                    "level": "INFO",
                    "pid": self._pid,
                    "logger": "openkms.requests",
                    "request_id": facts.request_id,
                    "caller": caller,
                    "operation": facts.operation,
                    "key": key,
                    "status": event.status,
                    "error_code": event.error_code or "OK",
                    "latency_ms": latency_ms,
                },
                ensure_ascii=False,
            )
            line += "\n"
        else:
            line = (
                f"{self._timestamp()} INFO [{self._pid}] openkms.requests {facts.request_id} "
                f"caller={caller} op={facts.operation} key={key} status={event.status} "
                f"error={event.error_code or 'OK'} latency_ms={latency_ms}\n"
            )
        with self._lock:
            self._lines.append(line)

    def flush(self) -> None:
        with self._lock:
            lines, self._lines = self._lines, []
        if lines:
            data = "".join(lines).encode("utf-8", "replace")
            while data:
                written = os.write(self._fd, data)
                data = data[written:]

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_SECONDS):
            with contextlib.suppress(OSError):  # the log stream is gone; requests go on
                self.flush()

    def _iso_timestamp(self) -> str:
        return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")

    def _timestamp(self) -> str:
        # logging's asctime format, "2026-12-01 21:00:00,123", with the seconds cached.
        now = time.time()
        second = int(now)
        if second != self._second:
            self._stamp = dt.datetime.fromtimestamp(second).strftime("%Y-%m-%d %H:%M:%S")
            self._second = second
        return f"{self._stamp},{int((now - second) * 1000):03d}"
