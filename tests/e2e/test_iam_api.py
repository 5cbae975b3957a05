"""The IAM admin API through boto3's IAM client and the AWS CLI: an account's root user (or
a principal its identity policies allow) manages users, access keys, roles, inline policies
and tags of that account only, with IAM's answers and errors."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.e2e.kms_management import client
from tests.e2e.test_awscli import _aws_executable
from tests.e2e.test_sts_sessions import error_of
from tests.support import ACCOUNT_ID, CLIENT_CONFIG, REGION, OpenKmsServer

ROOT = f"arn:aws:iam::{ACCOUNT_ID}:root"


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: Any, resource: Any = "*", effect: str = "Allow") -> dict[str, Any]:
    return {"Effect": effect, "Action": action, "Resource": resource}


def trust(principal: str) -> str:
    return document(
        {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}
    )


def iam_client(
    server: OpenKmsServer,
    access_key_id: str,
    secret: str,
    token: str | None = None,
    validate: bool = True,
) -> Any:
    """An IAM client; with ``validate=False`` boto3 sends what it is given, unchecked."""
    config = CLIENT_CONFIG
    if not validate:
        config = config.merge(Config(parameter_validation=False))
    return boto3.session.Session().client(
        "iam",
        endpoint_url=server.endpoint,
        region_name="us-east-1",
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret,
        aws_session_token=token,
        config=config,
    )


def denied(caller: str, action: str, resource: str) -> str:
    return (
        f"User: {caller} is not authorized to perform: {action} on resource: {resource} "
        f"because no identity-based policy allows the {action} action"
    )


@pytest.fixture
def iam(server: OpenKmsServer) -> Any:
    return server.client("iam", region="us-east-1")


def new_user_with_key(iam: Any, server: OpenKmsServer) -> tuple[dict[str, Any], Any]:
    """A user made through the API, its access key, and an IAM client signing as it."""
    user = iam.create_user(UserName=name("user"))["User"]
    key = iam.create_access_key(UserName=user["UserName"])["AccessKey"]
    return user | {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}, (
        iam_client(server, key["AccessKeyId"], key["SecretAccessKey"])
    )


def test_the_root_user_manages_users_and_their_tags(iam):
    user_name = name("alice")
    made = iam.create_user(UserName=user_name, Tags=[{"Key": "team", "Value": "blue"}])["User"]
    assert made["Arn"] == f"arn:aws:iam::{ACCOUNT_ID}:user/{user_name}"
    assert made["UserId"].startswith("AIDA") and made["Path"] == "/"
    assert made["Tags"] == [{"Key": "team", "Value": "blue"}]
    got = iam.get_user(UserName=user_name)["User"]
    assert got["UserId"] == made["UserId"] and got["Tags"] == made["Tags"]
    assert iam.get_user()["User"]["Arn"] == ROOT

    code, message, status = error_of(iam.create_user, UserName=user_name)
    assert (code, status) == ("EntityAlreadyExists", 409)
    iam.tag_user(
        UserName=user_name, Tags=[{"Key": "TEAM", "Value": "red"}, {"Key": "x", "Value": ""}]
    )
    tags = iam.list_user_tags(UserName=user_name)["Tags"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("TEAM", "red"), ("x", "")]
    iam.untag_user(UserName=user_name, TagKeys=["x", "never-there"])
    assert iam.list_user_tags(UserName=user_name)["Tags"] == [{"Key": "TEAM", "Value": "red"}]

    iam.delete_user(UserName=user_name)
    code, message, status = error_of(iam.get_user, UserName=user_name)
    assert (code, message, status) == (
        "NoSuchEntity",
        f"The user with name {user_name} cannot be found.",
        404,
    )


def test_list_users_pages_with_markers(iam):
    for _ in range(3):
        iam.create_user(UserName=name("page"))
    seen: list[str] = []
    marker: dict[str, str] = {}
    while True:
        page = iam.list_users(MaxItems=2, **marker)
        assert len(page["Users"]) <= 2
        seen += [u["UserName"] for u in page["Users"]]
        if not page["IsTruncated"]:
            break
        marker = {"Marker": page["Marker"]}
    everything = [
        u["UserName"]
        for u in iam.get_paginator("list_users").paginate().build_full_result()["Users"]
    ]
    assert seen == everything == sorted(everything)
    assert len(seen) >= 3


def test_access_keys_sign_until_deactivated_or_deleted(server, iam):
    user, user_iam = new_user_with_key(iam, server)
    user_name = user["UserName"]
    # Without a policy the user may not even read itself (as in AWS); its key works for STS.
    code, _, _ = error_of(user_iam.get_user)
    assert code == "AccessDenied"
    user_sts = server.client(
        "sts", access_key_id=user["AccessKeyId"], secret_access_key=user["SecretAccessKey"]
    )
    assert user_sts.get_caller_identity()["Arn"] == user["Arn"]
    listed = iam.list_access_keys(UserName=user_name)["AccessKeyMetadata"]
    assert [(k["AccessKeyId"], k["Status"], k["UserName"]) for k in listed] == [
        (user["AccessKeyId"], "Active", user_name)
    ]
    assert "SecretAccessKey" not in listed[0]
    second = iam.create_access_key(UserName=user_name)["AccessKey"]
    code, _, status = error_of(iam.create_access_key, UserName=user_name)
    assert (code, status) == ("LimitExceeded", 409)  # IAM's two keys per user

    kms = client(server, user)
    iam.update_access_key(UserName=user_name, AccessKeyId=user["AccessKeyId"], Status="Inactive")
    code, _, _ = error_of(kms.list_keys)
    assert code == "UnrecognizedClientException"
    iam.update_access_key(UserName=user_name, AccessKeyId=user["AccessKeyId"], Status="Active")
    assert user_sts.get_caller_identity()["Arn"] == user["Arn"]

    # A key is found only under its own user: another user's name does not reach it.
    other = iam.create_user(UserName=name("other"))["User"]
    code, message, status = error_of(
        iam.delete_access_key, UserName=other["UserName"], AccessKeyId=second["AccessKeyId"]
    )
    assert (code, status) == ("NoSuchEntity", 404)
    iam.delete_access_key(UserName=user_name, AccessKeyId=second["AccessKeyId"])
    code, _, status = error_of(iam.delete_user, UserName=user_name)
    assert (code, status) == ("DeleteConflict", 409)
    iam.delete_access_key(UserName=user_name, AccessKeyId=user["AccessKeyId"])
    code, _, _ = error_of(user_sts.get_caller_identity)
    assert code == "InvalidClientTokenId"
    iam.delete_user(UserName=user_name)


def test_inline_policies_are_kept_returned_and_enforced(server, iam, kms):
    user, user_iam = new_user_with_key(iam, server)
    user_name, user_kms = user["UserName"], client(server, user)
    key = kms.create_key()["KeyMetadata"]
    code, _, _ = error_of(user_kms.encrypt, KeyId=key["KeyId"], Plaintext=b"x")
    assert code == "AccessDeniedException"

    policy = document(allow("kms:Encrypt", key["Arn"]))
    iam.put_user_policy(UserName=user_name, PolicyName="encrypt", PolicyDocument=policy)
    got = iam.get_user_policy(UserName=user_name, PolicyName="encrypt")
    assert got["PolicyDocument"] == json.loads(policy)  # boto3 decodes IAM's URL-encoding
    assert iam.list_user_policies(UserName=user_name)["PolicyNames"] == ["encrypt"]
    assert user_kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["KeyId"] == key["Arn"]

    for bad in (
        "{not json",
        document({"Effect": "Allow", "Action": "kms:*", "Resource": "*", "Principal": "*"}),
    ):
        code, _, status = error_of(
            iam.put_user_policy, UserName=user_name, PolicyName="bad", PolicyDocument=bad
        )
        assert (code, status) == ("MalformedPolicyDocument", 400)
    assert iam.list_user_policies(UserName=user_name)["PolicyNames"] == ["encrypt"]
    code, message, _ = error_of(iam.get_user_policy, UserName=user_name, PolicyName="bad")
    assert (code, message) == ("NoSuchEntity", "The user policy with name bad cannot be found.")

    iam.delete_user_policy(UserName=user_name, PolicyName="encrypt")
    code, _, _ = error_of(user_kms.encrypt, KeyId=key["KeyId"], Plaintext=b"x")
    assert code == "AccessDeniedException"


def test_roles_trust_policies_and_role_policies(server, iam, kms):
    user, _ = new_user_with_key(iam, server)
    role_name = name("role")
    role = iam.create_role(
        RoleName=role_name,
        AssumeRolePolicyDocument=trust(ROOT),
        MaxSessionDuration=7200,
        Tags=[{"Key": "tier", "Value": "gold"}],
    )["Role"]
    assert role["Arn"] == f"arn:aws:iam::{ACCOUNT_ID}:role/{role_name}"
    assert role["RoleId"].startswith("AROA") and role["MaxSessionDuration"] == 7200
    assert iam.get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"] == json.loads(
        trust(ROOT)
    )
    assert role_name in [r["RoleName"] for r in iam.list_roles(MaxItems=1000)["Roles"]]
    assert iam.list_role_tags(RoleName=role_name)["Tags"] == [{"Key": "tier", "Value": "gold"}]

    # The user may not assume the role until the trust policy names it (and its own allow).
    sts = server.client(
        "sts", access_key_id=user["AccessKeyId"], secret_access_key=user["SecretAccessKey"]
    )
    code, _, _ = error_of(sts.assume_role, RoleArn=role["Arn"], RoleSessionName="session")
    assert code == "AccessDenied"
    iam.update_assume_role_policy(RoleName=role_name, PolicyDocument=trust(user["Arn"]))
    credentials = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="session")["Credentials"]
    code, _, _ = error_of(
        iam.update_assume_role_policy,
        RoleName=role_name,
        PolicyDocument=document(allow("sts:AssumeRole")),
    )
    assert code == "MalformedPolicyDocument"  # a trust policy names a principal, no Resource

    key = kms.create_key()["KeyMetadata"]
    iam.put_role_policy(
        RoleName=role_name,
        PolicyName="use",
        PolicyDocument=document(allow("kms:Encrypt", key["Arn"])),
    )
    assert iam.list_role_policies(RoleName=role_name)["PolicyNames"] == ["use"]
    assert iam.get_role_policy(RoleName=role_name, PolicyName="use")["PolicyDocument"]["Statement"]
    session_kms = boto3.session.Session().client(
        "kms", endpoint_url=server.endpoint, region_name=REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"], config=CLIENT_CONFIG,
    )  # fmt: skip
    assert session_kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["KeyId"] == key["Arn"]
    # A role session manages IAM as its role's policies allow, named by its session ARN.
    session_iam = iam_client(
        server,
        credentials["AccessKeyId"],
        credentials["SecretAccessKey"],
        credentials["SessionToken"],
    )
    session_arn = f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role_name}/session"
    code, message, _ = error_of(session_iam.get_role, RoleName=role_name)
    assert message == denied(session_arn, "iam:GetRole", role["Arn"])
    iam.put_role_policy(
        RoleName=role_name, PolicyName="read", PolicyDocument=document(allow("iam:GetRole"))
    )
    assert session_iam.get_role(RoleName=role_name)["Role"]["Arn"] == role["Arn"]
    code, message, _ = error_of(session_iam.get_user)
    assert (code, message) == (
        "ValidationError",
        "Must specify userName when calling with non-User credentials",
    )
    iam.delete_role_policy(RoleName=role_name, PolicyName="read")

    code, _, status = error_of(iam.delete_role, RoleName=role_name)
    assert (code, status) == ("DeleteConflict", 409)
    iam.delete_role_policy(RoleName=role_name, PolicyName="use")
    iam.delete_role(RoleName=role_name)
    code, message, _ = error_of(iam.get_role, RoleName=role_name)
    assert (code, message) == ("NoSuchEntity", f"The role with name {role_name} cannot be found.")


def test_a_user_manages_only_what_its_policies_allow(server, iam):
    admin, admin_iam = new_user_with_key(iam, server)
    target = name("target")
    code, message, status = error_of(admin_iam.create_user, UserName=target)
    resource = f"arn:aws:iam::{ACCOUNT_ID}:user/{target}"
    assert (code, message, status) == (
        "AccessDenied",
        denied(admin["Arn"], "iam:CreateUser", resource),
        403,
    )
    code, message, _ = error_of(admin_iam.list_users)
    assert message == denied(admin["Arn"], "iam:ListUsers", "*")

    iam.put_user_policy(
        UserName=admin["UserName"],
        PolicyName="admin",
        PolicyDocument=document(
            allow(
                ["iam:CreateUser", "iam:GetUser", "iam:DeleteUser"],
                f"arn:aws:iam::{ACCOUNT_ID}:user/target-*",
            ),
            allow("iam:ListUsers"),
        ),
    )
    admin_iam.create_user(UserName=target)
    assert target in [u["UserName"] for u in admin_iam.list_users(MaxItems=1000)["Users"]]
    # Only the users the policy's resource names.
    outside = name("outside")
    code, _, _ = error_of(admin_iam.create_user, UserName=outside)
    assert code == "AccessDenied"
    code, _, _ = error_of(admin_iam.create_access_key, UserName=target)
    assert code == "AccessDenied"

    # An explicit Deny wins over the Allow.
    iam.put_user_policy(
        UserName=admin["UserName"],
        PolicyName="deny",
        PolicyDocument=document(allow("iam:DeleteUser", "*", effect="Deny")),
    )
    code, message, _ = error_of(admin_iam.delete_user, UserName=target)
    assert message == (
        f"User: {admin['Arn']} is not authorized to perform: iam:DeleteUser on resource: "
        f"arn:aws:iam::{ACCOUNT_ID}:user/{target} with an explicit deny in an identity-based policy"
    )
    assert admin_iam.get_user(UserName=target)["User"]["UserName"] == target
    # Its own user is a resource like any other: no policy, no access key of its own.
    code, _, _ = error_of(admin_iam.list_access_keys)
    assert code == "AccessDenied"


def test_nobody_crosses_accounts(server, iam, fresh):
    account, _ = fresh
    # Unvalidated: the shared server's root access key id is shorter than IAM's 16 characters.
    other_iam = iam_client(
        server, account["AccessKeyId"], account["SecretAccessKey"], validate=False
    )
    mine = iam.create_user(UserName=name("mine"))["User"]
    # The other account's root sees its own (empty) account, never this one's users.
    assert other_iam.list_users()["Users"] == []
    code, _, _ = error_of(other_iam.get_user, UserName=mine["UserName"])
    assert code == "NoSuchEntity"
    theirs = other_iam.create_user(UserName=mine["UserName"])["User"]
    assert theirs["Arn"] == f"arn:aws:iam::{account['AccountId']}:user/{mine['UserName']}"
    assert iam.get_user(UserName=mine["UserName"])["User"]["UserId"] == mine["UserId"]
    key = iam.create_access_key(UserName=mine["UserName"])["AccessKey"]
    for call in (other_iam.delete_access_key, other_iam.update_access_key):
        extra = {"Status": "Inactive"} if call == other_iam.update_access_key else {}
        code, _, _ = error_of(call, AccessKeyId=key["AccessKeyId"], **extra)
        assert code == "NoSuchEntity"
    listed = iam.list_access_keys(UserName=mine["UserName"])["AccessKeyMetadata"]
    assert [(k["AccessKeyId"], k["Status"]) for k in listed] == [(key["AccessKeyId"], "Active")]


def test_session_credentials_without_mfa_cannot_call_iam(server, iam):
    user, _ = new_user_with_key(iam, server)
    iam.put_user_policy(
        UserName=user["UserName"], PolicyName="all", PolicyDocument=document(allow("iam:*"))
    )
    sts = server.client(
        "sts", access_key_id=user["AccessKeyId"], secret_access_key=user["SecretAccessKey"]
    )
    credentials = sts.get_session_token()["Credentials"]
    session_iam = iam_client(
        server,
        credentials["AccessKeyId"],
        credentials["SecretAccessKey"],
        credentials["SessionToken"],
    )
    code, message, status = error_of(session_iam.list_users)
    assert (code, status) == ("AccessDenied", 403) and "need MFA" in message


def test_bad_input_gets_iam_s_errors_and_changes_nothing(server):
    iam = iam_client(server, "FOOBARKEY", "FOOBARSECRET", validate=False)
    before = iam.get_paginator("list_users").paginate().build_full_result()["Users"]
    cases = [
        (dict(UserName="bad name"), "ValidationError",
         "1 validation error detected: Value 'bad name' at 'userName' failed to satisfy "
         "constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+"),
        (dict(UserName="x" * 65), "ValidationError", None),
        (dict(UserName=name("p"), Path="/team/"), "ValidationError",
         "Only the path / is supported (Path)."),
        (dict(UserName=name("t"), Tags=[{"Key": "aws:x", "Value": "v"}]), "InvalidInput", None),
        (dict(UserName=name("t"), Tags=[{"Key": "k", "Value": "1"}, {"Key": "K", "Value": "2"}]),
         "InvalidInput", None),
        (dict(UserName=name("t"), Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(51)]),
         "ValidationError", None),
    ]  # fmt: skip
    for params, code, message in cases:
        got_code, got_message, status = error_of(iam.create_user, **params)
        assert (got_code, status) == (code, 400), (params, got_message)
        if message is not None:
            assert got_message == message
    code, _, _ = error_of(iam.create_role, RoleName=name("r"), AssumeRolePolicyDocument="{")
    assert code == "MalformedPolicyDocument"
    code, _, _ = error_of(
        iam.create_role,
        RoleName=name("r"),
        AssumeRolePolicyDocument=trust(ROOT),
        MaxSessionDuration=100,
    )
    assert code == "ValidationError"
    code, _, _ = error_of(iam.list_users, MaxItems=0)
    assert code == "ValidationError"
    after = iam.get_paginator("list_users").paginate().build_full_result()["Users"]
    assert [u["UserName"] for u in after] == [u["UserName"] for u in before]


def test_an_unknown_action_or_version_is_invalid_action(server):
    import requests  # noqa: PLC0415 - only this test sends raw requests
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    for body, expected in (
        (
            "Action=CreateAccount&Version=2010-05-08",
            "Could not find operation CreateAccount for version 2010-05-08",
        ),
        (
            "Action=ListUsers&Version=2011-06-15",
            "Could not find operation ListUsers for version 2011-06-15",
        ),
    ):
        request = AWSRequest(
            "POST", server.endpoint + "/", data=body,
            headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        )  # fmt: skip
        SigV4Auth(Credentials("FOOBARKEY", "FOOBARSECRET"), "iam", "us-east-1").add_auth(request)
        answer = requests.post(request.url, data=body, headers=dict(request.headers), timeout=10)
        assert answer.status_code == 400
        assert "<Code>InvalidAction</Code>" in answer.text and expected in answer.text


def test_the_aws_cli_manages_users(server):
    user_name = name("cli")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_ACCESS_KEY_ID": "FOOBARKEY",
        "AWS_SECRET_ACCESS_KEY": "FOOBARSECRET",
    }

    def aws(*args: str) -> dict[str, Any]:
        result = subprocess.run(
            [_aws_executable(), "--endpoint-url", server.endpoint, "--output", "json",
             "iam", *args],
            capture_output=True, text=True, env=env, timeout=60,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout) if result.stdout.strip() else {}

    made = aws("create-user", "--user-name", user_name)["User"]
    assert made["Arn"] == f"arn:aws:iam::{ACCOUNT_ID}:user/{user_name}"
    key = aws("create-access-key", "--user-name", user_name)["AccessKey"]
    aws("put-user-policy", "--user-name", user_name, "--policy-name", "p",
        "--policy-document", document(allow("kms:ListKeys")))  # fmt: skip
    assert aws("get-user-policy", "--user-name", user_name, "--policy-name", "p")["PolicyDocument"]
    user_kms = client(
        server, {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}
    )
    assert "Keys" in user_kms.list_keys()
    # The secret was shown once, to the caller, and never written to the server's log.
    assert key["SecretAccessKey"] not in server.log()
