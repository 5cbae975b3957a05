"""Principal ARNs named in requests (a grant's grantee and retiring principal): their form,
and whether they name a principal this deployment's IAM holds.

AWS resolves such an ARN when the grant is made and refuses one that names no principal; so
does openkms, against its own users and roles. An account root is accepted for any account:
to a grant an account is only its number, and an account openkms does not (yet) know has no
caller that could use the grant until ``openkms admin create-account --account-id`` makes it.
"""

from __future__ import annotations

import re

from openkms.authz.policy import INVALID_PRINCIPALS, PolicyDocument
from openkms.errors import MalformedPolicyDocumentException
from openkms.storage import Database
from openkms.storage.repository import Transaction

# The principal ARNs a grant may name: an account root, a user, a role, a role session or a
# federated user, in the partition this server speaks.
_PRINCIPAL_ARN = re.compile(
    r"arn:aws:(?:iam::(?P<iam_account>\d{12}):(?:(?P<root>root)|user/(?P<user>[\w+=,.@/-]+)"
    r"|role/(?P<role>[\w+=,.@/-]+))"
    r"|sts::(?P<sts_account>\d{12}):(?:assumed-role/(?P<session_role>[\w+=,.@-]+)/[\w+=,.@-]+"
    r"|(?P<federated>federated-user/[\w+=,.@-]+)))",
    re.ASCII,
)
_ACCOUNT_ID = re.compile(r"\d{12}", re.ASCII)


def principal_arn_of(text: str) -> str | None:
    """``text`` as a principal ARN (an account id is its account's root ARN); None when it is
    not of a principal's form."""
    if _ACCOUNT_ID.fullmatch(text):
        return f"arn:aws:iam::{text}:root"
    return text if _PRINCIPAL_ARN.fullmatch(text) else None


def names_existing_principal(tx: Transaction, arn: str) -> bool:
    """Whether ``arn`` (of a principal's form) names a principal that exists: the user, the
    role (a session's role, as a session itself is not stored), or for a federated user its
    account. User and role names have no path in openkms, so an ARN with one names nobody."""
    match = _PRINCIPAL_ARN.fullmatch(arn)
    if match is None:
        return False
    if match["root"]:
        return True
    account = match["iam_account"] or match["sts_account"]
    if match["user"] is not None:
        return "/" not in match["user"] and tx.get_user(account, match["user"]) is not None
    role = match["role"] or match["session_role"]
    if role is not None:
        return "/" not in role and tx.get_role(account, role) is not None
    return tx.account_exists(account)


def check_policy_principals(db: Database, document: PolicyDocument) -> None:
    """A key policy names only principals that exist, as AWS checks when the policy is set
    (``Policy contains a statement with one or more invalid principals.``): every user, role
    and role session its Principal and NotPrincipal elements name, as for a grant's grantee.
    An account (its id or root ARN), ``*`` and service principals need nothing."""
    named = {
        arn
        for statement in document.statements
        for principals in (statement.principals, statement.not_principals)
        if principals is not None
        for arn in principals.aws
        if not arn.endswith(":root")
    }
    if not named:
        return
    with db.transaction(readonly=True) as tx:
        if not all(names_existing_principal(tx, arn) for arn in named):
            raise MalformedPolicyDocumentException(INVALID_PRINCIPALS)
