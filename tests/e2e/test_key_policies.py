"""Key policies, enforced: GetKeyPolicy, PutKeyPolicy, ListKeyPolicies, and every request on a
key decided by its policy, through boto3 against a running server."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.kms_management import client, denied, fails, new_key, not_found
from tests.support import ACCOUNT_ID

ROOT = f"arn:aws:iam::{ACCOUNT_ID}:root"
LOCKOUT = "The new key policy will not allow you to update the key policy in the future."
ADMIN = ["kms:PutKeyPolicy", "kms:GetKeyPolicy", "kms:DescribeKey", "kms:ScheduleKeyDeletion"]


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(actions: Any, principal: str = ROOT, **extra: Any) -> dict[str, Any]:
    return {
        "Effect": "Allow",
        "Principal": {"AWS": principal},
        "Action": actions,
        "Resource": "*",
        **extra,
    }


def deny(actions: Any, principal: str = ROOT, **extra: Any) -> dict[str, Any]:
    return {
        "Effect": "Deny",
        "Principal": {"AWS": principal},
        "Action": actions,
        "Resource": "*",
        **extra,
    }


def explicit_deny(account: str, action: str, resource: str) -> str:
    return (
        f"User: arn:aws:iam::{account}:root is not authorized to perform: {action} on "
        f"resource: {resource} with an explicit deny in a resource-based policy"
    )


@pytest.fixture
def key(kms) -> dict[str, Any]:
    return new_key(kms, Description="key policy tests")


def test_a_new_key_has_aws_default_policy_under_the_name_default(kms, key):
    got = kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")
    assert got["PolicyName"] == "default"
    document = json.loads(got["Policy"])
    assert document["Statement"] == [
        {
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": ROOT},
            "Action": "kms:*",
            "Resource": "*",
        }
    ]
    assert kms.get_key_policy(KeyId=key["KeyId"])["Policy"] == got["Policy"]
    listed = kms.list_key_policies(KeyId=key["KeyId"])
    assert (listed["PolicyNames"], listed["Truncated"]) == (["default"], False)
    for call in (kms.get_key_policy, kms.put_key_policy):
        params = {"Policy": got["Policy"]} if call == kms.put_key_policy else {}
        fails(
            call,
            "NotFoundException",
            "No such policy exists: other. A key's only policy is default.",
            KeyId=key["KeyId"],
            PolicyName="other",
            **params,
        )


def test_put_key_policy_replaces_the_policy_and_it_is_enforced_at_once(kms, key):
    text = policy(allow(ADMIN + ["kms:Decrypt"]), allow("kms:Encrypt"), deny("kms:Encrypt"))
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"before")["CiphertextBlob"]
    kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=text)
    assert kms.get_key_policy(KeyId=key["KeyId"])["Policy"] == text
    # The Deny wins over the Allow of the same action.
    fails(
        kms.encrypt,
        "AccessDeniedException",
        explicit_deny(ACCOUNT_ID, "kms:Encrypt", key["Arn"]),
        KeyId=key["KeyId"],
        Plaintext=b"x",
    )
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"before"
    # Not named at all: refused, and no key state is revealed (authorisation comes first).
    fails(
        kms.generate_data_key,
        "AccessDeniedException",
        denied(ACCOUNT_ID, "kms:GenerateDataKey", key["Arn"]),
        KeyId=key["KeyId"],
        NumberOfBytes=32,
    )
    fails(
        kms.disable_key,
        "AccessDeniedException",
        denied(ACCOUNT_ID, "kms:DisableKey", key["Arn"]),
        KeyId=key["KeyId"],
    )
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"


def test_dry_run_answers_whether_the_policy_allows(kms, key):
    kms.put_key_policy(KeyId=key["KeyId"], Policy=policy(allow(ADMIN + ["kms:Decrypt"])))
    fails(
        kms.encrypt,
        "AccessDeniedException",
        denied(ACCOUNT_ID, "kms:Encrypt", key["Arn"]),
        KeyId=key["KeyId"],
        Plaintext=b"x",
        DryRun=True,
    )


def test_conditions_on_the_encryption_context_decide(kms, key):
    text = policy(
        allow(ADMIN + ["kms:Decrypt"]),
        allow(
            ["kms:Encrypt", "kms:GenerateDataKey"],
            Condition={"StringEquals": {"kms:EncryptionContext:Department": "finance"}},
        ),
    )
    kms.put_key_policy(KeyId=key["KeyId"], Policy=text)
    kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext={"Department": "finance"})
    # The condition key's name part is case-insensitive; the value is compared exactly.
    kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext={"department": "finance"})
    for context in ({"Department": "Finance"}, {"Team": "finance"}, {}):
        fails(
            kms.encrypt,
            "AccessDeniedException",
            denied(ACCOUNT_ID, "kms:Encrypt", key["Arn"]),
            KeyId=key["KeyId"],
            Plaintext=b"x",
            EncryptionContext=context,
        )


def test_conditions_on_the_key_the_request_and_the_caller(kms, key):
    kms.create_alias(AliasName=f"alias/policy-{key['KeyId']}", TargetKeyId=key["KeyId"])
    text = policy(
        allow(ADMIN + ["kms:Decrypt"]),
        allow(
            "kms:Encrypt",
            Condition={
                "StringEquals": {
                    "kms:CallerAccount": ACCOUNT_ID,
                    "kms:KeySpec": "SYMMETRIC_DEFAULT",
                    "kms:EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
                    "kms:RequestAlias": f"alias/policy-{key['KeyId']}",
                    "aws:PrincipalType": "Account",
                },
                "IpAddress": {"aws:SourceIp": "127.0.0.0/8"},
                "Bool": {"aws:SecureTransport": "false"},
                "DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"},
            },
        ),
    )
    kms.put_key_policy(KeyId=key["KeyId"], Policy=text)
    kms.encrypt(KeyId=f"alias/policy-{key['KeyId']}", Plaintext=b"x")
    # By key id, kms:RequestAlias is absent: the condition fails.
    fails(
        kms.encrypt,
        "AccessDeniedException",
        denied(ACCOUNT_ID, "kms:Encrypt", key["Arn"]),
        KeyId=key["KeyId"],
        Plaintext=b"x",
    )


def test_aws_source_ip_is_the_peer_address_whatever_forwarding_headers_say(kms, key):
    # A local process must not pick its aws:SourceIp: proxy headers are not trusted.
    text = policy(
        allow(ADMIN),
        allow("kms:Encrypt", Condition={"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}),
        deny("kms:Encrypt", Condition={"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}),
    )
    kms.put_key_policy(KeyId=key["KeyId"], Policy=text)

    def forwarded(request: Any, **_: Any) -> None:
        request.headers["X-Forwarded-For"] = "203.0.113.9"
        request.headers["X-Real-IP"] = "203.0.113.9"
        request.headers["Forwarded"] = "for=203.0.113.9"

    kms.meta.events.register("before-send.kms.Encrypt", forwarded)
    try:
        kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    finally:
        kms.meta.events.unregister("before-send.kms.Encrypt", forwarded)


def test_the_lockout_check_refuses_a_policy_that_would_lock_the_caller_out(kms, key):
    before = kms.get_key_policy(KeyId=key["KeyId"])["Policy"]
    no_admin = policy(allow(["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"]))
    fails(
        kms.put_key_policy,
        "MalformedPolicyDocumentException",
        LOCKOUT,
        KeyId=key["KeyId"],
        Policy=no_admin,
    )
    assert kms.get_key_policy(KeyId=key["KeyId"])["Policy"] == before
    # A Deny of PutKeyPolicy locks out as surely as no Allow.
    denies = policy(allow("kms:*"), deny("kms:PutKeyPolicy"))
    fails(
        kms.put_key_policy,
        "MalformedPolicyDocumentException",
        LOCKOUT,
        KeyId=key["KeyId"],
        Policy=denies,
    )
    # The caller may insist; then it really is locked out.
    kms.put_key_policy(KeyId=key["KeyId"], Policy=no_admin, BypassPolicyLockoutSafetyCheck=True)
    fails(
        kms.put_key_policy,
        "AccessDeniedException",
        denied(ACCOUNT_ID, "kms:PutKeyPolicy", key["Arn"]),
        KeyId=key["KeyId"],
        Policy=before,
    )
    fails(
        kms.get_key_policy,
        "AccessDeniedException",
        denied(ACCOUNT_ID, "kms:GetKeyPolicy", key["Arn"]),
        KeyId=key["KeyId"],
    )
    assert kms.encrypt(KeyId=key["KeyId"], Plaintext=b"still usable")["KeyId"] == key["Arn"]


def test_create_key_with_a_policy_checks_it_and_the_lockout(fresh):
    account, kms = fresh
    root = f"arn:aws:iam::{account['AccountId']}:root"
    fails(
        kms.create_key,
        "MalformedPolicyDocumentException",
        LOCKOUT,
        Policy=policy(allow(["kms:Encrypt"], principal=root)),
    )
    assert kms.list_keys()["Keys"] == []
    made = kms.create_key(
        Policy=policy(allow(["kms:Encrypt"], principal=root)), BypassPolicyLockoutSafetyCheck=True
    )["KeyMetadata"]
    # Only Encrypt is allowed: not even DescribeKey.
    kms.encrypt(KeyId=made["KeyId"], Plaintext=b"x")
    fails(kms.describe_key, "AccessDeniedException", KeyId=made["KeyId"])


@pytest.mark.parametrize(
    "text, code, message",
    [
        ("{not json", "MalformedPolicyDocumentException", "The policy document is not valid JSON."),
        (
            '{"Version": "2012-10-17"}',
            "MalformedPolicyDocumentException",
            "The policy document must contain at least one statement.",
        ),
        (
            policy({"Effect": "Maybe", "Principal": "*", "Action": "kms:*", "Resource": "*"}),
            "MalformedPolicyDocumentException",
            "Each policy statement must have an Effect of Allow or Deny.",
        ),
        (
            policy(
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": "nobody"},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            ),
            "MalformedPolicyDocumentException",
            "Policy contains a statement with one or more invalid principals.",
        ),
        (
            policy({"Effect": "Allow", "Action": "kms:*", "Resource": "*"}),
            "MalformedPolicyDocumentException",
            "Policy contains a statement with no principal.",
        ),
        (
            policy(
                {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "kms:*",
                    "Resource": "*",
                    "Condition": {"StringFancy": {"kms:CallerAccount": "1"}},
                }
            ),
            "MalformedPolicyDocumentException",
            None,
        ),
        (
            policy(*[allow(f"kms:Encrypt{i:05}") for i in range(400)]),
            "LimitExceededException",
            None,
        ),
    ],
    ids=["json", "no-statement", "effect", "principal", "no-principal", "operator", "size"],
)
def test_an_invalid_policy_is_refused_and_changes_nothing(kms, key, text, code, message):
    before = kms.get_key_policy(KeyId=key["KeyId"])["Policy"]
    fails(kms.put_key_policy, code, message, KeyId=key["KeyId"], Policy=text)
    fails(kms.create_key, code, message, Policy=text)
    assert kms.get_key_policy(KeyId=key["KeyId"])["Policy"] == before


def test_another_account_uses_a_key_its_policy_shares_but_never_manages_it(
    kms, key, server, other_account
):
    other_id = other_account["AccountId"]
    other = client(server, other_account)
    shared = policy(
        allow("kms:*"),
        allow(
            [
                "kms:Encrypt",
                "kms:Decrypt",
                "kms:DescribeKey",
                "kms:PutKeyPolicy",
                "kms:GetKeyPolicy",
            ],
            principal=other_id,
        ),
    )
    # Before: the other account is refused by ARN and cannot find the key by id.
    fails(
        other.encrypt,
        "AccessDeniedException",
        denied(other_id, "kms:Encrypt", key["Arn"]),
        KeyId=key["Arn"],
        Plaintext=b"x",
    )
    kms.put_key_policy(KeyId=key["KeyId"], Policy=shared)
    blob = other.encrypt(KeyId=key["Arn"], Plaintext=b"shared")["CiphertextBlob"]
    assert other.decrypt(CiphertextBlob=blob)["Plaintext"] == b"shared"
    assert other.describe_key(KeyId=key["Arn"])["KeyMetadata"]["Arn"] == key["Arn"]
    fails(
        other.encrypt,
        "NotFoundException",
        not_found(key["KeyId"], account=other_id),
        KeyId=key["KeyId"],
        Plaintext=b"x",
    )
    # Key policy operations are not for other accounts, whatever the policy says.
    for call, params in ((other.get_key_policy, {}), (other.put_key_policy, {"Policy": shared})):
        action = "kms:GetKeyPolicy" if call == other.get_key_policy else "kms:PutKeyPolicy"
        fails(
            call,
            "AccessDeniedException",
            denied(other_id, action, key["Arn"]),
            KeyId=key["Arn"],
            **params,
        )
    fails(
        other.disable_key,
        "AccessDeniedException",
        denied(other_id, "kms:DisableKey", key["Arn"]),
        KeyId=key["Arn"],
    )


def test_a_deny_naming_another_account_leaves_the_owner_alone(kms, key, server, other_account):
    other_id = other_account["AccountId"]
    kms.put_key_policy(
        KeyId=key["KeyId"], Policy=policy(allow("kms:*"), deny("kms:*", principal=other_id))
    )
    assert kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["KeyId"] == key["Arn"]
    other = client(server, other_account)
    fails(
        other.encrypt,
        "AccessDeniedException",
        explicit_deny(other_id, "kms:Encrypt", key["Arn"]),
        KeyId=key["Arn"],
        Plaintext=b"x",
    )
