"""Worker processes that take new connections in turn, so that each serves its share.

With ``--workers N`` every worker accepts from the one listening socket. Left to uvloop, the
worker that wakes first accepts every connection waiting: when a client opens its pool at
once (wrk's 16 connections, an SDK's connection pool), one worker took 11 or 12 of 16 and
the other 4 or 5, and the busier worker's core bounded the node while the other idled.

Here a worker accepts one connection per readiness, and first waits a moment that grows with
the connections it already holds: both workers are woken for each new connection, and the
one holding fewer takes it. A busy worker's loop answers later still, so load, not only
count, steers connections to the idler one. The wait is bounded (``MAX_WAIT_SECONDS``), so a
connection is never held back for long.

The hook is the event loop (``loop_factory``, uvicorn's ``loop`` setting): uvicorn's server
calls ``create_server(sock=...)`` with the inherited socket, and gets back an acceptor that
stops on ``close()`` as uvicorn's shutdown expects. Everything else is uvloop's.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from ssl import SSLContext, SSLError
from typing import Any

import uvloop

log = logging.getLogger("openkms.server")

# The wait before accepting, per connection already held; long against one wake-up of the
# sibling's loop, short against a client's connect timeout.
WAIT_PER_CONNECTION_SECONDS = 0.0002
MAX_WAIT_SECONDS = 0.004
# Accept failed (out of file descriptors, kernel memory, ...): try again after this long,
# logging once a minute rather than once a try.
ACCEPT_RETRY_SECONDS = 0.1
_LOG_EVERY_SECONDS = 60.0


class BalancedAcceptor:
    """Accepts from ``sock`` one connection at a time, after a wait that grows with the
    connections this process holds, and hands each to ``protocol_factory``."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        sock: socket.socket,
        ssl_context: SSLContext | None,
    ) -> None:
        self._loop = loop
        self._factory = protocol_factory
        self._sock = sock
        self._ssl = ssl_context
        self._transports: set[asyncio.BaseTransport] = set()
        self._closed = False
        self._last_logged = 0.0
        sock.setblocking(False)
        self._arm()

    @property
    def held(self) -> int:
        """Connections this process holds open."""
        self._transports = {t for t in self._transports if not t.is_closing()}
        return len(self._transports)

    def close(self) -> None:
        """Stop accepting (the listening socket is its owner's to close)."""
        if not self._closed:
            self._closed = True
            self._loop.remove_reader(self._sock.fileno())

    async def wait_closed(self) -> None:
        """Nothing to wait for: accepted connections are uvicorn's, and it waits for them."""

    def _arm(self) -> None:
        if not self._closed:
            self._loop.add_reader(self._sock.fileno(), self._ready)

    def _ready(self) -> None:
        # Level-triggered: stop watching until this worker has had its turn.
        self._loop.remove_reader(self._sock.fileno())
        wait = min(self.held * WAIT_PER_CONNECTION_SECONDS, MAX_WAIT_SECONDS)
        if wait:
            self._loop.call_later(wait, self._accept)
        else:
            self._accept()

    def _accept(self) -> None:
        if self._closed:
            return
        try:
            conn, _ = self._sock.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            self._arm()  # a sibling took it, or the client gave up
            return
        except OSError as error:
            # Raised out of this callback, any error would end accepting for good (the
            # reader is off): a worker that cannot accept now tries again shortly.
            self._accept_failed(error)
            return
        conn.setblocking(False)
        self._loop.create_task(self._connect(conn))
        self._arm()

    async def _connect(self, conn: socket.socket) -> None:
        try:
            transport, _ = await self._loop.connect_accepted_socket(
                self._factory, conn, ssl=self._ssl
            )
        except (OSError, SSLError, TimeoutError):
            # A client that went away or failed its TLS handshake: nothing to answer.
            conn.close()
            return
        except Exception:  # noqa: BLE001 - one connection's failure must not reach the loop
            log.exception("could not serve an accepted connection")
            conn.close()
            return
        self._transports.add(transport)

    def _accept_failed(self, error: OSError) -> None:
        now = time.monotonic()
        if now - self._last_logged >= _LOG_EVERY_SECONDS:
            self._last_logged = now
            log.warning("cannot accept connections (%s): retrying", error.strerror or error)
        self._loop.call_later(ACCEPT_RETRY_SECONDS, self._arm)


class BalancedLoop(uvloop.Loop):
    """uvloop, except that a server on an inherited socket accepts in turn with its
    siblings (``BalancedAcceptor``)."""

    async def create_server(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        host: Any = None,
        port: Any = None,
        *,
        sock: socket.socket | None = None,
        ssl: SSLContext | None = None,
        **kwargs: Any,
    ) -> Any:
        if sock is None or host is not None or port is not None:
            return await super().create_server(
                protocol_factory, host, port, sock=sock, ssl=ssl, **kwargs
            )
        return BalancedAcceptor(self, protocol_factory, sock, ssl)


# uvicorn's ``loop`` setting for worker processes (a custom setting names the loop's factory).
LOOP_SETTING = f"{__name__}:BalancedLoop"
