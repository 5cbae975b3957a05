"""IAM users and their inline identity policies.

A user is an account's principal beside its root user; its access keys are rows of
``access_keys`` with the user's ARN and id. Its policies are kept as the text given, and
parsed once when first used (``openkms.authz``).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from openkms.storage.schema import NulSafeText, UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "iam_users",
        sa.Column(
            "account_id", sa.String(12), sa.ForeignKey("accounts.account_id"), primary_key=True
        ),
        sa.Column("user_name", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(32), nullable=False, unique=True),
        sa.Column("arn", sa.String(2048), nullable=False, unique=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "iam_user_policies",
        sa.Column("account_id", sa.String(12), primary_key=True),
        sa.Column("user_name", sa.String(64), primary_key=True),
        sa.Column("policy_name", sa.String(128), primary_key=True),
        sa.Column("document", NulSafeText, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id", "user_name"], ["iam_users.account_id", "iam_users.user_name"]
        ),
    )


def downgrade() -> None:
    op.drop_table("iam_user_policies")
    op.drop_table("iam_users")
