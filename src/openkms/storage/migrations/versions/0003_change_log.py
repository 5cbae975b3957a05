"""The change log: every committed change to keys, aliases and access keys, in commit order,
so every worker process and every node can drop what it cached (the change feed).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from openkms.storage.schema import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "change_log",
        # 64 bits on PostgreSQL; SQLite's AUTOINCREMENT needs INTEGER (which is 64-bit there).
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ident", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_change_log_created_at", "change_log", ["created_at"])


def downgrade() -> None:
    op.drop_table("change_log")
