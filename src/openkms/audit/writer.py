"""The durable audit sink: group commit by one writer thread per process.

A request hands its event over (``submit``: a list append and a wake-up, on the event loop)
and awaits a future. The writer thread takes everything queued, renders the CloudTrail
records, extends its hash chain, inserts the batch with one executemany in one transaction
(with a signed digest when one is due), commits, and only then releases the batch's waiting
requests: one ``call_soon_threadsafe`` per batch and event loop, not per request. So no answer
leaves before its event is committed, and the commit (an fsync on SQLite) is shared by every
request that arrived while the previous one was being written.

Fail closed: when a batch cannot be committed its requests are released with
``AuditUnavailable`` (answered 500), and until a batch commits again the sink says it is not
``available``, so the envelope refuses requests before running them. Events that were not
committed are kept and written first once the store answers again, marked with what their
caller was answered. After any failure the writer reconnects and re-reads its chain's
committed head from the store before writing on (a commit whose outcome is unknown cannot
fork the chain); a store that no longer knows this writer (a replaced file) gets a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from openkms.audit import chain
from openkms.audit.cloudtrail import CloudTrailRenderer, RecordKeys
from openkms.audit.events import AuditEvent
from openkms.audit.signing import DeferredSigningKey, SigningKey
from openkms.audit.sink import AuditUnavailable, LogAuditSink
from openkms.audit.store import AuditStore
from openkms.clock import Clock

log = logging.getLogger("openkms.audit")

# How long the writer sleeps between attempts while the store fails.
RETRY_SECONDS = 0.2
# How long a busy writer waits for more of a batch (see _run); far below one fsync.
COALESCE_SECONDS = 0.001
# How often an idle writer looks whether a digest is due (by the injected clock).
IDLE_WAKE_SECONDS = 0.5
# Events kept for a store that does not answer; beyond this the oldest are dropped (logged).
MAX_UNWRITTEN = 100_000


Frame = tuple[list[tuple[bytes, RecordKeys]], Callable[[bool], None]]


class Intake(Protocol):
    """Records that reach the writer from other processes (the node's workers,
    ``openkms.audit.node_writer``), read by the writer thread itself: between two commits it
    takes every frame that arrived during the first, with no thread of its own in between."""

    def wait(self, timeout: float) -> None:
        """Block until a frame arrives, ``wake`` is called, or ``timeout`` passes."""

    def wake(self) -> None:
        """Make a ``wait`` return now; callable from any thread."""

    def take(self) -> list[Frame]:
        """The frames that have arrived, without blocking: each its records and its ``done``,
        which the writer thread calls once, with whether they were committed."""


@dataclass
class _Pending:
    event: AuditEvent | None  # None: rendered by a worker process (an ``Intake``'s frame)
    future: asyncio.Future[None] | None
    loop: asyncio.AbstractEventLoop | None
    record: bytes | None = None
    keys: Any = None
    failed_answer: bool = False  # its caller was answered 500: the trail was unavailable
    # Told (on the writer thread) whether its batch committed: a worker's frame, on its last.
    done: Callable[[bool], None] | None = None


@dataclass
class _Chain:
    writer_id: str
    registered: bool = False
    head_seq: int = 0
    head_hash: str = chain.GENESIS
    digest_seq: int = 0
    last_signature: str = ""
    undigested: chain.EventsHash = field(default_factory=chain.EventsHash)


class DurableAuditSink:
    def __init__(
        self,
        store: AuditStore,
        renderer: CloudTrailRenderer,
        signing_key: SigningKey | DeferredSigningKey,
        clock: Clock,
        digest_seconds: float,
        log_sink: LogAuditSink | None = None,
    ) -> None:
        self._store = store
        self._renderer = renderer
        self._key = signing_key
        self._clock = clock
        self._digest_every = dt.timedelta(seconds=digest_seconds)
        self._log = log_sink
        self._node = f"{socket.gethostname()}:{os.getpid()}"
        self._chain = _Chain(str(uuid.uuid4()))
        self._next_digest = clock.now() + self._digest_every
        self._queue: list[_Pending] = []
        self._unwritten: list[_Pending] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._intake: Intake | None = None
        self._stopping = threading.Event()
        self._available = True
        self._resync = False
        self._last_batch = 0
        # Told how long each successful group commit took (the metrics); on the writer thread.
        self.on_commit: Callable[[float], None] | None = None
        # Told when the trail goes down or comes back (the node's workers, node_writer); on
        # the writer thread, before the batch's requests are released.
        self.on_availability: Callable[[bool], None] | None = None
        # Told once a batch's ``done`` callbacks have all been called, so that the node's
        # writer answers each worker once per commit, not once per frame; on the writer thread.
        self.on_released: Callable[[], None] | None = None
        self._thread = threading.Thread(target=self._run, name="openkms-audit", daemon=True)
        self._thread.start()

    @property
    def available(self) -> bool:
        """False from a failed commit until the next one succeeds."""
        return self._available

    @property
    def queue_depth(self) -> int:
        """Events waiting to be written (queued, or held back by a failed commit)."""
        return len(self._queue) + len(self._unwritten)

    @property
    def dialect(self) -> str:
        """The trail's database: ``sqlite`` or ``postgresql``."""
        return self._store.dialect

    @property
    def writer_id(self) -> str:
        return self._chain.writer_id

    def start(self) -> None:
        """Nothing to do: the writer thread runs from the start."""

    def log_only(self, event: AuditEvent) -> None:
        if self._log is not None:
            self._log.record(event)

    def submit(self, event: AuditEvent, wait: bool = True) -> Awaitable[None] | None:
        """Queue ``event``; with ``wait``, a future that completes once it is committed (or
        fails with ``AuditUnavailable``). Call on the event loop."""
        if self._log is not None:
            self._log.record(event)
        loop = future = None
        if wait:
            loop = asyncio.get_running_loop()
            future = loop.create_future()
        with self._lock:
            self._queue.append(_Pending(event, future, loop))
        self._wake_writer()
        return future

    def attach(self, intake: Intake) -> None:
        """Read ``intake``'s frames on the writer thread; before any frame is sent."""
        self._intake = intake
        self._wake_writer()

    def detach(self, intake: Intake) -> None:
        """Stop reading ``intake`` (it is closing); the writer waits on its own again."""
        if self._intake is intake:
            self._intake = None
        self._wake.set()
        intake.wake()

    def close(self) -> None:
        """Write what is queued and a final digest, then stop the writer."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._wake_writer()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        if self._log is not None:
            self._log.close()
        self._store.dispose()

    # -- the writer thread ----------------------------------------------------------------

    def _wake_writer(self) -> None:
        self._wake.set()
        intake = self._intake
        if intake is not None:
            intake.wake()

    def _wait(self, timeout: float) -> None:
        intake = self._intake
        if intake is None:
            self._wake.wait(timeout)
        elif not self._wake.is_set():
            intake.wait(timeout)
        self._wake.clear()

    def _take_frames(self) -> None:
        intake = self._intake
        if intake is not None:
            self._queue_frames(intake.take())

    def _queue_frames(self, frames: list[Frame]) -> None:
        items: list[_Pending] = []
        for records, done in frames:
            items.extend(_Pending(None, None, None, record, keys) for record, keys in records)
            items[-1].done = done
        if items:
            with self._lock:
                self._queue.extend(items)

    def _run(self) -> None:
        while True:
            self._wait(IDLE_WAKE_SECONDS)
            stopping = self._stopping.is_set()
            self._take_frames()
            with self._lock:
                batch, self._queue = self._queue, []
            if len(batch) < self._last_batch // 2 and not stopping:
                # Busy (the last batch was large) but few are queued yet: wait a moment for
                # the requests now being served, so one commit (an fsync) serves them too.
                # Idle, this never waits: a lone request is committed at once.
                self._stopping.wait(COALESCE_SECONDS)
                self._take_frames()
                with self._lock:
                    batch += self._queue
                    self._queue = []
            self._last_batch = len(batch)
            if not self._write_batch(batch, final=stopping) and not stopping:
                self._stopping.wait(RETRY_SECONDS)
            if stopping:
                self._take_frames()
                with self._lock:
                    rest, self._queue = self._queue, []
                if rest or self._unwritten:
                    self._write_batch(rest, final=True)
                self._fail_all_unreleased()
                return

    def _write_batch(self, batch: list[_Pending], final: bool) -> bool:
        """Write ``batch`` (after any events a failure left unwritten); True on success."""
        items = self._unwritten + batch
        now = self._clock.now()
        digest_due = final or now >= self._next_digest
        closing = final and self._chain.registered
        if not items and not (digest_due and self._chain.undigested.count) and not closing:
            return True
        started = time.perf_counter()
        try:
            self._commit(items, now, digest_due, final)
        except Exception as error:  # noqa: BLE001 - any failure of the store: fail closed
            if self._available:
                log.error("audit trail unavailable (%s): refusing requests", _describe(error))
                self._available = False
                self._tell_availability(False)
            self._resync = True
            self._release(batch, AuditUnavailable())
            for item in batch:
                item.failed_answer = True
                item.future = item.loop = item.done = None
                if item.record is not None:
                    item.record = answered_with_internal_error(item.record)
            self._unwritten = items[-MAX_UNWRITTEN:]
            if len(items) > MAX_UNWRITTEN:
                log.error("audit trail: %d events dropped", len(items) - MAX_UNWRITTEN)
            return False
        if self.on_commit is not None and items:
            self.on_commit(time.perf_counter() - started)
        if not self._available:
            log.warning("audit trail available again: %d delayed events written", len(items))
            self._available = True
            self._tell_availability(True)
        self._unwritten = []
        self._release(batch, None)
        if digest_due:
            self._next_digest = now + self._digest_every
        return True

    def _commit(
        self, items: list[_Pending], now: dt.datetime, digest_due: bool, final: bool
    ) -> None:
        store = self._store
        if self._resync:
            store.reconnect()
            self._sync_chain()
        store.check_file()
        for item in items:
            if item.record is None:
                item.record, item.keys = self._render(item)
        # A deferred key (a node that started sealed) opens on its own connection: before
        # this batch's transaction takes the trail's write lock.
        key_id = self._key.key_id
        state = self._chain
        if state.registered and not digest_due:
            self._append(items)
            return
        with store.writing(), store.engine.begin() as connection:
            writer_row = None
            if not state.registered:
                position, previous = store.last_writer(connection)
                record = chain.writer_record(
                    state.writer_id, position + 1, previous, now, self._node, key_id
                )
                writer_row = (
                    position + 1,
                    record,
                    chain.writer_hash(record),
                    self._key.sign(record),
                )
                store.add_writer(
                    connection,
                    state.writer_id,
                    writer_row[0],
                    record.decode(),
                    writer_row[2],
                    writer_row[3],
                )
            head_hash = writer_row[2] if writer_row is not None else state.head_hash
            rows, head_seq, head_hash, hashes = self._rows(items, state.head_seq, head_hash)
            store.add_events(connection, rows)
            undigested = state.undigested.copy()  # the chain moves on once committed
            undigested.extend(hashes)
            last_signature = writer_row[3] if writer_row is not None else state.last_signature
            digest_seq = state.digest_seq
            if digest_due and (undigested.count or final):
                digest_seq += 1
                record = chain.digest_record(
                    state.writer_id,
                    digest_seq,
                    now,
                    head_seq - undigested.count + 1,
                    head_seq,
                    undigested,
                    head_hash,
                    last_signature,
                    key_id,
                    final,
                )
                last_signature = self._key.sign(record)
                store.add_digest(
                    connection,
                    {
                        "writer_id": state.writer_id,
                        "digest_seq": digest_seq,
                        "last_seq": head_seq,
                        "record": record.decode(),
                        "signature": last_signature,
                    },
                )
                undigested = chain.EventsHash()
        # Committed: only now does the chain move on.
        state.registered = True
        state.head_seq, state.head_hash = head_seq, head_hash
        state.digest_seq, state.last_signature = digest_seq, last_signature
        state.undigested = undigested

    def _append(self, items: list[_Pending]) -> None:
        """The common batch: events only, on the store's fast path."""
        state = self._chain
        rows, head_seq, head_hash, hashes = self._rows(items, state.head_seq, state.head_hash)
        with self._store.writing():
            self._store.append_events(rows)
        state.head_seq, state.head_hash = head_seq, head_hash
        state.undigested.extend(hashes)

    def _rows(
        self, items: list[_Pending], head_seq: int, head_hash: str
    ) -> tuple[list[tuple[Any, ...]], int, str, list[str]]:
        """The batch's rows, chained on from ``head_seq`` / ``head_hash``."""
        store, writer_id = self._store, self._chain.writer_id
        rows = []
        hashes = []
        for item in items:
            head_seq += 1
            record = item.record or b""
            head_hash = chain.event_hash(head_hash, head_seq, record)
            hashes.append(head_hash)
            keys = item.keys
            rows.append(
                (
                    writer_id,
                    head_seq,
                    keys.event_id,
                    store.event_time(keys.event_time),
                    keys.event_source,
                    keys.event_name,
                    keys.principal_arn,
                    keys.access_key_id,
                    keys.error_code,
                    keys.resources,
                    record.decode(),
                    head_hash,
                )
            )
        return rows, head_seq, head_hash, hashes

    def _sync_chain(self) -> None:
        """Take the chain's committed state from the store (after a failure)."""
        state = self._store.chain_state(self._chain.writer_id)
        if state is None:
            if self._chain.registered:
                # The store lost this writer (a replaced file): start a new chain in it.
                log.error(
                    "audit trail: writer %s is not in the store; starting a new chain",
                    self._chain.writer_id,
                )
                self._chain = _Chain(str(uuid.uuid4()))
        else:
            self._chain = _Chain(
                self._chain.writer_id,
                registered=True,
                head_seq=state.head_seq,
                head_hash=state.head_hash,
                digest_seq=state.digest_seq,
                last_signature=state.last_signature,
                undigested=chain.EventsHash(state.undigested),
            )
        self._resync = False

    def _render(self, item: _Pending) -> tuple[bytes, Any]:
        assert item.event is not None  # a worker's records come rendered
        record, keys = render_event(self._renderer, item.event)
        if item.failed_answer:
            record = answered_with_internal_error(record)
        return record, keys

    def _tell_availability(self, available: bool) -> None:
        if self.on_availability is not None:
            try:
                self.on_availability(available)
            except Exception:  # noqa: BLE001 - telling must not stop the writer
                log.exception("audit trail: telling the workers the trail's state failed")

    def _release(self, batch: list[_Pending], error: Exception | None) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        for item in batch:
            if item.future is not None and item.loop is not None:
                by_loop.setdefault(item.loop, []).append(item.future)
            if item.done is not None:
                try:
                    item.done(error is None)
                except Exception:  # a worker that went away: its connection's own concern
                    log.exception("audit trail: telling a worker of its batch failed")
        if self.on_released is not None:
            try:
                self.on_released()
            except Exception:  # noqa: BLE001 - telling must not stop the writer
                log.exception("audit trail: answering the workers failed")
        for loop, futures in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
                loop.call_soon_threadsafe(settle_futures, futures, error)

    def _fail_all_unreleased(self) -> None:
        with self._lock:
            rest, self._queue = self._queue, []
        self._release(rest, AuditUnavailable())


