"""Key lifecycle: automatic rotation, scheduled deletion and imported key material.

Keys gain their rotation schedule, their on-demand rotation count and their deletion date;
key materials gain how and when they became current (rotation), and, for imported material,
its import state, expiration and description. Imported material that was deleted or expired
keeps its row (its KeyMaterialId and check value, so the same material can be imported
again) without the wrapped material, hence the wrapped value becomes nullable.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from openkms.storage.schema import NulSafeText, UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("kms_keys") as batch:
        batch.add_column(sa.Column("rotation_period_days", sa.Integer, nullable=True))
        batch.add_column(sa.Column("next_rotation_date", UTCDateTime, nullable=True))
        batch.add_column(
            sa.Column("on_demand_rotations", sa.Integer, nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("deletion_date", UTCDateTime, nullable=True))
        batch.add_column(sa.Column("pending_window_days", sa.Integer, nullable=True))
    op.create_index("ix_kms_keys_next_rotation_date", "kms_keys", ["next_rotation_date"])
    op.create_index("ix_kms_keys_deletion_date", "kms_keys", ["deletion_date"])
    with op.batch_alter_table("key_materials") as batch:
        batch.alter_column("wrapped_material", existing_type=sa.LargeBinary, nullable=True)
        batch.add_column(sa.Column("rotation_type", sa.String(16), nullable=True))
        batch.add_column(sa.Column("rotation_date", UTCDateTime, nullable=True))
        batch.add_column(sa.Column("import_state", sa.String(16), nullable=True))
        batch.add_column(sa.Column("expiration_model", sa.String(32), nullable=True))
        batch.add_column(sa.Column("valid_to", UTCDateTime, nullable=True))
        batch.add_column(sa.Column("description", NulSafeText, nullable=True))
        batch.add_column(sa.Column("material_check", sa.LargeBinary, nullable=True))
    op.create_index("ix_key_materials_valid_to", "key_materials", ["valid_to"])


def downgrade() -> None:
    op.drop_index("ix_key_materials_valid_to", "key_materials")
    with op.batch_alter_table("key_materials") as batch:
        for column in (
            "material_check",
            "description",
            "valid_to",
            "expiration_model",
            "import_state",
            "rotation_date",
            "rotation_type",
        ):
            batch.drop_column(column)
        batch.alter_column("wrapped_material", existing_type=sa.LargeBinary, nullable=False)
    op.drop_index("ix_kms_keys_deletion_date", "kms_keys")
    op.drop_index("ix_kms_keys_next_rotation_date", "kms_keys")
    with op.batch_alter_table("kms_keys") as batch:
        for column in (
            "pending_window_days",
            "deletion_date",
            "on_demand_rotations",
            "next_rotation_date",
            "rotation_period_days",
        ):
            batch.drop_column(column)
