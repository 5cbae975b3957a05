"""The audit trail: writers, hash-chained events, signed digests, the signing key.

Revision ID: a0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from openkms.storage.schema import UTCDateTime

revision = "a0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_signing_keys",
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("public_key", sa.Text, nullable=False),
        sa.Column("wrapped_private_key", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "audit_writers",
        sa.Column("writer_id", sa.String(36), primary_key=True),
        sa.Column("position", sa.BigInteger, nullable=False, unique=True),
        sa.Column("record", sa.Text, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("signature", sa.Text, nullable=False),
    )
    op.create_table(
        "audit_events",
        sa.Column("writer_id", sa.String(36), primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("event_time", UTCDateTime, nullable=False, index=True),
        sa.Column("event_source", sa.String(32), nullable=False),
        sa.Column("event_name", sa.String(64), nullable=False, index=True),
        sa.Column("principal_arn", sa.Text, nullable=True),
        sa.Column("access_key_id", sa.String(128), nullable=True),
        sa.Column("error_code", sa.String(128), nullable=True),
        sa.Column("resources", sa.Text, nullable=False),
        sa.Column("record", sa.Text, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_table(
        "audit_digests",
        sa.Column("writer_id", sa.String(36), primary_key=True),
        sa.Column("digest_seq", sa.BigInteger, primary_key=True),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("record", sa.Text, nullable=False),
        sa.Column("signature", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in ("audit_digests", "audit_events", "audit_writers", "audit_signing_keys"):
        op.drop_table(table)
