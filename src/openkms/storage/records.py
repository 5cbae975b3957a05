"""Plain values that storage reads and writes; no behaviour."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class KeyRecord:
    key_id: str
    account_id: str
    region: str
    arn: str
    description: str
    key_usage: str
    key_spec: str
    origin: str
    key_manager: str
    key_state: str
    creation_date: dt.datetime
    policy: str
    multi_region: bool
    current_version: int
    rotation_period_days: int | None = None
    next_rotation_date: dt.datetime | None = None
    on_demand_rotations: int = 0
    deletion_date: dt.datetime | None = None
    pending_window_days: int | None = None
    custom_key_store_id: str | None = None
    cloud_hsm_cluster_id: str | None = None

    @property
    def rotation_enabled(self) -> bool:
        return self.rotation_period_days is not None


@dataclass(frozen=True, slots=True)
class MaterialRecord:
    key_id: str
    version: int
    material_id: str
    wrapped_material: bytes | None
    created_at: dt.datetime
    rotation_type: str | None = None
    rotation_date: dt.datetime | None = None
    import_state: str | None = None
    expiration_model: str | None = None
    valid_to: dt.datetime | None = None
    description: str | None = None
    material_check: bytes | None = None

    def __repr__(self) -> str:
        return f"MaterialRecord({self.key_id!r}, version={self.version}, id={self.material_id})"


@dataclass(frozen=True, slots=True)
class AliasRecord:
    account_id: str
    region: str
    alias_name: str
    target_key_id: str
    creation_date: dt.datetime
    last_updated_date: dt.datetime


@dataclass(frozen=True, slots=True)
class AccessKeyRecord:
    access_key_id: str
    account_id: str
    principal_arn: str
    user_id: str
    wrapped_secret: bytes
    status: str
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class UserRecord:
    account_id: str
    user_name: str
    user_id: str
    arn: str
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class GrantRecord:
    grant_id: str
    key_id: str
    name: str | None
    grantee_principal: str
    retiring_principal: str | None
    operations: str  # JSON list
    constraints: str | None  # JSON object
    issuing_account: str
    creation_date: dt.datetime


@dataclass(frozen=True, slots=True)
class RoleRecord:
    account_id: str
    role_name: str
    role_id: str
    arn: str
    trust_policy: str
    max_session_duration: int
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class MfaDeviceRecord:
    serial_number: str
    account_id: str
    user_name: str
    wrapped_seed: bytes
    enabled_at: dt.datetime | None
    last_step: int
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class CustomKeyStoreRecord:
    custom_key_store_id: str
    account_id: str
    region: str
    name: str
    store_type: str
    cluster_id: str
    trust_anchor_certificate: str
    wrapped_password: bytes
    connection_state: str
    connection_error_code: str | None
    creation_date: dt.datetime

    def __repr__(self) -> str:
        # Never the wrapped password, even wrapped.
        return f"CustomKeyStoreRecord({self.custom_key_store_id!r}, {self.connection_state})"
