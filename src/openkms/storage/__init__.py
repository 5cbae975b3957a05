"""Metadata and wrapped key material in SQL (SQLAlchemy 2 Core; SQLite or PostgreSQL)."""

from openkms.storage.database import Database, open_database
from openkms.storage.errors import DuplicateEntry, StorageError, StorageUnavailable
from openkms.storage.records import AccessKeyRecord, AliasRecord, KeyRecord, MaterialRecord

__all__ = [
    "AccessKeyRecord",
    "AliasRecord",
    "Database",
    "DuplicateEntry",
    "KeyRecord",
    "MaterialRecord",
    "StorageError",
    "StorageUnavailable",
    "open_database",
]
