"""IAM users: principals of an account beside its root user, each with access keys and inline
identity policies. Managed with ``openkms admin`` (create-user, put-user-policy,
delete-user-policy); the authorizer reads the policies (``openkms.authz.identity``)."""

from __future__ import annotations

import datetime as dt
import re
import secrets
import string
from collections.abc import Sequence

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
from openkms.storage.repository import Transaction

_USER_NAME = re.compile(r"[\w+=,.@-]{1,64}", re.ASCII)
_POLICY_NAME = re.compile(r"[\w+=,.@-]{1,128}", re.ASCII)
_ID_ALPHABET = string.ascii_uppercase + string.digits


# IAM's quota of inline policies per user: their aggregate size, in non-whitespace characters.
MAX_USER_POLICY_SIZE = 2048


class IdentityError(ValueError):
    """A request to manage identities that cannot be carried out; the message says why and
    ``code`` is IAM's error code for it (NoSuchEntity, EntityAlreadyExists, DeleteConflict,
    LimitExceeded, MalformedPolicyDocument, ValidationError), which the admin API answers."""

    code = "ValidationError"  # a subclass may name its own

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code or type(self).code


class IdentityLimitExceeded(IdentityError):
    """An IAM quota the request would exceed (IAM's LimitExceeded, HTTP 409)."""

    code = "LimitExceeded"


def policy_size(document: str) -> int:
    """A policy's size as IAM counts it against its quotas: whitespace is not counted."""
    return sum(1 for character in document if not character.isspace())


def check_policy_quota(
    existing: list[tuple[str, str]],
    policy_name: str,
    document: str,
    limit: int,
    kind: str,
    name: str,
) -> None:
    """Refuse ``document`` as ``policy_name`` when the holder's inline policies (the one of
    that name replaced) would exceed ``limit`` together, in IAM's words."""
    total = policy_size(document) + sum(
        policy_size(text) for other, text in existing if other != policy_name
    )
    if total > limit:
        raise IdentityLimitExceeded(
            f"Maximum policy size of {limit} bytes exceeded for {kind} {name}"
        )


def user_arn(account_id: str, user_name: str) -> str:
    return f"arn:aws:iam::{account_id}:user/{user_name}"


def create_user(
    db: Database, root_key: RootKey, clock: Clock, account_id: str, user_name: str
) -> tuple[UserRecord, IssuedCredentials]:
    """A new user of an existing account, with its first access key (``openkms admin``)."""
    user, issued = _create_user(db, root_key, clock, account_id, user_name, ())
    assert issued is not None
    return user, issued


def add_user(
    db: Database,
    clock: Clock,
    account_id: str,
    user_name: str,
    tags: Sequence[tuple[str, str]] = (),
) -> UserRecord:
    """IAM's CreateUser: a new user with no access key, and its tags (already checked)."""
    return _create_user(db, None, clock, account_id, user_name, tags)[0]


def _create_user(
    db: Database,
    root_key: RootKey | None,
    clock: Clock,
    account_id: str,
    user_name: str,
    tags: Sequence[tuple[str, str]],
) -> tuple[UserRecord, IssuedCredentials | None]:
    """The user, its first access key if ``root_key`` is given to wrap it, and its tags, in
    one transaction."""
    check_account_id(account_id)
    if not _USER_NAME.fullmatch(user_name):
        raise IdentityError("a user name is 1 to 64 letters, digits or _+=,.@-")
    now = clock.now()
    # AWS's form: AIDA and 17 upper-case letters and digits.
    user_id = "AIDA" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(17))
    user = UserRecord(account_id, user_name, user_id, user_arn(account_id, user_name), now)
    issued = None
    if root_key is not None:
        access_key_id, secret = new_access_key_id(), new_secret_access_key()
        issued = IssuedCredentials(account_id, user.arn, access_key_id, secret, True)
    exists = IdentityError(
        f"user {user_name} already exists in account {account_id}", code="EntityAlreadyExists"
    )
    try:
        with db.transaction() as tx:
            if not tx.account_exists(account_id):
                raise IdentityError(f"account {account_id} does not exist", code="NoSuchEntity")
            if tx.user_name_taken(account_id, user_name):
                raise exists
            tx.insert_user(user)
            if root_key is not None and issued is not None:
                tx.insert_access_key(_access_key_record(root_key, issued, user_id, now))
            if tags:
                tx.replace_principal_tags(user.arn, list(tags))
    except DuplicateEntry:  # made by another process between the check and the insert
        raise exists from None
    return user, issued


