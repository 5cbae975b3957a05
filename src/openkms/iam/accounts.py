"""Creating accounts and their access keys. The secret is stored only wrapped by the root key."""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass, field

from openkms.clock import Clock
from openkms.seal import RootKey
from openkms.seal.secrets import unwrap_secret, wrap_secret
from openkms.storage import AccessKeyRecord, Database, DuplicateEntry
from openkms.storage.repository import Transaction

_ACCESS_KEY_ALPHABET = string.ascii_uppercase + "234567"
_ACCOUNT_ID = re.compile(r"[0-9]{12}")
_ACCESS_KEY_ID = re.compile(r"[A-Za-z0-9_+=,.@-]{1,128}", re.ASCII)


@dataclass(frozen=True, slots=True)
class IssuedCredentials:
    account_id: str
    principal_arn: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    created: bool  # False when the access key already existed

    def without_secret(self) -> IssuedCredentials:
        """The same credentials with the secret dropped (once it has been shown)."""
        return IssuedCredentials(
            self.account_id, self.principal_arn, self.access_key_id, "", self.created
        )


def secret_label(access_key_id: str) -> str:
    return f"access-key:{access_key_id}"


def new_account_id() -> str:
    return str(secrets.randbelow(9 * 10**11) + 10**11)


def new_access_key_id() -> str:
    return "AKIA" + "".join(secrets.choice(_ACCESS_KEY_ALPHABET) for _ in range(16))


def new_secret_access_key() -> str:
    return secrets.token_urlsafe(30)[:40]


def is_account_id(text: str) -> bool:
    """What an account id may look like: 12 digits."""
    return _ACCOUNT_ID.fullmatch(text) is not None


def check_account_id(account_id: str) -> str:
    if not is_account_id(account_id):
        raise ValueError(f"an account id is 12 digits, not {account_id!r}")
    return account_id


def is_access_key_id(text: str) -> bool:
    """What an access key id may look like; anything else is never looked up."""
    return _ACCESS_KEY_ID.fullmatch(text) is not None


def ensure_account_with_key(
    db: Database,
    root_key: RootKey,
    clock: Clock,
    account_id: str,
    access_key_id: str,
    secret_access_key: str,
) -> IssuedCredentials:
    """Create the account (if new) and its root access key (if new), atomically."""
    for _ in range(3):
        try:
            with db.transaction() as tx:
                tx.serialise_startup()
                return ensure_account_with_key_in(
                    tx, root_key, clock, account_id, access_key_id, secret_access_key
                )
        except DuplicateEntry:
            continue  # another process created it at the same moment: read theirs
    raise RuntimeError(f"could not create access key {access_key_id}")


def ensure_account_with_key_in(
    tx: Transaction,
    root_key: RootKey,
    clock: Clock,
    account_id: str,
    access_key_id: str,
    secret_access_key: str,
) -> IssuedCredentials:
    """As ``ensure_account_with_key``, inside the caller's transaction."""
    check_account_id(account_id)
    if not is_access_key_id(access_key_id):
        raise ValueError("an access key id is 1 to 128 letters, digits or _+=,.@-")
    principal_arn = f"arn:aws:iam::{account_id}:root"
    now = clock.now()
    existing = tx.get_access_key(access_key_id)
    if existing is not None:
        if existing.account_id != account_id:
            raise ValueError(f"access key {access_key_id} belongs to another account")
        stored = unwrap_secret(root_key, secret_label(access_key_id), existing.wrapped_secret)
        if not secrets.compare_digest(stored, secret_access_key.encode()):
            raise ValueError(f"access key {access_key_id} exists with a different secret")
        return IssuedCredentials(account_id, principal_arn, access_key_id, secret_access_key, False)
    if not tx.account_exists(account_id):
        tx.insert_account(account_id, now)
    tx.insert_access_key(
        AccessKeyRecord(
            access_key_id=access_key_id,
            account_id=account_id,
            principal_arn=principal_arn,
            user_id=account_id,
            wrapped_secret=wrap_secret(
                root_key, secret_label(access_key_id), secret_access_key.encode()
            ),
            status="Active",
            created_at=now,
        )
    )
    return IssuedCredentials(account_id, principal_arn, access_key_id, secret_access_key, True)
