"""The audit trail's writer alone: CPU per event by batch size, on a real SQLite trail.

Batches of ``N`` Encrypt events are submitted from an event loop, as a server worker submits
them, and each batch is awaited (committed, fsynced) before the next: so every commit holds
exactly ``N`` events. Printed per event: wall time, the process's CPU, the event loop
thread's share and the rest (the writer thread: rendering, chaining, the INSERT and the
commit, whose fsync the kernel counts as this process's CPU).

    PYTHONPATH=src .venv/bin/python bench/audit_writer.py [--events 4000] [--batches 1,8,16,64]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import tempfile
import time
from pathlib import Path

from openkms.audit.cloudtrail import CloudTrailRenderer
from openkms.audit.events import AuditEvent, AuditFacts
from openkms.audit.store import AuditStore
from openkms.audit.writer import DurableAuditSink
from openkms.clock import ManualClock
from openkms.iam.principal import Principal
from openkms.model import load_kms_model
from openkms.seal.root_key import AesGcmRootKey

ROOT = Principal("123456789012", "arn:aws:iam::123456789012:root", "123456789012", "AKIABENCH")


def _event(clock: ManualClock, number: int) -> AuditEvent:
    facts = AuditFacts(f"request-{number}", "kms", clock.now(), "127.0.0.1", False, "bench")
    facts.operation, facts.principal, facts.region, facts.read_only = (
        "Encrypt", ROOT, "us-east-1", True
    )  # fmt: skip
    facts.parameters = {"KeyId": "alias/bench", "EncryptionContext": {"purpose": "bench"}}
    return facts.outcome(200, None)


def measure(batch: int, events: int) -> str:
    clock = ManualClock(dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    store = AuditStore(f"sqlite:///{Path(tempfile.mkdtemp()) / 'trail.db'}", create=True)
    store.migrate()
    key = store.ensure_signing_key(AesGcmRootKey({1: b"\x01" * 32}), clock.now())
    sink = DurableAuditSink(store, CloudTrailRenderer(load_kms_model()), key, clock, 3600)
    rounds = max(20, events // batch)

    async def run() -> None:
        await asyncio.gather(*(w for w in [sink.submit(_event(clock, -1))] if w))  # register
        for round_ in range(rounds):
            waiters = [sink.submit(_event(clock, round_ * batch + i)) for i in range(batch)]
            await asyncio.gather(*(w for w in waiters if w is not None))

    wall, cpu, loop = time.perf_counter(), time.process_time(), time.thread_time()
    asyncio.run(run())
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    loop = time.thread_time() - loop
    sink.close()
    n = rounds * batch
    return (
        f"batch {batch:4d}: wall {wall / n * 1e6:7.1f} µs/event, CPU {cpu / n * 1e6:7.1f} "
        f"(event loop {loop / n * 1e6:6.1f}, writer {(cpu - loop) / n * 1e6:6.1f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--batches", default="1,8,16,64")
    args = parser.parse_args()
    for batch in (int(b) for b in args.batches.split(",")):
        print(measure(batch, args.events), flush=True)


if __name__ == "__main__":
    main()
