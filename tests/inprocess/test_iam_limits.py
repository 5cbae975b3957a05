"""IAM's rules that are not policies: user and role names are unique whatever their case, the
aggregate size quota of a user's (2048) and a role's (10240) inline policies in IAM's words
(each refusal changing nothing), and kms:ViaService, absent from every openkms request, so a
policy requiring it never allows while its …IfExists and Null forms do."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from openkms.iam.roles import MAX_ROLE_POLICY_SIZE, create_role, put_role_policy
from openkms.iam.users import (
    MAX_USER_POLICY_SIZE,
    IdentityError,
    IdentityLimitExceeded,
    create_user,
    policy_size,
    put_user_policy,
)
from openkms.seal.dev_root_key import open_dev_root_key
from tests.inprocess.conftest import ACCOUNT_ID, Kms, iam_user

ROOT = f"arn:aws:iam::{ACCOUNT_ID}:root"
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "sts:AssumeRole"}],
    }
)


def _document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, indent=4)


def _sized(size: int, effect: str = "Allow") -> str:
    """A policy of exactly ``size`` characters as IAM counts them (its Sid padded)."""
    statement = {"Sid": "", "Effect": effect, "Action": "kms:Encrypt", "Resource": "*"}
    statement["Sid"] = "x" * (size - policy_size(_document(statement)))
    document = _document(statement)
    assert policy_size(document) == size
    return document


def test_user_names_are_unique_whatever_their_case(kms: Kms) -> None:
    services = kms.runtime.services
    root_key = open_dev_root_key(kms.runtime.config.effective_root_key_file)
    name = f"Alice-{uuid.uuid4().hex[:6]}"
    create_user(services.db, root_key, services.clock, ACCOUNT_ID, name)
    for other in (name.lower(), name.upper()):
        with pytest.raises(IdentityError, match="already exists"):
            create_user(services.db, root_key, services.clock, ACCOUNT_ID, other)
        with services.db.transaction(readonly=True) as tx:
            assert tx.get_user(ACCOUNT_ID, other) is None


def test_role_names_are_unique_whatever_their_case(kms: Kms) -> None:
    services = kms.runtime.services
    name = f"Deploy-{uuid.uuid4().hex[:6]}"
    create_role(services.db, services.clock, ACCOUNT_ID, name, TRUST)
    with pytest.raises(IdentityError, match="already exists"):
        create_role(services.db, services.clock, ACCOUNT_ID, name.swapcase(), TRUST)
    with services.db.transaction(readonly=True) as tx:
        assert tx.get_role(ACCOUNT_ID, name.swapcase()) is None


@pytest.mark.parametrize("kind", ["user", "role"])
def test_inline_policies_together_keep_within_iam_s_quota(kms: Kms, kind: str) -> None:
    services = kms.runtime.services
    if kind == "user":
        limit = MAX_USER_POLICY_SIZE
        name = iam_user(kms).principal.arn.rsplit("/", 1)[1]
        arn = f"arn:aws:iam::{ACCOUNT_ID}:user/{name}"

        def put(policy_name: str, document: str) -> None:
            put_user_policy(services.db, ACCOUNT_ID, name, policy_name, document)

        def stored() -> list[tuple[str, str]]:
            with services.db.transaction(readonly=True) as tx:
                return tx.user_policies(arn)
    else:
        limit = MAX_ROLE_POLICY_SIZE
        role = create_role(
            services.db, services.clock, ACCOUNT_ID, f"q-{uuid.uuid4().hex[:6]}", TRUST
        )
        name, arn = role.role_name, role.arn

        def put(policy_name: str, document: str) -> None:
            put_role_policy(services.db, ACCOUNT_ID, name, policy_name, document)

        def stored() -> list[tuple[str, str]]:
            with services.db.transaction(readonly=True) as tx:
                return tx.role_policies(arn)

    refusal = f"Maximum policy size of {limit} bytes exceeded for {kind} {name}"
    # One policy at the quota exactly (whitespace is not counted: the documents are
    # indented), then one character more.
    put("a", _sized(limit))
    with pytest.raises(IdentityLimitExceeded) as caught:
        put("a", _sized(limit + 1))
    assert (str(caught.value), caught.value.code) == (refusal, "LimitExceeded")
    assert stored() == [("a", _sized(limit))]
    # Together: a second policy must fit beside the first; replacing one counts it once.
    put("a", _sized(limit - 200))
    put("b", _sized(200, "Deny"))
    with pytest.raises(IdentityLimitExceeded, match=refusal):
        put("c", _sized(150))
    with pytest.raises(IdentityLimitExceeded, match=refusal):
        put("b", _sized(201, "Deny"))
    put("b", _sized(150, "Deny"))
    assert [policy_name for policy_name, _ in stored()] == ["a", "b"]


def _via_service_key(kms: Kms, condition: dict[str, Any]) -> str:
    admin = {
        "Effect": "Allow",
        "Principal": {"AWS": ROOT},
        "Action": ["kms:PutKeyPolicy", "kms:DescribeKey"],
        "Resource": "*",
    }
    encrypt = {
        "Effect": "Allow",
        "Principal": {"AWS": ROOT},
        "Action": "kms:Encrypt",
        "Resource": "*",
        "Condition": condition,
    }
    key: str = kms.create_key(Policy=_document(admin, encrypt))["KeyId"]
    return key


@pytest.mark.parametrize(
    ("condition", "allowed"),
    [
        ({"StringEquals": {"kms:ViaService": "ec2.us-east-1.amazonaws.com"}}, False),
        ({"StringLike": {"kms:ViaService": "*"}}, False),
        ({"StringEqualsIfExists": {"kms:ViaService": "ec2.us-east-1.amazonaws.com"}}, True),
        ({"Null": {"kms:ViaService": "true"}}, True),
        ({"Null": {"kms:ViaService": "false"}}, False),
        # Absent, so it applies: in AWS's "Deny unless through a service" pattern this
        # condition makes the Deny refuse every openkms call.
        ({"StringNotLikeIfExists": {"kms:ViaService": "*.amazonaws.com"}}, True),
    ],
)
def test_kms_via_service_is_absent(kms: Kms, condition: dict[str, Any], allowed: bool) -> None:
    key = _via_service_key(kms, condition)
    if allowed:
        kms.call("Encrypt", KeyId=key, Plaintext=b"x")
        return
    error = kms.error("Encrypt", KeyId=key, Plaintext=b"x")
    assert error.code == "AccessDeniedException"
    assert error.message is not None
    assert error.message.endswith("because no resource-based policy allows the kms:Encrypt action")
