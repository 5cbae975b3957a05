"""The key spec × operation matrix: every KeySpec × KeyUsage pair AWS allows, asked to do every
cryptographic operation, succeeds where AWS's developer guide says the key can do it and is
refused with AWS's error everywhere else.

ALLOWED and CAN below are written from the guide ("Key spec reference", "Key usage") and the
API reference, not from openkms's key-spec table, so the test can disagree with the code.
"""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from openkms.errors import KmsError
from tests.inprocess.conftest import Kms, assert_error

RSA = ("RSA_2048", "RSA_3072", "RSA_4096")
NIST = ("ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521")
HMAC = ("HMAC_224", "HMAC_256", "HMAC_384", "HMAC_512")
ML_DSA = ("ML_DSA_44", "ML_DSA_65", "ML_DSA_87")
ML_KEM = ("ML_KEM_512", "ML_KEM_768", "ML_KEM_1024")
USAGES = (
    "ENCRYPT_DECRYPT",
    "SIGN_VERIFY",
    "GENERATE_VERIFY_MAC",
    "KEY_AGREEMENT",
    "ENCAPSULATE_DECAPSULATE",
)

ALLOWED: dict[str, tuple[str, ...]] = {
    "SYMMETRIC_DEFAULT": ("ENCRYPT_DECRYPT",),
    **{spec: ("ENCRYPT_DECRYPT", "SIGN_VERIFY") for spec in RSA},
    **{spec: ("SIGN_VERIFY", "KEY_AGREEMENT") for spec in NIST},
    "ECC_SECG_P256K1": ("SIGN_VERIFY",),
    "ECC_NIST_EDWARDS25519": ("SIGN_VERIFY",),
    **{spec: ("GENERATE_VERIFY_MAC",) for spec in HMAC},
    **{spec: ("SIGN_VERIFY",) for spec in ML_DSA},
    **{spec: ("ENCAPSULATE_DECAPSULATE",) for spec in ML_KEM},
}

# What a key of each usage can do. GetPublicKey: every asymmetric key.
CAN: dict[str, set[str]] = {
    "ENCRYPT_DECRYPT": {"Encrypt"},
    "SIGN_VERIFY": {"Sign"},
    "GENERATE_VERIFY_MAC": {"GenerateMac"},
    "KEY_AGREEMENT": {"DeriveSharedSecret"},
    "ENCAPSULATE_DECAPSULATE": {"Encapsulate"},
}
SYMMETRIC_ONLY = {"GenerateDataKey", "GenerateDataKeyPair"}  # need ENCRYPT_DECRYPT and symmetric


def _request(operation: str, key: dict[str, Any]) -> dict[str, Any]:
    """A request that is right for the key whenever the key can do the operation."""
    spec, key_id = key["KeySpec"], key["KeyId"]
    if operation == "Encrypt":
        algorithm = "SYMMETRIC_DEFAULT" if spec == "SYMMETRIC_DEFAULT" else "RSAES_OAEP_SHA_256"
        return {"KeyId": key_id, "Plaintext": b"p", "EncryptionAlgorithm": algorithm}
    if operation == "Sign":
        algorithm = (key.get("SigningAlgorithms") or ["ECDSA_SHA_256"])[-1]
        if algorithm == "ED25519_PH_SHA_512":
            return {
                "KeyId": key_id,
                "Message": bytes(64),
                "MessageType": "DIGEST",
                "SigningAlgorithm": algorithm,
            }
        return {"KeyId": key_id, "Message": b"m", "SigningAlgorithm": algorithm}
    if operation == "GenerateMac":
        algorithm = (key.get("MacAlgorithms") or ["HMAC_SHA_256"])[0]
        return {"KeyId": key_id, "Message": b"m", "MacAlgorithm": algorithm}
    if operation == "DeriveSharedSecret":
        curve = {"ECC_NIST_P384": ec.SECP384R1(), "ECC_NIST_P521": ec.SECP521R1()}.get(
            spec, ec.SECP256R1()
        )
        peer = (
            ec.generate_private_key(curve)
            .public_key()
            .public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        return {"KeyId": key_id, "KeyAgreementAlgorithm": "ECDH", "PublicKey": peer}
    if operation == "Encapsulate":
        return {"KeyId": key_id, "EncapsulationAlgorithm": "ML_KEM"}
    if operation == "GenerateDataKey":
        return {"KeyId": key_id, "NumberOfBytes": 32}
    if operation == "GenerateDataKeyPair":
        return {"KeyId": key_id, "KeyPairSpec": "ECC_NIST_P256"}
    return {"KeyId": key_id}  # GetPublicKey


OPERATIONS = ("Encrypt", "Sign", "GenerateMac", "DeriveSharedSecret", "Encapsulate")
ALL_OPERATIONS = (*OPERATIONS, "GetPublicKey", *sorted(SYMMETRIC_ONLY))
PAIRS = [(spec, usage) for spec, usages in ALLOWED.items() for usage in usages]


@pytest.fixture(scope="module")
def keys(module_kms: Kms) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (spec, usage): module_kms.create_key(
            **({} if spec == "SYMMETRIC_DEFAULT" else {"KeySpec": spec, "KeyUsage": usage})
        )
        for spec, usage in PAIRS
    }


