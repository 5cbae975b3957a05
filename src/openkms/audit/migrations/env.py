"""Alembic environment of the audit trail's own schema (its own version table, so the trail
can live in its own SQLite file or beside the key store in one PostgreSQL schema)."""

from __future__ import annotations

from alembic import context

from openkms.audit.store import VERSION_TABLE, metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,
    version_table=VERSION_TABLE,
)
with context.begin_transaction():
    context.run_migrations()
