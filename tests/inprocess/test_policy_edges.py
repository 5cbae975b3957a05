"""Policy evaluation at its edges: NotPrincipal, hostile wildcards, numbers no decimal holds,
kms:ReEncryptOnSameKey, CreateKey's Tags, statements without a Resource."""

from __future__ import annotations

import json
from typing import Any

import pytest

from openkms.errors import KmsError
from tests.inprocess.conftest import ACCOUNT_ID, Kms, iam_user

ROOT = f"arn:aws:iam::{ACCOUNT_ID}:root"
ADMIN = {"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"}


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _refused(call: Any, code: str = "AccessDeniedException") -> str:
    with pytest.raises(KmsError) as caught:
        call()
    assert caught.value.code == code, caught.value.message
    return caught.value.message or ""


ALLOW_ALL = _policy({"Effect": "Allow", "Action": "kms:*", "Resource": "*"})


def test_a_not_principal_deny_exempts_only_the_principal_it_lists(kms: Kms) -> None:
    """AWS's pattern: Deny with NotPrincipal [the user, its account] denies everyone else,
    other users of the same account included."""
    bob, alice = iam_user(kms, ALLOW_ALL), iam_user(kms, ALLOW_ALL)
    key = kms.create_key()
    kms.call(
        "PutKeyPolicy",
        KeyId=key["KeyId"],
        Policy=_policy(
            ADMIN,
            {
                "Effect": "Deny",
                "NotPrincipal": {"AWS": [bob.principal.arn, ROOT]},
                "Action": "kms:Encrypt",
                "Resource": "*",
            },
        ),
    )
    bob.call("Encrypt", KeyId=key["KeyId"], Plaintext=b"x")
    kms.call("Encrypt", KeyId=key["KeyId"], Plaintext=b"x")
    message = _refused(lambda: alice.call("Encrypt", KeyId=key["KeyId"], Plaintext=b"x"))
    assert message.endswith("with an explicit deny in a resource-based policy")


def test_hostile_wildcards_are_matched_in_linear_time(kms: Kms) -> None:
    """A pattern that makes a backtracking regular expression take minutes against a key ARN
    (each "*?" multiplies the work) is decided at once: this test would not finish otherwise."""
    key = kms.create_key()
    hostile = "*?" * 30 + "x"
    kms.call(
        "PutKeyPolicy",
        KeyId=key["KeyId"],
        Policy=_policy(
            ADMIN, {**ADMIN, "Effect": "Deny", "Action": "kms:Encrypt", "Resource": hostile}
        ),
    )
    kms.call("Encrypt", KeyId=key["KeyId"], Plaintext=b"x")  # the Deny's resource never matches
    # The same statement with a wildcard that does match the key: the Deny applies.
    kms.call(
        "PutKeyPolicy",
        KeyId=key["KeyId"],
        Policy=_policy(
            ADMIN, {**ADMIN, "Effect": "Deny", "Action": "kms:En*?t", "Resource": "arn:aws:kms:*"}
        ),
    )
    _refused(lambda: kms.call("Encrypt", KeyId=key["KeyId"], Plaintext=b"x"))


def test_a_number_no_decimal_holds_is_a_malformed_policy_not_a_crash(kms: Kms) -> None:
    key = kms.create_key()
    statement = {
        **ADMIN,
        "Condition": {"NumericEquals": {"kms:RotationPeriodInDays": "1e99999999999999999999"}},
    }
    _refused(
        lambda: kms.call("PutKeyPolicy", KeyId=key["KeyId"], Policy=_policy(ADMIN, statement)),
        "MalformedPolicyDocumentException",
    )


def test_a_statement_without_a_resource_is_malformed(kms: Kms) -> None:
    key = kms.create_key()
    no_resource = {"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*"}
    message = _refused(
        lambda: kms.call("PutKeyPolicy", KeyId=key["KeyId"], Policy=_policy(no_resource)),
        "MalformedPolicyDocumentException",
    )
    assert message == "Each policy statement must name exactly one of Resource or NotResource."