@pytest.mark.parametrize("spec, usage", PAIRS)
@pytest.mark.parametrize("operation", ALL_OPERATIONS)
def test_spec_usage_operation_cell(module_kms, keys, spec, usage, operation):
    key = keys[(spec, usage)]
    symmetric = spec == "SYMMETRIC_DEFAULT"
    asymmetric = not symmetric and not spec.startswith("HMAC_")
    if operation in SYMMETRIC_ONLY:
        allowed = symmetric
    elif operation == "GetPublicKey":
        allowed = asymmetric
    else:
        allowed = operation in CAN[usage]
    request = _request(operation, key)
    if allowed:
        result = module_kms.call(operation, **request)
        assert result["KeyId"] == key["Arn"]
        return
    with pytest.raises(KmsError) as caught:
        module_kms.call(operation, **request)
    arn = key["Arn"]
    if operation == "GetPublicKey":
        expected = (
            "UnsupportedOperationException",
            f"{arn} key usage is {usage} which is not valid for GetPublicKey.",
        )
    elif operation in SYMMETRIC_ONLY and usage == "ENCRYPT_DECRYPT":
        expected = (
            "InvalidKeyUsageException",
            f"{arn} key KeySpec is {spec} which is not valid for {operation}.",
        )
    else:
        expected = (
            "InvalidKeyUsageException",
            f"{arn} key usage is {usage} which is not valid for {operation}.",
        )
    assert_error(caught.value, *expected)


REFUSED = [
    (spec, usage) for spec in sorted(ALLOWED) for usage in USAGES if usage not in ALLOWED[spec]
]


@pytest.mark.parametrize("spec, usage", REFUSED)
def test_create_key_refuses_every_pair_aws_refuses(module_kms, spec, usage):
    with pytest.raises(KmsError) as caught:
        module_kms.create_key(KeySpec=spec, KeyUsage=usage)
    assert_error(
        caught.value,
        "ValidationException",
        f"KeyUsage {usage} is not compatible with KeySpec {spec}",
    )


@pytest.mark.parametrize("spec, usage", PAIRS)
def test_describe_key_lists_the_algorithms_of_its_usage_only(keys, spec, usage):
    metadata = keys[(spec, usage)]
    lists = {
        name
        for name in (
            "EncryptionAlgorithms",
            "SigningAlgorithms",
            "MacAlgorithms",
            "KeyAgreementAlgorithms",
            "EncapsulationAlgorithms",
        )
        if name in metadata
    }
    expected = {
        "ENCRYPT_DECRYPT": "EncryptionAlgorithms",
        "SIGN_VERIFY": "SigningAlgorithms",
        "GENERATE_VERIFY_MAC": "MacAlgorithms",
        "KEY_AGREEMENT": "KeyAgreementAlgorithms",
        "ENCAPSULATE_DECAPSULATE": "EncapsulationAlgorithms",
    }[usage]
    assert lists == {expected}
    assert (metadata["KeySpec"], metadata["CustomerMasterKeySpec"]) == (spec, spec)
    assert ("CurrentKeyMaterialId" in metadata) is (spec == "SYMMETRIC_DEFAULT")
