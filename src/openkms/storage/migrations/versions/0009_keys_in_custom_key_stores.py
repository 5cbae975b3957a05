"""Keys in custom key stores: a key made in a PKCS#11 custom key store names its store and the
cluster (token) it was made in. Its material row holds no key material, only a reference to
the non-extractable AES key inside the token.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("kms_keys") as batch:
        batch.add_column(sa.Column("custom_key_store_id", sa.String(24), nullable=True))
        batch.add_column(sa.Column("cloud_hsm_cluster_id", sa.String(24), nullable=True))
    op.create_index("ix_kms_keys_custom_key_store_id", "kms_keys", ["custom_key_store_id"])


def downgrade() -> None:
    op.drop_index("ix_kms_keys_custom_key_store_id", "kms_keys")
    with op.batch_alter_table("kms_keys") as batch:
        batch.drop_column("cloud_hsm_cluster_id")
        batch.drop_column("custom_key_store_id")
