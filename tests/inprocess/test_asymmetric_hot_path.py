"""Where the new operations run: warm, on the event loop with the database forbidden (no
read, no thread hop); generating an RSA key pair, never there."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from openkms.storage.blocking import WouldBlock, forbid_blocking
from tests.inprocess.conftest import Kms


def test_warm_asymmetric_hmac_and_kem_operations_need_no_database(kms: Kms) -> None:
    signer = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyId"]
    rsa = kms.create_key(KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")["KeyId"]
    mac = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyId"]
    agreement = kms.create_key(KeySpec="ECC_NIST_P384", KeyUsage="KEY_AGREEMENT")["KeyId"]
    kem = kms.create_key(KeySpec="ML_KEM_512", KeyUsage="ENCAPSULATE_DECAPSULATE")["KeyId"]
    symmetric = kms.create_key()["KeyId"]
    peer = (
        ec.generate_private_key(ec.SECP384R1())
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    for key_id in (signer, rsa, mac, agreement, kem, symmetric):
        kms.call("DescribeKey", KeyId=key_id)  # warms the key directory
    with forbid_blocking():
        signature = kms.call("Sign", KeyId=signer, Message=b"m", SigningAlgorithm="ECDSA_SHA_256")[
            "Signature"
        ]
        kms.call(
            "Verify",
            KeyId=signer,
            Message=b"m",
            Signature=signature,
            SigningAlgorithm="ECDSA_SHA_256",
        )
        kms.call("GetPublicKey", KeyId=signer)
        blob = kms.call(
            "Encrypt", KeyId=rsa, Plaintext=b"p", EncryptionAlgorithm="RSAES_OAEP_SHA_1"
        )["CiphertextBlob"]
        kms.call("Decrypt", KeyId=rsa, CiphertextBlob=blob, EncryptionAlgorithm="RSAES_OAEP_SHA_1")
        tag = kms.call("GenerateMac", KeyId=mac, Message=b"m", MacAlgorithm="HMAC_SHA_256")["Mac"]
        kms.call("VerifyMac", KeyId=mac, Message=b"m", Mac=tag, MacAlgorithm="HMAC_SHA_256")
        kms.call(
            "DeriveSharedSecret", KeyId=agreement, KeyAgreementAlgorithm="ECDH", PublicKey=peer
        )
        sealed = kms.call("Encapsulate", KeyId=kem, EncapsulationAlgorithm="ML_KEM")
        kms.call(
            "Decapsulate",
            KeyId=kem,
            EncapsulationAlgorithm="ML_KEM",
            SharedSecretCiphertextBlob=sealed["SharedSecretCiphertextBlob"],
        )
        kms.call("GenerateDataKeyPair", KeyId=symmetric, KeyPairSpec="ECC_NIST_P256")


@pytest.mark.parametrize("spec", ["RSA_2048", "RSA_4096"])
def test_an_rsa_data_key_pair_is_never_generated_on_the_event_loop(kms: Kms, spec: str) -> None:
    """Up to a second of CPU: on the event loop it would hold up every other request, so the
    request asks for a worker thread before it starts (where cryptography releases the GIL)."""
    symmetric = kms.create_key()["KeyId"]
    kms.call("DescribeKey", KeyId=symmetric)
    for operation in ("GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext"):
        with forbid_blocking(), pytest.raises(WouldBlock):
            kms.call(operation, KeyId=symmetric, KeyPairSpec=spec)
    pair = kms.call("GenerateDataKeyPair", KeyId=symmetric, KeyPairSpec=spec)
    assert serialization.load_der_public_key(pair["PublicKey"]).key_size == int(spec[4:])
