"""Storage failures as the rest of openkms sees them: no SQLAlchemy type escapes ``storage``."""

from __future__ import annotations


class StorageError(Exception):
    """The database could not do what was asked; nothing of the transaction was kept."""


class DuplicateEntry(StorageError):
    """A row with this identity exists already (another writer may have just made it)."""


class StorageUnavailable(StorageError):
    """The database is locked, unreachable or too slow; the same request may succeed later."""