def test_reencrypt_on_same_key_compares_the_keys_not_how_they_were_named(kms: Kms) -> None:
    key = kms.create_key()
    name = f"alias/same-{key['KeyId']}"
    kms.call("CreateAlias", AliasName=name, TargetKeyId=key["KeyId"])
    kms.call(
        "PutKeyPolicy",
        KeyId=key["KeyId"],
        Policy=_policy(
            ADMIN,
            {
                **ADMIN,
                "Effect": "Deny",
                "Action": ["kms:ReEncryptFrom", "kms:ReEncryptTo"],
                "Condition": {"Bool": {"kms:ReEncryptOnSameKey": "true"}},
            },
        ),
    )
    blob = kms.call("Encrypt", KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    # The same key named by alias for the destination, by nothing for the source.
    _refused(lambda: kms.call("ReEncrypt", CiphertextBlob=blob, DestinationKeyId=name))
    other = kms.create_key()
    kms.call("ReEncrypt", CiphertextBlob=blob, DestinationKeyId=other["KeyId"])


def test_create_key_with_tags_needs_tag_resource_too(kms: Kms) -> None:
    only_create = iam_user(
        kms, _policy({"Effect": "Allow", "Action": "kms:CreateKey", "Resource": "*"})
    )
    only_create.call("CreateKey")
    tags = [{"TagKey": "team", "TagValue": "a"}]
    message = _refused(lambda: only_create.call("CreateKey", Tags=tags))
    assert "kms:TagResource on resource: * because no identity-based policy allows" in message
    both = iam_user(
        kms,
        _policy(
            {"Effect": "Allow", "Action": ["kms:CreateKey", "kms:TagResource"], "Resource": "*"}
        ),
    )
    assert both.call("CreateKey", Tags=tags)["KeyMetadata"]["KeyId"]


def test_a_stored_policy_this_version_cannot_read_allows_only_its_repair(kms: Kms) -> None:
    """A policy an earlier, more lenient release stored (a statement without Resource)
    allows nothing now, but the account's root user can still see it and replace it."""
    key = kms.create_key()
    lenient = _policy({"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*"})
    with kms.runtime.services.db.transaction() as tx:
        tx.set_key_policy(key["KeyId"], lenient)
    message = _refused(lambda: kms.call("Encrypt", KeyId=key["KeyId"], Plaintext=b"x"))
    assert message.endswith("because no resource-based policy allows the kms:Encrypt action")
    assert kms.call("GetKeyPolicy", KeyId=key["KeyId"])["Policy"] == lenient
    kms.call("DescribeKey", KeyId=key["KeyId"])
    kms.call("PutKeyPolicy", KeyId=key["KeyId"], Policy=_policy(ADMIN))
    kms.call("Encrypt", KeyId=key["KeyId"], Plaintext=b"x")


def test_request_alias_names_the_alias_of_each_side_of_a_reencrypt(kms: Kms) -> None:
    source, destination = kms.create_key(), kms.create_key()
    name = f"alias/dest-{destination['KeyId']}"
    kms.call("CreateAlias", AliasName=name, TargetKeyId=destination["KeyId"])
    kms.call(
        "PutKeyPolicy",
        KeyId=destination["KeyId"],
        Policy=_policy(
            {
                "Effect": "Allow",
                "Principal": {"AWS": ROOT},
                "NotAction": "kms:ReEncryptTo",
                "Resource": "*",
            },
            {
                **ADMIN,
                "Action": "kms:ReEncryptTo",
                "Condition": {"StringEquals": {"kms:RequestAlias": name}},
            },
        ),
    )
    blob = kms.call("Encrypt", KeyId=source["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    kms.call("ReEncrypt", CiphertextBlob=blob, DestinationKeyId=name)
    _refused(
        lambda: kms.call("ReEncrypt", CiphertextBlob=blob, DestinationKeyId=destination["KeyId"])
    )


def test_policy_variables_in_a_resource_name_the_callers_own_resources(kms: Kms) -> None:
    """IAM's pattern: a user may make aliases named after itself, and no others."""
    region_account = f"arn:aws:kms:us-east-1:{ACCOUNT_ID}"
    user = iam_user(
        kms,
        _policy(
            {
                "Effect": "Allow",
                "Action": "kms:CreateAlias",
                "Resource": [
                    f"{region_account}:alias/${{aws:username}}-*",
                    f"{region_account}:key/*",
                ],
            }
        ),
    )
    key = kms.create_key()
    name = user.principal.arn.rsplit("/", 1)[1]
    user.call("CreateAlias", AliasName=f"alias/{name}-mine", TargetKeyId=key["KeyId"])
    message = _refused(
        lambda: user.call("CreateAlias", AliasName="alias/someone-else", TargetKeyId=key["KeyId"])
    )
    assert message.endswith("because no identity-based policy allows the kms:CreateAlias action")
    # In a 2008-10-17 policy ${...} is plain text: it names no alias the user can make.
    legacy = iam_user(
        kms,
        json.dumps(
            {
                "Version": "2008-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "kms:CreateAlias",
                        "Resource": [
                            f"{region_account}:alias/${{aws:username}}-*",
                            f"{region_account}:key/*",
                        ],
                    }
                ],
            }
        ),
    )
    legacy_name = legacy.principal.arn.rsplit("/", 1)[1]
    _refused(
        lambda: legacy.call(
            "CreateAlias", AliasName=f"alias/{legacy_name}-x", TargetKeyId=key["KeyId"]
        )
    )


@pytest.mark.parametrize(
    "principal",
    [
        f"arn:aws:iam::{ACCOUNT_ID}:user/nobody-here",
        f"arn:aws:iam::{ACCOUNT_ID}:role/no-such-role",
        f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/no-such-role/session",
        "arn:aws:iam::999988887777:user/in-an-unknown-account",
    ],
)
def test_a_key_policy_naming_a_principal_that_does_not_exist_is_malformed(
    kms: Kms, principal: str
) -> None:
    """AWS checks the principals a key policy names when it is set; so does openkms, against
    its own users and roles. Nothing changes: not the key's policy, and no key is made."""
    key = kms.create_key()
    before = kms.call("GetKeyPolicy", KeyId=key["KeyId"])["Policy"]
    naming = _policy(
        ADMIN,
        {
            "Effect": "Allow",
            "Principal": {"AWS": principal},
            "Action": "kms:Encrypt",
            "Resource": "*",
        },
    )
    invalid = "Policy contains a statement with one or more invalid principals."
    with pytest.raises(KmsError) as caught:
        kms.call("PutKeyPolicy", KeyId=key["KeyId"], Policy=naming)
    assert (caught.value.code, caught.value.message) == (
        "MalformedPolicyDocumentException",
        invalid,
    )
    assert kms.call("GetKeyPolicy", KeyId=key["KeyId"])["Policy"] == before
    count = len(kms.call("ListKeys", Limit=1000)["Keys"])
    with pytest.raises(KmsError) as caught:
        kms.call("CreateKey", Policy=naming)
    assert caught.value.code == "MalformedPolicyDocumentException"
    assert len(kms.call("ListKeys", Limit=1000)["Keys"]) == count


def test_a_key_policy_may_name_existing_users_and_any_account(kms: Kms) -> None:
    user = iam_user(kms)
    key = kms.create_key()
    for principal in (user.principal.arn, "999988887777", "arn:aws:iam::999988887777:root"):
        kms.call(
            "PutKeyPolicy",
            KeyId=key["KeyId"],
            Policy=_policy(
                ADMIN,
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": principal},
                    "Action": "kms:Encrypt",
                    "Resource": "*",
                },
            ),
        )
    # NotPrincipal is checked too.
    with pytest.raises(KmsError) as caught:
        kms.call(
            "PutKeyPolicy",
            KeyId=key["KeyId"],
            Policy=_policy(
                ADMIN,
                {
                    "Effect": "Deny",
                    "NotPrincipal": {"AWS": [ROOT, f"arn:aws:iam::{ACCOUNT_ID}:user/ghost"]},
                    "Action": "kms:Encrypt",
                    "Resource": "*",
                },
            ),
        )
    assert caught.value.code == "MalformedPolicyDocumentException"
