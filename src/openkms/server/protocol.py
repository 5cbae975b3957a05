"""uvicorn's httptools protocol, guarded against clients that hold connections without using
them (slowloris) — uvicorn itself has no deadline for reading a request.

- A request must be read whole (headers and body) within ``REQUEST_READ_SECONDS`` of its
  first byte, or of the connection opening; otherwise the connection is closed. Between
  requests uvicorn's keep-alive timeout applies.
- A worker keeps at most ``max_connections`` open. At the cap, a new connection takes the
  place of the connection idle the longest (a connection that is still sending its request
  counts as idle since its last byte); only when every connection is running a request is
  the new one turned away. So sockets that never finish their headers cannot lock real
  callers out, and the process never runs out of file descriptors.
"""

from __future__ import annotations

import asyncio
import resource
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

REQUEST_READ_SECONDS = 10.0
DEFAULT_MAX_CONNECTIONS = 4096
# File descriptors kept free for the database, logs and the listening socket.
_RESERVED_FDS = 128


def raise_file_limit() -> int:
    """Lift the soft open-file limit to the hard one; return the connections that fit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return max(16, soft - _RESERVED_FDS)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    max_connections = DEFAULT_MAX_CONNECTIONS
    request_read_seconds = REQUEST_READ_SECONDS

    @classmethod
    def configure(cls, max_connections: int, request_read_seconds: float) -> None:
        """Per process (workers are spawned, so each sets it from its configuration)."""
        cls.max_connections = min(max_connections, raise_file_limit())
        cls.request_read_seconds = request_read_seconds

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_deadline: asyncio.TimerHandle | None = None
        self._reading = False  # between a request's first byte and its last
        self.last_active = self.loop.time()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.max_connections and not self._make_room():
            transport.close()
            return
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self.transport is not None:
            super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self.last_active = self.loop.time()
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading = True
        if self._read_deadline is None:
            self._arm()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading = False
        self._disarm()

    @property
    def busy(self) -> bool:
        """Running a request that was read whole, whose answer is not sent yet."""
        return not self._reading and self.cycle is not None and not self.cycle.response_complete

    def _make_room(self) -> bool:
        idle = [c for c in self.connections if isinstance(c, GuardedHttpToolsProtocol)]
        idle = [c for c in idle if not c.busy and not c.transport.is_closing()]
        if not idle:
            return False
        oldest = min(idle, key=lambda c: c.last_active)
        oldest.transport.close()
        self.connections.discard(oldest)
        return True

    def _arm(self) -> None:
        self._disarm()
        self._read_deadline = self.loop.call_later(self.request_read_seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _too_slow(self) -> None:
        self._read_deadline = None
        if not self.busy and not self.transport.is_closing():
            # Still reading the request (or it never began): the client is too slow.
            self.transport.close()
