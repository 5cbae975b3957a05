"""IAM roles with their trust and inline policies, principal tags, virtual MFA devices.

A role's trust policy and inline policies are kept as the text given, parsed when first used
(``openkms.authz``). Principal tags belong to a user or a role, by its ARN. An MFA device's
TOTP seed is stored only wrapped by the root key (label ``mfa-seed:<serial>``), with the
newest time step a code was accepted for, so no code is accepted twice. STS sessions have no
rows: a session token is sealed and self-contained.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

from openkms.storage.schema import NulSafeText, UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "iam_roles",
        sa.Column(
            "account_id", sa.String(12), sa.ForeignKey("accounts.account_id"), primary_key=True
        ),
        sa.Column("role_name", sa.String(64), primary_key=True),
        sa.Column("role_id", sa.String(32), nullable=False, unique=True),
        sa.Column("arn", sa.String(2048), nullable=False, unique=True),
        sa.Column("trust_policy", NulSafeText, nullable=False),
        sa.Column("max_session_duration", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "iam_role_policies",
        sa.Column("account_id", sa.String(12), primary_key=True),
        sa.Column("role_name", sa.String(64), primary_key=True),
        sa.Column("policy_name", sa.String(128), primary_key=True),
        sa.Column("document", NulSafeText, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id", "role_name"], ["iam_roles.account_id", "iam_roles.role_name"]
        ),
    )
    op.create_table(
        "iam_principal_tags",
        sa.Column("principal_arn", sa.String(2048), primary_key=True),
        sa.Column("tag_key", NulSafeText, primary_key=True),
        sa.Column("tag_value", NulSafeText, nullable=False),
    )
    op.create_table(
        "iam_mfa_devices",
        sa.Column("serial_number", sa.String(2048), primary_key=True),
        sa.Column("account_id", sa.String(12), nullable=False),
        sa.Column("user_name", sa.String(64), nullable=False),
        sa.Column("wrapped_seed", sa.LargeBinary, nullable=False),
        sa.Column("enabled_at", UTCDateTime, nullable=True),
        sa.Column("last_step", sa.BigInteger, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id", "user_name"], ["iam_users.account_id", "iam_users.user_name"]
        ),
    )
    op.create_index("ix_iam_mfa_devices_user", "iam_mfa_devices", ["account_id", "user_name"])


def downgrade() -> None:
    op.drop_index("ix_iam_mfa_devices_user", "iam_mfa_devices")
    op.drop_table("iam_mfa_devices")
    op.drop_table("iam_principal_tags")
    op.drop_table("iam_role_policies")
    op.drop_table("iam_roles")
