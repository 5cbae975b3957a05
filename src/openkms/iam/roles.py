"""IAM roles (trust policy, inline policies, maximum session duration), principal tags of
users and roles, and deleting users. Managed with ``openkms admin``; STS reads roles when a
caller assumes one (``openkms.iam.sts``) and the authorizer reads their policies and tags.
"""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Sequence

from openkms.authz.policy import parse_policy
from openkms.clock import Clock
from openkms.errors import MalformedPolicyDocumentException
from openkms.iam.accounts import check_account_id
from openkms.iam.users import IdentityError, check_identity_policy, check_policy_quota
from openkms.storage import Database, DuplicateEntry
from openkms.storage.records import RoleRecord, UserRecord
from openkms.storage.repository import Transaction

_ROLE_NAME = re.compile(r"[\w+=,.@-]{1,64}", re.ASCII)
_POLICY_NAME = re.compile(r"[\w+=,.@-]{1,128}", re.ASCII)
_ID_ALPHABET = string.ascii_uppercase + string.digits
# IAM's bounds of MaxSessionDuration, and its default.
MIN_SESSION_DURATION = 3600
MAX_SESSION_DURATION = 43200
# IAM's quota of inline policies per role: their aggregate size, in non-whitespace characters.
MAX_ROLE_POLICY_SIZE = 10240
# IAM's tag limits (users and roles; STS session tags alike).
MAX_TAGS = 50
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
_TAG_PUNCTUATION = frozenset("_.:/=+-@")


def role_arn(account_id: str, role_name: str) -> str:
    return f"arn:aws:iam::{account_id}:role/{role_name}"


def check_trust_policy(document: str) -> None:
    """A trust policy: the policy grammar, a principal in every statement, no Resource."""
    parse_policy(document, require_principal=True, trust=True)


def create_role(
    db: Database,
    clock: Clock,
    account_id: str,
    role_name: str,
    trust_policy: str,
    max_session_duration: int = MIN_SESSION_DURATION,
    tags: Sequence[tuple[str, str]] = (),
) -> RoleRecord:
    """A new role, with its tags (checked with ``check_tags``) in the same transaction."""
    check_account_id(account_id)
    if not _ROLE_NAME.fullmatch(role_name):
        raise IdentityError("a role name is 1 to 64 letters, digits or _+=,.@-")
    if not MIN_SESSION_DURATION <= max_session_duration <= MAX_SESSION_DURATION:
        raise IdentityError(
            f"the maximum session duration is {MIN_SESSION_DURATION} to "
            f"{MAX_SESSION_DURATION} seconds"
        )
    try:
        check_trust_policy(trust_policy)
    except MalformedPolicyDocumentException as error:
        raise IdentityError(
            f"the trust policy is malformed: {error.message}", code="MalformedPolicyDocument"
        ) from None
    # AWS's form: AROA and 17 upper-case letters and digits.
    role_id = "AROA" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(17))
    record = RoleRecord(
        account_id,
        role_name,
        role_id,
        role_arn(account_id, role_name),
        trust_policy,
        max_session_duration,
        clock.now(),
    )
    exists = IdentityError(
        f"role {role_name} already exists in account {account_id}", code="EntityAlreadyExists"
    )
    try:
        with db.transaction() as tx:
            if not tx.account_exists(account_id):
                raise IdentityError(f"account {account_id} does not exist", code="NoSuchEntity")
            if tx.role_name_taken(account_id, role_name):
                raise exists
            tx.insert_role(record)
            if tags:
                tx.replace_principal_tags(record.arn, list(tags))
    except DuplicateEntry:  # made by another process between the check and the insert
        raise exists from None
    return record


def _role(tx: Transaction, account_id: str, role_name: str) -> RoleRecord:
    check_account_id(account_id)
    role = tx.get_role(account_id, role_name)
    if role is None:
        raise IdentityError(
            f"role {role_name} does not exist in account {account_id}", code="NoSuchEntity"
        )
    return role


def _user(tx: Transaction, account_id: str, user_name: str) -> UserRecord:
    check_account_id(account_id)
    user = tx.get_user(account_id, user_name)
    if user is None:
        raise IdentityError(
            f"user {user_name} does not exist in account {account_id}", code="NoSuchEntity"
        )
    return user


