"""A bounded, expiring, thread-safe LRU cache (key metadata, aliases, credentials)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TimedLru(Generic[K, V]):
    """A thread-safe LRU whose entries also expire.

    ``epoch`` counts invalidations: a value read from the database is stored only if no
    invalidation happened while it was being read, so a read that raced with a write can
    never put the old value back after the write's invalidation.
    """

    def __init__(self, max_entries: int) -> None:
        self._entries: OrderedDict[K, tuple[V, float]] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()
        self._epoch = 0

    def get(self, key: K) -> tuple[bool, V | None]:
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(key)
            if hit is None or hit[1] <= now:
                return False, None
            self._entries.move_to_end(key)
            return True, hit[0]

    def epoch(self) -> int:
        with self._lock:
            return self._epoch

    def put(self, key: K, value: V, seconds: float, read_in_epoch: int) -> None:
        with self._lock:
            if read_in_epoch != self._epoch:
                return
            self._entries[key] = (value, time.monotonic() + seconds)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._epoch += 1
            self._entries.clear()

    def invalidate(self, key: K) -> None:
        with self._lock:
            self._epoch += 1
            self._entries.pop(key, None)
