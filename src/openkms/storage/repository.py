"""Reads and writes inside one transaction. No business rules: callers decide what is allowed."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Table, delete, func, insert, select, text, update
from sqlalchemy.sql.elements import ColumnElement

from openkms.storage import schema
from openkms.storage.changes import (
    AccessKeyChanged,
    AliasChanged,
    Change,
    CustomKeyStoreChanged,
    GrantsChanged,
    IdentityChanged,
    KeyChanged,
    decode_change,
    encode_change,
)
from openkms.storage.records import (
    AccessKeyRecord,
    AliasRecord,
    CustomKeyStoreRecord,
    GrantRecord,
    KeyRecord,
    MaterialRecord,
    MfaDeviceRecord,
    RoleRecord,
    UserRecord,
)

# Any fixed 64-bit numbers, distinct from the migration lock's.
_STARTUP_LOCK_ID = 0x6F70656E6B6D7301
_CHANGE_LOG_LOCK_ID = 0x6F70656E6B6D7302


def change_channel(schema: str) -> str:
    """The NOTIFY channel of one openkms database (schema): nodes of another deployment that
    share the PostgreSQL database are not woken."""
    return "openkms_changes_" + hashlib.sha256(schema.encode()).hexdigest()[:16]


_MATERIAL_UPDATABLE = frozenset(
    {
        "wrapped_material",
        "import_state",
        "expiration_model",
        "valid_to",
        "description",
        "rotation_type",
        "rotation_date",
    }
)

# Statements bind at most this many values at once (PostgreSQL allows 65535 in all).
_CHUNK = 500


class Transaction:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        # Published to the database's listeners once this transaction commits.
        self.changes: set[Change] = set()

    def serialise_startup(self) -> None:
        """Hold the cluster-wide start-up lock until this transaction ends, so nodes starting
        together on one PostgreSQL database set it up one at a time (SQLite transactions
        already hold the database's write lock)."""
        if self.connection.dialect.name == "postgresql":
            self.connection.execute(
                text("SELECT pg_advisory_xact_lock(:id)"), {"id": _STARTUP_LOCK_ID}
            )

    # -- the change log ---------------------------------------------------------------

    def log_changes(self, when: Any) -> tuple[int, int]:
        """Append this transaction's changes to the change log; return the sequence numbers
        of the first and the last. On PostgreSQL writers append one at a time (so sequence
        order is commit order: a follower that has seen N has seen everything before N) and
        a NOTIFY, sent on commit, wakes the other nodes."""
        postgres = self.connection.dialect.name == "postgresql"
        if postgres:
            self.connection.execute(
                text("SELECT pg_advisory_xact_lock(:id)"), {"id": _CHANGE_LOG_LOCK_ID}
            )
        rows = [
            {"kind": kind, "ident": ident, "created_at": when}
            for kind, ident in sorted(encode_change(c) for c in self.changes)
        ]
        self.connection.execute(insert(schema.change_log), rows)
        last = int(self.connection.execute(select(func.max(schema.change_log.c.seq))).scalar_one())
        if postgres:
            schema_name = self.connection.execute(text("SELECT current_schema()")).scalar_one()
            self.connection.execute(
                text("SELECT pg_notify(:channel, :seq)"),
                {"channel": change_channel(str(schema_name)), "seq": str(last)},
            )
        # One statement under the write lock (SQLite) or the log's lock (PostgreSQL): the
        # rows' numbers are consecutive.
        return last - len(rows) + 1, last

    def changes_after(self, seq: int, limit: int) -> list[tuple[int, Change]]:
        table = schema.change_log
        rows = self.connection.execute(
            select(table.c.seq, table.c.kind, table.c.ident)
            .where(table.c.seq > seq)
            .order_by(table.c.seq)
            .limit(limit)
        )
        return [(int(row[0]), decode_change(row[1], row[2])) for row in rows]

    def change_log_bounds(self) -> tuple[int, int]:
        """(lowest, highest) sequence number still logged; (0, 0) when empty."""
        table = schema.change_log
        low, high = self.connection.execute(
            select(func.min(table.c.seq), func.max(table.c.seq))
        ).one()
        return int(low or 0), int(high or 0)

    def prune_change_log(self, before: Any) -> None:
        table = schema.change_log
        self.connection.execute(delete(table).where(table.c.created_at < before))

    # -- settings ---------------------------------------------------------------------

    def get_setting(self, name: str) -> bytes | None:
        row = self.connection.execute(
            select(schema.server_settings.c.value).where(schema.server_settings.c.name == name)
        ).first()
        return None if row is None else bytes(row[0])

    def put_setting(self, name: str, value: bytes) -> None:
        self.connection.execute(insert(schema.server_settings).values(name=name, value=value))

    def replace_setting(self, name: str, value: bytes) -> None:
        """Write a setting whether or not it exists (the seal's keyring and config)."""
        table = schema.server_settings
        updated = self.connection.execute(
            update(table).where(table.c.name == name).values(value=value)
        )
        if not updated.rowcount:
            self.put_setting(name, value)

    # -- accounts and access keys -------------------------------------------------------

    def account_exists(self, account_id: str) -> bool:
        table = schema.accounts
        row = self.connection.execute(
            select(table.c.account_id).where(table.c.account_id == account_id)
        ).first()
        return row is not None

    def count_accounts(self) -> int:
        return int(
            self.connection.execute(select(func.count()).select_from(schema.accounts)).scalar_one()
        )

    def account_created_at(self, account_id: str) -> dt.datetime | None:
        table = schema.accounts
        query = select(table.c.created_at).where(table.c.account_id == account_id)
        return self.connection.execute(query).scalar()

    def insert_account(self, account_id: str, created_at: Any) -> None:
        self.connection.execute(
            insert(schema.accounts).values(account_id=account_id, created_at=created_at)
        )

    # -- IAM users -------------------------------------------------------------------------

    def insert_user(self, record: UserRecord) -> None:
        self.connection.execute(insert(schema.iam_users).values(**_fields(record)))
        self.changes.add(IdentityChanged(record.arn))

    def get_user(self, account_id: str, user_name: str) -> UserRecord | None:
        table = schema.iam_users
        row = self.connection.execute(
            select(table).where(table.c.account_id == account_id, table.c.user_name == user_name)
        ).first()
        return UserRecord(**row._mapping) if row is not None else None

    def list_users(self, account_id: str, after: str, limit: int) -> list[UserRecord]:
        """The account's users by name, those named after ``after``, at most ``limit``."""
        rows = self._by_name(schema.iam_users, "user_name", account_id, after, limit)
        return [UserRecord(**row) for row in rows]

    def _by_name(
        self, table: Table, name: str, account_id: str, after: str, limit: int
    ) -> list[Any]:
        query = (
            select(table)
            .where(table.c.account_id == account_id, table.c[name] > after)
            .order_by(table.c[name])
            .limit(limit)
        )
        return list(self.connection.execute(query).mappings())

    def user_name_taken(self, account_id: str, user_name: str) -> bool:
        """Whether the account has a user of this name in any case (IAM's names ignore
        case for uniqueness)."""
        table = schema.iam_users
        row = self.connection.execute(
            select(table.c.user_name).where(
                table.c.account_id == account_id,
                func.lower(table.c.user_name) == user_name.lower(),
            )
        ).first()
        return row is not None

    def put_user_policy(self, user: UserRecord, policy_name: str, document: str) -> None:
        table = schema.iam_user_policies
        key = (
            (table.c.account_id == user.account_id)
            & (table.c.user_name == user.user_name)
            & (table.c.policy_name == policy_name)
        )
        if self.connection.execute(select(table.c.policy_name).where(key)).first() is None:
            self.connection.execute(
                insert(table).values(
                    account_id=user.account_id,
                    user_name=user.user_name,
                    policy_name=policy_name,
                    document=document,
                )
            )
        else:
            self.connection.execute(update(table).where(key).values(document=document))
        self.changes.add(IdentityChanged(user.arn))

    def delete_user_policy(self, user: UserRecord, policy_name: str) -> bool:
        table = schema.iam_user_policies
        result = self.connection.execute(
            delete(table).where(
                table.c.account_id == user.account_id,
                table.c.user_name == user.user_name,
                table.c.policy_name == policy_name,
            )
        )
        self.changes.add(IdentityChanged(user.arn))
        return bool(result.rowcount)

    def user_policies(self, principal_arn: str) -> list[tuple[str, str]]:
        """(policy name, document) of the user with this ARN, by name."""
        users, policies = schema.iam_users, schema.iam_user_policies
        query = (
            select(policies.c.policy_name, policies.c.document)
            .join(
                users,
                (users.c.account_id == policies.c.account_id)
                & (users.c.user_name == policies.c.user_name),
            )
            .where(users.c.arn == principal_arn)
            .order_by(policies.c.policy_name)
        )
        return [(row[0], row[1]) for row in self.connection.execute(query)]

    def insert_access_key(self, record: AccessKeyRecord) -> None:
        self.connection.execute(insert(schema.access_keys).values(**_fields(record)))
        self.changes.add(AccessKeyChanged(record.access_key_id))

    def get_access_key(self, access_key_id: str) -> AccessKeyRecord | None:
        table = schema.access_keys
        row = (
            self.connection.execute(select(table).where(table.c.access_key_id == access_key_id))
            .mappings()
            .first()
        )
        return None if row is None else AccessKeyRecord(**row)

    def list_access_keys(self, principal_arn: str) -> list[AccessKeyRecord]:
        table = schema.access_keys
        query = (
            select(table)
            .where(table.c.principal_arn == principal_arn)
            .order_by(table.c.created_at, table.c.access_key_id)
        )
        return [AccessKeyRecord(**row) for row in self.connection.execute(query).mappings()]

    def set_access_key_status(self, access_key_id: str, status: str) -> None:
        table = schema.access_keys
        self.connection.execute(
            update(table).where(table.c.access_key_id == access_key_id).values(status=status)
        )
        self.changes.add(AccessKeyChanged(access_key_id))

    def delete_access_key(self, access_key_id: str) -> None:
        table = schema.access_keys
        self.connection.execute(delete(table).where(table.c.access_key_id == access_key_id))
        self.changes.add(AccessKeyChanged(access_key_id))

    def delete_user(self, user: UserRecord) -> None:
        """The user and its tags (callers refuse while it has keys, policies or devices)."""
        users = schema.iam_users
        self._delete_principal_tags(user.arn)
        self.connection.execute(
            delete(users).where(
                users.c.account_id == user.account_id, users.c.user_name == user.user_name
            )
        )
        self.changes.add(IdentityChanged(user.arn))

    def user_policy_names(self, user: UserRecord) -> list[str]:
        table = schema.iam_user_policies
        rows = self.connection.execute(
            select(table.c.policy_name)
            .where(table.c.account_id == user.account_id, table.c.user_name == user.user_name)
            .order_by(table.c.policy_name)
        )
        return [row[0] for row in rows]

    # -- IAM roles ---------------------------------------------------------------------

    def insert_role(self, record: RoleRecord) -> None:
        self.connection.execute(insert(schema.iam_roles).values(**_fields(record)))
        self.changes.add(IdentityChanged(record.arn))

    def role_name_taken(self, account_id: str, role_name: str) -> bool:
        """As ``user_name_taken``, for roles."""
        table = schema.iam_roles
        row = self.connection.execute(
            select(table.c.role_name).where(
                table.c.account_id == account_id,
                func.lower(table.c.role_name) == role_name.lower(),
            )
        ).first()
        return row is not None

    def get_role(self, account_id: str, role_name: str) -> RoleRecord | None:
        table = schema.iam_roles
        row = (
            self.connection.execute(
                select(table).where(
                    table.c.account_id == account_id, table.c.role_name == role_name
                )
            )
            .mappings()
            .first()
        )
        return RoleRecord(**row) if row is not None else None

    def delete_role(self, role: RoleRecord) -> None:
        """The role and its tags (callers refuse while it has policies)."""
        table = schema.iam_roles
        self._delete_principal_tags(role.arn)
        self.connection.execute(
            delete(table).where(
                table.c.account_id == role.account_id, table.c.role_name == role.role_name
            )
        )
        self.changes.add(IdentityChanged(role.arn))

    def put_role_policy(self, role: RoleRecord, policy_name: str, document: str) -> None:
        table = schema.iam_role_policies
        key = (
            (table.c.account_id == role.account_id)
            & (table.c.role_name == role.role_name)
            & (table.c.policy_name == policy_name)
        )
        if self.connection.execute(select(table.c.policy_name).where(key)).first() is None:
            self.connection.execute(
                insert(table).values(
                    account_id=role.account_id,
                    role_name=role.role_name,
                    policy_name=policy_name,
                    document=document,
                )
            )
        else:
            self.connection.execute(update(table).where(key).values(document=document))
        self.changes.add(IdentityChanged(role.arn))

    def delete_role_policy(self, role: RoleRecord, policy_name: str) -> bool:
        table = schema.iam_role_policies
        result = self.connection.execute(
            delete(table).where(
                table.c.account_id == role.account_id,
                table.c.role_name == role.role_name,
                table.c.policy_name == policy_name,
            )
        )
        self.changes.add(IdentityChanged(role.arn))
        return bool(result.rowcount)

    def list_roles(self, account_id: str, after: str, limit: int) -> list[RoleRecord]:
        """The account's roles by name, those named after ``after``, at most ``limit``."""
        rows = self._by_name(schema.iam_roles, "role_name", account_id, after, limit)
        return [RoleRecord(**row) for row in rows]

    def set_trust_policy(self, role: RoleRecord, document: str) -> None:
        table = schema.iam_roles
        self.connection.execute(
            update(table)
            .where(table.c.account_id == role.account_id, table.c.role_name == role.role_name)
            .values(trust_policy=document)
        )
        self.changes.add(IdentityChanged(role.arn))

    def role_policies(self, role_arn: str) -> list[tuple[str, str]]:
        """(policy name, document) of the role with this ARN, by name."""
        roles, policies = schema.iam_roles, schema.iam_role_policies
        query = (
            select(policies.c.policy_name, policies.c.document)
            .join(
                roles,
                (roles.c.account_id == policies.c.account_id)
                & (roles.c.role_name == policies.c.role_name),
            )
            .where(roles.c.arn == role_arn)
            .order_by(policies.c.policy_name)
        )
        return [(row[0], row[1]) for row in self.connection.execute(query)]

    # -- principal tags ----------------------------------------------------------------

    def principal_tags(self, principal_arn: str) -> list[tuple[str, str]]:
        table = schema.iam_principal_tags
        rows = self.connection.execute(
            select(table.c.tag_key, table.c.tag_value)
            .where(table.c.principal_arn == principal_arn)
            .order_by(table.c.tag_key)
        )
        return [(row[0], row[1]) for row in rows]

    def replace_principal_tags(self, principal_arn: str, tags: Iterable[tuple[str, str]]) -> None:
        """Make ``tags`` the principal's whole set of tags."""
        self._delete_principal_tags(principal_arn)
        rows = [{"principal_arn": principal_arn, "tag_key": k, "tag_value": v} for k, v in tags]
        if rows:
            self.connection.execute(insert(schema.iam_principal_tags), rows)
        self.changes.add(IdentityChanged(principal_arn))

    def _delete_principal_tags(self, principal_arn: str) -> None:
        table = schema.iam_principal_tags
        self.connection.execute(delete(table).where(table.c.principal_arn == principal_arn))

    # -- virtual MFA devices -----------------------------------------------------------

    def insert_mfa_device(self, record: MfaDeviceRecord) -> None:
        self.connection.execute(insert(schema.iam_mfa_devices).values(**_fields(record)))

    def get_mfa_device(self, serial_number: str) -> MfaDeviceRecord | None:
        table = schema.iam_mfa_devices
        row = (
            self.connection.execute(select(table).where(table.c.serial_number == serial_number))
            .mappings()
            .first()
        )
        return MfaDeviceRecord(**row) if row is not None else None

    def list_mfa_devices(self, account_id: str, user_name: str) -> list[MfaDeviceRecord]:
        table = schema.iam_mfa_devices
        query = (
            select(table)
            .where(table.c.account_id == account_id, table.c.user_name == user_name)
            .order_by(table.c.serial_number)
        )
        return [MfaDeviceRecord(**row) for row in self.connection.execute(query).mappings()]

    def accept_mfa_step(self, serial_number: str, step: int, enabled_at: Any | None = None) -> bool:
        """Record ``step`` as the newest accepted TOTP time step, if it is newer than the
        last one (one conditional UPDATE: two requests with the same code, on any nodes, cannot
        both succeed). ``enabled_at`` also enables the device."""
        table = schema.iam_mfa_devices
        values: dict[str, Any] = {"last_step": step}
        if enabled_at is not None:
            values["enabled_at"] = enabled_at
        result = self.connection.execute(
            update(table)
            .where(table.c.serial_number == serial_number, table.c.last_step < step)
            .values(**values)
        )
        return bool(result.rowcount)

    def delete_mfa_device(self, serial_number: str) -> None:
        table = schema.iam_mfa_devices
        self.connection.execute(delete(table).where(table.c.serial_number == serial_number))

    # -- keys -------------------------------------------------------------------------

    def insert_key(self, record: KeyRecord) -> None:
        self.connection.execute(insert(schema.kms_keys).values(**_fields(record)))
        self.changes.add(KeyChanged(record.key_id))

    def get_key(self, key_id: str) -> KeyRecord | None:
        table = schema.kms_keys
        row = (
            self.connection.execute(select(table).where(table.c.key_id == key_id))
            .mappings()
            .first()
        )
        return None if row is None else KeyRecord(**row)

    def count_keys_by_state(self) -> dict[str, int]:
        """How many keys of every account are in each state (the operator's status)."""
        table = schema.kms_keys
        rows = self.connection.execute(
            select(table.c.key_state, func.count()).group_by(table.c.key_state)
        ).all()
        return {str(state): int(count) for state, count in rows}

    def list_keys(
        self, account_id: str, region: str, after_key_id: str | None, limit: int
    ) -> list[KeyRecord]:
        table = schema.kms_keys
        query = select(table).where(table.c.account_id == account_id, table.c.region == region)
        if after_key_id is not None:
            query = query.where(table.c.key_id > after_key_id)
        rows = self.connection.execute(query.order_by(table.c.key_id).limit(limit)).mappings()
        return [KeyRecord(**row) for row in rows]

    def lock_key(self, key_id: str) -> KeyRecord | None:
        """Serialise writers of one key until this transaction ends (PostgreSQL row lock;
        SQLite transactions already hold the database's write lock) and read it as locked."""
        table = schema.kms_keys
        row = (
            self.connection.execute(select(table).where(table.c.key_id == key_id).with_for_update())
            .mappings()
            .first()
        )
        return None if row is None else KeyRecord(**row)

    def set_key_state(self, key_id: str, key_state: str) -> None:
        self._update_key(key_id, key_state=key_state)

    def set_key_description(self, key_id: str, description: str) -> None:
        self._update_key(key_id, description=description)

    def set_key_policy(self, key_id: str, policy: str) -> None:
        self._update_key(key_id, policy=policy)

    def set_rotation_schedule(
        self, key_id: str, period_days: int | None, next_rotation: Any | None
    ) -> None:
        self._update_key(key_id, rotation_period_days=period_days, next_rotation_date=next_rotation)

    def set_next_rotation(self, key_id: str, next_rotation: Any) -> None:
        self._update_key(key_id, next_rotation_date=next_rotation)

    def make_material_current(self, key_id: str, version: int, on_demand_rotations: int) -> None:
        self._update_key(key_id, current_version=version, on_demand_rotations=on_demand_rotations)

    def set_deletion(
        self, key_id: str, key_state: str, deletion_date: Any | None, window_days: int | None
    ) -> None:
        self._update_key(
            key_id,
            key_state=key_state,
            deletion_date=deletion_date,
            pending_window_days=window_days,
        )

    def keys_due(self, column: str, key_state: str, now: Any, limit: int) -> list[str]:
        """Ids of keys in ``key_state`` whose ``next_rotation_date`` or ``deletion_date`` has
        come (the state too, so keys that must wait, e.g. disabled ones, never crowd a
        batch)."""
        table = schema.kms_keys
        when = table.c[column]
        rows = self.connection.execute(
            select(table.c.key_id)
            .where(when.is_not(None), when <= now, table.c.key_state == key_state)
            .order_by(when)
            .limit(limit)
        )
        return [row[0] for row in rows]

    def materials_expired(self, now: Any, limit: int) -> list[tuple[str, int]]:
        """(key id, version) of imported material whose ValidTo has passed and is still held."""
        table = schema.key_materials
        rows = self.connection.execute(
            select(table.c.key_id, table.c.version)
            .where(
                table.c.valid_to.is_not(None),
                table.c.valid_to <= now,
                table.c.wrapped_material.is_not(None),
            )
            .order_by(table.c.valid_to)
            .limit(limit)
        )
        return [(row[0], int(row[1])) for row in rows]

    def delete_key(self, key_id: str) -> None:
        """Destroy a key: its aliases, tags, every material and the key itself."""
        aliases = schema.aliases
        for row in self.connection.execute(
            select(aliases.c.account_id, aliases.c.region, aliases.c.alias_name).where(
                aliases.c.target_key_id == key_id
            )
        ):
            self.changes.add(AliasChanged(row[0], row[1], row[2]))
        self.connection.execute(delete(aliases).where(aliases.c.target_key_id == key_id))
        self.connection.execute(delete(schema.key_tags).where(schema.key_tags.c.key_id == key_id))
        self.connection.execute(delete(schema.grants).where(schema.grants.c.key_id == key_id))
        self.changes.add(GrantsChanged(key_id))
        self.connection.execute(
            delete(schema.key_materials).where(schema.key_materials.c.key_id == key_id)
        )
        self.connection.execute(delete(schema.kms_keys).where(schema.kms_keys.c.key_id == key_id))
        self.changes.add(KeyChanged(key_id))

    def _update_key(self, key_id: str, **values: Any) -> None:
        table = schema.kms_keys
        self.connection.execute(update(table).where(table.c.key_id == key_id).values(**values))
        self.changes.add(KeyChanged(key_id))

    def insert_material(self, record: MaterialRecord) -> None:
        self.connection.execute(insert(schema.key_materials).values(**_fields(record)))
        self.changes.add(KeyChanged(record.key_id))

    def update_material(self, key_id: str, version: int, **values: Any) -> None:
        """Change a material's import fields (state, expiry, description, wrapped value)."""
        unknown = set(values) - _MATERIAL_UPDATABLE
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")
        table = schema.key_materials
        self.connection.execute(
            update(table)
            .where(table.c.key_id == key_id, table.c.version == version)
            .values(**values)
        )
        self.changes.add(KeyChanged(key_id))

    def delete_material(self, key_id: str, version: int) -> None:
        table = schema.key_materials
        self.connection.execute(
            delete(table).where(table.c.key_id == key_id, table.c.version == version)
        )
        self.changes.add(KeyChanged(key_id))

    def list_materials(self, key_id: str) -> list[MaterialRecord]:
        table = schema.key_materials
        rows = self.connection.execute(
            select(table).where(table.c.key_id == key_id).order_by(table.c.version)
        ).mappings()
        return [MaterialRecord(**row) for row in rows]

    # -- aliases ----------------------------------------------------------------------

    def get_alias(self, account_id: str, region: str, alias_name: str) -> AliasRecord | None:
        table = schema.aliases
        row = (
            self.connection.execute(
                select(table).where(
                    table.c.account_id == account_id,
                    table.c.region == region,
                    table.c.alias_name == alias_name,
                )
            )
            .mappings()
            .first()
        )
        return None if row is None else AliasRecord(**row)

    def insert_alias(self, record: AliasRecord) -> None:
        self.connection.execute(insert(schema.aliases).values(**_fields(record)))
        self.changes.add(AliasChanged(record.account_id, record.region, record.alias_name))

    def update_alias_target(
        self, account_id: str, region: str, alias_name: str, target_key_id: str, when: Any
    ) -> None:
        table = schema.aliases
        self.connection.execute(
            update(table)
            .where(
                table.c.account_id == account_id,
                table.c.region == region,
                table.c.alias_name == alias_name,
            )
            .values(target_key_id=target_key_id, last_updated_date=when)
        )
        self.changes.add(AliasChanged(account_id, region, alias_name))

    def delete_alias(self, account_id: str, region: str, alias_name: str) -> None:
        table = schema.aliases
        self.connection.execute(
            delete(table).where(
                table.c.account_id == account_id,
                table.c.region == region,
                table.c.alias_name == alias_name,
            )
        )
        self.changes.add(AliasChanged(account_id, region, alias_name))

    def list_aliases(
        self,
        account_id: str,
        region: str,
        target_key_id: str | None,
        after_alias: str | None,
        limit: int,
    ) -> list[AliasRecord]:
        """The account's aliases (of one key, if given) in code point order (PostgreSQL's
        "C" collation, SQLite's default), whatever the database's collation: the order
        Python compares names in, so markers and names merged by a caller page alike."""
        table = schema.aliases
        name: ColumnElement[Any] = table.c.alias_name
        if self.connection.dialect.name == "postgresql":
            name = name.collate("C")
        query = select(table).where(table.c.account_id == account_id, table.c.region == region)
        if target_key_id is not None:
            query = query.where(table.c.target_key_id == target_key_id)
        if after_alias is not None:
            query = query.where(name > after_alias)
        rows = self.connection.execute(query.order_by(name).limit(limit)).mappings()
        return [AliasRecord(**row) for row in rows]

    # -- tags -------------------------------------------------------------------------

    def list_tags(
        self, key_id: str, after_tag_key: str | None = None, limit: int | None = None
    ) -> list[tuple[str, str]]:
        table = schema.key_tags
        query = select(table.c.tag_key, table.c.tag_value).where(table.c.key_id == key_id)
        if after_tag_key is not None:
            query = query.where(table.c.tag_key > after_tag_key)
        query = query.order_by(table.c.tag_key)
        if limit is not None:
            query = query.limit(limit)
        return [(row[0], row[1]) for row in self.connection.execute(query)]

    def put_tags(self, key_id: str, tags: Iterable[tuple[str, str]]) -> None:
        table = schema.key_tags
        for tag_key, tag_value in tags:
            self.connection.execute(
                delete(table).where(table.c.key_id == key_id, table.c.tag_key == tag_key)
            )
            self.connection.execute(
                insert(table).values(key_id=key_id, tag_key=tag_key, tag_value=tag_value)
            )

    def delete_tags(self, key_id: str, tag_keys: Iterable[str]) -> None:
        table = schema.key_tags
        keys = sorted(set(tag_keys))
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            self.connection.execute(
                delete(table).where(table.c.key_id == key_id, table.c.tag_key.in_(chunk))
            )

    # -- grants -------------------------------------------------------------------------

    def insert_grant(self, record: GrantRecord) -> None:
        self.connection.execute(insert(schema.grants).values(**_fields(record)))
        self.changes.add(GrantsChanged(record.key_id))

    def get_grant(self, grant_id: str) -> GrantRecord | None:
        table = schema.grants
        row = self.connection.execute(select(table).where(table.c.grant_id == grant_id))
        found = row.mappings().first()
        return GrantRecord(**found) if found is not None else None

    def list_grants(
        self,
        key_id: str | None = None,
        *,
        retiring_principal: str | None = None,
        grantee_principal: str | None = None,
        after_grant_id: str | None = None,
        limit: int | None = None,
    ) -> list[GrantRecord]:
        """A key's grants, or the grants a principal may retire, in grant id order."""
        table = schema.grants
        query = select(table)
        if key_id is not None:
            query = query.where(table.c.key_id == key_id)
        if retiring_principal is not None:
            query = query.where(table.c.retiring_principal == retiring_principal)
        if grantee_principal is not None:
            query = query.where(table.c.grantee_principal == grantee_principal)
        if after_grant_id is not None:
            query = query.where(table.c.grant_id > after_grant_id)
        query = query.order_by(table.c.grant_id)
        if limit is not None:
            query = query.limit(limit)
        return [GrantRecord(**row) for row in self.connection.execute(query).mappings()]

    def count_grants(self, key_id: str, grantee_principal: str | None = None) -> int:
        table = schema.grants
        query = select(func.count()).select_from(table).where(table.c.key_id == key_id)
        if grantee_principal is not None:
            query = query.where(table.c.grantee_principal == grantee_principal)
        return int(self.connection.execute(query).scalar_one())

    def delete_grant(self, grant: GrantRecord) -> None:
        table = schema.grants
        self.connection.execute(delete(table).where(table.c.grant_id == grant.grant_id))
        self.changes.add(GrantsChanged(grant.key_id))

    # -- custom key stores ---------------------------------------------------------------

    def insert_custom_key_store(self, record: CustomKeyStoreRecord) -> None:
        self.connection.execute(insert(schema.custom_key_stores).values(**_fields(record)))

    def get_custom_key_store(
        self, account_id: str, region: str, store_id: str, lock: bool = False
    ) -> CustomKeyStoreRecord | None:
        table = schema.custom_key_stores
        query = select(table).where(
            table.c.custom_key_store_id == store_id,
            table.c.account_id == account_id,
            table.c.region == region,
        )
        if lock:
            query = query.with_for_update()
        found = self.connection.execute(query).mappings().first()
        return CustomKeyStoreRecord(**found) if found is not None else None

    def list_custom_key_stores(
        self, account_id: str, region: str, after: str | None = None, limit: int | None = None
    ) -> list[CustomKeyStoreRecord]:
        """The stores of an account and Region in id order."""
        table = schema.custom_key_stores
        query = select(table).where(table.c.account_id == account_id, table.c.region == region)
        if after is not None:
            query = query.where(table.c.custom_key_store_id > after)
        query = query.order_by(table.c.custom_key_store_id)
        if limit is not None:
            query = query.limit(limit)
        return [CustomKeyStoreRecord(**r) for r in self.connection.execute(query).mappings()]

    def all_custom_key_stores(self) -> list[CustomKeyStoreRecord]:
        """Every store of every account: a cluster serves one store, whoever owns it."""
        table = schema.custom_key_stores
        rows = self.connection.execute(select(table)).mappings()
        return [CustomKeyStoreRecord(**r) for r in rows]

    def update_custom_key_store(self, store_id: str, **values: Any) -> None:
        table = schema.custom_key_stores
        self.connection.execute(
            update(table).where(table.c.custom_key_store_id == store_id).values(**values)
        )
        self.changes.add(CustomKeyStoreChanged(store_id))
        if "connection_state" in values:
            # A key's state as callers see it follows its store's (Unavailable while the
            # store is not connected): every cache of the store's keys must reload them.
            for key_id in self.key_ids_in_custom_key_store(store_id):
                self.changes.add(KeyChanged(key_id))

    def delete_custom_key_store(self, store_id: str) -> None:
        table = schema.custom_key_stores
        self.connection.execute(delete(table).where(table.c.custom_key_store_id == store_id))
        self.changes.add(CustomKeyStoreChanged(store_id))

    def key_ids_in_custom_key_store(self, store_id: str) -> list[str]:
        """Every key made in the store, whatever its state (pending deletion included)."""
        table = schema.kms_keys
        query = select(table.c.key_id).where(table.c.custom_key_store_id == store_id)
        return [row[0] for row in self.connection.execute(query)]

    def custom_key_store_by_id(self, store_id: str) -> CustomKeyStoreRecord | None:
        """A store by its id alone, for the key store's own use (a key names its store)."""
        table = schema.custom_key_stores
        query = select(table).where(table.c.custom_key_store_id == store_id)
        found = self.connection.execute(query).mappings().first()
        return CustomKeyStoreRecord(**found) if found is not None else None

    # -- AWS managed keys' predefined aliases ------------------------------------------

    def alias_names_with_prefix(self, account_id: str, region: str, prefix: str) -> set[str]:
        table = schema.aliases
        rows = self.connection.execute(
            select(table.c.alias_name).where(
                table.c.account_id == account_id,
                table.c.region == region,
                table.c.alias_name.startswith(prefix, autoescape=True),
            )
        )
        return {row[0] for row in rows}


def _fields(record: Any) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__slots__}
