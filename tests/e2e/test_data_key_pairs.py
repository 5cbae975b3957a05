"""GenerateDataKeyPair and GenerateDataKeyPairWithoutPlaintext end to end, for every KeyPairSpec,
driven with boto3 against a real openkms server.

The key pair is checked without openkms code: ``cryptography`` and ``openssl pkey`` read the
PKCS#8 private key and its public half must be the PublicKey given beside it; ML-KEM-512's
seed-form PKCS#8 is read by hand and expanded with ``kyber-py``. The encrypted private key is an
ordinary symmetric ciphertext: Decrypt, with the same encryption context, gives the PKCS#8 back.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mlkem, padding, rsa
from kyber_py.ml_kem import ML_KEM_512

from tests.e2e.kms_management import (
    client,
    denied,
    fails,
    new_key,
    refused_to_other_account,
    unchecked_client,
)
from tests.support import ACCOUNT_ID, REGION

DER = serialization.Encoding.DER
SPKI = serialization.PublicFormat.SubjectPublicKeyInfo
DRY_RUN = "The request would succeed if DryRun wasn't specified."
OPERATIONS = ["generate_data_key_pair", "generate_data_key_pair_without_plaintext"]
OPERATION_NAMES = {
    "generate_data_key_pair": "GenerateDataKeyPair",
    "generate_data_key_pair_without_plaintext": "GenerateDataKeyPairWithoutPlaintext",
}

RSA_SPECS = {"RSA_2048": 2048, "RSA_3072": 3072, "RSA_4096": 4096}
EC_SPECS = {
    "ECC_NIST_P256": ec.SECP256R1,
    "ECC_NIST_P384": ec.SECP384R1,
    "ECC_NIST_P521": ec.SECP521R1,
    "ECC_SECG_P256K1": ec.SECP256K1,
}
# spec -> (raw public key length, last byte of its NIST OID 2.16.840.1.101.3.4.4.x)
ML_KEM_SPECS = {"ML_KEM_512": (800, 1), "ML_KEM_768": (1184, 2), "ML_KEM_1024": (1568, 3)}
CLASSICAL_SPECS = [*RSA_SPECS, *EC_SPECS, "ECC_NIST_EDWARDS25519"]
ALL_SPECS = [*CLASSICAL_SPECS, *ML_KEM_SPECS]
# RSA_4096 takes seconds to make: GenerateDataKeyPair makes it once, in the full check.
FAST_SPECS = [spec for spec in ALL_SPECS if spec != "RSA_4096"]
FIELDS = {"PrivateKeyCiphertextBlob", "PublicKey", "KeyId", "KeyPairSpec", "KeyMaterialId"}


def ml_kem_seed_pkcs8(spec: str, seed: bytes) -> bytes:
    """PKCS#8 OneAsymmetricKey v0 of an ML-KEM seed: the seed [0] IMPLICIT choice of
    ML-KEM-PrivateKey (RFC 9935). 86 bytes whatever the parameter set."""
    oid = bytes.fromhex("0609608648016503040400")[:-1] + bytes([ML_KEM_SPECS[spec][1]])
    return bytes.fromhex("3054020100300b") + oid + bytes.fromhex("04428040") + seed


def check_private_key(spec: str, private_der: bytes, public_der: bytes) -> None:
    """``private_der`` is a PKCS#8 key of ``spec`` whose public key is ``public_der``, and
    the two work together."""
    if spec == "ML_KEM_512":
        # cryptography has no ML-KEM-512: read the seed form by hand, expand it with kyber-py.
        assert len(private_der) == 86
        seed = private_der[-64:]
        assert private_der == ml_kem_seed_pkcs8(spec, seed)
        encapsulation_key, decapsulation_key = ML_KEM_512.key_derive(seed)
        assert public_der[-800:] == encapsulation_key
        assert len(public_der) == 822
        secret, ciphertext = ML_KEM_512.encaps(public_der[-800:])
        assert ML_KEM_512.decaps(decapsulation_key, ciphertext) == secret
        return

    private_key: Any = serialization.load_der_private_key(private_der, None)
    assert private_key.public_key().public_bytes(DER, SPKI) == public_der
    public_key: Any = serialization.load_der_public_key(public_der)
    message = b"made with the data key pair"
    if spec in RSA_SPECS:
        assert isinstance(private_key, rsa.RSAPrivateKey)
        assert private_key.key_size == RSA_SPECS[spec]
        signature = private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    elif spec in EC_SPECS:
        assert isinstance(private_key, ec.EllipticCurvePrivateKey)
        assert isinstance(private_key.curve, EC_SPECS[spec])
        signature = private_key.sign(message, ec.ECDSA(hashes.SHA256()))
        public_key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    elif spec == "ECC_NIST_EDWARDS25519":
        assert isinstance(private_key, ed25519.Ed25519PrivateKey)
        public_key.verify(private_key.sign(message), message)
        assert len(public_der) == 44
    else:
        kind = mlkem.MLKEM768PrivateKey if spec == "ML_KEM_768" else mlkem.MLKEM1024PrivateKey
        assert isinstance(private_key, kind)
        # The seed form, as for ML-KEM-512: the same 86 bytes for every parameter set.
        assert private_der == ml_kem_seed_pkcs8(spec, private_der[-64:])
        secret, ciphertext = public_key.encapsulate()
        assert private_key.decapsulate(ciphertext) == secret


def openssl_public_key(private_der: bytes, workdir: Path) -> bytes:
    """The public key that ``openssl pkey`` finds in a DER PKCS#8 private key."""
    (workdir / "private.der").write_bytes(private_der)
    subprocess.run(
        [
            "openssl", "pkey", "-inform", "DER", "-in", "private.der",
            "-pubout", "-outform", "DER", "-out", "public.der",
        ],
        cwd=workdir, check=True, capture_output=True,
    )  # fmt: skip
    return (workdir / "public.der").read_bytes()


