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


@dataclass(frozen=True, slots=True)
class IdentityChanged:
    """A principal's identity policies changed (its ARN names it)."""

    principal_arn: str


@dataclass(frozen=True, slots=True)
class GrantsChanged:
    """A key's grants changed (one was created, retired or revoked)."""

    key_id: str


@dataclass(frozen=True, slots=True)
class CustomKeyStoreChanged:
    """A custom key store was connected, disconnected, updated or deleted: a process holding
    sessions on its token closes them."""

    custom_key_store_id: str


@dataclass(frozen=True, slots=True)
class EverythingChanged:
    """A follower fell too far behind the change log: forget everything cached."""


Change = (
    KeyChanged
    | AliasChanged
    | AccessKeyChanged
    | IdentityChanged
    | GrantsChanged
    | CustomKeyStoreChanged
    | EverythingChanged
)
ChangeListener = Callable[[Iterable[Change]], None]

_SEPARATOR = "|"  # never in an account id, a region or an alias name


def encode_change(change: Change) -> tuple[str, str]:
    """(kind, ident) as the change log stores it."""
    if isinstance(change, KeyChanged):
        return "key", change.key_id
    if isinstance(change, AliasChanged):
        return "alias", _SEPARATOR.join((change.account_id, change.region, change.alias_name))
    if isinstance(change, AccessKeyChanged):
        return "access_key", change.access_key_id
    if isinstance(change, IdentityChanged):
        return "identity", change.principal_arn
    if isinstance(change, GrantsChanged):
        return "grants", change.key_id
    if isinstance(change, CustomKeyStoreChanged):
        return "custom_key_store", change.custom_key_store_id
    raise ValueError("EverythingChanged is never logged")


def decode_change(kind: str, ident: str) -> Change:
    if kind == "key":
        return KeyChanged(ident)
    if kind == "alias":
        account_id, region, alias_name = ident.split(_SEPARATOR, 2)
        return AliasChanged(account_id, region, alias_name)
    if kind == "access_key":
        return AccessKeyChanged(ident)
    if kind == "identity":
        return IdentityChanged(ident)
    if kind == "grants":
        return GrantsChanged(ident)
    if kind == "custom_key_store":
        return CustomKeyStoreChanged(ident)
    return EverythingChanged()
