"""The authenticated caller of a request."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made a request. Hashable: the authorizer caches what it derives from one.

    ``arn`` is the caller as AWS names it in errors and GetCallerIdentity: the account root,
    a user, or for a role session ``arn:aws:sts::<account>:assumed-role/<role>/<session>``.
    """

    account_id: str
    arn: str
    user_id: str  # aws:userid: the account id, the user's AIDA… id, or AROA…:<session>
    access_key_id: str
    # Principal tags as (key, value), for aws:PrincipalTag/<key>: a user's own, or a role
    # session's (the role's tags with the session's tags over them).
    tags: tuple[tuple[str, str], ...] = ()
    # Temporary (STS) credentials: whether the session was made with an MFA code, and when.
    # Long-term credentials have neither, so aws:MultiFactorAuthPresent is absent for them.
    temporary: bool = False
    mfa_authenticated_at: dt.datetime | None = None
    # When a temporary session was issued (CloudTrail's sessionContext creationDate).
    session_issued_at: dt.datetime | None = None

    @property
    def principal_type(self) -> str:
        """aws:PrincipalType, in AWS's values."""
        if ":assumed-role/" in self.arn:
            return "AssumedRole"
        if ":federated-user/" in self.arn:
            return "FederatedUser"
        if self.arn.endswith(":root"):
            return "Account"
        return "User"

    @property
    def policy_arn(self) -> str:
        """The ARN identity policies belong to and aws:PrincipalArn names: for a role session
        the role's (``arn:aws:iam::<account>:role/<role>``), else ``arn`` itself."""
        return role_arn_of_session(self.arn) or self.arn

    @property
    def tag_map(self) -> dict[str, str]:
        """The tags by lower-case key (condition key names ignore case)."""
        return {key.lower(): value for key, value in self.tags}


def session_arn(account_id: str, role_name: str, session_name: str) -> str:
    return f"arn:aws:sts::{account_id}:assumed-role/{role_name}/{session_name}"


def role_arn_of_session(arn: str) -> str | None:
    """The role of an assumed-role session ARN; None for any other ARN."""
    prefix, sep, rest = arn.partition(":assumed-role/")
    if not sep or not prefix.startswith("arn:aws:sts::"):
        return None
    role_name = rest.split("/", 1)[0]
    account_id = prefix.removeprefix("arn:aws:sts::")
    return f"arn:aws:iam::{account_id}:role/{role_name}"
