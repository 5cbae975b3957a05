"""The durable audit sink on a real SQLite trail, driven by an event loop as the server does:
group commit, digests by the injected clock, a record that cannot be rendered."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from pathlib import Path

import orjson

from openkms.audit.chain import EventsHash
from openkms.audit.cloudtrail import CloudTrailRenderer
from openkms.audit.events import AuditFacts
from openkms.audit.export import trail_of
from openkms.audit.signing import load_public_key, public_key_id
from openkms.audit.store import AuditStore
from openkms.audit.verify import verify
from openkms.audit.writer import DurableAuditSink
from openkms.clock import ManualClock
from openkms.iam.principal import Principal
from openkms.model import load_kms_model
from openkms.seal.root_key import AesGcmRootKey

ROOT = Principal("123456789012", "arn:aws:iam::123456789012:root", "123456789012", "AKIAEXAMPLE")


def _facts(clock: ManualClock, number: int, **changes: object) -> AuditFacts:
    facts = AuditFacts(f"request-{number}", "kms", clock.now(), "127.0.0.1", False, "tests")
    facts.operation, facts.principal, facts.region, facts.read_only = (
        "Encrypt", ROOT, "us-east-1", True
    )  # fmt: skip
    facts.parameters = {"KeyId": "alias/a", "EncryptionContext": {"k": "v"}}
    for name, value in changes.items():
        setattr(facts, name, value)
    return facts


def _sink(tmp_path: Path, clock: ManualClock) -> tuple[DurableAuditSink, AuditStore, str]:
    store = AuditStore(f"sqlite:///{tmp_path / 'trail.db'}", create=True)
    store.migrate()
    key = store.ensure_signing_key(AesGcmRootKey({1: b"\x01" * 32}), clock.now())
    sink = DurableAuditSink(store, CloudTrailRenderer(load_kms_model()), key, clock, 60)
    return sink, store, key.public_pem


def test_one_commit_serves_many_requests_and_the_chain_verifies(tmp_path):
    clock = ManualClock(dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    sink, store, pem = _sink(tmp_path, clock)

    async def requests(count: int) -> None:
        waiters = [sink.submit(_facts(clock, i).outcome(200, None)) for i in range(count)]
        await asyncio.gather(*(w for w in waiters if w is not None))

    asyncio.run(requests(200))
    clock.advance(61)  # a digest falls due with the next batch
    asyncio.run(requests(5))
    with store.engine.connect() as connection:
        digests = connection.exec_driver_sql("SELECT count(*) FROM audit_digests").scalar()
    assert digests == 1
    sink.close()
    reopened = AuditStore(f"sqlite:///{tmp_path / 'trail.db'}")
    public = load_public_key(pem)
    report = verify(trail_of(reopened), {public_key_id(public): public})
    assert report.ok and report.events == 205 and not report.notes
    summary = next(iter(report.writers.values()))
    assert summary.final and summary.digests == 2
    reopened.dispose()


def test_a_record_that_cannot_be_rendered_is_still_recorded(tmp_path):
    clock = ManualClock()
    sink, store, _ = _sink(tmp_path, clock)
    lone_surrogate = "\ud800"  # no JSON encoder takes it

    async def request() -> None:
        facts = _facts(clock, 1, user_agent=lone_surrogate)
        waiter = sink.submit(facts.outcome(200, None))
        assert waiter is not None
        await asyncio.wait_for(waiter, 10)

    asyncio.run(request())
    sink.close()
    reopened = AuditStore(f"sqlite:///{tmp_path / 'trail.db'}")
    with reopened.engine.connect() as connection:
        (record,) = connection.exec_driver_sql("SELECT record FROM audit_events").one()
    reopened.dispose()
    body = orjson.loads(record)
    assert body["requestID"] == "request-1" and body["userAgent"] is None
    assert body["requestParameters"]["unrenderable"] is True


def test_events_of_one_second_come_back_newest_first_and_inside_whole_second_ranges(tmp_path):
    # Records say whole seconds, as CloudTrail's do; the order and the ranges must still
    # follow the instant each request was answered, whichever worker wrote it (in CI, two
    # workers' events of one second once came back in writer order).
    from openkms.audit.lookup_events import LookupQuery, lookup_events

    second = dt.datetime(2026, 12, 1, 10, 0, 0, tzinfo=dt.UTC)
    clock = ManualClock(second + dt.timedelta(microseconds=200_000))
    first, store, _pem = _sink(tmp_path, clock)
    key = store.signing_key(AesGcmRootKey({1: b"\x01" * 32}))
    other = DurableAuditSink(store, CloudTrailRenderer(load_kms_model()), key, clock, 60)

    async def request(sink: DurableAuditSink, number: int, operation: str) -> None:
        waiter = sink.submit(_facts(clock, number, operation=operation).outcome(200, None))
        if waiter is not None:
            await waiter

    for number, (sink, operation) in enumerate(
        [(first, "Encrypt"), (other, "Decrypt"), (first, "GenerateDataKey")]
    ):
        asyncio.run(request(sink, number, operation))
        clock.advance(0.3)

    def names(**range_: dt.datetime) -> list[str]:
        query = LookupQuery("123456789012", "us-east-1", **range_)  # type: ignore[arg-type]
        return [event["EventName"] for event in lookup_events(store, query)["Events"]]

    assert names() == ["GenerateDataKey", "Decrypt", "Encrypt"]
    assert names(start=second, end=second) == ["GenerateDataKey", "Decrypt", "Encrypt"]
    assert names(start=second + dt.timedelta(microseconds=500_000)) == []
    assert names(end=second - dt.timedelta(microseconds=1)) == []
    first.close()
    other.close()


def test_a_digest_covers_the_hashes_of_every_event_since_the_last_over_many_commits(tmp_path):
    clock = ManualClock(dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    sink, store, _ = _sink(tmp_path, clock)

    async def requests(first: int, count: int) -> None:
        waiters = [sink.submit(_facts(clock, first + i).outcome(200, None)) for i in range(count)]
        await asyncio.gather(*(w for w in waiters if w is not None))

    for batch in range(6):  # one commit each, the digest's events held across all of them
        asyncio.run(requests(batch * 10, 10))
    clock.advance(61)
    asyncio.run(requests(100, 3))
    with store.engine.connect() as connection:
        record = orjson.loads(
            connection.exec_driver_sql("SELECT record FROM audit_digests").scalar_one()
        )
        hashes = [
            row[0]
            for row in connection.exec_driver_sql(
                "SELECT hash FROM audit_events WHERE seq BETWEEN ? AND ? ORDER BY seq",
                (record["firstSeq"], record["lastSeq"]),
            )
        ]
    sink.close()
    store.dispose()
    assert (record["firstSeq"], record["lastSeq"]) == (1, 63)
    assert (
        record["eventsHash"]
        == hashlib.sha256(b"".join(bytes.fromhex(h) for h in hashes)).hexdigest()
    )


def test_a_copy_of_the_events_hash_goes_on_alone():
    first, second = "ab" * 32, "cd" * 32
    held = EventsHash([first])
    copied = held.copy()
    copied.extend([second])
    assert held.count == 1 and copied.count == 2
    assert held.hexdigest() == hashlib.sha256(bytes.fromhex(first)).hexdigest()
    assert copied.hexdigest() == hashlib.sha256(bytes.fromhex(first + second)).hexdigest()
