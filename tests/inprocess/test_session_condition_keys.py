"""The condition keys of STS sessions, decided in-process: a role session is named by its
role's ARN and its own, aws:PrincipalArn is the role's, aws:PrincipalType AssumedRole,
aws:username absent, session tags are aws:PrincipalTag/*, and the MFA keys are absent for
long-term credentials, false or true (with an age) for sessions."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pyotp
import pytest

from openkms.iam.mfa import create_virtual_mfa_device, enable_mfa_device
from openkms.iam.roles import create_role, tag_principal
from openkms.seal.dev_root_key import open_dev_root_key
from tests.inprocess.conftest import ACCOUNT_ID, REGION, Kms, iam_user

ROOT = f"arn:aws:iam::{ACCOUNT_ID}:root"


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def opened(kms: Kms, issued: Any) -> Kms:
    """The caller a request signed with these temporary credentials authenticates as."""
    session = kms.runtime.authenticator.session_tokens.open(
        issued.session_token, issued.access_key_id
    )
    assert session is not None
    return Kms(kms.runtime, session.principal)


@pytest.fixture
def user(kms: Kms) -> Kms:
    return iam_user(kms)


@pytest.fixture
def role(kms: Kms, user: Kms) -> Any:
    services = kms.runtime.services
    trust = document(
        {
            "Effect": "Allow",
            "Principal": {"AWS": user.principal.arn},
            "Action": ["sts:AssumeRole", "sts:TagSession"],
        }
    )
    made = create_role(services.db, services.clock, ACCOUNT_ID, f"r-{uuid.uuid4().hex[:8]}", trust)
    tag_principal(services.db, ACCOUNT_ID, "role", made.role_name, [("team", "red")])
    return made


def assume(kms: Kms, user: Kms, role: Any, **params: str) -> Kms:
    assert kms.runtime.sts is not None
    issued = kms.runtime.sts.assume_role(
        user.principal, {"RoleArn": role.arn, "RoleSessionName": "sess", **params}, REGION
    )
    return opened(kms, issued)


def decides(kms: Kms, caller: Kms, principal: str, condition: dict[str, Any] | None) -> bool:
    """Whether ``caller`` may Encrypt with a key whose policy allows ``principal`` under
    ``condition``."""
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"AWS": principal},
        "Action": "kms:Encrypt",
        "Resource": "*",
    }
    if condition is not None:
        statement["Condition"] = condition
    admin = {"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"}
    key = kms.create_key(Policy=document(admin, statement))
    try:
        caller.call("Encrypt", KeyId=key["KeyId"], Plaintext=b"x")
    except Exception as error:  # noqa: BLE001 - the code says which refusal
        assert getattr(error, "code", None) == "AccessDeniedException", error
        return False
    return True


def test_a_session_is_named_by_its_role_and_by_itself(kms, user, role):
    session = assume(kms, user, role)
    assert session.principal.arn == (
        f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role.role_name}/sess"
    )
    assert decides(kms, session, role.arn, None)
    assert decides(kms, session, session.principal.arn, None)
    assert not decides(kms, session, user.principal.arn, None)


@pytest.mark.parametrize(
    ("condition", "allowed"),
    [
        ("role-arn", True),
        ("session-arn", False),
        ({"StringEquals": {"aws:PrincipalType": "AssumedRole"}}, True),
        ({"StringEquals": {"aws:PrincipalType": "User"}}, False),
        ({"StringLike": {"aws:userid": "AROA*:sess"}}, True),
        ({"Null": {"aws:username": "true"}}, True),
        ({"StringEquals": {"aws:PrincipalTag/team": "red"}}, True),
        ({"StringEquals": {"aws:PrincipalTag/team": "blue"}}, False),
        ({"Bool": {"aws:MultiFactorAuthPresent": "false"}}, True),
        ({"Bool": {"aws:MultiFactorAuthPresent": "true"}}, False),
        ({"Null": {"aws:MultiFactorAuthAge": "true"}}, True),
    ],
)
def test_condition_keys_of_a_role_session(kms, user, role, condition, allowed):
    session = assume(kms, user, role)
    if condition == "role-arn":
        condition = {"StringEquals": {"aws:PrincipalArn": role.arn}}
    elif condition == "session-arn":
        condition = {"StringEquals": {"aws:PrincipalArn": session.principal.arn}}
    assert decides(kms, session, role.arn, condition) is allowed


def test_session_tags_override_the_role_s_tags(kms, user, role):
    session = assume(
        kms, user, role, **{"Tags.member.1.Key": "Team", "Tags.member.1.Value": "blue"}
    )
    blue = {"StringEquals": {"aws:PrincipalTag/team": "blue"}}
    red = {"StringEquals": {"aws:PrincipalTag/team": "red"}}
    assert decides(kms, session, role.arn, blue)
    assert not decides(kms, session, role.arn, red)


def test_mfa_keys_are_absent_for_long_term_credentials(kms, user):
    absent = {"Null": {"aws:MultiFactorAuthPresent": "true", "aws:MultiFactorAuthAge": "true"}}
    assert decides(kms, user, user.principal.arn, absent)
    assert not decides(
        kms, user, user.principal.arn, {"Bool": {"aws:MultiFactorAuthPresent": "false"}}
    )


def test_an_mfa_session_has_present_true_and_an_age(kms, clock, user):
    services = kms.runtime.services
    root_key = open_dev_root_key(kms.runtime.config.effective_root_key_file)
    user_name = user.principal.arn.rsplit("/", 1)[1]
    serial, seed = create_virtual_mfa_device(
        services.db, root_key, clock, ACCOUNT_ID, user_name, "phone"
    )
    totp = pyotp.TOTP(seed)
    step = int(clock.now().timestamp()) // 30
    enable_mfa_device(
        services.db, root_key, clock, serial, totp.generate_otp(step - 1), totp.generate_otp(step)
    )
    clock.advance(30)
    code = totp.generate_otp(step + 1)
    assert kms.runtime.sts is not None
    issued = kms.runtime.sts.get_session_token(
        user.principal, {"SerialNumber": serial, "TokenCode": code}
    )
    session = opened(kms, issued)
    assert session.principal.arn == user.principal.arn
    clock.advance(100)
    arn = user.principal.arn
    assert decides(kms, session, arn, {"Bool": {"aws:MultiFactorAuthPresent": "true"}})
    assert decides(kms, session, arn, {"NumericEquals": {"aws:MultiFactorAuthAge": "100"}})
    assert not decides(kms, session, arn, {"NumericLessThan": {"aws:MultiFactorAuthAge": "100"}})
    # A user's session keeps the user's own name.
    assert decides(kms, session, arn, {"StringEquals": {"aws:username": user_name}})
    # The code that made it is spent.
    with pytest.raises(Exception, match="invalid MFA one time pass code"):
        kms.runtime.sts.get_session_token(
            user.principal, {"SerialNumber": serial, "TokenCode": code}
        )