def render_event(renderer: CloudTrailRenderer, event: AuditEvent) -> tuple[bytes, RecordKeys]:
    """The event's record and look-up columns; never fails for a value a caller sent."""
    try:
        return renderer.render(event)
    except Exception:  # noqa: BLE001 - a value that cannot be rendered must not lose the event
        # Without the caller's free text (parameters, answer, user agent, message): what is
        # left is openkms's own, so this cannot fail again and block the trail.
        facts = event.facts
        facts.parameters, facts.response, facts.user_agent = {"unrenderable": True}, None, None
        return renderer.render(AuditEvent(facts, event.status, event.error_code, None))


def answered_with_internal_error(record: bytes) -> bytes:
    """``record`` marked with what its caller was really answered: a 500, the trail being
    down when its event was to be written (written later, once the trail was back)."""
    body = orjson.loads(record)
    body["additionalEventData"] = {"answeredWith": "KMSInternalException"}
    return orjson.dumps(body)


def settle_futures(futures: list[asyncio.Future[None]], error: Exception | None) -> None:
    for future in futures:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


def _describe(error: Exception) -> str:
    # A type and a short reason: driver messages may quote SQL, never values (hidden).
    reason = (str(error).splitlines() or [""])[0]
    return f"{type(error).__name__}: {reason[:200]}"
