"""IAM roles and STS sessions end to end: roles, principal tags and MFA devices made with
``openkms admin``; AssumeRole and GetSessionToken through boto3 and the AWS CLI; the
temporary credentials used against KMS with key policies that name the role, read session
tags and MFA condition keys, as AWS decides them."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import pyotp
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.e2e.kms_management import client, new_key
from tests.e2e.test_awscli import _aws_executable
from tests.support import ACCOUNT_ID, CLIENT_CONFIG, REGION, OpenKmsServer, time_travel

ROOT = f"arn:aws:iam::{ACCOUNT_ID}:root"
INVALID_TOKEN = "The security token included in the request is invalid."
EXPIRED_TOKEN = "The security token included in the request is expired"
INVALID_CODE = "MultiFactorAuthentication failed with invalid MFA one time pass code."


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def trust(principal: Any, actions: Any = "sts:AssumeRole", **extra: Any) -> str:
    return document(
        {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": actions, **extra}
    )


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create_role(server: OpenKmsServer, trust_policy: str, *extra: str) -> dict[str, Any]:
    output = server.admin(
        "create-role", "--account-id", ACCOUNT_ID, "--role-name", name("role"),
        "--assume-role-policy-document", trust_policy, *extra,
    )  # fmt: skip
    return json.loads(output)


def admin_refuses(server: OpenKmsServer, *args: str) -> str:
    """``openkms admin <args>`` fails; its error output."""
    command = [sys.executable, "-m", "openkms", "admin", *args, "--data-dir", str(server.data_dir)]
    command += server._storage_args()
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode != 0, result.stdout
    return result.stderr


def sts_for(server: OpenKmsServer, account: dict[str, str], validate: bool = True) -> Any:
    config = CLIENT_CONFIG if validate else CLIENT_CONFIG.merge(Config(parameter_validation=False))
    return boto3.session.Session().client(
        "sts",
        endpoint_url=server.endpoint,
        region_name=REGION,
        aws_access_key_id=account["AccessKeyId"],
        aws_secret_access_key=account["SecretAccessKey"],
        config=config,
    )


def session_client(server: OpenKmsServer, credentials: dict[str, Any], service: str = "kms") -> Any:
    """A client signing with temporary credentials, as a boto3 role session does."""
    session = boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=REGION,
    )
    return session.client(service, endpoint_url=server.endpoint, config=CLIENT_CONFIG)


def error_of(call: Any, **params: Any) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as info:
        call(**params)
    response = info.value.response
    return (
        response["Error"]["Code"],
        response["Error"].get("Message", ""),
        response["ResponseMetadata"]["HTTPStatusCode"],
    )


def not_authorized(caller: str, action: str, resource: str) -> str:
    return f"User: {caller} is not authorized to perform: {action} on resource: {resource}"


def key_with_policy(kms: Any, *statements: dict[str, Any]) -> dict[str, Any]:
    admin = {"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"}
    return kms.create_key(Policy=document(admin, *statements))["KeyMetadata"]


def allow(principal: str, action: Any = "kms:Encrypt", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": action, "Resource": "*",
            **extra}  # fmt: skip


@pytest.fixture
def user(server: OpenKmsServer) -> dict[str, str]:
    return server.create_user(ACCOUNT_ID, name("user"))


def assume(
    server: OpenKmsServer, user: dict[str, str], role: dict[str, Any], **params: Any
) -> dict:
    return sts_for(server, user).assume_role(
        RoleArn=role["Arn"], RoleSessionName=params.pop("RoleSessionName", "sess"), **params
    )


def test_a_role_session_encrypts_with_a_key_policy_naming_the_role(server, kms, user):
    role = create_role(server, trust(user["Arn"]))
    assert role["Arn"] == f"arn:aws:iam::{ACCOUNT_ID}:role/{role['RoleName']}"
    assert role["RoleId"].startswith("AROA") and len(role["RoleId"]) == 21
    key = key_with_policy(kms, allow(role["Arn"], ["kms:Encrypt", "kms:Decrypt"]))
    answer = assume(server, user, role, RoleSessionName="alice")
    credentials = answer["Credentials"]
    session_arn = f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role['RoleName']}/alice"
    assert answer["AssumedRoleUser"] == {
        "Arn": session_arn, "AssumedRoleId": f"{role['RoleId']}:alice",
    }  # fmt: skip
    assert credentials["AccessKeyId"].startswith("ASIA") and len(credentials["AccessKeyId"]) == 20
    left = credentials["Expiration"] - dt.datetime.now(dt.UTC)
    assert 3500 < left.total_seconds() <= 3600
    session_kms = session_client(server, credentials)
    ciphertext = session_kms.encrypt(KeyId=key["KeyId"], Plaintext=b"hi")["CiphertextBlob"]
    assert session_kms.decrypt(CiphertextBlob=ciphertext)["Plaintext"] == b"hi"
    identity = session_client(server, credentials, "sts").get_caller_identity()
    assert (identity["Arn"], identity["UserId"], identity["Account"]) == (
        session_arn, f"{role['RoleId']}:alice", ACCOUNT_ID,
    )  # fmt: skip
    # AWS names the session in a refusal; the key policy's account statement delegates to
    # the role's policies, which allow nothing.
    code, message, _ = error_of(session_kms.describe_key, KeyId=key["KeyId"])
    assert (code, message) == (
        "AccessDeniedException",
        not_authorized(session_arn, "kms:DescribeKey", key["Arn"])
        + " because no identity-based policy allows the kms:DescribeKey action",
    )


def test_a_role_s_own_policies_follow_changes_and_outlive_nothing(server, kms, user):
    role = create_role(server, trust(user["Arn"]))
    key = new_key(kms)  # the default policy: the account's IAM policies decide
    server.admin(
        "put-role-policy", "--account-id", ACCOUNT_ID, "--role-name", role["RoleName"],
        "--policy-name", "use", "--policy-document",
        document({"Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*"}),
    )  # fmt: skip
    credentials = assume(server, user, role)["Credentials"]
    session_kms = session_client(server, credentials)
    session_kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    admin_refuses(
        server, "delete-role", "--account-id", ACCOUNT_ID, "--role-name", role["RoleName"]
    )
    server.admin(
        "delete-role-policy", "--account-id", ACCOUNT_ID, "--role-name", role["RoleName"],
        "--policy-name", "use",
    )  # fmt: skip
    server.admin("delete-role", "--account-id", ACCOUNT_ID, "--role-name", role["RoleName"])
    # The session stays valid (AWS), with none of the role's policies left.
    code, _, _ = error_of(session_kms.encrypt, KeyId=key["KeyId"], Plaintext=b"x")
    assert code == "AccessDeniedException"
    assert session_client(server, credentials, "sts").get_caller_identity()["Account"] == ACCOUNT_ID
    # And the role is gone for AssumeRole, refused as one that does not trust the caller.
    code, message, status = error_of(
        sts_for(server, user).assume_role, RoleArn=role["Arn"], RoleSessionName="again"
    )
    assert (code, message, status) == (
        "AccessDenied", not_authorized(user["Arn"], "sts:AssumeRole", role["Arn"]), 403,
    )  # fmt: skip


def test_the_trust_policy_decides_who_may_assume_the_role(server, user):
    other = server.create_user(ACCOUNT_ID, name("other"))
    role = create_role(server, trust(other["Arn"]))
    refusal = ("AccessDenied", not_authorized(user["Arn"], "sts:AssumeRole", role["Arn"]), 403)
    sts = sts_for(server, user)
    assert error_of(sts.assume_role, RoleArn=role["Arn"], RoleSessionName="s1") == refusal
    missing = f"arn:aws:iam::{ACCOUNT_ID}:role/{name('missing')}"
    assert error_of(sts.assume_role, RoleArn=missing, RoleSessionName="s1") == (
        "AccessDenied", not_authorized(user["Arn"], "sts:AssumeRole", missing), 403,
    )  # fmt: skip
    # A trust policy naming the account delegates to the caller's own policies.
    delegated = create_role(server, trust(ROOT))
    refusal = ("AccessDenied", not_authorized(user["Arn"], "sts:AssumeRole", delegated["Arn"]), 403)
    assert error_of(sts.assume_role, RoleArn=delegated["Arn"], RoleSessionName="s1") == refusal
    server.put_user_policy(
        user, "assume",
        document({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": delegated["Arn"]}),
    )  # fmt: skip
    assert sts.assume_role(RoleArn=delegated["Arn"], RoleSessionName="s1")["Credentials"]
    # An explicit Deny in the trust policy wins.
    denying = create_role(
        server,
        document(
            {"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "sts:AssumeRole"},
            {"Effect": "Deny", "Principal": {"AWS": user["Arn"]}, "Action": "sts:AssumeRole"},
        ),
    )
    server.put_user_policy(
        user, "assume", document({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"})
    )
    code, _, _ = error_of(sts.assume_role, RoleArn=denying["Arn"], RoleSessionName="s1")
    assert code == "AccessDenied"
    # AWS: "Roles may not be assumed by root accounts."
    root_sts = server.client("sts")
    assert error_of(root_sts.assume_role, RoleArn=delegated["Arn"], RoleSessionName="s1") == (
        "AccessDenied", "Roles may not be assumed by root accounts.", 403,
    )  # fmt: skip


def test_duration_seconds_bounds(server, user):
    role = create_role(server, trust(user["Arn"]))
    sts = sts_for(server, user, validate=False)
    cases = {
        899: "1 validation error detected: Value '899' at 'durationSeconds' failed to satisfy "
        "constraint: Member must have value greater than or equal to 900",
        43201: "1 validation error detected: Value '43201' at 'durationSeconds' failed to "
        "satisfy constraint: Member must have value less than or equal to 43200",
        3601: "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
    }
    for duration, message in cases.items():
        assert error_of(
            sts.assume_role, RoleArn=role["Arn"], RoleSessionName="s1", DurationSeconds=duration
        ) == ("ValidationError", message, 400), duration
    longer = create_role(server, trust(user["Arn"]), "--max-session-duration", "7200")
    answer = assume(server, user, longer, DurationSeconds=7200)
    left = answer["Credentials"]["Expiration"] - dt.datetime.now(dt.UTC)
    assert 7100 < left.total_seconds() <= 7200
    code, message, _ = error_of(sts.get_session_token, DurationSeconds=129601)
    assert (code, message) == (
        "ValidationError",
        "1 validation error detected: Value '129601' at 'durationSeconds' failed to satisfy "
        "constraint: Member must have value less than or equal to 129600",
    )
    # A root user's session lasts one hour at most (AWS shortens, not refuses).
    root = server.client("sts").get_session_token(DurationSeconds=7200)["Credentials"]
    assert (root["Expiration"] - dt.datetime.now(dt.UTC)).total_seconds() <= 3600


def test_an_expired_session_is_refused_by_kms_and_sts(server, kms, user):
    role = create_role(server, trust(user["Arn"]))
    key = key_with_policy(kms, allow(role["Arn"]))
    credentials = assume(server, user, role, DurationSeconds=900)["Credentials"]
    session_kms = session_client(server, credentials)
    session_sts = session_client(server, credentials, "sts")
    session_kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    with time_travel(901, server):
        assert error_of(session_kms.encrypt, KeyId=key["KeyId"], Plaintext=b"x") == (
            "ExpiredTokenException", EXPIRED_TOKEN, 400,
        )  # fmt: skip
        assert error_of(session_sts.get_caller_identity) == ("ExpiredToken", EXPIRED_TOKEN, 403)


def test_a_tampered_or_borrowed_session_token_is_invalid(server, kms, user):
    role = create_role(server, trust(user["Arn"]))
    key = key_with_policy(kms, allow(role["Arn"]))
    first = assume(server, user, role)["Credentials"]
    second = assume(server, user, role, RoleSessionName="other")["Credentials"]
    raw = bytearray(base64.b64decode(first["SessionToken"]))
    raw[len(raw) // 2] ^= 1
    forgeries = [
        {**first, "SessionToken": base64.b64encode(bytes(raw)).decode()},
        {**first, "SessionToken": "not-a-token"},
        # A genuine token with another session's access key id and secret.
        {**second, "SessionToken": first["SessionToken"]},
    ]
    for forged in forgeries:
        assert error_of(
            session_client(server, forged).encrypt, KeyId=key["KeyId"], Plaintext=b"x"
        ) == ("UnrecognizedClientException", INVALID_TOKEN, 400)
        assert error_of(session_client(server, forged, "sts").get_caller_identity) == (
            "InvalidClientTokenId", INVALID_TOKEN, 403,
        )  # fmt: skip
    # The wrong secret with a genuine token: the signature does not match.
    wrong_secret = {**first, "SecretAccessKey": second["SecretAccessKey"]}
    code, _, _ = error_of(session_client(server, wrong_secret).encrypt, KeyId=key["KeyId"],
                          Plaintext=b"x")  # fmt: skip
    assert code == "InvalidSignatureException"


def test_session_tags_are_principal_tags_over_the_role_s(server, kms, user):
    role = create_role(server, trust(user["Arn"], ["sts:AssumeRole", "sts:TagSession"]))
    server.admin(
        "tag-role", "--account-id", ACCOUNT_ID, "--role-name", role["RoleName"],
        "--tag", "team=red", "--tag", "site=x",
    )  # fmt: skip
    key = key_with_policy(
        kms,
        allow(role["Arn"], Condition={"StringEquals": {"aws:PrincipalTag/team": "blue"}}),
    )

    def encrypts(credentials: dict[str, Any]) -> bool:
        try:
            session_client(server, credentials).encrypt(KeyId=key["KeyId"], Plaintext=b"x")
        except ClientError as error:
            assert error.response["Error"]["Code"] == "AccessDeniedException"
            return False
        return True

    assert not encrypts(assume(server, user, role)["Credentials"])  # the role's team=red
    blue = assume(server, user, role, Tags=[{"Key": "Team", "Value": "blue"}])
    assert blue["PackedPolicySize"] >= 1
    assert encrypts(blue["Credentials"])
    red = assume(server, user, role, Tags=[{"Key": "team", "Value": "green"}])
    assert not encrypts(red["Credentials"])
    # Tagging a session needs sts:TagSession in the trust policy.
    untaggable = create_role(server, trust(user["Arn"]))
    code, message, _ = error_of(
        sts_for(server, user).assume_role, RoleArn=untaggable["Arn"], RoleSessionName="s1",
        Tags=[{"Key": "team", "Value": "blue"}],
    )  # fmt: skip
    assert (code, message) == (
        "AccessDenied", not_authorized(user["Arn"], "sts:TagSession", untaggable["Arn"]),
    )  # fmt: skip
    code, message, _ = error_of(
        sts_for(server, user).assume_role, RoleArn=role["Arn"], RoleSessionName="s1",
        Tags=[{"Key": "a", "Value": "1"}, {"Key": "A", "Value": "2"}],
    )  # fmt: skip
    assert (code, message) == (
        "ValidationError",
        "Duplicate tag keys found. Please note that Tag keys are case insensitive.",
    )


def test_principal_tags_of_a_user_flip_a_decision(server, kms, user):
    key = key_with_policy(
        kms, allow(user["Arn"], Condition={"StringEquals": {"aws:PrincipalTag/dept": "ops"}})
    )
    user_kms = client(server, user)

    def encrypts() -> bool:
        try:
            user_kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
        except ClientError as error:
            assert error.response["Error"]["Code"] == "AccessDeniedException"
            return False
        return True

    assert not encrypts()
    tagging = ("--account-id", ACCOUNT_ID, "--user-name", user["UserName"])
    server.admin("tag-user", *tagging, "--tag", "dept=ops")
    assert encrypts()
    server.admin("untag-user", *tagging, "--tag-key", "DEPT")
    assert not encrypts()


def code_at(seed: str, step: int) -> str:
    return pyotp.TOTP(seed).generate_otp(step)


def enabled_device(server: OpenKmsServer, user: dict[str, str]) -> tuple[str, str]:
    """A virtual MFA device of ``user``, enabled with the codes of the two steps before now."""
    made = json.loads(
        server.admin(
            "create-virtual-mfa-device",
            "--account-id",
            ACCOUNT_ID,
            "--user-name",
            user["UserName"],
            "--device-name",
            name("phone"),
        )  # fmt: skip
    )
    serial, seed = made["SerialNumber"], made["Base32StringSeed"]
    assert serial == f"arn:aws:iam::{ACCOUNT_ID}:mfa/{serial.rsplit('/', 1)[1]}"
    step = int(time.time()) // 30
    server.admin(
        "enable-mfa-device", "--serial-number", serial,
        "--code1", code_at(seed, step - 2), "--code2", code_at(seed, step - 1),
    )  # fmt: skip
    return serial, seed


def test_get_session_token_with_mfa_satisfies_mfa_conditions(server, kms, user):
    serial, seed = enabled_device(server, user)
    present = key_with_policy(
        kms, allow(user["Arn"], Condition={"Bool": {"aws:MultiFactorAuthPresent": "true"}})
    )
    recent = key_with_policy(
        kms, allow(user["Arn"], Condition={"NumericLessThan": {"aws:MultiFactorAuthAge": "300"}})
    )
    sts = sts_for(server, user)
    code = code_at(seed, int(time.time()) // 30)
    with_mfa = sts.get_session_token(SerialNumber=serial, TokenCode=code)["Credentials"]
    left = with_mfa["Expiration"] - dt.datetime.now(dt.UTC)
    assert 43100 < left.total_seconds() <= 43200
    mfa_kms = session_client(server, with_mfa)
    for key in (present, recent):
        mfa_kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    # The same code is not accepted twice.
    assert error_of(sts.get_session_token, SerialNumber=serial, TokenCode=code) == (
        "AccessDenied", INVALID_CODE, 403,
    )  # fmt: skip
    # Without MFA: false for a session, absent for long-term credentials; both refused.
    plain_kms = session_client(server, sts.get_session_token()["Credentials"])
    for caller in (plain_kms, client(server, user)):
        for key in (present, recent):
            code_, _, _ = error_of(caller.encrypt, KeyId=key["KeyId"], Plaintext=b"x")
            assert code_ == "AccessDeniedException"
    # Ten minutes on, the MFA is too old for the second key, still present for the first.
    with time_travel(600, server):
        mfa_kms.encrypt(KeyId=present["KeyId"], Plaintext=b"x")
        code_, _, _ = error_of(mfa_kms.encrypt, KeyId=recent["KeyId"], Plaintext=b"x")
        assert code_ == "AccessDeniedException"


def test_a_wrong_code_or_someone_else_s_device_is_refused(server, user):
    serial, seed = enabled_device(server, user)
    good = code_at(seed, int(time.time()) // 30)
    wrong = f"{(int(good) + 1) % 1_000_000:06d}"
    sts = sts_for(server, user)
    assert error_of(sts.get_session_token, SerialNumber=serial, TokenCode=wrong) == (
        "AccessDenied", INVALID_CODE, 403,
    )  # fmt: skip
    other = server.create_user(ACCOUNT_ID, name("other"))
    code, message, status = error_of(
        sts_for(server, other).get_session_token, SerialNumber=serial, TokenCode=good
    )
    assert (code, status) == ("AccessDenied", 403)
    assert message.startswith("MultiFactorAuthentication failed, unable to validate MFA code.")
    # The session credentials cannot make sessions themselves.
    session = session_client(server, sts.get_session_token()["Credentials"], "sts")
    assert error_of(session.get_session_token)[0] == "AccessDenied"


def test_a_trust_policy_may_require_mfa(server, user):
    serial, seed = enabled_device(server, user)
    role = create_role(
        server,
        trust(user["Arn"], Condition={"Bool": {"aws:MultiFactorAuthPresent": "true"}}),
    )
    sts = sts_for(server, user)
    assert error_of(sts.assume_role, RoleArn=role["Arn"], RoleSessionName="s1")[0] == "AccessDenied"
    code = code_at(seed, int(time.time()) // 30)
    answer = sts.assume_role(
        RoleArn=role["Arn"], RoleSessionName="s1", SerialNumber=serial, TokenCode=code
    )
    assert answer["Credentials"]["AccessKeyId"].startswith("ASIA")


def test_aws_cli_assume_role(server, kms, user):
    role = create_role(server, trust(user["Arn"]))
    key = key_with_policy(kms, allow(role["Arn"]))

    def aws(credentials: dict[str, str], *args: str) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_MAX_ATTEMPTS": "1",
            **credentials,
        }
        result = subprocess.run(
            [_aws_executable(), "--endpoint-url", server.endpoint, "--output", "json", *args],
            capture_output=True, text=True, env=env, timeout=60,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    long_term = {
        "AWS_ACCESS_KEY_ID": user["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": user["SecretAccessKey"],
    }
    answer = aws(
        long_term, "sts", "assume-role", "--role-arn", role["Arn"],
        "--role-session-name", "cli", "--duration-seconds", "900",
    )  # fmt: skip
    credentials = answer["Credentials"]
    session = {
        "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
        "AWS_SESSION_TOKEN": credentials["SessionToken"],
    }
    identity = aws(session, "sts", "get-caller-identity")
    assert identity["Arn"] == answer["AssumedRoleUser"]["Arn"]
    encrypted = aws(session, "kms", "encrypt", "--key-id", key["KeyId"], "--plaintext", "aGk=")
    assert encrypted["KeyId"] == key["Arn"]


def test_admin_commands_refuse_bad_input_and_change_nothing(server, user):
    good_trust = trust(user["Arn"])
    role_name = name("role")
    base = ("create-role", "--account-id", ACCOUNT_ID, "--role-name", role_name)
    cases = [
        (("create-role", "--account-id", "999999999999", "--role-name", "r",
          "--assume-role-policy-document", good_trust), "account 999999999999 does not exist"),
        (("create-role", "--account-id", ACCOUNT_ID, "--role-name", "bad/name",
          "--assume-role-policy-document", good_trust), "a role name is 1 to 64"),
        ((*base, "--assume-role-policy-document", "{not json"), "the trust policy is malformed"),
        ((*base, "--assume-role-policy-document",
          document({"Effect": "Allow", "Action": "sts:AssumeRole"})),
         "Policy contains a statement with no principal."),
        ((*base, "--assume-role-policy-document",
          trust(user["Arn"], Resource="*")), "Has prohibited field Resource"),
        ((*base, "--assume-role-policy-document", good_trust, "--max-session-duration", "100"),
         "3600 to 43200"),
        ((*base, "--assume-role-policy-document", "file:///nonexistent/trust.json"),
         "cannot read /nonexistent/trust.json"),
        (("tag-user", "--account-id", ACCOUNT_ID, "--user-name", user["UserName"],
          "--tag", f"{'k' * 129}=v"), "a tag key is 1 to 128 characters"),
        (("tag-user", "--account-id", ACCOUNT_ID, "--user-name", user["UserName"],
          "--tag", "aws:x=v"), "reserved"),
        (("tag-role", "--account-id", ACCOUNT_ID, "--role-name", role_name,
          "--tag", "a=b"), f"role {role_name} does not exist"),
        (("delete-user", "--account-id", ACCOUNT_ID, "--user-name", user["UserName"]),
         "Cannot delete entity, must delete access keys first."),
        (("create-virtual-mfa-device", "--account-id", ACCOUNT_ID, "--user-name", "nobody",
          "--device-name", "d"), "user nobody does not exist"),
        (("enable-mfa-device", "--serial-number", f"arn:aws:iam::{ACCOUNT_ID}:mfa/none",
          "--code1", "123456", "--code2", "654321"), "does not exist"),
    ]  # fmt: skip
    for args, message in cases:
        assert message in admin_refuses(server, *args), args
    # None of it made a role.
    good = server.admin(*base, "--assume-role-policy-document", good_trust)
    assert json.loads(good)["RoleName"] == role_name
    many = [f"--tag=k{i}=v" for i in range(51)]
    tagging = ("tag-user", "--account-id", ACCOUNT_ID, "--user-name", user["UserName"])
    assert "at most 50 tags" in admin_refuses(server, *tagging, *many)


def test_delete_user_once_its_keys_are_gone(server, user):
    keys = json.loads(
        server.admin(
            "list-access-keys", "--account-id", ACCOUNT_ID, "--user-name", user["UserName"]
        )
    )["AccessKeyMetadata"]
    for key in keys:
        server.admin("delete-access-key", "--account-id", ACCOUNT_ID,
                     "--access-key-id", key["AccessKeyId"])  # fmt: skip
    server.admin("tag-user", "--account-id", ACCOUNT_ID, "--user-name", user["UserName"],
                 "--tag", "a=b")  # fmt: skip
    server.admin("delete-user", "--account-id", ACCOUNT_ID, "--user-name", user["UserName"])
    assert "does not exist" in admin_refuses(
        server, "delete-user", "--account-id", ACCOUNT_ID, "--user-name", user["UserName"]
    )


def test_no_mfa_seed_session_secret_or_token_is_in_the_database_or_log(own_server):
    from tests.e2e.test_secrets_at_rest import _database_bytes, _forms

    own_server.start()
    user = own_server.create_user(ACCOUNT_ID, name("user"))
    serial, seed = enabled_device(own_server, user)
    role = create_role(own_server, trust(user["Arn"]))
    code = code_at(seed, int(time.time()) // 30)
    sts = sts_for(own_server, user)
    session = sts.get_session_token(SerialNumber=serial, TokenCode=code)["Credentials"]
    assumed = assume(own_server, user, role)["Credentials"]
    session_client(own_server, assumed, "sts").get_caller_identity()
    own_server.stop()
    stored = _database_bytes(own_server)
    log = Path(own_server.log_path).read_bytes()
    assert serial.encode() in stored  # the scan reads the devices' table
    secrets = [
        seed.encode(),
        base64.b32decode(seed),
        *(
            c[member].encode()
            for c in (session, assumed)
            for member in ("SecretAccessKey", "SessionToken")
        ),
    ]
    for secret in secrets:
        for form in _forms(secret):
            assert form not in stored
            assert form not in log
