"""Each condition key flips a decision: a key policy allows an operation only under one
condition on one key, and the same request is allowed when the key has the value the
condition names and refused when it has another (or is absent).

The expected values are written from AWS's condition-key documentation ("AWS KMS condition
keys", "AWS global condition context keys"): which operations have the key, its value's
form, and its default where the parameter is left out.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from openkms.errors import KmsError
from tests.inprocess.conftest import ACCOUNT_ID, Kms

ROOT = f"arn:aws:iam::{ACCOUNT_ID}:root"


def _policy(condition: dict[str, Any], actions: list[str]) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": ROOT},
                    "Action": ["kms:PutKeyPolicy", "kms:DescribeKey", "kms:CreateAlias"],
                    "Resource": "*",
                },
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": ROOT},
                    "Action": actions,
                    "Resource": "*",
                    "Condition": condition,
                },
            ],
        }
    )


@dataclass(frozen=True)
class Case:
    key: str  # the condition key
    operator: str
    value: Any  # the policy's value
    action: str  # the operation's action, allowed only under the condition
    # request(kms, key_id, matching) -> the call's result; matching=False changes the value
    # None: the request cannot choose the value; the policy names it, then another.
    request: Callable[[Kms, dict[str, Any], bool], Any] | None
    create: dict[str, str] | None = None  # CreateKey parameters of the key under test
    wrong: str | None = None  # the value that must not match (default: "not-" + value)


def _encrypt(context: dict[str, str] | None = None) -> Callable[..., Any]:
    def run(kms: Kms, key: dict[str, Any], matching: bool) -> Any:
        params: dict[str, Any] = {"KeyId": key["KeyId"], "Plaintext": b"x"}
        if context is not None:
            params["EncryptionContext"] = context if matching else {"other": "value"}
        return kms.call("Encrypt", **params)

    return run


def _by_alias(kms: Kms, key: dict[str, Any], matching: bool) -> Any:
    name = f"alias/cond-{key['KeyId']}"
    if matching:
        kms.call("CreateAlias", AliasName=name, TargetKeyId=key["KeyId"])
    return kms.call("Encrypt", KeyId=name if matching else key["KeyId"], Plaintext=b"x")


def _parameter(
    operation: str, member: str, good: Any, bad: Any, **fixed: Any
) -> Callable[..., Any]:
    def run(kms: Kms, key: dict[str, Any], matching: bool) -> Any:
        return kms.call(
            operation, KeyId=key["KeyId"], **{member: good if matching else bad}, **fixed
        )

    return run


def _sign(kms: Kms, key: dict[str, Any], matching: bool) -> Any:
    return kms.call(
        "Sign",
        KeyId=key["KeyId"],
        Message=bytes(32) if not matching else b"raw message",
        MessageType="RAW" if matching else "DIGEST",
        SigningAlgorithm="ECDSA_SHA_256",
    )


def _tagging(kms: Kms, key: dict[str, Any], matching: bool) -> Any:
    tag = {"TagKey": "Project", "TagValue": "alpha" if matching else "beta"}
    return kms.call("TagResource", KeyId=key["KeyId"], Tags=[tag])


def _tag_keys(kms: Kms, key: dict[str, Any], matching: bool) -> Any:
    tag = {"TagKey": "Project" if matching else "Secret", "TagValue": "v"}
    return kms.call("TagResource", KeyId=key["KeyId"], Tags=[tag])


SIGNING = {"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"}
MAC = {"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"}

CASES = [
    Case(
        "kms:EncryptionContext:Project",
        "StringEquals",
        "alpha",
        "kms:Encrypt",
        _encrypt({"Project": "alpha"}),
    ),
    Case(
        "kms:EncryptionContextKeys",
        "ForAnyValue:StringEquals",
        "Project",
        "kms:Encrypt",
        _encrypt({"Project": "alpha"}),
    ),
    Case("kms:CallerAccount", "StringEquals", ACCOUNT_ID, "kms:Encrypt", None),
    Case("kms:EncryptionAlgorithm", "StringEquals", "SYMMETRIC_DEFAULT", "kms:Encrypt", None),
    Case("kms:KeyUsage", "StringEquals", "ENCRYPT_DECRYPT", "kms:Encrypt", None),
    Case("kms:KeyOrigin", "StringEquals", "AWS_KMS", "kms:Encrypt", None),
    Case("kms:MultiRegion", "Bool", "false", "kms:Encrypt", None, wrong="true"),
    Case("kms:RequestAlias", "StringLike", "alias/cond-*", "kms:Encrypt", _by_alias),
    Case("kms:SigningAlgorithm", "StringEquals", "ECDSA_SHA_256", "kms:Sign", None, SIGNING),
    Case("kms:MessageType", "StringEquals", "RAW", "kms:Sign", _sign, SIGNING),
    Case("kms:MacAlgorithm", "StringEquals", "HMAC_SHA_256", "kms:GenerateMac", None, MAC),
    Case(
        "kms:RotationPeriodInDays",
        "NumericLessThanEquals",
        "180",
        "kms:EnableKeyRotation",
        _parameter("EnableKeyRotation", "RotationPeriodInDays", 90, 365),
    ),
    Case(
        "kms:ScheduleKeyDeletionPendingWindowInDays",
        "NumericGreaterThanEquals",
        "20",
        "kms:ScheduleKeyDeletion",
        _parameter("ScheduleKeyDeletion", "PendingWindowInDays", 25, 7),
    ),
    Case(
        "kms:DataKeyPairSpec",
        "StringEquals",
        "ECC_NIST_P256",
        "kms:GenerateDataKeyPair",
        _parameter("GenerateDataKeyPair", "KeyPairSpec", "ECC_NIST_P256", "ECC_NIST_P384"),
    ),
    Case("aws:RequestTag/Project", "StringEquals", "alpha", "kms:TagResource", _tagging),
    Case(
        "aws:TagKeys",
        "ForAllValues:StringEquals",
        ["Project", "Team"],
        "kms:TagResource",
        _tag_keys,
    ),
    Case(
        "kms:WrappingKeySpec",
        "StringEquals",
        "RSA_3072",
        "kms:GetParametersForImport",
        _parameter(
            "GetParametersForImport",
            "WrappingKeySpec",
            "RSA_3072",
            "RSA_2048",
            WrappingAlgorithm="RSAES_OAEP_SHA_256",
        ),
        {"Origin": "EXTERNAL"},
    ),
    Case(
        "kms:WrappingAlgorithm",
        "StringEquals",
        "RSAES_OAEP_SHA_256",
        "kms:GetParametersForImport",
        _parameter(
            "GetParametersForImport",
            "WrappingAlgorithm",
            "RSAES_OAEP_SHA_256",
            "RSAES_OAEP_SHA_1",
            WrappingKeySpec="RSA_2048",
        ),
        {"Origin": "EXTERNAL"},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.key for c in CASES])
def test_the_condition_key_flips_the_decision(kms: Kms, case: Case) -> None:
    key = kms.create_key(**(case.create or {}))
    operation = case.action.removeprefix("kms:")
    if case.request is None:
        # A key whose value the request does not choose (the caller's account, a default
        # algorithm): the policy names the right value, then a wrong one.
        def request(kms: Kms, key: dict[str, Any], matching: bool) -> Any:
            params: dict[str, Any] = {"KeyId": key["KeyId"]}
            if operation == "Encrypt":
                params["Plaintext"] = b"x"
            elif operation == "Sign":
                params.update(Message=b"m", SigningAlgorithm="ECDSA_SHA_256")
            elif operation == "GenerateMac":
                params.update(Message=b"m", MacAlgorithm="HMAC_SHA_256")
            return kms.call(operation, **params)

        wrong = case.wrong or "not-" + str(case.value)
        for value, allowed in ((case.value, True), (wrong, False)):
            kms.call(
                "PutKeyPolicy",
                KeyId=key["KeyId"],
                Policy=_policy({case.operator: {case.key: value}}, [case.action]),
            )
            _expect(kms, key, case.action, allowed, lambda: request(kms, key, True))
        return
    kms.call(
        "PutKeyPolicy",
        KeyId=key["KeyId"],
        Policy=_policy({case.operator: {case.key: case.value}}, [case.action]),
    )
    _expect(kms, key, case.action, True, lambda: case.request(kms, key, True))
    _expect(kms, key, case.action, False, lambda: case.request(kms, key, False))


def _expect(
    kms: Kms, key: dict[str, Any], action: str, allowed: bool, call: Callable[[], Any]
) -> None:
    if allowed:
        call()
        return
    with pytest.raises(KmsError) as caught:
        call()
    assert caught.value.code == "AccessDeniedException", caught.value.message
    assert caught.value.message == (
        f"User: {ROOT} is not authorized to perform: {action} on resource: {key['Arn']} "
        f"because no resource-based policy allows the {action} action"
    )


def test_time_conditions_follow_the_injected_clock(kms: Kms, clock: Any) -> None:
    key = kms.create_key()
    now = clock.now()
    until = (now + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    kms.call(
        "PutKeyPolicy",
        KeyId=key["KeyId"],
        Policy=_policy({"DateLessThan": {"aws:CurrentTime": until}}, ["kms:Encrypt"]),
    )
    kms.call("Encrypt", KeyId=key["KeyId"], Plaintext=b"x")
    clock.advance(2 * 86_400)
    _expect(
        kms,
        key,
        "kms:Encrypt",
        False,
        lambda: kms.call("Encrypt", KeyId=key["KeyId"], Plaintext=b"x"),
    )


def test_a_resource_tag_condition_reads_the_keys_tags(kms: Kms) -> None:
    key = kms.create_key(Tags=[{"TagKey": "Env", "TagValue": "prod"}])
    kms.call(
        "PutKeyPolicy",
        KeyId=key["KeyId"],
        Policy=_policy(
            {"StringEquals": {"aws:ResourceTag/Env": "prod"}},
            ["kms:Encrypt", "kms:TagResource"],
        ),
    )
    kms.call("Encrypt", KeyId=key["KeyId"], Plaintext=b"x")
    kms.call("TagResource", KeyId=key["KeyId"], Tags=[{"TagKey": "Env", "TagValue": "test"}])
    _expect(
        kms,
        key,
        "kms:Encrypt",
        False,
        lambda: kms.call("Encrypt", KeyId=key["KeyId"], Plaintext=b"x"),
    )


def test_a_resource_aliases_condition_reads_the_keys_aliases(kms: Kms) -> None:
    """kms:ResourceAliases: the key's aliases however the request names the key (here by id),
    read when the condition asks; a new alias counts from the next request."""
    key = kms.create_key()
    kms.call(
        "PutKeyPolicy",
        KeyId=key["KeyId"],
        Policy=_policy(
            {"ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/finance"}},
            ["kms:Encrypt"],
        ),
    )
    encrypt = lambda: kms.call("Encrypt", KeyId=key["KeyId"], Plaintext=b"x")  # noqa: E731
    _expect(kms, key, "kms:Encrypt", False, encrypt)
    kms.call("CreateAlias", AliasName="alias/other", TargetKeyId=key["KeyId"])
    _expect(kms, key, "kms:Encrypt", False, encrypt)
    kms.call("CreateAlias", AliasName="alias/finance", TargetKeyId=key["KeyId"])
    encrypt()


_OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def _import_material(kms: Kms, key: dict[str, Any], **params: Any) -> Any:
    given = kms.call(
        "GetParametersForImport",
        KeyId=key["KeyId"],
        WrappingAlgorithm="RSAES_OAEP_SHA_256",
        WrappingKeySpec="RSA_2048",
    )
    public_key = serialization.load_der_public_key(given["PublicKey"])
    assert isinstance(public_key, rsa.RSAPublicKey)
    return kms.call(
        "ImportKeyMaterial",
        KeyId=key["KeyId"],
        ImportToken=given["ImportToken"],
        EncryptedKeyMaterial=public_key.encrypt(os.urandom(32), _OAEP),
        **params,
    )


@pytest.mark.parametrize(
    ("condition", "allowed", "refused"),
    [
        (
            {"StringEquals": {"kms:ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"}},
            {"ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"},
            {"ExpirationModel": "KEY_MATERIAL_EXPIRES", "ValidTo": 10},
        ),
        (
            {"NumericLessThanEquals": {"kms:ValidTo": 30}},
            {"ExpirationModel": "KEY_MATERIAL_EXPIRES", "ValidTo": 10},
            {"ExpirationModel": "KEY_MATERIAL_EXPIRES", "ValidTo": 60},
        ),
    ],
    ids=["kms:ExpirationModel", "kms:ValidTo"],
)
def test_import_condition_keys_flip_the_decision(
    kms: Kms, clock: Any, condition: dict[str, Any], allowed: dict[str, Any], refused: Any
) -> None:
    """ImportKeyMaterial's keys; ValidTo in days from now in the table, a Unix time (in
    seconds) in the policy and the request, as AWS compares it."""
    now = clock.now()

    def moment(days: int) -> Any:
        return now + dt.timedelta(days=days)

    for operator, values in condition.items():
        for name, value in values.items():
            if name == "kms:ValidTo":
                values[name] = str(int(moment(value).timestamp()))
        condition[operator] = values

    def resolved(params: dict[str, Any]) -> dict[str, Any]:
        return {k: moment(v).timestamp() if k == "ValidTo" else v for k, v in params.items()}

    policy = json.loads(_policy(condition, ["kms:ImportKeyMaterial"]))
    policy["Statement"][0]["Action"].append("kms:GetParametersForImport")
    key = kms.create_key(Origin="EXTERNAL")
    kms.call("PutKeyPolicy", KeyId=key["KeyId"], Policy=json.dumps(policy))
    _expect(
        kms,
        key,
        "kms:ImportKeyMaterial",
        False,
        lambda: _import_material(kms, key, **resolved(refused)),
    )
    _expect(
        kms,
        key,
        "kms:ImportKeyMaterial",
        True,
        lambda: _import_material(kms, key, **resolved(allowed)),
    )


def test_the_bypass_lockout_condition_key_flips_a_deny(kms: Kms) -> None:
    """kms:BypassPolicyLockoutSafetyCheck: false where the parameter is left out; a Deny on
    true stops a PutKeyPolicy that bypasses the check and lets one that does not through."""
    key = kms.create_key()
    policy = json.loads(_policy({}, []))
    policy["Statement"][1] = {
        "Effect": "Deny",
        "Principal": {"AWS": ROOT},
        "Action": "kms:PutKeyPolicy",
        "Resource": "*",
        "Condition": {"Bool": {"kms:BypassPolicyLockoutSafetyCheck": "true"}},
    }
    text = json.dumps(policy)
    kms.call("PutKeyPolicy", KeyId=key["KeyId"], Policy=text)
    with pytest.raises(KmsError) as caught:
        kms.call(
            "PutKeyPolicy", KeyId=key["KeyId"], Policy=text, BypassPolicyLockoutSafetyCheck=True
        )
    assert caught.value.message == (
        f"User: {ROOT} is not authorized to perform: kms:PutKeyPolicy on resource: "
        f"{key['Arn']} with an explicit deny in a resource-based policy"
    )
    kms.call("PutKeyPolicy", KeyId=key["KeyId"], Policy=text, BypassPolicyLockoutSafetyCheck=False)
