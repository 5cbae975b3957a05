"""The node's one trail writer and its workers' clients, on a real SQLite trail and a real
Unix socket: the workers' records in one chain, frames that no worker sends refused, a
worker that breaks the protocol cut off while the others go on."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
from pathlib import Path

import pytest

from openkms.audit.cloudtrail import CloudTrailRenderer, RecordKeys
from openkms.audit.export import trail_of
from openkms.audit.node_client import NodeTrailClient
from openkms.audit.node_protocol import FrameError, encode_frame, take_frames
from openkms.audit.node_writer import NodeTrailServer
from openkms.audit.signing import load_public_key, public_key_id
from openkms.audit.sink import AuditUnavailable, LogAuditSink
from openkms.audit.store import AuditStore
from openkms.audit.verify import verify
from openkms.audit.writer import DurableAuditSink
from openkms.clock import ManualClock
from openkms.model import load_kms_model
from openkms.seal.root_key import AesGcmRootKey
from tests.unit.test_audit_writer import _facts

KEYS = RecordKeys(
    "0f6d8e4c-1b8a-4f55-9d0e-2f3c4b5a6d7e",
    dt.datetime(2026, 12, 1, 12, 0, 0, 123456, tzinfo=dt.UTC),
    "kms.amazonaws.com",
    "Encrypt",
    "arn:aws:iam::123456789012:root",
    None,
    None,
    "arn:aws:kms:us-east-1:123456789012:key/k",
)


def test_a_frame_comes_back_as_it_was_sent_whole_or_not_yet():
    frame = encode_frame([(b'{"a": 1}', KEYS), (b'{"b": 2}', KEYS)])
    buffer = bytearray(frame[:-1])
    assert take_frames(buffer) == [] and len(buffer) == len(frame) - 1  # not complete yet
    buffer += frame[-1:] + frame
    assert take_frames(buffer) == [[(b'{"a": 1}', KEYS), (b'{"b": 2}', KEYS)]] * 2
    assert buffer == b""


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"records": 1}',
        b'[["record", "id"]]',
        b'[[1, "id", "2026-12-01T12:00:00+00:00", "s", "n", null, null, null, "r"]]',
        b'[["r", "id", "yesterday", "s", "n", null, null, null, "r"]]',
        b'[["r", "id", "2026-12-01T12:00:00", "s", "n", null, null, null, "r"]]',  # no zone
        b'[["r", "id", "2026-12-01T12:00:00+00:00", "s", "n", 7, null, null, "r"]]',
    ],
)
def test_a_frame_no_worker_sends_is_refused(body):
    with pytest.raises(FrameError):
        take_frames(bytearray(len(body).to_bytes(4, "big") + body))


def test_a_length_beyond_any_frame_is_refused_before_it_is_read():
    with pytest.raises(FrameError):
        take_frames(bytearray((1 << 31).to_bytes(4, "big")))


def _sink(tmp_path: Path, clock: ManualClock) -> tuple[DurableAuditSink, str]:
    store = AuditStore(f"sqlite:///{tmp_path / 'trail.db'}", create=True)
    store.migrate()
    key = store.ensure_signing_key(AesGcmRootKey({1: b"\x01" * 32}), clock.now())
    sink = DurableAuditSink(store, CloudTrailRenderer(load_kms_model()), key, clock, 60)
    return sink, key.public_pem


def test_workers_records_are_one_chain_and_a_broken_peer_is_cut_off_alone(tmp_path):
    clock = ManualClock(dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    sink, pem = _sink(tmp_path, clock)
    server = NodeTrailServer(sink)
    renderer = CloudTrailRenderer(load_kms_model())

    async def worker(number: int, count: int) -> None:
        client = NodeTrailClient(server.path, renderer, LogAuditSink())
        client.start()
        waiters = [
            client.submit(_facts(clock, number * 1000 + i).outcome(200, None)) for i in range(count)
        ]
        await asyncio.wait_for(asyncio.gather(*(w for w in waiters if w is not None)), 10)
        assert client.available and client.queue_depth == 0
        client.close()

    async def broken_peer() -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as peer:
            peer.connect(server.path)
            peer.sendall((5).to_bytes(4, "big") + b"hello")
            peer.settimeout(10)
            assert peer.recv(1) == b""  # disconnected, never answered

    async def node() -> None:
        await asyncio.gather(worker(1, 120), broken_peer(), worker(2, 80))

    try:
        asyncio.run(node())
    finally:
        sink.close()
        server.close()
    store = AuditStore(f"sqlite:///{tmp_path / 'trail.db'}")
    public = load_public_key(pem)
    report = verify(trail_of(store), {public_key_id(public): public})
    assert report.ok and report.events == 200 and len(report.writers) == 1
    store.dispose()


def test_a_worker_whose_writer_is_gone_fails_closed(tmp_path):
    clock = ManualClock(dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    sink, _ = _sink(tmp_path, clock)
    server = NodeTrailServer(sink)

    async def run() -> None:
        client = NodeTrailClient(server.path, CloudTrailRenderer(load_kms_model()), LogAuditSink())
        client.start()
        first = client.submit(_facts(clock, 1).outcome(200, None))
        assert first is not None
        await asyncio.wait_for(first, 10)
        server.close()  # the supervisor is gone
        for _ in range(100):
            if not client.available:
                break
            await asyncio.sleep(0.01)
        assert not client.available
        later = client.submit(_facts(clock, 2).outcome(200, None))
        assert later is not None
        with pytest.raises(AuditUnavailable):
            await asyncio.wait_for(later, 10)
        client.close()

    try:
        asyncio.run(run())
    finally:
        sink.close()
