"""The pool's request and event ids are version 4 UUIDs, written as ``uuid`` writes them."""

from __future__ import annotations

import os
import uuid

from openkms.crypto.random_pool import random_bytes, random_uuid


def test_random_uuid_is_a_version_4_uuid_in_its_canonical_form() -> None:
    seen = set()
    for _ in range(2000):
        text = random_uuid()
        parsed = uuid.UUID(text)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed) == text  # lower-case hex, 8-4-4-4-12
        seen.add(text)
    assert len(seen) == 2000


def test_random_uuid_keeps_the_random_bits_of_the_pool() -> None:
    # Every bit that is neither version nor variant varies: none is lost in the formatting.
    ored, anded = 0, (1 << 128) - 1
    for _ in range(512):
        value = uuid.UUID(random_uuid()).int
        ored, anded = ored | value, anded & value
    fixed = ~(ored ^ anded) & ((1 << 128) - 1)
    version_and_variant = (0xF << 76) | (0x3 << 62)
    assert fixed == version_and_variant


def test_random_bytes_never_repeats_a_slice() -> None:
    drawn = [random_bytes(32) for _ in range(1000)]
    assert len(set(drawn)) == len(drawn)
    assert all(len(chunk) == 32 for chunk in drawn)


def test_a_forked_child_draws_bytes_its_parent_never_had() -> None:
    random_bytes(1)  # the parent holds a buffer, most of it not handed out yet
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next bytes, to the parent
        try:
            os.write(write, random_bytes(64))
        finally:
            os._exit(0)
    os.close(write)
    child = os.read(read, 64)
    os.close(read)
    os.waitpid(pid, 0)
    parents_next = random_bytes(64)
    assert len(child) == 64
    assert child != parents_next
