"""The node's one trail writer, in the supervisor of ``openkms serve --workers N``.

Each worker process used to write its own chain with its own writer thread: on SQLite the
workers' commits queued behind each other, each paid its own fsync for half the node's
events, and each writer thread fought its worker's event loop for the interpreter lock. Here
the workers render their records on their event loops and send them over a Unix socket; the
supervisor's ``DurableAuditSink`` writes every worker's records in one group commit and one
chain, and answers each frame once it is committed (``openkms.audit.node_protocol``).

The socket lies in a directory of its own that only this user may enter (``mkdtemp``), and
a connection from any other user is refused (``SO_PEERCRED``). A peer that breaks the
protocol is disconnected; its worker then fails closed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import shutil
import socket
import struct
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from openkms.audit.node_protocol import DOWN, FAILED, OK, UP, FrameError, take_frames
from openkms.audit.writer import DurableAuditSink

log = logging.getLogger("openkms.audit")

_READ_BYTES = 1 << 20
_UCRED = struct.Struct("3i")  # pid, uid, gid


class _Worker:
    """One worker's connection: frames in, one byte per frame out."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self._lock = threading.Lock()  # the writer thread answers; the intake thread closes
        self._closed = False

    def answer(self, committed: bool) -> None:
        self.say(OK if committed else FAILED)

    def say(self, byte: bytes) -> None:
        with self._lock:
            if self._closed:
                return
            try:
                sent = self.sock.send(byte)
            except OSError:
                sent = 0
            if sent != 1:
                # Its answers are not being read: it cannot be told, so it is cut off, and
                # fails closed, rather than stall the node's trail.
                with contextlib.suppress(OSError):
                    self.sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self.sock.close()


class NodeTrailServer:
    def __init__(self, sink: DurableAuditSink) -> None:
        self._sink = sink
        self._directory = Path(tempfile.mkdtemp(prefix="openkms-trail-"))
        self.path = str(self._directory / "trail.sock")
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.path)
        os.chmod(self.path, 0o600)
        self._listener.listen(64)
        self._listener.setblocking(False)
        self._stop_reader, self._stop_writer = socket.socketpair()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, self._accept)
        self._selector.register(self._stop_reader, selectors.EVENT_READ, None)
        self._workers: dict[socket.socket, _Worker] = {}
        sink.on_availability = self._tell_workers
        self._thread = threading.Thread(target=self._run, name="openkms-trail-intake", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop taking frames (the workers have exited: their last frames are read first)."""
        with contextlib.suppress(OSError):
            self._stop_writer.send(b"x")
        self._thread.join(timeout=10)
        for worker in list(self._workers.values()):
            worker.close()
        self._selector.close()
        self._listener.close()
        self._stop_reader.close()
        self._stop_writer.close()
        shutil.rmtree(self._directory, ignore_errors=True)

    def _tell_workers(self, available: bool) -> None:
        # On the writer thread; the intake thread may add or drop a worker meanwhile.
        for worker in list(self._workers.values()):
            worker.say(UP if available else DOWN)

    def _run(self) -> None:
        while True:
            for key, _ in self._selector.select(timeout=1.0):
                handler: Callable[[], None] | None = key.data
                if handler is None:
                    self._drain()
                    return
                handler()

    def _drain(self) -> None:
        # Stopping: whatever the workers wrote before they exited is still to be read.
        for sock in list(self._workers):
            with contextlib.suppress(BlockingIOError):
                self._read(sock)

    def _accept(self) -> None:
        try:
            sock, _ = self._listener.accept()
        except OSError:
            return
        _, uid, _ = _UCRED.unpack(
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
        )
        if uid != os.geteuid():
            log.warning("audit trail: refused a connection from uid %d", uid)
            sock.close()
            return
        sock.setblocking(False)
        self._workers[sock] = _Worker(sock)
        self._selector.register(sock, selectors.EVENT_READ, lambda: self._read(sock))

    def _read(self, sock: socket.socket) -> None:
        worker = self._workers[sock]
        while True:
            try:
                data = sock.recv(_READ_BYTES)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._drop(sock)
                return
            worker.buffer += data
            try:
                frames = take_frames(worker.buffer)
            except FrameError as error:
                log.error("audit trail: a worker broke the protocol (%s): disconnected", error)
                self._drop(sock)
                return
            for records in frames:
                self._sink.submit_rendered(records, worker.answer)

    def _drop(self, sock: socket.socket) -> None:
        worker = self._workers.pop(sock, None)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(sock)
        if worker is not None:
            worker.close()