def put_role_policy(
    db: Database, account_id: str, role_name: str, policy_name: str, document: str
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
        role = _role(tx, account_id, role_name)
        check_policy_quota(
            tx.role_policies(role.arn),
            policy_name,
            document,
            MAX_ROLE_POLICY_SIZE,
            "role",
            role_name,
        )
        tx.put_role_policy(role, policy_name, document)


def delete_role_policy(db: Database, account_id: str, role_name: str, policy_name: str) -> None:
    with db.transaction() as tx:
        if not tx.delete_role_policy(_role(tx, account_id, role_name), policy_name):
            raise IdentityError(
                f"role {role_name} has no policy {policy_name}", code="NoSuchEntity"
            )


def update_trust_policy(db: Database, account_id: str, role_name: str, document: str) -> None:
    """IAM's UpdateAssumeRolePolicy: who may assume the role from the next AssumeRole on."""
    try:
        check_trust_policy(document)
    except MalformedPolicyDocumentException as error:
        raise IdentityError(
            f"the trust policy is malformed: {error.message}", code="MalformedPolicyDocument"
        ) from None
    with db.transaction() as tx:
        tx.set_trust_policy(_role(tx, account_id, role_name), document)


def delete_role(db: Database, account_id: str, role_name: str) -> None:
    """IAM's DeleteRole: refused while the role has inline policies (DeleteConflict). Its
    sessions stay valid until they expire, with no identity policies left."""
    with db.transaction() as tx:
        role = _role(tx, account_id, role_name)
        if tx.role_policies(role.arn):
            raise IdentityError(
                "Cannot delete entity, must delete policies first.", code="DeleteConflict"
            )
        tx.delete_role(role)


def delete_user(db: Database, account_id: str, user_name: str) -> None:
    """IAM's DeleteUser: refused (DeleteConflict, IAM's words) while the user has access
    keys, inline policies or MFA devices; its tags go with it."""
    with db.transaction() as tx:
        user = _user(tx, account_id, user_name)
        if tx.list_access_keys(user.arn):
            raise IdentityError(
                "Cannot delete entity, must delete access keys first.", code="DeleteConflict"
            )
        if tx.user_policy_names(user):
            raise IdentityError(
                "Cannot delete entity, must delete policies first.", code="DeleteConflict"
            )
        if tx.list_mfa_devices(account_id, user_name):
            raise IdentityError(
                "Cannot delete entity, must delete MFA device first.", code="DeleteConflict"
            )
        tx.delete_user(user)


# -- principal tags (IAM's TagUser, UntagUser, TagRole, UntagRole) -------------------------


def tag_problem(key: str, value: str) -> str | None:
    """Why a tag is not one IAM (or STS) accepts; None if it is."""
    if not 1 <= len(key) <= MAX_TAG_KEY:
        return f"a tag key is 1 to {MAX_TAG_KEY} characters"
    if len(value) > MAX_TAG_VALUE:
        return f"a tag value is at most {MAX_TAG_VALUE} characters"
    if key.lower().startswith("aws:"):
        return "tag keys beginning with aws: are reserved"
    for text in (key, value):
        if not all(c.isalnum() or c.isspace() or c in _TAG_PUNCTUATION for c in text):
            return "tags are letters, digits, spaces and _.:/=+-@"
    return None


def merge_tags(
    existing: list[tuple[str, str]], new: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """``new`` over ``existing``; keys compare without case, as IAM's do."""
    replaced = {key.lower() for key, _ in new}
    return [(k, v) for k, v in existing if k.lower() not in replaced] + new


def _principal_arn(tx: Transaction, account_id: str, kind: str, name: str) -> str:
    if kind == "role":
        return _role(tx, account_id, name).arn
    return _user(tx, account_id, name).arn


def check_tags(tags: Sequence[tuple[str, str]]) -> None:
    """Tags IAM would accept on a user or role: distinct keys, each within IAM's rules."""
    if len({key.lower() for key, _ in tags}) != len(tags):
        raise IdentityError("duplicate tag keys (tag keys ignore case)", code="InvalidInput")
    if len(tags) > MAX_TAGS:
        raise IdentityError(f"at most {MAX_TAGS} tags (IAM's limit)", code="LimitExceeded")
    for key, value in tags:
        problem = tag_problem(key, value)
        if problem is not None:
            raise IdentityError(f"{problem}: {key!r}", code="InvalidInput")


def tag_principal(
    db: Database, account_id: str, kind: str, name: str, tags: list[tuple[str, str]]
) -> None:
    if not tags:
        raise IdentityError("no tags given")
    check_tags(tags)
    with db.transaction() as tx:
        arn = _principal_arn(tx, account_id, kind, name)
        merged = merge_tags(tx.principal_tags(arn), tags)
        if len(merged) > MAX_TAGS:
            raise IdentityError(
                f"a {kind} has at most {MAX_TAGS} tags (IAM's limit)", code="LimitExceeded"
            )
        tx.replace_principal_tags(arn, merged)


def untag_principal(db: Database, account_id: str, kind: str, name: str, keys: list[str]) -> None:
    """Untagging a key the principal does not have is not an error (IAM's rule)."""
    drop = {key.lower() for key in keys}
    with db.transaction() as tx:
        arn = _principal_arn(tx, account_id, kind, name)
        existing = tx.principal_tags(arn)
        tx.replace_principal_tags(arn, [(k, v) for k, v in existing if k.lower() not in drop])


def list_principal_tags(
    db: Database, account_id: str, kind: str, name: str
) -> list[tuple[str, str]]:
    with db.transaction(readonly=True) as tx:
        return tx.principal_tags(_principal_arn(tx, account_id, kind, name))
