"""Worker processes that take new connections in turn, so that each serves its share.

With ``--workers N`` every worker accepts from the one listening socket. Left to uvloop, the
worker that wakes first accepts every connection waiting: when a client opens its pool at
once (wrk's 16 connections, an SDK's connection pool), one worker took 11 or 12 of 16 and
the other 4 or 5, and the busier worker's core bounded the node while the other idled.

Here the workers publish how many connections each holds in a small shared file
(``ConnectionShares``, one slot per worker, made by the supervisor). Both workers are woken
for each new connection; each accepts one per wake-up, at once if it holds no more than any
sibling, else it looks again shortly, by when an idle sibling has taken it. A sibling too
busy to take it within ``MAX_DEFER_SECONDS`` does not hold the connection back for longer.

The hook is the event loop (uvicorn's ``loop`` setting names ``BalancedLoop``): uvicorn's
server calls ``create_server(sock=...)`` with the inherited socket, and gets back an acceptor
that stops on ``close()`` as uvicorn's shutdown expects. Everything else is uvloop's.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import mmap
import os
import shutil
import socket
import struct
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from ssl import SSLContext, SSLError
from typing import Any

import uvloop

from openkms.processes import process_alive

log = logging.getLogger("openkms.server")

# Where a worker finds its node's shares file.
SHARES_ENV = "OPENKMS_CONNECTION_SHARES"
# A worker holding more than a sibling leaves a new connection to it, looking again every
# DEFER_SECONDS, for at most MAX_DEFER_SECONDS: long against one wake-up of an idle loop,
# short against any client's patience (a busy sibling does not hold a connection back).
DEFER_SECONDS = 0.0005
MAX_DEFER_SECONDS = 0.01
# Accept failed (out of file descriptors, kernel memory, ...): try again after this long,
# logging once a minute rather than once a try.
ACCEPT_RETRY_SECONDS = 0.1
# Errors of the connection being accepted, not of the listener: accept(2) says to try again.
_ACCEPT_AGAIN = frozenset(
    {
        errno.ENETDOWN, errno.EPROTO, errno.ENOPROTOOPT, errno.EHOSTDOWN, errno.ENONET,
        errno.EHOSTUNREACH, errno.EOPNOTSUPP, errno.ENETUNREACH,
    }
)  # fmt: skip
_LOG_EVERY_SECONDS = 60.0
_SLOT = struct.Struct("=ii")  # pid, connections held


class ConnectionShares:
    """One slot per worker process: its pid and the connections it holds. Made by the
    supervisor (``create``); each worker claims a slot whose process is gone (``claim``)."""

    def __init__(self, path: Path, slots: int) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        self._map = mmap.mmap(self._fd, slots * _SLOT.size)
        self._slots = slots
        self._mine: int | None = None

    @classmethod
    def create(cls, workers: int) -> ConnectionShares:
        directory = Path(tempfile.mkdtemp(prefix="openkms-shares-"))  # this user's only
        path = directory / "connections"
        path.write_bytes(b"\0" * (workers * _SLOT.size))
        return cls(path, workers)

    @classmethod
    def open(cls, path: Path) -> ConnectionShares:
        return cls(path, path.stat().st_size // _SLOT.size)

    def claim(self) -> None:
        """Take the first slot whose process is gone (a restarted worker takes its
        predecessor's), under a lock against a sibling claiming at the same moment."""
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            for index in range(self._slots):
                pid, _ = _SLOT.unpack_from(self._map, index * _SLOT.size)
                if pid == 0 or not process_alive(pid):
                    _SLOT.pack_into(self._map, index * _SLOT.size, os.getpid(), 0)
                    self._mine = index
                    return
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def publish(self, held: int) -> None:
        if self._mine is not None:
            _SLOT.pack_into(self._map, self._mine * _SLOT.size, os.getpid(), held)

    def fewest_elsewhere(self) -> int | None:
        """The fewest connections a sibling holds (None without a sibling)."""
        fewest = None
        for index in range(self._slots):
            if index == self._mine:
                continue
            pid, held = _SLOT.unpack_from(self._map, index * _SLOT.size)
            if pid and (fewest is None or held < fewest) and process_alive(pid):
                fewest = held
        return fewest

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)

    def remove(self) -> None:
        """The supervisor's, once its workers are gone."""
        self.close()
        shutil.rmtree(self.path.parent, ignore_errors=True)


