"""Custom key stores: a PKCS#11 token configured on the server stands in for a CloudHSM
cluster. The token user's PIN is stored only wrapped by the root key (label
``custom-key-store-password:<id>``); the connection state is kept here so every process agrees.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

from openkms.storage.schema import NulSafeText, UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "custom_key_stores",
        sa.Column("custom_key_store_id", sa.String(24), primary_key=True),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("name", NulSafeText, nullable=False),
        sa.Column("store_type", sa.String(32), nullable=False),
        sa.Column("cluster_id", sa.String(24), nullable=False),
        sa.Column("trust_anchor_certificate", NulSafeText, nullable=False),
        sa.Column("wrapped_password", sa.LargeBinary, nullable=False),
        sa.Column("connection_state", sa.String(16), nullable=False),
        sa.Column("connection_error_code", sa.String(64), nullable=True),
        sa.Column("creation_date", UTCDateTime, nullable=False),
    )
    op.create_index("ix_custom_key_stores_account", "custom_key_stores", ["account_id", "region"])


def downgrade() -> None:
    op.drop_index("ix_custom_key_stores_account", "custom_key_stores")
    op.drop_table("custom_key_stores")
