"""Grants through boto3 against a running server: a grant lets an IAM user with no policy of
its own use a key, its token works at once, its constraint holds, and it stops working the
moment it is retired or revoked; AWS's errors come back over the wire."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from openkms.authz.grant_tokens import issue_token
from tests.e2e.kms_management import client, fails, new_key
from tests.support import ACCOUNT_ID

ROOT = f"arn:aws:iam::{ACCOUNT_ID}:root"


@pytest.fixture
def user(server) -> dict[str, str]:
    return server.create_user(ACCOUNT_ID, f"grantee-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def user_kms(server, user) -> Any:
    return client(server, user)


def test_a_grant_lets_a_user_use_a_key_until_it_is_retired(kms, user, user_kms):
    key = new_key(kms, Description="grant tests")
    context = {"tenant": "t1"}
    fails(user_kms.encrypt, "AccessDeniedException", KeyId=key["KeyId"], Plaintext=b"x")
    made = kms.create_grant(
        KeyId=key["KeyId"],
        GranteePrincipal=user["Arn"],
        Operations=["Encrypt", "Decrypt", "RetireGrant"],
        Constraints={"EncryptionContextSubset": context},
        Name="tenant-t1",
    )
    assert len(made["GrantId"]) == 64
    token = made["GrantToken"]
    blob = user_kms.encrypt(
        KeyId=key["KeyId"], Plaintext=b"secret", EncryptionContext=context, GrantTokens=[token]
    )["CiphertextBlob"]
    assert user_kms.decrypt(CiphertextBlob=blob, EncryptionContext=context)["Plaintext"] == (
        b"secret"
    )
    fails(
        user_kms.encrypt,
        "AccessDeniedException",
        KeyId=key["KeyId"],
        Plaintext=b"x",
        EncryptionContext={"tenant": "t2"},
    )

    listed = kms.list_grants(KeyId=key["KeyId"])
    (entry,) = listed["Grants"]
    assert entry["GrantId"] == made["GrantId"]
    assert entry["KeyId"] == key["Arn"]
    assert entry["Name"] == "tenant-t1"
    assert entry["GranteePrincipal"] == user["Arn"]
    assert entry["IssuingAccount"] == ROOT
    assert entry["Operations"] == ["Encrypt", "Decrypt", "RetireGrant"]
    assert entry["Constraints"] == {"EncryptionContextSubset": context}
    assert listed["Truncated"] is False

    user_kms.retire_grant(GrantToken=token)
    fails(
        user_kms.encrypt,
        "AccessDeniedException",
        KeyId=key["KeyId"],
        Plaintext=b"x",
        EncryptionContext=context,
    )
    assert kms.list_grants(KeyId=key["KeyId"])["Grants"] == []


def test_revoke_grant_and_retirable_grants(kms, user, user_kms):
    key = new_key(kms, Description="grant tests")
    made = kms.create_grant(
        KeyId=key["KeyId"],
        GranteePrincipal=user["Arn"],
        Operations=["GenerateDataKey"],
        RetiringPrincipal=ROOT,
    )
    user_kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")
    retirable = kms.list_retirable_grants(RetiringPrincipal=ROOT)["Grants"]
    assert made["GrantId"] in {g["GrantId"] for g in retirable}
    fails(
        user_kms.revoke_grant, "AccessDeniedException", KeyId=key["KeyId"], GrantId=made["GrantId"]
    )
    kms.revoke_grant(KeyId=key["KeyId"], GrantId=made["GrantId"])
    fails(
        user_kms.generate_data_key, "AccessDeniedException", KeyId=key["KeyId"], KeySpec="AES_256"
    )
    fails(
        kms.revoke_grant,
        "NotFoundException",
        f"Grant ID {made['GrantId']} not found",
        KeyId=key["KeyId"],
        GrantId=made["GrantId"],
    )


def test_grant_errors_over_the_wire(kms, user):
    key = new_key(kms, Description="grant tests")
    fails(
        kms.encrypt,
        "InvalidGrantTokenException",
        "Invalid grant token.",
        KeyId=key["KeyId"],
        Plaintext=b"x",
        GrantTokens=["not a token"],
    )
    fails(
        kms.create_grant,
        "InvalidArnException",
        "ARN does not refer to a valid principal: nobody",
        KeyId=key["KeyId"],
        GranteePrincipal="nobody",
        Operations=["Encrypt"],
    )
    missing = f"arn:aws:iam::{ACCOUNT_ID}:user/no-such-user"
    fails(
        kms.create_grant,
        "InvalidArnException",
        f"ARN does not refer to a valid principal: {missing}",
        KeyId=key["KeyId"],
        GranteePrincipal=user["Arn"],
        RetiringPrincipal=missing,
        Operations=["Encrypt"],
    )
    kms.create_alias(AliasName=f"alias/grant-{key['KeyId']}", TargetKeyId=key["KeyId"])
    fails(
        kms.create_grant,
        "InvalidArnException",
        "Key Aliases are not supported for this operation.",
        KeyId=f"alias/grant-{key['KeyId']}",
        GranteePrincipal=user["Arn"],
        Operations=["Encrypt"],
    )
    fails(
        kms.create_grant,
        "ValidationException",
        "EncryptionContextSubset can have at most 8 encryption context pairs.",
        KeyId=key["KeyId"],
        GranteePrincipal=user["Arn"],
        Operations=["Encrypt"],
        Constraints={"EncryptionContextSubset": {f"k{i}": "v" for i in range(9)}},
    )
    fails(
        kms.create_grant,
        "ValidationException",
        KeyId=key["KeyId"],
        GranteePrincipal=user["Arn"],
        Operations=["Sign"],
    )
    fails(kms.list_grants, "InvalidGrantIdException", KeyId=key["KeyId"], GrantId="x")
    fails(kms.retire_grant, "NotFoundException", GrantToken=issue_token("ab" * 32))
    fails(kms.retire_grant, "InvalidGrantIdException", KeyId=key["KeyId"], GrantId="x")
    assert kms.list_grants(KeyId=key["KeyId"])["Grants"] == []
