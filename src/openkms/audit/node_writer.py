"""The node's one trail writer, in the supervisor of ``openkms serve --workers N``.

Each worker process used to write its own chain with its own writer thread: on SQLite the
workers' commits queued behind each other, each paid its own fsync for half the node's
events, and each writer thread fought its worker's event loop for the interpreter lock. Here
the workers render their records on their event loops and send them over a Unix socket; the
supervisor's ``DurableAuditSink`` writes every worker's records in one group commit and one
chain, and answers each frame once it is committed (``openkms.audit.node_protocol``). The
writer's own thread reads the frames, between its commits (``Intake``): a frame costs no
wake-up of another thread, and the frames that arrive during one commit are read together.

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
from openkms.audit.writer import DurableAuditSink, Frame

log = logging.getLogger("openkms.audit")

_READ_BYTES = 1 << 20
_UCRED = struct.Struct("3i")  # pid, uid, gid


class _Worker:
    """One worker's connection: frames in, one byte per frame out.

    A commit's answers to one worker go out in one write (``flush``): each write wakes the
    worker's event loop, and a commit answers several frames of each worker."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self._answers = bytearray()
        self._lock = threading.Lock()  # the writer thread answers; the supervisor closes
        self._closed = False

    def answer(self, committed: bool) -> None:
        with self._lock:
            self._answers += OK if committed else FAILED

    def say(self, byte: bytes) -> None:
        with self._lock:
            self._answers += byte
        self.flush()

    def flush(self) -> None:
        with self._lock:
            if self._closed or not self._answers:
                return
            try:
                sent = self.sock.send(self._answers)
            except OSError:
                sent = 0
            if sent != len(self._answers):
                # Its answers are not being read: it cannot be told, so it is cut off, and
                # fails closed, rather than stall the node's trail.
                with contextlib.suppress(OSError):
                    self.sock.shutdown(socket.SHUT_RDWR)
            self._answers.clear()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self.sock.close()


class NodeTrailServer:
    """The node's side of the socket: an ``Intake`` of the supervisor's writer, whose thread
    accepts the workers, reads their frames between commits and answers them."""

    def __init__(self, sink: DurableAuditSink) -> None:
        self._sink = sink
        self._directory = Path(tempfile.mkdtemp(prefix="openkms-trail-"))
        self.path = str(self._directory / "trail.sock")
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.path)
        os.chmod(self.path, 0o600)
        self._listener.listen(64)
        self._listener.setblocking(False)
        self._wake_reader, self._wake_sender = socket.socketpair()
        self._wake_reader.setblocking(False)
        self._wake_sender.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, self._accept)
        self._selector.register(self._wake_reader, selectors.EVENT_READ, self._woken)
        self._workers: dict[socket.socket, _Worker] = {}
        self._frames: list[Frame] = []
        sink.on_availability = self._tell_workers
        sink.on_released = self._answer_workers
        sink.attach(self)

    def close(self) -> None:
        """Remove the socket; after the sink has closed (its last ``take`` read what the
        exited workers sent)."""
        self._sink.detach(self)
        for worker in list(self._workers.values()):
            worker.close()
        self._selector.close()
        self._listener.close()
        self._wake_reader.close()
        self._wake_sender.close()
        shutil.rmtree(self._directory, ignore_errors=True)

    # -- the Intake, on the writer thread (``wake`` from any) ---------------------------------

    def wait(self, timeout: float) -> None:
        self._poll(timeout)

    def wake(self) -> None:
        with contextlib.suppress(OSError):  # full: a wake-up is pending anyway; closed: done
            self._wake_sender.send(b"x")

    def take(self) -> list[Frame]:
        self._poll(0)
        frames, self._frames = self._frames, []
        return frames

    def _poll(self, timeout: float) -> None:
        try:
            ready = self._selector.select(timeout)
        except (OSError, ValueError):  # closed: the server is stopping
            return
        for key, _ in ready:
            handler: Callable[[], None] = key.data
            handler()

    def _woken(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_reader.recv(4096)

    def _tell_workers(self, available: bool) -> None:
        for worker in list(self._workers.values()):
            worker.say(UP if available else DOWN)

    def _answer_workers(self) -> None:
        for worker in list(self._workers.values()):
            worker.flush()

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
            self._frames.extend((records, worker.answer) for records in frames)

    def _drop(self, sock: socket.socket) -> None:
        worker = self._workers.pop(sock, None)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(sock)
        if worker is not None:
            worker.close()
