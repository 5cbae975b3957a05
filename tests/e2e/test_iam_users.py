"""IAM users and their identity policies, with key policies, as AWS decides them: made with
``openkms admin``, used through boto3 with the user's own access key."""

from __future__ import annotations

import json
import subprocess
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from openkms.iam.users import MAX_USER_POLICY_SIZE, policy_size
from tests.e2e.kms_management import client, fails, new_key
from tests.support import ACCOUNT_ID

ROOT = f"arn:aws:iam::{ACCOUNT_ID}:root"


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def refused(user: dict[str, str], action: str, resource: str, reason: str) -> str:
    return (
        f"User: {user['Arn']} is not authorized to perform: {action} on resource: {resource} "
        f"{reason}"
    )


def because(kind: str, action: str) -> str:
    return f"because no {kind}-based policy allows the {action} action"


@pytest.fixture
def user(server) -> dict[str, str]:
    return server.create_user(ACCOUNT_ID, f"user-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def user_kms(server, user) -> Any:
    return client(server, user)


def test_a_new_user_may_do_nothing_its_policies_do_not_allow(server, kms, user, user_kms):
    assert user["Arn"] == f"arn:aws:iam::{ACCOUNT_ID}:user/{user['UserName']}"
    assert user["UserId"].startswith("AIDA") and len(user["UserId"]) == 21
    key = new_key(kms)
    # The default key policy delegates to the account: the user's own policies decide.
    fails(
        user_kms.encrypt,
        "AccessDeniedException",
        refused(user, "kms:Encrypt", key["Arn"], because("identity", "kms:Encrypt")),
        KeyId=key["KeyId"],
        Plaintext=b"x",
    )
    fails(
        user_kms.create_key,
        "AccessDeniedException",
        refused(user, "kms:CreateKey", "*", because("identity", "kms:CreateKey")),
    )
    sts = server.client(
        "sts", access_key_id=user["AccessKeyId"], secret_access_key=user["SecretAccessKey"]
    )
    assert sts.get_caller_identity()["Arn"] == user["Arn"]


def test_an_identity_policy_allows_within_what_the_key_policy_delegates(
    server, kms, user, user_kms
):
    key = new_key(kms)
    server.put_user_policy(
        user,
        "use-one-key",
        document(
            {"Effect": "Allow", "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": key["Arn"]},
            {"Effect": "Allow", "Action": "kms:CreateKey", "Resource": "*"},
        ),
    )
    blob = user_kms.encrypt(KeyId=key["KeyId"], Plaintext=b"by the user")["CiphertextBlob"]
    assert user_kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"by the user"
    other = new_key(kms)
    fails(
        user_kms.encrypt,
        "AccessDeniedException",
        refused(user, "kms:Encrypt", other["Arn"], because("identity", "kms:Encrypt")),
        KeyId=other["KeyId"],
        Plaintext=b"x",
    )
    made = user_kms.create_key()["KeyMetadata"]
    # Its default policy delegates to the account, and the user's policy names only the
    # first key: even the key it made is not its to use.
    fails(
        user_kms.describe_key,
        "AccessDeniedException",
        refused(user, "kms:DescribeKey", made["Arn"], because("identity", "kms:DescribeKey")),
        KeyId=made["KeyId"],
    )


def test_an_explicit_deny_in_the_identity_policy_wins(server, kms, user, user_kms):
    key = new_key(kms)
    server.put_user_policy(
        user,
        "all-but-decrypt",
        document(
            {"Effect": "Allow", "Action": "kms:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "kms:Decrypt", "Resource": "*"},
        ),
    )
    blob = user_kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    fails(
        user_kms.decrypt,
        "AccessDeniedException",
        refused(
            user, "kms:Decrypt", key["Arn"], "with an explicit deny in an identity-based policy"
        ),
        CiphertextBlob=blob,
    )
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"


def test_a_key_policy_naming_the_user_allows_it_without_an_identity_policy(kms, user, user_kms):
    key = new_key(
        kms,
        Policy=document(
            {"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"},
            {
                "Effect": "Allow",
                "Principal": {"AWS": user["Arn"]},
                "Action": "kms:Encrypt",
                "Resource": "*",
            },
        ),
    )
    assert user_kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["KeyId"] == key["Arn"]
    # Not delegated beyond what it names.
    fails(
        user_kms.describe_key,
        "AccessDeniedException",
        refused(user, "kms:DescribeKey", key["Arn"], because("identity", "kms:DescribeKey")),
        KeyId=key["KeyId"],
    )


def test_a_key_policy_deny_naming_the_user_wins_over_its_identity_policy(
    server, kms, user, user_kms
):
    server.put_user_policy(
        user, "everything", document({"Effect": "Allow", "Action": "kms:*", "Resource": "*"})
    )
    key = new_key(kms)
    assert user_kms.list_keys()["Keys"]  # an account-level action its policy allows
    kms.put_key_policy(
        KeyId=key["KeyId"],
        Policy=document(
            {"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"},
            {
                "Effect": "Deny",
                "Principal": {"AWS": user["Arn"]},
                "Action": "kms:Encrypt",
                "Resource": "*",
            },
        ),
    )
    fails(
        user_kms.encrypt,
        "AccessDeniedException",
        refused(
            user, "kms:Encrypt", key["Arn"], "with an explicit deny in a resource-based policy"
        ),
        KeyId=key["KeyId"],
        Plaintext=b"x",
    )


def test_identity_policy_conditions_and_variables(server, kms, user, user_kms):
    key = new_key(kms)
    server.put_user_policy(
        user,
        "own-context",
        document(
            {
                "Effect": "Allow",
                "Action": "kms:Encrypt",
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:EncryptionContext:owner": "${aws:username}"}},
            }
        ),
    )
    user_kms.encrypt(
        KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext={"owner": user["UserName"]}
    )
    fails(
        user_kms.encrypt,
        "AccessDeniedException",
        refused(user, "kms:Encrypt", key["Arn"], because("identity", "kms:Encrypt")),
        KeyId=key["KeyId"],
        Plaintext=b"x",
        EncryptionContext={"owner": "someone-else"},
    )


def test_a_changed_identity_policy_is_enforced_at_once(server, kms, user, user_kms):
    key = new_key(kms)
    allow = document({"Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*"})
    server.put_user_policy(user, "p", allow)
    user_kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    server.admin(
        "delete-user-policy",
        "--account-id",
        ACCOUNT_ID,
        "--user-name",
        user["UserName"],
        "--policy-name",
        "p",
    )
    fails(user_kms.encrypt, "AccessDeniedException", KeyId=key["KeyId"], Plaintext=b"x")


def test_admin_refuses_bad_users_and_policies(server, user):
    def admin_error(*args: str) -> str:
        with pytest.raises(subprocess.CalledProcessError) as info:
            server.admin(*args)
        return info.value.stderr

    assert "already exists" in admin_error(
        "create-user", "--account-id", ACCOUNT_ID, "--user-name", user["UserName"]
    )
    assert "1 to 64" in admin_error(
        "create-user", "--account-id", ACCOUNT_ID, "--user-name", "bad name"
    )
    assert "does not exist" in admin_error(
        "create-user", "--account-id", "999999999999", "--user-name", "u"
    )
    with_principal = document(
        {"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*"}
    )
    assert "should not specify a principal" in admin_error(
        "put-user-policy", "--account-id", ACCOUNT_ID, "--user-name", user["UserName"],
        "--policy-name", "p", "--policy-document", with_principal,
    )  # fmt: skip
    assert "not valid JSON" in admin_error(
        "put-user-policy", "--account-id", ACCOUNT_ID, "--user-name", user["UserName"],
        "--policy-name", "p", "--policy-document", "{",
    )  # fmt: skip


def test_iam_quotas_and_case_insensitive_names_through_the_cli(server, kms, user, user_kms):
    """IAM's aggregate inline-policy quota of a user (2048 non-whitespace characters) comes
    back with IAM's code and words and changes nothing; names taken in another case are
    taken."""

    def admin_error(*args: str) -> str:
        with pytest.raises(subprocess.CalledProcessError) as info:
            server.admin(*args)
        return info.value.stderr

    assert "already exists" in admin_error(
        "create-user", "--account-id", ACCOUNT_ID, "--user-name", user["UserName"].upper()
    )
    key = new_key(kms)
    allow = document({"Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*"})
    server.put_user_policy(user, "small", allow)
    # A Deny that alone fits the quota exactly (Sid padded), but not beside "small": the
    # quota is the sum of the user's inline policies, whitespace not counted.
    statement = {"Sid": "", "Effect": "Deny", "Action": "kms:Encrypt", "Resource": "*"}
    statement["Sid"] = "x" * (MAX_USER_POLICY_SIZE - policy_size(document(statement)))
    padded = document(statement)
    assert policy_size(padded) == MAX_USER_POLICY_SIZE
    error = admin_error(
        "put-user-policy", "--account-id", ACCOUNT_ID, "--user-name", user["UserName"],
        "--policy-name", "deny", "--policy-document", padded,
    )  # fmt: skip
    assert (
        f"LimitExceeded: Maximum policy size of 2048 bytes exceeded for user {user['UserName']}"
        in error
    ), error
    # Nothing changed: the Deny is not in force; in place of "small" it fits.
    user_kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    server.put_user_policy(user, "small", padded)
    fails(user_kms.encrypt, "AccessDeniedException", KeyId=key["KeyId"], Plaintext=b"x")


def test_access_keys_are_listed_deactivated_reactivated_and_deleted(server, user):
    """IAM's access-key lifecycle through ``openkms admin``: an inactive or deleted key
    signs nothing the server accepts, from the next request on."""
    account, name = user["AccountId"], user["UserName"]

    def identity(access_key: dict[str, str]) -> Any:
        sts = server.client(
            "sts",
            access_key_id=access_key["AccessKeyId"],
            secret_access_key=access_key["SecretAccessKey"],
        )
        return sts.get_caller_identity()

    second = json.loads(
        server.admin("create-access-key", "--account-id", account, "--user-name", name)
    )
    assert second["Arn"] == user["Arn"] and identity(second)["Arn"] == user["Arn"]
    listed = json.loads(
        server.admin("list-access-keys", "--account-id", account, "--user-name", name)
    )
    entries = listed["AccessKeyMetadata"]
    assert {e["AccessKeyId"] for e in entries} == {user["AccessKeyId"], second["AccessKeyId"]}
    assert all(e["Status"] == "Active" and "SecretAccessKey" not in e for e in entries)
    # IAM's limit: two access keys per user.
    with pytest.raises(subprocess.CalledProcessError) as info:
        server.admin("create-access-key", "--account-id", account, "--user-name", name)
    assert "2 access keys already" in info.value.stderr

    server.admin(
        "update-access-key",
        "--account-id",
        account,
        "--access-key-id",
        second["AccessKeyId"],
        "--status",
        "Inactive",
    )
    invalid = "The security token included in the request is invalid."
    with pytest.raises(ClientError) as caught:
        identity(second)
    assert caught.value.response["Error"]["Message"] == invalid
    assert identity(user)["Arn"] == user["Arn"]  # the other key is untouched
    server.admin(
        "update-access-key",
        "--account-id",
        account,
        "--access-key-id",
        second["AccessKeyId"],
        "--status",
        "Active",
    )
    assert identity(second)["Arn"] == user["Arn"]

    # Another account cannot manage the key, which it does not see.
    with pytest.raises(subprocess.CalledProcessError) as info:
        server.admin(
            "delete-access-key",
            "--account-id",
            "999999999999",
            "--access-key-id",
            second["AccessKeyId"],
        )
    assert "does not exist in account 999999999999" in info.value.stderr
    server.admin(
        "delete-access-key", "--account-id", account, "--access-key-id", second["AccessKeyId"]
    )
    with pytest.raises(ClientError) as caught:
        identity(second)
    assert caught.value.response["Error"]["Message"] == invalid
