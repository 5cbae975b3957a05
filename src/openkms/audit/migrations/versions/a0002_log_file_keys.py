"""The log-file digests' RSA signing keys (``openkms audit export-logs``).

Revision ID: a0002
Revises: a0001
"""

import sqlalchemy as sa
from alembic import op

from openkms.storage.schema import UTCDateTime

revision = "a0002"
down_revision = "a0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_log_file_keys",
        sa.Column("fingerprint", sa.String(32), primary_key=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("public_key", sa.LargeBinary, nullable=False),
        sa.Column("wrapped_private_key", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("audit_log_file_keys")
