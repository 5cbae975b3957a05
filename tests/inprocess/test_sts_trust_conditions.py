"""AssumeRole's trust-policy conditions, decided in process: sts:ExternalId and
sts:RoleSessionName flip the decision (with policy variables and the …IfExists / Null forms);
the role's tags become the session's aws:PrincipalTag/* and session tags override them; a
root user's GetSessionToken has no MFA device to prove; bad input changes nothing."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from openkms.errors import AccessDeniedException, ValidationException
from openkms.iam.roles import create_role, tag_principal
from tests.inprocess.conftest import ACCOUNT_ID, REGION, Kms, iam_user

ROOT = f"arn:aws:iam::{ACCOUNT_ID}:root"


def _document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _role(kms: Kms, user: Kms, condition: dict[str, Any] | None, tag_session: bool = False) -> Any:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"AWS": user.principal.arn},
        "Action": ["sts:AssumeRole", "sts:TagSession"] if tag_session else "sts:AssumeRole",
    }
    if condition is not None:
        statement["Condition"] = condition
    services = kms.runtime.services
    name = f"trust-{uuid.uuid4().hex[:8]}"
    return create_role(services.db, services.clock, ACCOUNT_ID, name, _document(statement))


def _assume(kms: Kms, user: Kms, role: Any, **params: str) -> Any:
    sts = kms.runtime.sts
    assert sts is not None
    return sts.assume_role(
        user.principal,
        {"RoleArn": role.arn, "RoleSessionName": params.pop("RoleSessionName", "s1"), **params},
        REGION,
    )


def _assumes(kms: Kms, user: Kms, role: Any, **params: str) -> bool:
    try:
        _assume(kms, user, role, **params)
    except AccessDeniedException as refused:
        assert refused.message == (
            f"User: {user.principal.arn} is not authorized to perform: sts:AssumeRole on "
            f"resource: {role.arn}"
        )
        return False
    return True


@pytest.fixture
def user(kms: Kms) -> Kms:
    return iam_user(kms)


@pytest.mark.parametrize(
    ("condition", "allowed", "refused"),
    [
        (
            {"StringEquals": {"sts:ExternalId": "secret-42"}},
            {"ExternalId": "secret-42"},
            {"ExternalId": "secret-43"},
        ),
        ({"StringEquals": {"sts:ExternalId": "secret-42"}}, {"ExternalId": "secret-42"}, {}),
        # The Null form: an ExternalId is required, whatever its value.
        ({"Null": {"sts:ExternalId": "false"}}, {"ExternalId": "anything"}, {}),
        # …IfExists: absent passes, a wrong one does not.
        (
            {"StringEqualsIfExists": {"sts:ExternalId": "secret-42"}},
            {},
            {"ExternalId": "wrong-one"},
        ),
        (
            {"StringEquals": {"sts:RoleSessionName": "alice"}},
            {"RoleSessionName": "alice"},
            {"RoleSessionName": "bob"},
        ),
        (
            {"StringLike": {"sts:RoleSessionName": "ci-*"}},
            {"RoleSessionName": "ci-build-7"},
            {"RoleSessionName": "build-7"},
        ),
    ],
)
def test_trust_conditions_on_sts_keys_flip_assume_role(
    kms: Kms,
    user: Kms,
    condition: dict[str, Any],
    allowed: dict[str, str],
    refused: dict[str, str],
) -> None:
    role = _role(kms, user, condition)
    assert _assumes(kms, user, role, **allowed)
    assert not _assumes(kms, user, role, **refused)


def test_a_session_name_must_be_the_caller_s_user_name(kms: Kms, user: Kms) -> None:
    """AWS's pattern for naming sessions after their callers: a policy variable."""
    role = _role(kms, user, {"StringEquals": {"sts:RoleSessionName": "${aws:username}"}})
    user_name = user.principal.arn.rsplit("/", 1)[1]
    assert _assumes(kms, user, role, RoleSessionName=user_name)
    assert not _assumes(kms, user, role, RoleSessionName="someone-else")


