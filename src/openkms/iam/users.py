"""IAM users: principals of an account beside its root user, each with access keys and inline
identity policies. Managed with ``openkms admin`` (create-user, put-user-policy,
delete-user-policy); the authorizer reads the policies (``openkms.authz.identity``)."""

from __future__ import annotations

import re
import secrets
import string

from openkms.authz.policy import parse_policy
from openkms.clock import Clock
from openkms.errors import MalformedPolicyDocumentException
from openkms.iam.accounts import (
    IssuedCredentials,
    check_account_id,
    new_access_key_id,
    new_secret_access_key,
    secret_label,
)
from openkms.seal import RootKey
from openkms.seal.secrets import wrap_secret
from openkms.storage import AccessKeyRecord, Database, DuplicateEntry
from openkms.storage.records import UserRecord

_USER_NAME = re.compile(r"[\w+=,.@-]{1,64}", re.ASCII)
_POLICY_NAME = re.compile(r"[\w+=,.@-]{1,128}", re.ASCII)
_ID_ALPHABET = string.ascii_uppercase + string.digits


class IdentityError(ValueError):
    """A request to manage users that cannot be carried out; the message says why."""


def user_arn(account_id: str, user_name: str) -> str:
    return f"arn:aws:iam::{account_id}:user/{user_name}"


def create_user(
    db: Database, root_key: RootKey, clock: Clock, account_id: str, user_name: str
) -> tuple[UserRecord, IssuedCredentials]:
    """A new user of an existing account, with its first access key."""
    check_account_id(account_id)
    if not _USER_NAME.fullmatch(user_name):
        raise IdentityError("a user name is 1 to 64 letters, digits or _+=,.@-")
    now = clock.now()
    # AWS's form: AIDA and 17 upper-case letters and digits.
    user_id = "AIDA" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(17))
    user = UserRecord(account_id, user_name, user_id, user_arn(account_id, user_name), now)
    access_key_id, secret = new_access_key_id(), new_secret_access_key()
    exists = IdentityError(f"user {user_name} already exists in account {account_id}")
    try:
        _insert_user(db, root_key, user, access_key_id, secret, exists)
    except DuplicateEntry:  # made by another process between the check and the insert
        raise exists from None
    return user, IssuedCredentials(account_id, user.arn, access_key_id, secret, True)


def _insert_user(
    db: Database,
    root_key: RootKey,
    user: UserRecord,
    access_key_id: str,
    secret: str,
    exists: IdentityError,
) -> None:
    account_id, user_id, now = user.account_id, user.user_id, user.created_at
    with db.transaction() as tx:
        if not tx.account_exists(account_id):
            raise IdentityError(f"account {account_id} does not exist")
        if tx.get_user(account_id, user.user_name) is not None:
            raise exists
        tx.insert_user(user)
        tx.insert_access_key(
            AccessKeyRecord(
                access_key_id=access_key_id,
                account_id=account_id,
                principal_arn=user.arn,
                user_id=user_id,
                wrapped_secret=wrap_secret(root_key, secret_label(access_key_id), secret.encode()),
                status="Active",
                created_at=now,
            )
        )


def check_identity_policy(document: str) -> None:
    """An identity policy: the policy grammar, and no principal (the policy's holder is it)."""
    parsed = parse_policy(document, require_principal=False)
    if any(s.principals is not None or s.not_principals is not None for s in parsed.statements):
        raise MalformedPolicyDocumentException("Policy document should not specify a principal.")


def put_user_policy(
    db: Database, account_id: str, user_name: str, policy_name: str, document: str
) -> None:
    if not _POLICY_NAME.fullmatch(policy_name):
        raise IdentityError("a policy name is 1 to 128 letters, digits or _+=,.@-")
    try:
        check_identity_policy(document)
    except MalformedPolicyDocumentException as error:
        raise IdentityError(f"the policy document is malformed: {error.message}") from None
    with db.transaction() as tx:
        user = tx.get_user(account_id, user_name)
        if user is None:
            raise IdentityError(f"user {user_name} does not exist in account {account_id}")
        tx.put_user_policy(user, policy_name, document)


def delete_user_policy(db: Database, account_id: str, user_name: str, policy_name: str) -> None:
    with db.transaction() as tx:
        user = tx.get_user(account_id, user_name)
        if user is None:
            raise IdentityError(f"user {user_name} does not exist in account {account_id}")
        if not tx.delete_user_policy(user, policy_name):
            raise IdentityError(f"user {user_name} has no policy {policy_name}")
