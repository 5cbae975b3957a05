"""A time-bounded cache of key metadata, backing material and alias targets.

The warm hot path (Encrypt, Decrypt, GenerateDataKey) reads keys from here, never from the
database. Writes on this node invalidate at once: the directory listens to the database's
committed changes. Writes on another node of a cluster are seen once the entry's time runs
out (``ttl_seconds``), so a key disabled on one node may still be used on another for at most
that long (see docs/architecture.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from openkms.domain.key_states import KeyState
from openkms.storage import Database, KeyRecord, MaterialRecord
from openkms.storage.changes import AliasChanged, Change, EverythingChanged, KeyChanged
from openkms.storage.records import CustomKeyStoreRecord
from openkms.timed_lru import TimedLru

# Unknown keys and aliases are remembered only briefly: one made on another node appears soon.
_MISS_SECONDS = 1.0


def as_seen_with_store(record: KeyRecord, store: CustomKeyStoreRecord | None) -> KeyRecord:
    """A key in a custom key store is Unavailable while its store is not connected (AWS);
    the state it keeps underneath (Enabled or Disabled) returns when the store connects. The
    store's connection changes log a change of each of its keys, so caches reload them."""
    connected = store is not None and store.connection_state == "CONNECTED"
    if connected or record.key_state not in (KeyState.ENABLED, KeyState.DISABLED):
        return record
    return dataclasses.replace(record, key_state=KeyState.UNAVAILABLE)


@dataclass(frozen=True, slots=True)
class LoadedKey:
    record: KeyRecord
    materials: dict[int, MaterialRecord]

    @property
    def current_material(self) -> MaterialRecord:
        return self.materials[self.record.current_version]


class KeyDirectory:
    def __init__(self, db: Database, ttl_seconds: float = 60.0, max_entries: int = 200_000) -> None:
        self._db = db
        self._ttl = ttl_seconds
        self._keys: TimedLru[str, LoadedKey | None] = TimedLru(max_entries)
        self._aliases: TimedLru[tuple[str, str, str], str | None] = TimedLru(max_entries)
        # Look-ups answered from the cache and from the database, for the metrics (plain
        # integers: the hot path pays an addition; a rare lost update under threads is fine).
        self.hits = 0
        self.misses = 0
        db.add_change_listener(self.changed)

    def changed(self, changes: Iterable[Change]) -> None:
        for change in changes:
            if isinstance(change, KeyChanged):
                self.invalidate_key(change.key_id)
            elif isinstance(change, AliasChanged):
                self.invalidate_alias(change.account_id, change.region, change.alias_name)
            elif isinstance(change, EverythingChanged):
                self._keys.clear()
                self._aliases.clear()

    def get(self, key_id: str) -> LoadedKey | None:
        found, cached = self._keys.get(key_id)
        if found:
            self.hits += 1
            return cached
        self.misses += 1
        epoch = self._keys.epoch()
        with self._db.transaction(readonly=True) as tx:
            record = tx.get_key(key_id)
            loaded = None
            if record is not None and record.custom_key_store_id is not None:
                store = tx.custom_key_store_by_id(record.custom_key_store_id)
                record = as_seen_with_store(record, store)
            if record is not None:
                materials = {m.version: m for m in tx.list_materials(key_id)}
                loaded = LoadedKey(record, materials)
        lifetime = self._ttl if loaded is not None else min(self._ttl, _MISS_SECONDS)
        self._keys.put(key_id, loaded, lifetime, epoch)
        return loaded

    def alias_target(self, account_id: str, region: str, alias_name: str) -> str | None:
        cache_key = (account_id, region, alias_name)
        found, cached = self._aliases.get(cache_key)
        if found:
            self.hits += 1
            return cached
        self.misses += 1
        epoch = self._aliases.epoch()
        with self._db.transaction(readonly=True) as tx:
            alias = tx.get_alias(account_id, region, alias_name)
        target = alias.target_key_id if alias is not None else None
        lifetime = self._ttl if target is not None else min(self._ttl, _MISS_SECONDS)
        self._aliases.put(cache_key, target, lifetime, epoch)
        return target

    def invalidate_key(self, key_id: str) -> None:
        self._keys.invalidate(key_id)

    def invalidate_alias(self, account_id: str, region: str, alias_name: str) -> None:
        self._aliases.invalidate((account_id, region, alias_name))