def _access_key_record(
    root_key: RootKey, issued: IssuedCredentials, user_id: str, now: dt.datetime
) -> AccessKeyRecord:
    access_key_id = issued.access_key_id
    return AccessKeyRecord(
        access_key_id=access_key_id,
        account_id=issued.account_id,
        principal_arn=issued.principal_arn,
        user_id=user_id,
        wrapped_secret=wrap_secret(
            root_key, secret_label(access_key_id), issued.secret_access_key.encode()
        ),
        status="Active",
        created_at=now,
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
        raise IdentityError(
            f"the policy document is malformed: {error.message}", code="MalformedPolicyDocument"
        ) from None
    with db.transaction() as tx:
        user = tx.get_user(account_id, user_name)
        if user is None:
            raise IdentityError(
                f"user {user_name} does not exist in account {account_id}", code="NoSuchEntity"
            )
        check_policy_quota(
            tx.user_policies(user.arn),
            policy_name,
            document,
            MAX_USER_POLICY_SIZE,
            "user",
            user_name,
        )
        tx.put_user_policy(user, policy_name, document)


def delete_user_policy(db: Database, account_id: str, user_name: str, policy_name: str) -> None:
    with db.transaction() as tx:
        user = tx.get_user(account_id, user_name)
        if user is None:
            raise IdentityError(
                f"user {user_name} does not exist in account {account_id}", code="NoSuchEntity"
            )
        if not tx.delete_user_policy(user, policy_name):
            raise IdentityError(
                f"user {user_name} has no policy {policy_name}", code="NoSuchEntity"
            )


# -- access keys (IAM's CreateAccessKey, ListAccessKeys, UpdateAccessKey, DeleteAccessKey) ----

ACCESS_KEY_STATUSES = ("Active", "Inactive")
# IAM's limit: two access keys per user (and per root user).
MAX_ACCESS_KEYS = 2


def principal_arn(account_id: str, user_name: str | None) -> str:
    """The user's ARN, or the account root's when no user is named."""
    check_account_id(account_id)
    return user_arn(account_id, user_name) if user_name else f"arn:aws:iam::{account_id}:root"


def create_access_key(
    db: Database, root_key: RootKey, clock: Clock, account_id: str, user_name: str | None
) -> IssuedCredentials:
    """A further access key of a user (or of the account's root user)."""
    arn = principal_arn(account_id, user_name)
    access_key_id, secret = new_access_key_id(), new_secret_access_key()
    with db.transaction() as tx:
        if user_name:
            user = tx.get_user(account_id, user_name)
            if user is None:
                raise IdentityError(
                    f"user {user_name} does not exist in account {account_id}", code="NoSuchEntity"
                )
            user_id = user.user_id
        elif not tx.account_exists(account_id):
            raise IdentityError(f"account {account_id} does not exist", code="NoSuchEntity")
        else:
            user_id = account_id
        if len(tx.list_access_keys(arn)) >= MAX_ACCESS_KEYS:
            raise IdentityError(
                f"{arn} has {MAX_ACCESS_KEYS} access keys already: delete one first (IAM's limit)",
                code="LimitExceeded",
            )
        issued = IssuedCredentials(account_id, arn, access_key_id, secret, True)
        tx.insert_access_key(_access_key_record(root_key, issued, user_id, clock.now()))
    return issued


def list_access_keys(db: Database, account_id: str, user_name: str | None) -> list[AccessKeyRecord]:
    with db.transaction(readonly=True) as tx:
        return tx.list_access_keys(principal_arn(account_id, user_name))


def set_access_key_status(
    db: Database,
    account_id: str,
    access_key_id: str,
    status: str,
    owner_arn: str | None = None,
) -> None:
    """Deactivate (or reactivate) an access key: an inactive key signs nothing the server
    accepts, from the next request on, on every worker (the change feed). ``owner_arn``:
    the key must be that principal's (IAM's UserName)."""
    if status not in ACCESS_KEY_STATUSES:
        raise IdentityError("an access key's status is Active or Inactive")
    with db.transaction() as tx:
        _owned_key(tx, account_id, access_key_id, owner_arn)
        tx.set_access_key_status(access_key_id, status)


def delete_access_key(
    db: Database, account_id: str, access_key_id: str, owner_arn: str | None = None
) -> None:
    with db.transaction() as tx:
        _owned_key(tx, account_id, access_key_id, owner_arn)
        tx.delete_access_key(access_key_id)


def _owned_key(
    tx: Transaction, account_id: str, access_key_id: str, owner_arn: str | None
) -> AccessKeyRecord:
    record = tx.get_access_key(access_key_id)
    # Nobody crosses accounts: another account's key is as unknown as a missing one.
    if (
        record is None
        or record.account_id != account_id
        or (owner_arn is not None and record.principal_arn != owner_arn)
    ):
        raise IdentityError(
            f"access key {access_key_id} does not exist in account {account_id}",
            code="NoSuchEntity",
        )
    return record
