"""Token buckets keyed by anything: request quotas and per-source throttles."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    refilled: float


class TokenBuckets:
    """One token bucket per key: ``rate`` tokens a second, holding one second's (at least one)."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._buckets: dict[tuple[str, ...], _Bucket] = {}
        self._lock = threading.Lock()
        self._max_keys = max_keys

    def take(self, key: tuple[str, ...], rate: float) -> bool:
        # A bucket holds one second's tokens, and at least one: a rate below 1/s still
        # admits a request now and then.
        capacity = max(1.0, rate)
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= self._max_keys:
                    self._buckets.clear()  # bounded memory; a reset only forgives
                bucket = self._buckets[key] = _Bucket(capacity, now)
            else:
                bucket.tokens = min(capacity, bucket.tokens + (now - bucket.refilled) * rate)
                bucket.refilled = now
            if bucket.tokens < 1.0:
                return False
            bucket.tokens -= 1.0
            return True
