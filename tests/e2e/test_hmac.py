"""HMAC keys end to end: CreateKey and DescribeKey of HMAC_224/256/384/512 keys, GenerateMac and
VerifyMac, driven with boto3 against a real openkms server.

An HMAC key's material never leaves the server, so the tags are checked by what an HMAC must
be: the hash's length, the same tag for the same message under the same key and a different
one otherwise, and VerifyMac accepting exactly the tag GenerateMac gave.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.kms_management import (
    client,
    fails,
    new_key,
    refused_to_other_account,
    unchecked_client,
)
from tests.support import ACCOUNT_ID, REGION

# spec -> (its only MAC algorithm, the tag's length in bytes)
SPECS = {
    "HMAC_224": ("HMAC_SHA_224", 28),
    "HMAC_256": ("HMAC_SHA_256", 32),
    "HMAC_384": ("HMAC_SHA_384", 48),
    "HMAC_512": ("HMAC_SHA_512", 64),
}
ALGORITHMS = [algorithm for algorithm, _ in SPECS.values()]
HMAC_METADATA_FIELDS = {
    "AWSAccountId",
    "KeyId",
    "Arn",
    "CreationDate",
    "Enabled",
    "Description",
    "KeyUsage",
    "KeyState",
    "Origin",
    "KeyManager",
    "CustomerMasterKeySpec",
    "KeySpec",
    "MacAlgorithms",
    "MultiRegion",
}
DRY_RUN = "The request would succeed if DryRun wasn't specified."


def hmac_key(kms: Any, spec: str = "HMAC_256") -> dict[str, Any]:
    return new_key(kms, KeySpec=spec, KeyUsage="GENERATE_VERIFY_MAC")


def mac(kms: Any, key: dict[str, Any], message: bytes) -> bytes:
    algorithm = SPECS[key["KeySpec"]][0]
    return kms.generate_mac(KeyId=key["KeyId"], Message=message, MacAlgorithm=algorithm)["Mac"]


def invalid_mac(call: Any, **params: Any) -> None:
    """AWS answers a MAC that does not verify with KMSInvalidMacException and no message."""
    fails(call, "KMSInvalidMacException", "", **params)


def dry_run(call: Any, **params: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as info:
        call(DryRun=True, **params)
    response = info.value.response
    assert response["Error"] == {**response["Error"], "Code": "DryRunOperationException"}
    assert response["Error"]["Message"] == DRY_RUN
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 412
    return response


# -- CreateKey and DescribeKey ----------------------------------------------------------------


@pytest.mark.parametrize("spec", SPECS)
def test_create_and_describe_an_hmac_key(kms, spec):
    """An HMAC key lists its one MAC algorithm and none of the other usages' lists, and (like
    every non-symmetric key) no CurrentKeyMaterialId."""
    created = hmac_key(kms, spec)
    described = kms.describe_key(KeyId=created["KeyId"])["KeyMetadata"]
    for metadata in (created, described):
        assert set(metadata) == HMAC_METADATA_FIELDS
        assert metadata["KeySpec"] == metadata["CustomerMasterKeySpec"] == spec
        assert metadata["KeyUsage"] == "GENERATE_VERIFY_MAC"
        assert metadata["MacAlgorithms"] == [SPECS[spec][0]]
        assert metadata["KeyState"] == "Enabled"
        assert metadata["Origin"] == "AWS_KMS"
    assert described["KeyId"] == created["KeyId"]


def test_an_hmac_key_needs_the_mac_usage(kms):
    """No default usage for an HMAC spec, and only GENERATE_VERIFY_MAC suits one (nor does
    that usage suit a key of another kind)."""
    fails(
        kms.create_key,
        "ValidationException",
        "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.",
        KeySpec="HMAC_256",
    )
    for usage in ("ENCRYPT_DECRYPT", "SIGN_VERIFY", "KEY_AGREEMENT", "ENCAPSULATE_DECAPSULATE"):
        fails(
            kms.create_key,
            "ValidationException",
            f"KeyUsage {usage} is not compatible with KeySpec HMAC_384",
            KeySpec="HMAC_384",
            KeyUsage=usage,
        )
    for spec in ("SYMMETRIC_DEFAULT", "RSA_2048", "ECC_NIST_P256"):
        fails(
            kms.create_key,
            "ValidationException",
            f"KeyUsage GENERATE_VERIFY_MAC is not compatible with KeySpec {spec}",
            KeySpec=spec,
            KeyUsage="GENERATE_VERIFY_MAC",
        )


# -- GenerateMac ------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", SPECS)
def test_generate_mac_is_a_deterministic_tag_of_the_hash_length(kms, spec):
    """Same key and message give the same tag; another message, or another key of the same
    spec, gives another; the tag is keyed (not the bare hash of the message)."""
    algorithm, length = SPECS[spec]
    key, other_key = hmac_key(kms, spec), hmac_key(kms, spec)
    message = b"the message " + os.urandom(16)

    response = kms.generate_mac(KeyId=key["KeyId"], Message=message, MacAlgorithm=algorithm)
    assert set(response) == {"KeyId", "Mac", "MacAlgorithm", "ResponseMetadata"}
    assert response["KeyId"] == key["Arn"]
    assert response["MacAlgorithm"] == algorithm
    tag = response["Mac"]
    assert len(tag) == length

    assert mac(kms, key, message) == tag
    assert mac(kms, key, message + b"!") != tag
    assert mac(kms, key, message[:-1]) != tag
    assert mac(kms, other_key, message) != tag
    bare_hash = hashlib.new(algorithm.removeprefix("HMAC_").replace("_", "").lower(), message)
    assert tag != bare_hash.digest()


def test_generate_mac_with_the_key_named_in_any_form(kms):
    """Key id, key ARN, alias name and alias ARN all name the same key, so the same tag."""
    key = hmac_key(kms)
    alias = f"alias/hmac-{uuid.uuid4().hex}"
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    tags = set()
    for name in (key["KeyId"], key["Arn"], alias, f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:{alias}"):
        response = kms.generate_mac(KeyId=name, Message=b"m", MacAlgorithm="HMAC_SHA_256")
        assert response["KeyId"] == key["Arn"]
        tags.add(response["Mac"])
    assert len(tags) == 1


def test_tags_of_many_messages_are_distinct(kms):
    """Thirty messages differing in one byte, or only in length, give thirty tags."""
    key = hmac_key(kms, "HMAC_224")
    messages = [bytes([i]) for i in range(10)]
    messages += [b"\x00" * n for n in range(2, 12)]
    messages += [b"prefix" + bytes([i]) + b"suffix" for i in range(10)]
    assert len({mac(kms, key, message) for message in messages}) == len(messages)


# -- VerifyMac --------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", SPECS)
def test_verify_mac_accepts_the_tag(kms, spec):
    algorithm, _ = SPECS[spec]
    key = hmac_key(kms, spec)
    for message in (b"\x00", os.urandom(100), os.urandom(4096)):
        tag = mac(kms, key, message)
        response = kms.verify_mac(
            KeyId=key["Arn"], Message=message, Mac=tag, MacAlgorithm=algorithm
        )
        assert response == {
            **response,
            "KeyId": key["Arn"],
            "MacValid": True,
            "MacAlgorithm": algorithm,
        }
        assert set(response) == {"KeyId", "MacValid", "MacAlgorithm", "ResponseMetadata"}


@pytest.mark.parametrize("spec", SPECS)
def test_verify_mac_refuses_anything_but_the_tag(kms, spec):
    """A flipped bit anywhere, a truncated or extended tag, another message's tag, another
    key's tag: KMSInvalidMacException, never MacValid false."""
    algorithm, length = SPECS[spec]
    key, other_key = hmac_key(kms, spec), hmac_key(kms, spec)
    message = b"pay 100 to alice"
    tag = mac(kms, key, message)
    wrong = [bytes(tag[:i]) + bytes([tag[i] ^ 0x01]) + tag[i + 1 :] for i in (0, length // 2)]
    wrong += [tag[:-1] + bytes([tag[-1] ^ 0x80])]
    wrong += [tag[:-1], tag[: length // 2], tag[:1], tag + b"\x00", tag + tag]
    wrong += [mac(kms, key, b"pay 900 to alice"), mac(kms, other_key, message)]
    wrong += [b"\x00" * length]
    for candidate in wrong:
        invalid_mac(
            kms.verify_mac,
            KeyId=key["KeyId"],
            Message=message,
            Mac=candidate,
            MacAlgorithm=algorithm,
        )
    # The right tag still verifies for the right message only.
    kms.verify_mac(KeyId=key["KeyId"], Message=message, Mac=tag, MacAlgorithm=algorithm)
    invalid_mac(
        kms.verify_mac,
        KeyId=key["KeyId"],
        Message=b"pay 100 to alicf",
        Mac=tag,
        MacAlgorithm=algorithm,
    )


def test_a_tag_of_a_longer_hash_does_not_verify_as_a_shorter_one(kms):
    """An HMAC_512 tag cut to 32 bytes is not an HMAC_256 tag of another key (nor is a tag
    truncated to the shorter spec's length accepted by the longer one)."""
    long_key, short_key = hmac_key(kms, "HMAC_512"), hmac_key(kms, "HMAC_256")
    message = b"cross spec"
    long_tag = mac(kms, long_key, message)
    invalid_mac(
        kms.verify_mac,
        KeyId=short_key["KeyId"],
        Message=message,
        Mac=long_tag[:32],
        MacAlgorithm="HMAC_SHA_256",
    )
    invalid_mac(
        kms.verify_mac,
        KeyId=long_key["KeyId"],
        Message=message,
        Mac=long_tag[:32],
        MacAlgorithm="HMAC_SHA_512",
    )


# -- algorithms and usages --------------------------------------------------------------------


@pytest.mark.parametrize("spec", SPECS)
def test_an_algorithm_of_another_hmac_spec_is_refused(kms, spec):
    key = hmac_key(kms, spec)
    tag = mac(kms, key, b"m")
    for algorithm in ALGORITHMS:
        if algorithm == SPECS[spec][0]:
            continue
        message = f"Algorithm {algorithm} is incompatible with key spec {spec}."
        fails(
            kms.generate_mac,
            "InvalidKeyUsageException",
            message,
            KeyId=key["KeyId"],
            Message=b"m",
            MacAlgorithm=algorithm,
        )
        fails(
            kms.verify_mac,
            "InvalidKeyUsageException",
            message,
            KeyId=key["KeyId"],
            Message=b"m",
            Mac=tag,
            MacAlgorithm=algorithm,
        )


def test_an_unknown_mac_algorithm_fails_validation(server, kms):
    key = hmac_key(kms)
    unchecked = unchecked_client(server)
    message = fails(
        unchecked.generate_mac,
        "ValidationException",
        KeyId=key["KeyId"],
        Message=b"m",
        MacAlgorithm="HMAC_SHA_1",
    )
    assert message.startswith(
        "1 validation error detected: Value 'HMAC_SHA_1' at 'macAlgorithm' failed to satisfy "
        "constraint: Member must satisfy enum value set: ["
    )
    assert sorted(message.split("[")[1].rstrip("]").split(", ")) == sorted(ALGORITHMS)
    fails(
        unchecked.verify_mac,
        "ValidationException",
        message.replace("HMAC_SHA_1", "INVALID", 1),
        KeyId=key["KeyId"],
        Message=b"m",
        Mac=b"t" * 32,
        MacAlgorithm="INVALID",
    )


def test_mac_operations_refuse_keys_of_other_usages(kms):
    """GenerateMac and VerifyMac with an encryption or a signing key: the usage error, whatever
    MAC algorithm is asked for."""
    symmetric = new_key(kms)
    signing = new_key(kms, KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    for key, usage in ((symmetric, "ENCRYPT_DECRYPT"), (signing, "SIGN_VERIFY")):
        for algorithm in ("HMAC_SHA_256", "HMAC_SHA_512"):
            fails(
                kms.generate_mac,
                "InvalidKeyUsageException",
                f"{key['Arn']} key usage is {usage} which is not valid for GenerateMac.",
                KeyId=key["KeyId"],
                Message=b"m",
                MacAlgorithm=algorithm,
            )
            fails(
                kms.verify_mac,
                "InvalidKeyUsageException",
                f"{key['Arn']} key usage is {usage} which is not valid for VerifyMac.",
                KeyId=key["KeyId"],
                Message=b"m",
                Mac=b"\x00" * 32,
                MacAlgorithm=algorithm,
            )


def test_an_hmac_key_refuses_other_operations(kms):
    """An HMAC key cannot encrypt, make data keys, sign, or give a public key."""
    key = hmac_key(kms)
    usage_error = f"{key['Arn']} key usage is GENERATE_VERIFY_MAC which is not valid for "
    calls = [
        (kms.encrypt, {"Plaintext": b"p"}, "Encrypt"),
        (kms.generate_data_key, {"KeySpec": "AES_256"}, "GenerateDataKey"),
        (kms.generate_data_key_pair, {"KeyPairSpec": "ECC_NIST_P256"}, "GenerateDataKeyPair"),
        (kms.sign, {"Message": b"m", "SigningAlgorithm": "ECDSA_SHA_256"}, "Sign"),
    ]
    for call, params, operation in calls:
        fails(
            call,
            "InvalidKeyUsageException",
            usage_error + f"{operation}.",
            KeyId=key["KeyId"],
            **params,
        )
    fails(
        kms.get_public_key,
        "UnsupportedOperationException",
        usage_error + "GetPublicKey.",
        KeyId=key["KeyId"],
    )


def test_decrypt_naming_an_hmac_key_is_incorrect_key(kms):
    """Decrypt of a symmetric key's ciphertext naming an HMAC key: AWS compares the
    ciphertext's key with the named one before the named key's usage, and answers
    IncorrectKeyException (LocalStack's snapshot of real AWS, test_error_messaging_for_invalid_keys,
    "decrypt-invalid-key-id")."""
    key = hmac_key(kms)
    blob = kms.encrypt(KeyId=new_key(kms)["KeyId"], Plaintext=b"p")["CiphertextBlob"]
    fails(
        kms.decrypt,
        "IncorrectKeyException",
        "The key ID in the request does not identify a CMK that can perform this operation.",
        CiphertextBlob=blob,
        KeyId=key["KeyId"],
    )


# -- message limits ---------------------------------------------------------------------------


def test_message_of_4096_bytes_is_taken_and_4097_refused(server, kms):
    """boto3 refuses an over-long message itself, so an unvalidated client sends it to see the
    server refuse it (without echoing it)."""
    key = hmac_key(kms)
    largest = os.urandom(4096)
    tag = mac(kms, key, largest)
    kms.verify_mac(KeyId=key["KeyId"], Message=largest, Mac=tag, MacAlgorithm="HMAC_SHA_256")

    unchecked = unchecked_client(server)
    too_long = (
        "1 validation error detected: Value at 'message' failed to satisfy constraint: "
        "Member must have length less than or equal to 4096"
    )
    message = fails(
        unchecked.generate_mac,
        "ValidationException",
        too_long,
        KeyId=key["KeyId"],
        Message=b"A" * 4097,
        MacAlgorithm="HMAC_SHA_256",
    )
    assert "AAAA" not in message
    fails(
        unchecked.verify_mac,
        "ValidationException",
        too_long,
        KeyId=key["KeyId"],
        Message=largest + b"A",
        Mac=tag,
        MacAlgorithm="HMAC_SHA_256",
    )


def test_empty_message_and_empty_or_oversized_mac_fail_validation(server, kms):
    key = hmac_key(kms)
    unchecked = unchecked_client(server)
    fails(
        unchecked.generate_mac,
        "ValidationException",
        "1 validation error detected: Value at 'message' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1",
        KeyId=key["KeyId"],
        Message=b"",
        MacAlgorithm="HMAC_SHA_256",
    )
    fails(
        unchecked.verify_mac,
        "ValidationException",
        "1 validation error detected: Value at 'mac' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1",
        KeyId=key["KeyId"],
        Message=b"m",
        Mac=b"",
        MacAlgorithm="HMAC_SHA_256",
    )
    fails(
        unchecked.verify_mac,
        "ValidationException",
        "1 validation error detected: Value at 'mac' failed to satisfy constraint: "
        "Member must have length less than or equal to 6144",
        KeyId=key["KeyId"],
        Message=b"m",
        Mac=b"\x00" * 6145,
        MacAlgorithm="HMAC_SHA_256",
    )


# -- key state, dry run, other callers --------------------------------------------------------


def test_a_disabled_key_refuses_mac_operations_before_anything_else(kms):
    """DisabledException comes before the algorithm check, the MAC check and DryRun; enabled
    again, the key gives the same tags as before."""
    key = hmac_key(kms)
    tag = mac(kms, key, b"m")
    kms.disable_key(KeyId=key["KeyId"])
    disabled = f"{key['Arn']} is disabled."
    for algorithm in ("HMAC_SHA_256", "HMAC_SHA_384"):
        for extra in ({}, {"DryRun": True}):
            fails(
                kms.generate_mac,
                "DisabledException",
                disabled,
                KeyId=key["KeyId"],
                Message=b"m",
                MacAlgorithm=algorithm,
                **extra,
            )
            for candidate in (tag, tag[:-1]):
                fails(
                    kms.verify_mac,
                    "DisabledException",
                    disabled,
                    KeyId=key["KeyId"],
                    Message=b"m",
                    Mac=candidate,
                    MacAlgorithm=algorithm,
                    **extra,
                )
    kms.enable_key(KeyId=key["KeyId"])
    assert mac(kms, key, b"m") == tag


def test_a_key_pending_deletion_refuses_mac_operations(kms):
    key = hmac_key(kms)
    tag = mac(kms, key, b"m")
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    pending = f"{key['Arn']} is pending deletion."
    fails(
        kms.generate_mac,
        "KMSInvalidStateException",
        pending,
        KeyId=key["KeyId"],
        Message=b"m",
        MacAlgorithm="HMAC_SHA_256",
    )
    fails(
        kms.verify_mac,
        "KMSInvalidStateException",
        pending,
        KeyId=key["KeyId"],
        Message=b"m",
        Mac=tag,
        MacAlgorithm="HMAC_SHA_256",
    )


def test_dry_run_answers_412_without_a_tag(kms):
    key = hmac_key(kms)
    tag = mac(kms, key, b"m")
    response = dry_run(
        kms.generate_mac, KeyId=key["KeyId"], Message=b"m", MacAlgorithm="HMAC_SHA_256"
    )
    assert "Mac" not in response
    response = dry_run(
        kms.verify_mac, KeyId=key["KeyId"], Message=b"m", Mac=tag, MacAlgorithm="HMAC_SHA_256"
    )
    assert "MacValid" not in response
    # DryRun reports the error the real request would meet.
    fails(
        kms.generate_mac,
        "InvalidKeyUsageException",
        "Algorithm HMAC_SHA_224 is incompatible with key spec HMAC_256.",
        KeyId=key["KeyId"],
        Message=b"m",
        MacAlgorithm="HMAC_SHA_224",
        DryRun=True,
    )
    symmetric = new_key(kms)
    fails(
        kms.generate_mac,
        "InvalidKeyUsageException",
        f"{symmetric['Arn']} key usage is ENCRYPT_DECRYPT which is not valid for GenerateMac.",
        KeyId=symmetric["KeyId"],
        Message=b"m",
        MacAlgorithm="HMAC_SHA_256",
        DryRun=True,
    )
    # DryRun=False is an ordinary request.
    assert (
        kms.generate_mac(
            KeyId=key["KeyId"], Message=b"m", MacAlgorithm="HMAC_SHA_256", DryRun=False
        )["Mac"]
        == tag
    )


def test_another_account_cannot_use_the_key(server, kms, other_account):
    key = hmac_key(kms)
    tag = mac(kms, key, b"m")
    other = client(server, other_account)
    other_id = other_account["AccountId"]
    refused_to_other_account(
        other.generate_mac,
        other_id,
        key,
        "kms:GenerateMac",
        Message=b"m",
        MacAlgorithm="HMAC_SHA_256",
    )
    refused_to_other_account(
        other.verify_mac,
        other_id,
        key,
        "kms:VerifyMac",
        Message=b"m",
        Mac=tag,
        MacAlgorithm="HMAC_SHA_256",
    )
    # Its own HMAC key of the same spec makes other tags.
    own = hmac_key(other)
    assert mac(other, own, b"m") != tag
