"""What a committed transaction changed, for the caches that must forget it.

Every repository write records the change it makes; the database hands the set to its
listeners after the transaction commits (never before, never for a rollback), so no write can
forget to invalidate, and no cache drops an entry for a change that did not happen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class KeyChanged:
    key_id: str


@dataclass(frozen=True, slots=True)
class AliasChanged:
    account_id: str
    region: str
    alias_name: str


@dataclass(frozen=True, slots=True)
class AccessKeyChanged:
    access_key_id: str


Change = KeyChanged | AliasChanged | AccessKeyChanged
ChangeListener = Callable[[Iterable[Change]], None]
