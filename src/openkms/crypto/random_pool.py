"""Random bytes for values that are unique but not secret (message nonces, request and event
ids), served from a per-thread buffer of the operating system's CSPRNG output.

Why buffer: ``os.urandom`` releases the GIL for its system call, and on the event loop every
release is a chance for another thread (the audit writer) to take the GIL, after which the
loop waits up to the interpreter's switch interval to get it back. One system call per 4 KiB
instead of one per request keeps the warm hot path from handing the GIL away. Each byte is
used once; a process that forks does not reuse its parent's buffer. Keys and other secrets
still come from ``os.urandom`` directly.
"""

from __future__ import annotations

import os
import threading

_REFILL = 4096


class _Pool(threading.local):
    def __init__(self) -> None:
        self.buffer = b""
        self.offset = 0


_pool = _Pool()


def _forget_after_fork() -> None:
    # The child must not hand out the bytes its parent still holds (or handed out). Asked of
    # the interpreter at fork rather than by comparing os.getpid() on every call: that is a
    # system call each time.
    global _pool
    _pool = _Pool()


os.register_at_fork(after_in_child=_forget_after_fork)


def random_bytes(count: int) -> bytes:
    pool = _pool
    if pool.offset + count > len(pool.buffer):
        pool.buffer = os.urandom(max(_REFILL, count))
        pool.offset = 0
    start = pool.offset
    pool.offset = start + count
    return pool.buffer[start : start + count]


def random_uuid() -> str:
    """A version 4 UUID, as ``str(uuid.uuid4())`` writes it, from the pool. Formatted here
    rather than through ``uuid.UUID``, whose object costs more than the rest of this: it is
    made for every request id."""
    raw = random_bytes(16)
    # RFC 4122: the version (4) in the high nibble of byte 6, the variant (10) in byte 8.
    h = (raw[:6] + bytes(((raw[6] & 0x0F) | 0x40, raw[7], (raw[8] & 0x3F) | 0x80)) + raw[9:]).hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
