"""Initial schema: settings, accounts, access keys, keys, key material, aliases, tags.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from openkms.storage.schema import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "server_settings",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "accounts",
        sa.Column("account_id", sa.String(12), primary_key=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "access_keys",
        sa.Column("access_key_id", sa.String(128), primary_key=True),
        sa.Column(
            "account_id", sa.String(12), sa.ForeignKey("accounts.account_id"), nullable=False
        ),
        sa.Column("principal_arn", sa.String(2048), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("wrapped_secret", sa.LargeBinary, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "kms_keys",
        sa.Column("key_id", sa.String(36), primary_key=True),
        sa.Column(
            "account_id", sa.String(12), sa.ForeignKey("accounts.account_id"), nullable=False
        ),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("arn", sa.String(2048), nullable=False, unique=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("key_usage", sa.String(32), nullable=False),
        sa.Column("key_spec", sa.String(32), nullable=False),
        sa.Column("origin", sa.String(32), nullable=False),
        sa.Column("key_manager", sa.String(16), nullable=False),
        sa.Column("key_state", sa.String(32), nullable=False),
        sa.Column("creation_date", UTCDateTime, nullable=False),
        sa.Column("policy", sa.Text, nullable=False),
        sa.Column("multi_region", sa.Boolean, nullable=False),
        sa.Column("current_version", sa.Integer, nullable=False),
    )
    op.create_index("ix_kms_keys_account_region", "kms_keys", ["account_id", "region", "key_id"])
    op.create_table(
        "key_materials",
        sa.Column("key_id", sa.String(36), sa.ForeignKey("kms_keys.key_id"), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("material_id", sa.String(64), nullable=False),
        sa.Column("wrapped_material", sa.LargeBinary, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "aliases",
        sa.Column("account_id", sa.String(12), primary_key=True),
        sa.Column("region", sa.String(32), primary_key=True),
        sa.Column("alias_name", sa.String(256), primary_key=True),
        sa.Column("target_key_id", sa.String(36), sa.ForeignKey("kms_keys.key_id"), nullable=False),
        sa.Column("creation_date", UTCDateTime, nullable=False),
        sa.Column("last_updated_date", UTCDateTime, nullable=False),
    )
    op.create_index("ix_aliases_target", "aliases", ["target_key_id"])
    op.create_table(
        "key_tags",
        sa.Column("key_id", sa.String(36), sa.ForeignKey("kms_keys.key_id"), primary_key=True),
        sa.Column("tag_key", sa.Text, primary_key=True),
        sa.Column("tag_value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "key_tags",
        "aliases",
        "key_materials",
        "kms_keys",
        "access_keys",
        "accounts",
        "server_settings",
    ):
        op.drop_table(table)
