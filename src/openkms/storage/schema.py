"""The tables. Alembic migrations under ``migrations/`` create and evolve them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on both SQLite (which keeps no zone) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: Any, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class NulSafeText(TypeDecorator[str]):
    """Free text that may hold any Unicode, NUL included, on both dialects.

    PostgreSQL text cannot hold NUL, and KMS descriptions, policies and tags may. Stored
    values escape backslash as two backslashes and NUL as backslash-zero, reversibly; the
    same encoding applies to values compared with the column, so lookups and ordering stay
    consistent.
    """

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        return value.replace("\\", "\\\\").replace("\x00", "\\0")

    def process_result_value(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        return _unescape_nul(value)


def _unescape_nul(stored: str) -> str:
    if "\\" not in stored:
        return stored
    out = []
    chars = iter(stored)
    for char in chars:
        if char == "\\":
            following = next(chars, "")
            out.append("\x00" if following == "0" else following)
        else:
            out.append(char)
    return "".join(out)


metadata = MetaData()

server_settings = Table(
    "server_settings",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", LargeBinary, nullable=False),
)

accounts = Table(
    "accounts",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
)

access_keys = Table(
    "access_keys",
    metadata,
    Column("access_key_id", String(128), primary_key=True),
    Column("account_id", String(12), ForeignKey("accounts.account_id"), nullable=False),
    Column("principal_arn", String(2048), nullable=False),
    Column("user_id", String(128), nullable=False),
    Column("wrapped_secret", LargeBinary, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

kms_keys = Table(
    "kms_keys",
    metadata,
    Column("key_id", String(36), primary_key=True),
    Column("account_id", String(12), ForeignKey("accounts.account_id"), nullable=False),
    Column("region", String(32), nullable=False),
    Column("arn", String(2048), nullable=False, unique=True),
    Column("description", NulSafeText, nullable=False),
    Column("key_usage", String(32), nullable=False),
    Column("key_spec", String(32), nullable=False),
    Column("origin", String(32), nullable=False),
    Column("key_manager", String(16), nullable=False),
    Column("key_state", String(32), nullable=False),
    Column("creation_date", UTCDateTime, nullable=False),
    Column("policy", NulSafeText, nullable=False),
    Column("multi_region", Boolean, nullable=False),
    Column("current_version", Integer, nullable=False),
    # Automatic rotation: the period while enabled (None: disabled) and when it is next due.
    Column("rotation_period_days", Integer, nullable=True),
    Column("next_rotation_date", UTCDateTime, nullable=True, index=True),
    Column("on_demand_rotations", Integer, nullable=False, server_default="0"),
    # Set while the key is pending deletion.
    Column("deletion_date", UTCDateTime, nullable=True, index=True),
    Column("pending_window_days", Integer, nullable=True),
    # A key in a custom key store (revision 0009): the store, and the cluster it was made in.
    Column("custom_key_store_id", String(24), nullable=True, index=True),
    Column("cloud_hsm_cluster_id", String(24), nullable=True),
)

key_materials = Table(
    "key_materials",
    metadata,
    Column("key_id", String(36), ForeignKey("kms_keys.key_id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("material_id", String(64), nullable=False),
    # None once imported material is deleted or expired (the row keeps its id and check).
    Column("wrapped_material", LargeBinary, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    # How and when this material became current; None for a key's first material.
    Column("rotation_type", String(16), nullable=True),
    Column("rotation_date", UTCDateTime, nullable=True),
    # Imported material only.
    Column("import_state", String(16), nullable=True),
    Column("expiration_model", String(32), nullable=True),
    Column("valid_to", UTCDateTime, nullable=True, index=True),
    Column("description", NulSafeText, nullable=True),
    # A key check value of imported material: recognises the same material imported again.
    Column("material_check", LargeBinary, nullable=True),
)

aliases = Table(
    "aliases",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("region", String(32), primary_key=True),
    Column("alias_name", String(256), primary_key=True),
    Column("target_key_id", String(36), ForeignKey("kms_keys.key_id"), nullable=False),
    Column("creation_date", UTCDateTime, nullable=False),
    Column("last_updated_date", UTCDateTime, nullable=False),
)

key_tags = Table(
    "key_tags",
    metadata,
    Column("key_id", String(36), ForeignKey("kms_keys.key_id"), primary_key=True),
    Column("tag_key", NulSafeText, primary_key=True),
    Column("tag_value", NulSafeText, nullable=False),
)

# IAM users (revision 0005): principals of an account beside its root user.
iam_users = Table(
    "iam_users",
    metadata,
    Column("account_id", String(12), ForeignKey("accounts.account_id"), primary_key=True),
    Column("user_name", String(64), primary_key=True),
    Column("user_id", String(32), nullable=False, unique=True),
    Column("arn", String(2048), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
)

# Their inline identity policies, as the text given.
iam_user_policies = Table(
    "iam_user_policies",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("user_name", String(64), primary_key=True),
    Column("policy_name", String(128), primary_key=True),
    Column("document", NulSafeText, nullable=False),
    ForeignKeyConstraint(
        ["account_id", "user_name"], ["iam_users.account_id", "iam_users.user_name"]
    ),
)

# IAM roles (revision 0007): principals a caller its trust policy admits may become for a
# session (STS AssumeRole).
iam_roles = Table(
    "iam_roles",
    metadata,
    Column("account_id", String(12), ForeignKey("accounts.account_id"), primary_key=True),
    Column("role_name", String(64), primary_key=True),
    Column("role_id", String(32), nullable=False, unique=True),
    Column("arn", String(2048), nullable=False, unique=True),
    Column("trust_policy", NulSafeText, nullable=False),
    Column("max_session_duration", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# Their inline identity policies, as the text given.
iam_role_policies = Table(
    "iam_role_policies",
    metadata,
    Column("account_id", String(12), primary_key=True),
    Column("role_name", String(64), primary_key=True),
    Column("policy_name", String(128), primary_key=True),
    Column("document", NulSafeText, nullable=False),
    ForeignKeyConstraint(
        ["account_id", "role_name"], ["iam_roles.account_id", "iam_roles.role_name"]
    ),
)

# Principal tags of users and roles, by the principal's ARN (aws:PrincipalTag/<key>).
iam_principal_tags = Table(
    "iam_principal_tags",
    metadata,
    Column("principal_arn", String(2048), primary_key=True),
    Column("tag_key", NulSafeText, primary_key=True),
    Column("tag_value", NulSafeText, nullable=False),
)

# Virtual MFA devices: the TOTP seed wrapped by the root key, the user it belongs to, when it
# was enabled (None before enable-mfa-device) and the newest TOTP time step accepted, so no
# code is accepted twice.
iam_mfa_devices = Table(
    "iam_mfa_devices",
    metadata,
    Column("serial_number", String(2048), primary_key=True),
    Column("account_id", String(12), nullable=False),
    Column("user_name", String(64), nullable=False),
    Column("wrapped_seed", LargeBinary, nullable=False),
    Column("enabled_at", UTCDateTime, nullable=True),
    Column("last_step", BigInteger, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    ForeignKeyConstraint(
        ["account_id", "user_name"], ["iam_users.account_id", "iam_users.user_name"]
    ),
    Index("ix_iam_mfa_devices_user", "account_id", "user_name"),
)

# Grants (revision 0006): a key's permissions for a grantee, beside its key policy.
grants = Table(
    "grants",
    metadata,
    Column("grant_id", String(64), primary_key=True),
    Column("key_id", String(36), ForeignKey("kms_keys.key_id"), nullable=False, index=True),
    Column("name", NulSafeText, nullable=True),
    Column("grantee_principal", String(256), nullable=False),
    Column("retiring_principal", String(256), nullable=True, index=True),
    Column("operations", Text, nullable=False),  # JSON list, in the order given
    Column("constraints", NulSafeText, nullable=True),  # JSON object, as given
    Column("issuing_account", String(12), nullable=False),
    Column("creation_date", UTCDateTime, nullable=False),
)

# Custom key stores (revision 0008): a PKCS#11 token standing in for a CloudHSM cluster. The
# token user's PIN is kept only wrapped by the root key; the connection state lives here so
# every worker process and node agrees on it.
custom_key_stores = Table(
    "custom_key_stores",
    metadata,
    Column("custom_key_store_id", String(24), primary_key=True),
    Column("account_id", String(12), nullable=False),
    Column("region", String(32), nullable=False),
    Column("name", NulSafeText, nullable=False),
    Column("store_type", String(32), nullable=False),
    Column("cluster_id", String(24), nullable=False),
    Column("trust_anchor_certificate", NulSafeText, nullable=False),
    Column("wrapped_password", LargeBinary, nullable=False),
    Column("connection_state", String(16), nullable=False),
    Column("connection_error_code", String(64), nullable=True),
    Column("creation_date", UTCDateTime, nullable=False),
    Index("ix_custom_key_stores_account", "account_id", "region"),
)

# Committed changes in commit order: the change feed every process follows (revision 0003).
change_log = Table(
    "change_log",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("kind", String(16), nullable=False),
    Column("ident", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    sqlite_autoincrement=True,
)