def invalid_ciphertext(call: Any, **params: Any) -> None:
    fails(call, "InvalidCiphertextException", "", **params)


def dry_run(call: Any, **params: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as info:
        call(DryRun=True, **params)
    response = info.value.response
    assert response["Error"]["Code"] == "DryRunOperationException", response["Error"]
    assert response["Error"]["Message"] == DRY_RUN
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 412
    return response


@pytest.fixture
def key(kms) -> dict[str, Any]:
    return new_key(kms, Description="data key pair tests")


# -- the key pairs ----------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ALL_SPECS)
def test_generate_data_key_pair(kms, key, spec):
    """A PKCS#8 private key of the spec, its public key beside it, and the private key
    encrypted under the KMS key: Decrypt with the same encryption context gives it back."""
    context = {"purpose": "data key pair", "spec": spec}
    pair = kms.generate_data_key_pair(
        KeyId=key["KeyId"], KeyPairSpec=spec, EncryptionContext=context
    )
    assert set(pair) == FIELDS | {"PrivateKeyPlaintext", "ResponseMetadata"}
    assert pair["KeyId"] == key["Arn"]
    assert pair["KeyPairSpec"] == spec
    assert pair["KeyMaterialId"] == key["CurrentKeyMaterialId"]
    check_private_key(spec, pair["PrivateKeyPlaintext"], pair["PublicKey"])
    assert pair["PrivateKeyPlaintext"] not in pair["PrivateKeyCiphertextBlob"]

    decrypted = kms.decrypt(
        CiphertextBlob=pair["PrivateKeyCiphertextBlob"], EncryptionContext=context
    )
    assert decrypted["Plaintext"] == pair["PrivateKeyPlaintext"]
    assert decrypted["KeyId"] == key["Arn"]
    assert decrypted["KeyMaterialId"] == key["CurrentKeyMaterialId"]


@pytest.mark.parametrize("spec", FAST_SPECS)
def test_generate_data_key_pair_without_plaintext(kms, key, spec):
    """The same without the private key in the answer: decrypted later, it is the PKCS#8 of
    the public key that was given."""
    context = {"later": "yes"}
    pair = kms.generate_data_key_pair_without_plaintext(
        KeyId=key["Arn"], KeyPairSpec=spec, EncryptionContext=context
    )
    assert set(pair) == FIELDS | {"ResponseMetadata"}
    assert pair["KeyId"] == key["Arn"]
    assert pair["KeyPairSpec"] == spec
    assert pair["KeyMaterialId"] == key["CurrentKeyMaterialId"]
    private_der = kms.decrypt(
        CiphertextBlob=pair["PrivateKeyCiphertextBlob"], EncryptionContext=context
    )["Plaintext"]
    check_private_key(spec, private_der, pair["PublicKey"])


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl command")
@pytest.mark.parametrize("spec", [spec for spec in CLASSICAL_SPECS if spec != "RSA_4096"])
def test_openssl_reads_the_private_key(kms, key, tmp_path, spec):
    """``openssl pkey -inform DER`` reads the private key and finds the PublicKey in it."""
    pair = kms.generate_data_key_pair(KeyId=key["KeyId"], KeyPairSpec=spec)
    assert openssl_public_key(pair["PrivateKeyPlaintext"], tmp_path) == pair["PublicKey"]


@pytest.mark.parametrize("spec", ["ECC_NIST_P256", "ML_KEM_512", "ECC_NIST_EDWARDS25519"])
def test_every_key_pair_is_fresh(kms, key, spec):
    pairs = [kms.generate_data_key_pair(KeyId=key["KeyId"], KeyPairSpec=spec) for _ in range(3)]
    assert len({pair["PrivateKeyPlaintext"] for pair in pairs}) == 3
    assert len({pair["PublicKey"] for pair in pairs}) == 3
    assert len({pair["PrivateKeyCiphertextBlob"] for pair in pairs}) == 3


def test_the_kms_key_may_be_named_by_alias(kms, key):
    alias = f"alias/data-key-pairs-{uuid.uuid4().hex}"
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    for name in (alias, f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:{alias}"):
        pair = kms.generate_data_key_pair_without_plaintext(KeyId=name, KeyPairSpec="ECC_NIST_P384")
        assert pair["KeyId"] == key["Arn"]
        assert kms.decrypt(CiphertextBlob=pair["PrivateKeyCiphertextBlob"])["KeyId"] == key["Arn"]


@pytest.mark.parametrize("operation", OPERATIONS)
def test_the_encryption_context_is_needed_to_decrypt_the_private_key(kms, key, operation):
    context = {"tenant": "t-7", "use": "signing"}
    pair = getattr(kms, operation)(
        KeyId=key["KeyId"], KeyPairSpec="ECC_NIST_P256", EncryptionContext=context
    )
    blob = pair["PrivateKeyCiphertextBlob"]
    for wrong in (
        None,
        {},
        {"tenant": "t-7"},
        {**context, "use": "encryption"},
        {**context, "x": ""},
    ):
        params: dict[str, Any] = {"CiphertextBlob": blob}
        if wrong is not None:
            params["EncryptionContext"] = wrong
        invalid_ciphertext(kms.decrypt, **params)
    private_der = kms.decrypt(CiphertextBlob=blob, EncryptionContext=context)["Plaintext"]
    check_private_key("ECC_NIST_P256", private_der, pair["PublicKey"])


def test_the_private_key_ciphertext_re_encrypts_to_another_key(kms, key):
    """PrivateKeyCiphertextBlob is an ordinary ciphertext of the KMS key."""
    destination = new_key(kms)
    pair = kms.generate_data_key_pair(KeyId=key["KeyId"], KeyPairSpec="ECC_NIST_P521")
    moved = kms.re_encrypt(
        CiphertextBlob=pair["PrivateKeyCiphertextBlob"], DestinationKeyId=destination["KeyId"]
    )
    assert moved["SourceKeyId"] == key["Arn"]
    decrypted = kms.decrypt(CiphertextBlob=moved["CiphertextBlob"])
    assert decrypted["KeyId"] == destination["Arn"]
    assert decrypted["Plaintext"] == pair["PrivateKeyPlaintext"]


# -- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("operation", OPERATIONS)
def test_sm2_is_not_offered(kms, key, operation):
    fails(
        getattr(kms, operation),
        "UnsupportedOperationException",
        "KeyPairSpec SM2 is not supported in this Region",
        KeyId=key["KeyId"],
        KeyPairSpec="SM2",
    )


@pytest.mark.parametrize("operation", OPERATIONS)
def test_key_pair_spec_is_validated(server, key, operation):
    """Not a DataKeyPairSpec (ML-DSA, HMAC, an RSA size AWS lacks), or none at all."""
    call = getattr(unchecked_client(server), operation)
    for spec in ("RSA_1024", "ML_DSA_65", "HMAC_256", "SYMMETRIC_DEFAULT"):
        message = fails(call, "ValidationException", KeyId=key["KeyId"], KeyPairSpec=spec)
        assert message.startswith(
            f"1 validation error detected: Value '{spec}' at 'keyPairSpec' failed to satisfy "
            "constraint: Member must satisfy enum value set: ["
        )
        offered = message.split("[")[1].rstrip("]").split(", ")
        assert sorted(offered) == sorted([*ALL_SPECS, "SM2"])
    fails(
        call,
        "ValidationException",
        "1 validation error detected: Value null at 'keyPairSpec' failed to satisfy "
        "constraint: Member must not be null",
        KeyId=key["KeyId"],
    )


@pytest.mark.parametrize("operation", OPERATIONS)
def test_an_asymmetric_encryption_key_cannot_protect_a_key_pair(kms, operation):
    """Only a symmetric encryption key encrypts data key pairs: an RSA ENCRYPT_DECRYPT key has
    the right usage and the wrong spec."""
    rsa_key = new_key(kms, KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")
    fails(
        getattr(kms, operation),
        "InvalidKeyUsageException",
        f"{rsa_key['Arn']} key KeySpec is RSA_2048 which is not valid for "
        f"{OPERATION_NAMES[operation]}.",
        KeyId=rsa_key["KeyId"],
        KeyPairSpec="ECC_NIST_P256",
    )


@pytest.mark.parametrize("operation", OPERATIONS)
def test_keys_of_other_usages_are_refused(kms, operation):
    keys = [
        (new_key(kms, KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC"), "GENERATE_VERIFY_MAC"),
        (new_key(kms, KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY"), "SIGN_VERIFY"),
        (new_key(kms, KeySpec="ECC_NIST_P384", KeyUsage="KEY_AGREEMENT"), "KEY_AGREEMENT"),
        (
            new_key(kms, KeySpec="ML_KEM_512", KeyUsage="ENCAPSULATE_DECAPSULATE"),
            "ENCAPSULATE_DECAPSULATE",
        ),
    ]
    for other, usage in keys:
        fails(
            getattr(kms, operation),
            "InvalidKeyUsageException",
            f"{other['Arn']} key usage is {usage} which is not valid for "
            f"{OPERATION_NAMES[operation]}.",
            KeyId=other["KeyId"],
            KeyPairSpec="ECC_NIST_P256",
        )


def test_a_disabled_or_deleted_kms_key_makes_no_key_pairs(kms, key):
    """DisabledException first, before the SM2 refusal and DryRun; pending deletion is an
    invalid state."""
    kms.disable_key(KeyId=key["KeyId"])
    for operation in OPERATIONS:
        for spec, extra in (("ECC_NIST_P256", {}), ("SM2", {}), ("ML_KEM_768", {"DryRun": True})):
            fails(
                getattr(kms, operation),
                "DisabledException",
                f"{key['Arn']} is disabled.",
                KeyId=key["KeyId"],
                KeyPairSpec=spec,
                **extra,
            )
    kms.enable_key(KeyId=key["KeyId"])
    assert kms.generate_data_key_pair(KeyId=key["KeyId"], KeyPairSpec="ECC_NIST_P256")["KeyId"]

    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    for operation in OPERATIONS:
        fails(
            getattr(kms, operation),
            "KMSInvalidStateException",
            f"{key['Arn']} is pending deletion.",
            KeyId=key["KeyId"],
            KeyPairSpec="ECC_NIST_P256",
        )


@pytest.mark.parametrize("operation", OPERATIONS)
def test_dry_run_answers_412_and_makes_nothing(kms, key, operation):
    response = dry_run(getattr(kms, operation), KeyId=key["KeyId"], KeyPairSpec="ECC_NIST_P256")
    assert not FIELDS & set(response)
    assert "PrivateKeyPlaintext" not in response
    # The error a real request would meet comes first.
    rsa_key = new_key(kms, KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")
    fails(
        getattr(kms, operation),
        "InvalidKeyUsageException",
        f"{rsa_key['Arn']} key KeySpec is RSA_2048 which is not valid for "
        f"{OPERATION_NAMES[operation]}.",
        KeyId=rsa_key["KeyId"],
        KeyPairSpec="ECC_NIST_P256",
        DryRun=True,
    )
    assert getattr(kms, operation)(KeyId=key["KeyId"], KeyPairSpec="ECC_NIST_P256", DryRun=False)


def test_another_account_cannot_use_the_kms_key(server, kms, key, other_account):
    other = client(server, other_account)
    other_id = other_account["AccountId"]
    for operation in OPERATIONS:
        refused_to_other_account(
            getattr(other, operation),
            other_id,
            key,
            f"kms:{OPERATION_NAMES[operation]}",
            KeyPairSpec="ECC_NIST_P256",
        )
    # Nor can it decrypt a private key made for the first account.
    pair = kms.generate_data_key_pair_without_plaintext(
        KeyId=key["KeyId"], KeyPairSpec="ECC_NIST_P256"
    )
    fails(
        other.decrypt,
        "AccessDeniedException",
        denied(other_id, "kms:Decrypt", key["Arn"]),
        CiphertextBlob=pair["PrivateKeyCiphertextBlob"],
    )