class BalancedAcceptor:
    """Accepts from ``sock`` one connection per wake-up, deferring to a sibling that holds
    fewer (``shares``), and hands each to ``protocol_factory``."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        sock: socket.socket,
        ssl_context: SSLContext | None,
        shares: ConnectionShares | None,
    ) -> None:
        self._loop = loop
        self._factory = protocol_factory
        self._sock = sock
        self._ssl = ssl_context
        self._shares = shares
        self._open = 0  # connections accepted and not yet lost (or never made)
        self._connecting: set[asyncio.Task[None]] = set()
        self._closed = False
        self._last_logged = 0.0
        sock.setblocking(False)
        self._arm()

    @property
    def held(self) -> int:
        """Connections this process holds open or is opening."""
        return self._open

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
        self._take_turn(self._loop.time())

    def _take_turn(self, woken: float) -> None:
        """Accept now if no sibling holds fewer, or if one has had ``MAX_DEFER_SECONDS``
        to take the connection and has not; else look again shortly."""
        if self._closed:
            return
        if self._shares is not None:
            held = self._open
            fewest = self._shares.fewest_elsewhere()
            deferring = self._loop.time() - woken < MAX_DEFER_SECONDS
            if fewest is not None and held > fewest and deferring:
                self._loop.call_later(DEFER_SECONDS, self._take_turn, woken)
                return
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
            if error.errno not in _ACCEPT_AGAIN:
                # Raised out of this callback, any error would end accepting for good (the
                # reader is off): a worker that cannot accept now tries again shortly.
                self._accept_failed(error)
                return
            self._arm()
            return
        conn.setblocking(False)
        self._counted(+1)
        task = self._loop.create_task(self._connect(conn))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)
        self._arm()

    async def _connect(self, conn: socket.socket) -> None:
        made: list[bool] = []  # whether the protocol saw connection_made (not on a failed TLS)

        def protocol() -> asyncio.BaseProtocol:
            made_protocol = self._factory()
            made_connection, lost_connection = (
                made_protocol.connection_made,
                made_protocol.connection_lost,
            )

            def connection_made(transport: asyncio.BaseTransport) -> None:
                made.append(True)
                made_connection(transport)

            def connection_lost(exc: Exception | None) -> None:
                try:
                    lost_connection(exc)
                finally:
                    self._counted(-1)

            made_protocol.connection_made = connection_made  # type: ignore[method-assign]
            made_protocol.connection_lost = connection_lost  # type: ignore[method-assign]
            return made_protocol

        try:
            await self._loop.connect_accepted_socket(protocol, conn, ssl=self._ssl)
        except (OSError, SSLError, TimeoutError):
            # A client that went away or failed its TLS handshake: nothing to answer.
            conn.close()
        except Exception:  # noqa: BLE001 - one connection's failure must not reach the loop
            log.exception("could not serve an accepted connection")
            conn.close()
        finally:
            if not made:
                self._counted(-1)  # no connection_lost will come for it

    def _counted(self, change: int) -> None:
        self._open += change
        if self._shares is not None:
            self._shares.publish(self._open)

    def _accept_failed(self, error: OSError) -> None:
        now = time.monotonic()
        if now - self._last_logged >= _LOG_EVERY_SECONDS:
            self._last_logged = now
            log.warning("cannot accept connections (%s): retrying", error.strerror or error)
        self._loop.call_later(ACCEPT_RETRY_SECONDS, self._arm)


class BalancedLoop(uvloop.Loop):
    """uvloop, except that a server on an inherited socket accepts in turn with its
    siblings (``BalancedAcceptor``), through the shares file named by ``SHARES_ENV``."""

    def __init__(self) -> None:
        super().__init__()
        self._shares: ConnectionShares | None = None
        path = os.environ.get(SHARES_ENV)
        if path:
            with contextlib.suppress(OSError, ValueError):  # no file: accept unbalanced
                self._shares = ConnectionShares.open(Path(path))
                self._shares.claim()

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
        return BalancedAcceptor(self, protocol_factory, sock, ssl, self._shares)


# uvicorn's ``loop`` setting for worker processes (a custom setting names the loop's factory).
LOOP_SETTING = f"{__name__}:BalancedLoop"
