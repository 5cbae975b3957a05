"""Grants: permissions on one KMS key given to a grantee principal, outside the key policy.

A grant's operations and constraints are kept as JSON text, as given and checked by
CreateGrant; its grant token is not stored (it names the grant and is checked by its MAC).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from openkms.storage.schema import NulSafeText, UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "grants",
        sa.Column("grant_id", sa.String(64), primary_key=True),
        sa.Column(
            "key_id", sa.String(36), sa.ForeignKey("kms_keys.key_id"), nullable=False, index=True
        ),
        sa.Column("name", NulSafeText, nullable=True),
        sa.Column("grantee_principal", sa.String(256), nullable=False),
        sa.Column("retiring_principal", sa.String(256), nullable=True, index=True),
        sa.Column("operations", sa.Text, nullable=False),
        sa.Column("constraints", NulSafeText, nullable=True),
        sa.Column("issuing_account", sa.String(12), nullable=False),
        sa.Column("creation_date", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("grants")