@pytest.mark.parametrize(
    ("external_id", "message"),
    [
        (
            "x",
            "1 validation error detected: Value 'x' at 'externalId' failed to satisfy "
            "constraint: Member must have length greater than or equal to 2",
        ),
        (
            "has space",
            "1 validation error detected: Value 'has space' at 'externalId' failed to satisfy "
            "constraint: Member must satisfy regular expression pattern: [\\w+=,.@:\\/-]*",
        ),
        (
            "x" * 1225,
            f"1 validation error detected: Value '{'x' * 1225}' at 'externalId' failed to "
            "satisfy constraint: Member must have length less than or equal to 1224",
        ),
    ],
)
def test_a_malformed_external_id_is_refused_before_the_trust_policy(
    kms: Kms, user: Kms, external_id: str, message: str
) -> None:
    role = _role(kms, user, None)
    with pytest.raises(ValidationException) as caught:
        _assume(kms, user, role, ExternalId=external_id)
    assert caught.value.message == message
    # An ExternalId the trust policy does not ask for is accepted, as AWS accepts it.
    _assume(kms, user, role, ExternalId="a:b/c=d")


def _encrypts(kms: Kms, session: Kms, role_arn: str, team: str) -> bool:
    admin = {"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"}
    allow = {
        "Effect": "Allow",
        "Principal": {"AWS": role_arn},
        "Action": "kms:Encrypt",
        "Resource": "*",
        "Condition": {"StringEquals": {"aws:PrincipalTag/team": team}},
    }
    key = kms.create_key(Policy=_document(admin, allow))
    try:
        session.call("Encrypt", KeyId=key["KeyId"], Plaintext=b"x")
    except Exception as error:  # noqa: BLE001 - the code says which refusal
        assert getattr(error, "code", None) == "AccessDeniedException", error
        return False
    return True


def _session(kms: Kms, issued: Any) -> Kms:
    opened = kms.runtime.authenticator.session_tokens.open(
        issued.session_token, issued.access_key_id
    )
    assert opened is not None
    return Kms(kms.runtime, opened.principal)


def test_role_tags_are_principal_tags_and_session_tags_override_them(kms: Kms, user: Kms) -> None:
    services = kms.runtime.services
    role = _role(kms, user, None, tag_session=True)
    tag_principal(services.db, ACCOUNT_ID, "role", role.role_name, [("team", "red")])
    plain = _session(kms, _assume(kms, user, role))
    assert _encrypts(kms, plain, role.arn, "red")
    assert not _encrypts(kms, plain, role.arn, "blue")
    # A session tag of the same key (in any case) wins; other role tags stay.
    tagged = _session(
        kms,
        _assume(
            kms,
            user,
            role,
            **{
                "Tags.member.1.Key": "TEAM",
                "Tags.member.1.Value": "blue",
                "Tags.member.2.Key": "site",
                "Tags.member.2.Value": "x",
            },
        ),
    )
    assert _encrypts(kms, tagged, role.arn, "blue")
    assert not _encrypts(kms, tagged, role.arn, "red")
    assert dict(tagged.principal.tags) == {"TEAM": "blue", "site": "x"}
    # The role's tags are read when the session is made: a later change does not reach it.
    tag_principal(services.db, ACCOUNT_ID, "role", role.role_name, [("team", "green")])
    assert _encrypts(kms, plain, role.arn, "red")
    assert _encrypts(kms, _session(kms, _assume(kms, user, role)), role.arn, "green")


def test_a_root_user_s_get_session_token_has_no_mfa_device_to_prove(kms: Kms) -> None:
    sts = kms.runtime.sts
    assert sts is not None
    issued = sts.get_session_token(kms.principal, {})
    assert issued.principal.mfa_authenticated_at is None
    with pytest.raises(AccessDeniedException) as caught:
        sts.get_session_token(
            kms.principal,
            {"SerialNumber": f"arn:aws:iam::{ACCOUNT_ID}:mfa/root-account-mfa-device",
             "TokenCode": "123456"},
        )  # fmt: skip
    assert caught.value.message == (
        "MultiFactorAuthentication failed, unable to validate MFA code.  Please verify your "
        "MFA serial number is valid and associated with this user."
    )
