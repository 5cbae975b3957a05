"""The trail's tamper evidence, written once for the writer and for ``openkms audit verify``.

- Writers: every process that writes events registers itself first. Writer records form a
  chain of their own (each names the previous writer's hash and its position), signed, so a
  whole writer's events cannot vanish without a gap in that chain.
- Events: each writer's events are numbered from 1; an event's hash is
  SHA-256(previous hash || sequence number (8 bytes, big-endian) || the stored JSON), the
  first event's previous hash being its writer record's hash. Changing, removing, inserting
  or reordering events changes every hash after the change.
- Digests: at a fixed interval (and when a writer stops) a writer signs a digest of what it
  wrote since its previous digest: the SHA-256 of those events' hashes, the chain's head hash,
  the sequence numbers covered, and the previous digest's signature (the writer record's for
  the first), so digests chain too and a rewritten chain no longer matches a signature.

Records are compact JSON with sorted keys; the bytes stored are the bytes hashed and signed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from typing import Any

import orjson

GENESIS = "0" * 64
DIGEST_VERSION = 1


def canonical(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)


def event_hash(previous: str, seq: int, record: bytes) -> str:
    digest = hashlib.sha256(bytes.fromhex(previous))
    digest.update(seq.to_bytes(8, "big"))
    digest.update(record)
    return digest.hexdigest()


def writer_hash(record: bytes) -> str:
    return hashlib.sha256(record).hexdigest()


class EventsHash:
    """The hash over the events a digest covers (their hashes, in order), kept up as the
    events are written: a writer holds no list of its interval's hashes, and an interval may
    be a day of events."""

    __slots__ = ("_digest", "count")

    def __init__(self, hashes: Iterable[str] = ()) -> None:
        self._digest = hashlib.sha256()
        self.count = 0
        self.extend(hashes)

    def extend(self, hashes: Iterable[str]) -> None:
        for value in hashes:
            self._digest.update(bytes.fromhex(value))
            self.count += 1

    def copy(self) -> EventsHash:
        other = EventsHash()
        other._digest = self._digest.copy()
        other.count = self.count
        return other

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def writer_record(
    writer_id: str,
    position: int,
    previous_hash: str,
    started: dt.datetime,
    node: str,
    signing_key_id: str,
) -> bytes:
    return canonical(
        {
            "version": DIGEST_VERSION,
            "writerId": writer_id,
            "position": position,
            "previousWriterHash": previous_hash,
            "startTime": iso(started),
            "node": node,
            "signingKeyId": signing_key_id,
        }
    )


def digest_record(
    writer_id: str,
    digest_seq: int,
    digest_time: dt.datetime,
    first_seq: int,
    last_seq: int,
    covered: EventsHash,
    head_hash: str,
    previous_signature: str,
    signing_key_id: str,
    final: bool,
) -> bytes:
    return canonical(
        {
            "version": DIGEST_VERSION,
            "writerId": writer_id,
            "digestSeq": digest_seq,
            "digestTime": iso(digest_time),
            "firstSeq": first_seq,
            "lastSeq": last_seq,
            "eventsHash": covered.hexdigest(),
            "headHash": head_hash,
            "previousSignature": previous_signature,
            "signingKeyId": signing_key_id,
            "final": final,
        }
    )


def iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
