"""A time-bounded cache of key metadata, backing material and alias targets.

The warm hot path (Encrypt, Decrypt, GenerateDataKey) reads keys from here, never from the
database. Writes on this node invalidate at once; writes on another node of a cluster are seen
once the entry's time runs out (``ttl_seconds``), so a key disabled on one node may still be
used on another for at most that long (see docs/architecture.md).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from openkms.storage import Database, KeyRecord, MaterialRecord


@dataclass(frozen=True, slots=True)
class LoadedKey:
    record: KeyRecord
    materials: dict[int, MaterialRecord]

    @property
    def current_material(self) -> MaterialRecord:
        return self.materials[self.record.current_version]


class KeyDirectory:
    def __init__(self, db: Database, ttl_seconds: float = 5.0, max_entries: int = 100_000) -> None:
        self._db = db
        self._ttl = ttl_seconds
        self._max = max_entries
        self._keys: dict[str, tuple[LoadedKey | None, float]] = {}
        self._aliases: dict[tuple[str, str, str], tuple[str | None, float]] = {}
        self._lock = threading.Lock()

    def get(self, key_id: str) -> LoadedKey | None:
        now = time.monotonic()
        hit = self._keys.get(key_id)
        if hit is not None and hit[1] > now:
            return hit[0]
        with self._db.transaction() as tx:
            record = tx.get_key(key_id)
            loaded = None
            if record is not None:
                materials = {m.version: m for m in tx.list_materials(key_id)}
                loaded = LoadedKey(record, materials)
        # Misses are cached too, but briefly: a key created on another node appears soon.
        lifetime = self._ttl if loaded is not None else min(self._ttl, 1.0)
        with self._lock:
            if len(self._keys) >= self._max:
                self._keys.clear()
            self._keys[key_id] = (loaded, now + lifetime)
        return loaded

    def alias_target(self, account_id: str, region: str, alias_name: str) -> str | None:
        cache_key = (account_id, region, alias_name)
        now = time.monotonic()
        hit = self._aliases.get(cache_key)
        if hit is not None and hit[1] > now:
            return hit[0]
        with self._db.transaction() as tx:
            alias = tx.get_alias(account_id, region, alias_name)
        target = alias.target_key_id if alias is not None else None
        lifetime = self._ttl if target is not None else min(self._ttl, 1.0)
        with self._lock:
            if len(self._aliases) >= self._max:
                self._aliases.clear()
            self._aliases[cache_key] = (target, now + lifetime)
        return target

    def invalidate_key(self, key_id: str) -> None:
        with self._lock:
            self._keys.pop(key_id, None)

    def invalidate_alias(self, account_id: str, region: str, alias_name: str) -> None:
        with self._lock:
            self._aliases.pop((account_id, region, alias_name), None)
