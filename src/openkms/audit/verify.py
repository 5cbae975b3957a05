"""``openkms audit verify``: prove, offline and with only the public key, that the trail is as
its writers wrote it.

Checked, from ``openkms.audit.chain``:

- the writers' chain: positions 1, 2, … without gaps, each record naming the previous one's
  hash, each signed;
- each writer's events: sequence numbers 1, 2, … without gaps, each stored hash recomputed
  from the previous hash and the stored JSON (so an edited, removed, inserted or moved event
  breaks the chain at that event);
- each writer's digests: numbered without gaps, each covering the events right after the
  previous one's, naming the previous signature, signed, and matching the recomputed hashes
  of the events it covers (so a chain rewritten from some event on no longer matches);
- nothing after a writer's final digest.

Events written after a writer's newest digest are reported as not yet signed (the writer is
running, or stopped without closing: a crash), not as a break: they are chained but no
signature vouches for them yet.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from openkms.audit import chain
from openkms.audit.signing import signature_valid


@dataclass
class Trail:
    """A trail to verify: from a store or from an exported file."""

    writers: list[dict[str, Any]]
    digests: list[dict[str, Any]]
    events: Iterable[dict[str, Any]]  # by writer id, then sequence number


@dataclass
class WriterSummary:
    writer_id: str
    events: int = 0
    digests: int = 0
    signed_through: int = 0
    final: bool = False


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    writers: dict[str, WriterSummary] = field(default_factory=dict)
    events: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(trail: Trail, public_keys: dict[str, Ed25519PublicKey]) -> Report:
    report = Report()
    writers = _verify_writers(trail.writers, public_keys, report)
    digests_of: dict[str, list[dict[str, Any]]] = {}
    for row in trail.digests:
        digests_of.setdefault(str(row["writer_id"]), []).append(row)
    seen: set[str] = set()
    for writer_id, rows in _by_writer(trail.events):
        seen.add(writer_id)
        writer = writers.get(writer_id)
        if writer is None:
            count = sum(1 for _ in rows)
            report.problems.append(
                f"writer {writer_id}: {count} events of a writer the writers' chain does not "
                "have (inserted, or its writer record was removed)"
            )
            continue
        _verify_chain(writer, rows, digests_of.pop(writer_id, []), public_keys, report)
    for writer_id, writer in writers.items():
        if writer_id not in seen:
            _verify_chain(writer, iter(()), digests_of.pop(writer_id, []), public_keys, report)
    for writer_id in digests_of:
        report.problems.append(f"writer {writer_id}: digests of a writer the chain does not have")
    return report


def _verify_writers(
    rows: list[dict[str, Any]], public_keys: dict[str, Ed25519PublicKey], report: Report
) -> dict[str, dict[str, Any]]:
    known: dict[str, dict[str, Any]] = {}
    previous_hash = chain.GENESIS
    expected = 1
    for row in sorted(rows, key=lambda r: int(r["position"])):
        writer_id, position = str(row["writer_id"]), int(row["position"])
        where = f"writer {writer_id} (position {position})"
        if position != expected:
            report.problems.append(
                f"{where}: the writers' chain skips from {expected - 1} to {position} "
                "(a writer and its events were removed)"
            )
            expected = position
        record = str(row["record"]).encode()
        parsed = _parse(record)
        if chain.writer_hash(record) != row["hash"]:
            report.problems.append(f"{where}: the writer record does not match its hash")
        if parsed.get("writerId") != writer_id or parsed.get("position") != position:
            report.problems.append(f"{where}: the writer record names another writer")
        if parsed.get("previousWriterHash") != previous_hash:
            report.problems.append(f"{where}: the writers' chain is broken before this writer")
        _check_signature(where, parsed, record, str(row["signature"]), public_keys, report)
        previous_hash = str(row["hash"])
        expected += 1
        known[writer_id] = row
        report.writers[writer_id] = WriterSummary(writer_id)
    return known


def _verify_chain(
    writer: dict[str, Any],
    events: Iterator[dict[str, Any]],
    digests: list[dict[str, Any]],
    public_keys: dict[str, Ed25519PublicKey],
    report: Report,
) -> None:
    writer_id = str(writer["writer_id"])
    summary = report.writers[writer_id]
    digests = sorted(digests, key=lambda d: int(d["digest_seq"]))
    plans = _verify_digest_records(writer, digests, public_keys, report)
    # Recompute the chain event by event, checking each digest when its last event passes.
    previous = str(writer["hash"])
    expected = 1
    plan_index = 0
    covered = hashlib.sha256()
    head = previous
    final_seq: int | None = next((p["lastSeq"] for p in plans if p.get("final")), None)
    for row in events:
        seq = int(row["seq"])
        where = f"writer {writer_id} event {seq}"
        if seq != expected:
            report.problems.append(
                f"{where}: expected event {expected} next (events {expected}..{seq - 1} "
                "were removed)"
                if seq > expected
                else f"{where}: out of order"
            )
            expected = seq
        record = str(row["record"]).encode()
        computed = chain.event_hash(previous, seq, record)
        if computed != row["hash"]:
            report.problems.append(
                f"{where}: the chain breaks here: the event does not match its hash (it, or "
                "its place in the chain, was changed)"
            )
        if final_seq is not None and seq > final_seq:
            report.problems.append(f"{where}: an event after the writer's final digest (inserted)")
        # Go on from the stored hash, so one edited event is named once, not every later one.
        previous = str(row["hash"])
        head = computed
        while plan_index < len(plans) and plans[plan_index]["lastSeq"] < seq:
            plan = plans[plan_index]
            if plan["lastSeq"] >= plan["firstSeq"]:
                # Its last event never came: the events it signed are not all there.
                _check_digest_cover(writer_id, plan, "", "", report)
            covered = hashlib.sha256()
            plan_index += 1  # (an empty closing digest covers nothing)
        if plan_index < len(plans) and plans[plan_index]["firstSeq"] <= seq:
            covered.update(bytes.fromhex(computed))
            plan = plans[plan_index]
            if seq == plan["lastSeq"]:
                _check_digest_cover(writer_id, plan, covered.hexdigest(), head, report)
                covered = hashlib.sha256()
                plan_index += 1
        summary.events += 1
        report.events += 1
        expected = seq + 1
    for plan in plans[plan_index:]:
        if plan["lastSeq"] >= plan["firstSeq"]:
            report.problems.append(
                f"writer {writer_id} digest {plan['digestSeq']}: covers events up to "
                f"{plan['lastSeq']}, but the chain ends at {expected - 1} (events removed)"
            )
    summary.digests = len(plans)
    summary.signed_through = plans[-1]["lastSeq"] if plans else 0
    summary.final = bool(plans and plans[-1].get("final"))
    unsigned = (expected - 1) - summary.signed_through
    if unsigned > 0 and not summary.final:
        report.notes.append(
            f"writer {writer_id}: events {summary.signed_through + 1}..{expected - 1} are "
            "chained but not yet covered by a signed digest (writer running, or stopped "
            "without closing)"
        )


def _verify_digest_records(
    writer: dict[str, Any],
    digests: list[dict[str, Any]],
    public_keys: dict[str, Ed25519PublicKey],
    report: Report,
) -> list[dict[str, Any]]:
    writer_id = str(writer["writer_id"])
    previous_signature = str(writer["signature"])
    previous_last = 0
    plans = []
    for expected, row in enumerate(digests, start=1):
        number = int(row["digest_seq"])
        where = f"writer {writer_id} digest {number}"
        if number != expected:
            report.problems.append(f"{where}: digests {expected}..{number - 1} were removed")
        record = str(row["record"]).encode()
        parsed = _parse(record)
        _check_signature(where, parsed, record, str(row["signature"]), public_keys, report)
        if parsed.get("writerId") != writer_id or parsed.get("digestSeq") != number:
            report.problems.append(f"{where}: the digest names another writer or number")
        if parsed.get("previousSignature") != previous_signature:
            report.problems.append(f"{where}: does not follow the previous digest")
        if parsed.get("firstSeq") != previous_last + 1:
            report.problems.append(
                f"{where}: starts at event {parsed.get('firstSeq')}, not {previous_last + 1}"
            )
        if int(row["last_seq"]) != parsed.get("lastSeq"):
            report.problems.append(f"{where}: the stored range disagrees with the signed one")
        previous_signature = str(row["signature"])
        previous_last = int(parsed.get("lastSeq", previous_last))
        plans.append(
            {
                "digestSeq": number,
                "firstSeq": int(parsed.get("firstSeq", 0)),
                "lastSeq": int(parsed.get("lastSeq", 0)),
                "eventsHash": parsed.get("eventsHash"),
                "headHash": parsed.get("headHash"),
                "final": bool(parsed.get("final")),
            }
        )
    return plans


def _check_digest_cover(
    writer_id: str, plan: dict[str, Any], events_hash: str, head: str, report: Report
) -> None:
    where = f"writer {writer_id} digest {plan['digestSeq']}"
    if plan["eventsHash"] != events_hash or plan["headHash"] != head:
        report.problems.append(
            f"{where}: the events {plan['firstSeq']}..{plan['lastSeq']} it signed are not "
            "the events stored (changed, removed, inserted or reordered)"
        )


def _check_signature(
    where: str,
    parsed: dict[str, Any],
    record: bytes,
    signature: str,
    public_keys: dict[str, Ed25519PublicKey],
    report: Report,
) -> None:
    key = public_keys.get(str(parsed.get("signingKeyId")))
    if key is None:
        report.problems.append(f"{where}: signed by a key not given ({parsed.get('signingKeyId')})")
    elif not signature_valid(key, record, signature):
        report.problems.append(f"{where}: the signature does not verify")


def _by_writer(events: Iterable[dict[str, Any]]) -> Iterator[tuple[str, Iterator[dict[str, Any]]]]:
    """Group a stream ordered by writer into (writer id, that writer's events)."""
    return itertools.groupby(events, key=lambda row: str(row["writer_id"]))


def _parse(record: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(record)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}
