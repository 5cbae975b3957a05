"""Key agreement and key encapsulation end to end: DeriveSharedSecret with ECC_NIST_P256/384/521
KEY_AGREEMENT keys, and Encapsulate/Decapsulate with ML_KEM_512/768/1024 keys, driven with
boto3 against a real openkms server.

The other party is played by ``cryptography``, the ``openssl`` command line or ``kyber-py``,
using only what GetPublicKey hands out: what it computes must equal what openkms computes with
the private key it keeps.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mlkem, rsa, x25519
from kyber_py.ml_kem import ML_KEM_512

from tests.e2e.kms_management import (
    client,
    fails,
    new_key,
    refused_to_other_account,
    unchecked_client,
)

DER = serialization.Encoding.DER
SPKI = serialization.PublicFormat.SubjectPublicKeyInfo
DRY_RUN = "The request would succeed if DryRun wasn't specified."

# spec -> (curve, shared secret length, openssl curve name)
CURVES = {
    "ECC_NIST_P256": (ec.SECP256R1, 32, "P-256"),
    "ECC_NIST_P384": (ec.SECP384R1, 48, "P-384"),
    "ECC_NIST_P521": (ec.SECP521R1, 66, "P-521"),
}
# spec -> (raw public key length, ciphertext length, x in its OID 2.16.840.1.101.3.4.4.x)
ML_KEM = {
    "ML_KEM_512": (800, 768, 1),
    "ML_KEM_768": (1184, 1088, 2),
    "ML_KEM_1024": (1568, 1568, 3),
}


def agreement_key(kms: Any, spec: str = "ECC_NIST_P256") -> dict[str, Any]:
    return new_key(kms, KeySpec=spec, KeyUsage="KEY_AGREEMENT")


def kem_key(kms: Any, spec: str = "ML_KEM_768") -> dict[str, Any]:
    return new_key(kms, KeySpec=spec, KeyUsage="ENCAPSULATE_DECAPSULATE")


def public_key(kms: Any, key: dict[str, Any]) -> bytes:
    return kms.get_public_key(KeyId=key["KeyId"])["PublicKey"]


def spki(key: Any) -> bytes:
    return key.public_key().public_bytes(DER, SPKI)


def derive(kms: Any, key: dict[str, Any], peer_public: bytes) -> bytes:
    return kms.derive_shared_secret(
        KeyId=key["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=peer_public
    )["SharedSecret"]


def decapsulate(kms: Any, key: dict[str, Any], ciphertext: bytes) -> bytes:
    return kms.decapsulate(
        KeyId=key["KeyId"], SharedSecretCiphertextBlob=ciphertext, EncapsulationAlgorithm="ML_KEM"
    )["SharedSecret"]


def dry_run(call: Any, **params: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as info:
        call(DryRun=True, **params)
    response = info.value.response
    assert response["Error"]["Code"] == "DryRunOperationException", response["Error"]
    assert response["Error"]["Message"] == DRY_RUN
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 412
    return response


def unusable_public_key(call: Any, **params: Any) -> None:
    """AWS answers a public key it cannot use with ValidationException and no message."""
    fails(call, "ValidationException", "", **params)


def invalid_ciphertext(call: Any, **params: Any) -> None:
    fails(call, "InvalidCiphertextException", "", **params)


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def pem_of(der: bytes) -> bytes:
    """PEM armour of a DER SubjectPublicKeyInfo, by hand (RFC 7468)."""
    text = base64.b64encode(der).decode()
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    return (
        "-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n"
    ).encode()


# -- KEY_AGREEMENT keys -----------------------------------------------------------------------


@pytest.mark.parametrize("spec", CURVES)
def test_a_key_agreement_key_lists_ecdh_and_gives_its_public_key(kms, spec):
    key = agreement_key(kms, spec)
    described = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    for metadata in (key, described):
        assert metadata["KeyUsage"] == "KEY_AGREEMENT"
        assert metadata["KeySpec"] == metadata["CustomerMasterKeySpec"] == spec
        assert metadata["KeyAgreementAlgorithms"] == ["ECDH"]
        for other_list in (
            "EncryptionAlgorithms",
            "SigningAlgorithms",
            "MacAlgorithms",
            "EncapsulationAlgorithms",
        ):
            assert other_list not in metadata
        assert "CurrentKeyMaterialId" not in metadata

    given = kms.get_public_key(KeyId=key["KeyId"])
    assert given["KeyId"] == key["Arn"]
    assert given["KeyUsage"] == "KEY_AGREEMENT"
    assert given["KeySpec"] == spec
    assert given["KeyAgreementAlgorithms"] == ["ECDH"]
    assert "SigningAlgorithms" not in given and "EncryptionAlgorithms" not in given
    loaded = serialization.load_der_public_key(given["PublicKey"])
    assert isinstance(loaded, ec.EllipticCurvePublicKey)
    assert isinstance(loaded.curve, CURVES[spec][0])
    assert loaded.public_bytes(DER, SPKI) == given["PublicKey"]


def test_which_keys_can_agree(kms):
    """Only the NIST curves take KEY_AGREEMENT: not secp256k1, Ed25519, RSA or the others."""
    for spec in (
        "ECC_SECG_P256K1",
        "ECC_NIST_EDWARDS25519",
        "RSA_2048",
        "HMAC_256",
        "ML_KEM_768",
        "ML_DSA_44",
        "SYMMETRIC_DEFAULT",
    ):
        fails(
            kms.create_key,
            "ValidationException",
            f"KeyUsage KEY_AGREEMENT is not compatible with KeySpec {spec}",
            KeySpec=spec,
            KeyUsage="KEY_AGREEMENT",
        )


# -- DeriveSharedSecret -----------------------------------------------------------------------


@pytest.mark.parametrize("spec", CURVES)
def test_shared_secret_is_what_the_other_party_computes(kms, spec):
    """The other party's private key times the KMS key's public key is the SharedSecret, the
    raw x-coordinate, the same each time for the same public key."""
    curve, length, _ = CURVES[spec]
    key = agreement_key(kms, spec)
    kms_public = serialization.load_der_public_key(public_key(kms, key))
    peer = ec.generate_private_key(curve())
    expected = peer.exchange(ec.ECDH(), kms_public)
    assert len(expected) == length

    response = kms.derive_shared_secret(
        KeyId=key["Arn"], KeyAgreementAlgorithm="ECDH", PublicKey=spki(peer)
    )
    assert set(response) == {
        "KeyId",
        "SharedSecret",
        "KeyAgreementAlgorithm",
        "KeyOrigin",
        "ResponseMetadata",
    }
    assert response["SharedSecret"] == expected
    assert response["KeyId"] == key["Arn"]
    assert response["KeyAgreementAlgorithm"] == "ECDH"
    assert response["KeyOrigin"] == "AWS_KMS"

    assert derive(kms, key, spki(peer)) == expected  # the same again: no randomness
    another_peer = ec.generate_private_key(curve())
    assert derive(kms, key, spki(another_peer)) == another_peer.exchange(ec.ECDH(), kms_public)
    assert derive(kms, key, spki(another_peer)) != expected


def test_two_kms_keys_agree_with_each_other(kms):
    """Two KMS keys, each given the other's public key, derive the same secret."""
    first, second = agreement_key(kms, "ECC_NIST_P384"), agreement_key(kms, "ECC_NIST_P384")
    one = derive(kms, first, public_key(kms, second))
    assert one == derive(kms, second, public_key(kms, first))
    assert len(one) == 48


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl command")
@pytest.mark.parametrize("spec", CURVES)
def test_shared_secret_is_what_openssl_derives(kms, tmp_path, spec):
    """The other party on the command line: ``openssl pkeyutl -derive`` with its own key and
    GetPublicKey's, as a customer would do it; its public key sent as openssl writes it in
    DER. (Its PEM is refused: AWS takes DER SubjectPublicKeyInfo only.)"""
    _, length, curve_name = CURVES[spec]
    key = agreement_key(kms, spec)
    (tmp_path / "kms_pub.pem").write_bytes(pem_of(public_key(kms, key)))
    openssl(
        "genpkey", "-algorithm", "EC", "-pkeyopt", f"ec_paramgen_curve:{curve_name}",
        "-out", "peer.pem", cwd=tmp_path,
    )  # fmt: skip
    openssl(
        "pkey", "-in", "peer.pem", "-pubout", "-outform", "DER", "-out", "peer_pub.der",
        cwd=tmp_path,
    )  # fmt: skip
    openssl("pkey", "-in", "peer.pem", "-pubout", "-out", "peer_pub.pem", cwd=tmp_path)
    openssl(
        "pkeyutl", "-derive", "-inkey", "peer.pem", "-peerkey", "kms_pub.pem",
        "-out", "secret.bin", cwd=tmp_path,
    )  # fmt: skip
    expected = (tmp_path / "secret.bin").read_bytes()
    assert len(expected) == length
    assert derive(kms, key, (tmp_path / "peer_pub.der").read_bytes()) == expected
    unusable_public_key(
        kms.derive_shared_secret,
        KeyId=key["KeyId"],
        KeyAgreementAlgorithm="ECDH",
        PublicKey=(tmp_path / "peer_pub.pem").read_bytes(),
    )


def test_unusable_public_keys_fail_validation(kms):
    """Not a key, a key of another curve or kind, a bare point, a point off the curve, a cut
    SPKI, PEM instead of DER: ValidationException with no message."""
    key = agreement_key(kms, "ECC_NIST_P256")
    good = spki(ec.generate_private_key(ec.SECP256R1()))
    # The last byte of the point's y flipped: (x, y') is not on P-256.
    off_curve = good[:-1] + bytes([good[-1] ^ 0x01])
    bare_point = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    candidates = [
        b"InvalidPublicKey",
        b"\x00",
        os.urandom(91),
        good[:-1],
        good[:40],
        good + b"\x00",
        off_curve,
        good[:27] + b"\x00" * 64,  # (0, 0)
        b"\x30\x19" + good[2:23] + b"\x03\x02\x00\x00",  # the point at infinity
        bare_point,
        spki(ec.generate_private_key(ec.SECP384R1())),
        spki(ec.generate_private_key(ec.SECP521R1())),
        spki(ec.generate_private_key(ec.SECP256K1())),
        spki(x25519.X25519PrivateKey.generate()),
        spki(ed25519.Ed25519PrivateKey.generate()),
        spki(rsa.generate_private_key(65537, 1024)),
        base64.b64encode(good),  # the CLI's double-base64 mistake
        pem_of(good),  # AWS takes DER only
        b"\n" + pem_of(good),
        b"-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n",
    ]
    for candidate in candidates:
        unusable_public_key(
            kms.derive_shared_secret,
            KeyId=key["KeyId"],
            KeyAgreementAlgorithm="ECDH",
            PublicKey=candidate,
        )
    # A P-384 key refuses a P-256 public key in turn.
    unusable_public_key(
        kms.derive_shared_secret,
        KeyId=agreement_key(kms, "ECC_NIST_P384")["KeyId"],
        KeyAgreementAlgorithm="ECDH",
        PublicKey=good,
    )
    assert len(derive(kms, key, good)) == 32


def test_derive_shared_secret_request_validation(server, kms):
    key = agreement_key(kms)
    unchecked = unchecked_client(server)
    peer = spki(ec.generate_private_key(ec.SECP256R1()))
    fails(
        unchecked.derive_shared_secret,
        "ValidationException",
        "1 validation error detected: Value 'INVALID' at 'keyAgreementAlgorithm' failed to "
        "satisfy constraint: Member must satisfy enum value set: [ECDH]",
        KeyId=key["KeyId"],
        KeyAgreementAlgorithm="INVALID",
        PublicKey=peer,
    )
    fails(
        unchecked.derive_shared_secret,
        "ValidationException",
        "1 validation error detected: Value at 'publicKey' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1",
        KeyId=key["KeyId"],
        KeyAgreementAlgorithm="ECDH",
        PublicKey=b"",
    )
    fails(
        unchecked.derive_shared_secret,
        "ValidationException",
        "1 validation error detected: Value at 'publicKey' failed to satisfy constraint: "
        "Member must have length less than or equal to 8192",
        KeyId=key["KeyId"],
        KeyAgreementAlgorithm="ECDH",
        PublicKey=b"\x30" * 8193,
    )


def test_derive_shared_secret_refuses_keys_of_other_usages(kms):
    signing = new_key(kms, KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    symmetric = new_key(kms)
    kem = kem_key(kms, "ML_KEM_512")
    peer = spki(ec.generate_private_key(ec.SECP256R1()))
    for key, usage in (
        (signing, "SIGN_VERIFY"),
        (symmetric, "ENCRYPT_DECRYPT"),
        (kem, "ENCAPSULATE_DECAPSULATE"),
    ):
        fails(
            kms.derive_shared_secret,
            "InvalidKeyUsageException",
            f"{key['Arn']} key usage is {usage} which is not valid for DeriveSharedSecret.",
            KeyId=key["KeyId"],
            KeyAgreementAlgorithm="ECDH",
            PublicKey=peer,
        )


def test_a_key_agreement_key_refuses_other_operations(kms):
    key = agreement_key(kms)
    usage_error = f"{key['Arn']} key usage is KEY_AGREEMENT which is not valid for "
    calls = [
        (kms.sign, {"Message": b"m", "SigningAlgorithm": "ECDSA_SHA_256"}, "Sign"),
        (
            kms.verify,
            {"Message": b"m", "Signature": b"s" * 64, "SigningAlgorithm": "ECDSA_SHA_256"},
            "Verify",
        ),
        (kms.encrypt, {"Plaintext": b"p"}, "Encrypt"),
        (kms.encapsulate, {"EncapsulationAlgorithm": "ML_KEM"}, "Encapsulate"),
    ]
    for call, params, operation in calls:
        fails(
            call,
            "InvalidKeyUsageException",
            usage_error + f"{operation}.",
            KeyId=key["KeyId"],
            **params,
        )


def test_a_disabled_key_agreement_key_refuses_before_looking_at_the_public_key(kms):
    key = agreement_key(kms)
    peer = spki(ec.generate_private_key(ec.SECP256R1()))
    expected = derive(kms, key, peer)
    kms.disable_key(KeyId=key["KeyId"])
    for public, extra in ((peer, {}), (b"InvalidPublicKey", {}), (peer, {"DryRun": True})):
        fails(
            kms.derive_shared_secret,
            "DisabledException",
            f"{key['Arn']} is disabled.",
            KeyId=key["KeyId"],
            KeyAgreementAlgorithm="ECDH",
            PublicKey=public,
            **extra,
        )
    kms.enable_key(KeyId=key["KeyId"])
    assert derive(kms, key, peer) == expected


def test_derive_shared_secret_dry_run(kms):
    key = agreement_key(kms)
    peer = spki(ec.generate_private_key(ec.SECP256R1()))
    response = dry_run(
        kms.derive_shared_secret, KeyId=key["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=peer
    )
    assert "SharedSecret" not in response
    signing = new_key(kms, KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    fails(
        kms.derive_shared_secret,
        "InvalidKeyUsageException",
        f"{signing['Arn']} key usage is SIGN_VERIFY which is not valid for DeriveSharedSecret.",
        KeyId=signing["KeyId"],
        KeyAgreementAlgorithm="ECDH",
        PublicKey=peer,
        DryRun=True,
    )


def test_another_account_cannot_derive_with_the_key(server, kms, other_account):
    key = agreement_key(kms)
    other = client(server, other_account)
    refused_to_other_account(
        other.derive_shared_secret,
        other_account["AccountId"],
        key,
        "kms:DeriveSharedSecret",
        KeyAgreementAlgorithm="ECDH",
        PublicKey=spki(ec.generate_private_key(ec.SECP256R1())),
    )
    refused_to_other_account(
        other.get_public_key, other_account["AccountId"], key, "kms:GetPublicKey"
    )


# -- ML-KEM keys ------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ML_KEM)
def test_an_ml_kem_key_lists_ml_kem_and_gives_its_public_key(kms, spec):
    """The SPKI carries the FIPS 203 encapsulation key under its NIST OID; cryptography reads
    the ML-KEM-768/1024 ones."""
    raw_length, _, oid_last = ML_KEM[spec]
    key = kem_key(kms, spec)
    described = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    for metadata in (key, described):
        assert metadata["KeyUsage"] == "ENCAPSULATE_DECAPSULATE"
        assert metadata["KeySpec"] == spec
        assert metadata["EncapsulationAlgorithms"] == ["ML_KEM"]
        for other_list in (
            "EncryptionAlgorithms",
            "SigningAlgorithms",
            "MacAlgorithms",
            "KeyAgreementAlgorithms",
        ):
            assert other_list not in metadata
        assert "CurrentKeyMaterialId" not in metadata

    given = kms.get_public_key(KeyId=key["KeyId"])
    assert given["KeyId"] == key["Arn"]
    assert given["KeyUsage"] == "ENCAPSULATE_DECAPSULATE"
    assert given["KeySpec"] == spec
    assert given["EncapsulationAlgorithms"] == ["ML_KEM"]
    public = given["PublicKey"]
    assert len(public) == raw_length + 22
    algorithm = bytes.fromhex("300b0609608648016503040400")[:-1] + bytes([oid_last])
    bit_string = b"\x03\x82" + (raw_length + 1).to_bytes(2, "big") + b"\x00"
    assert public[:4] == b"\x30\x82" + (raw_length + 18).to_bytes(2, "big")
    assert public[4:22] == algorithm + bit_string
    if spec != "ML_KEM_512":
        loaded = serialization.load_der_public_key(public)
        kind = mlkem.MLKEM768PublicKey if spec == "ML_KEM_768" else mlkem.MLKEM1024PublicKey
        assert isinstance(loaded, kind)


@pytest.mark.parametrize("spec", ML_KEM)
def test_encapsulate_then_decapsulate(kms, spec):
    _, ciphertext_length, _ = ML_KEM[spec]
    key = kem_key(kms, spec)
    response = kms.encapsulate(KeyId=key["KeyId"], EncapsulationAlgorithm="ML_KEM")
    assert set(response) == {
        "KeyId",
        "SharedSecret",
        "SharedSecretCiphertextBlob",
        "EncapsulationAlgorithm",
        "ResponseMetadata",
    }
    assert response["KeyId"] == key["Arn"]
    assert response["EncapsulationAlgorithm"] == "ML_KEM"
    assert len(response["SharedSecret"]) == 32
    assert len(response["SharedSecretCiphertextBlob"]) == ciphertext_length

    opened = kms.decapsulate(
        KeyId=key["Arn"],
        SharedSecretCiphertextBlob=response["SharedSecretCiphertextBlob"],
        EncapsulationAlgorithm="ML_KEM",
    )
    assert set(opened) == {"KeyId", "SharedSecret", "EncapsulationAlgorithm", "ResponseMetadata"}
    assert opened["SharedSecret"] == response["SharedSecret"]
    assert opened["KeyId"] == key["Arn"]
    assert opened["EncapsulationAlgorithm"] == "ML_KEM"

    again = kms.encapsulate(KeyId=key["KeyId"], EncapsulationAlgorithm="ML_KEM")
    assert again["SharedSecret"] != response["SharedSecret"]
    assert again["SharedSecretCiphertextBlob"] != response["SharedSecretCiphertextBlob"]
    assert decapsulate(kms, key, again["SharedSecretCiphertextBlob"]) == again["SharedSecret"]


def offline_encapsulation(spec: str, public: bytes) -> tuple[bytes, bytes]:
    """``(shared secret, ciphertext)`` to GetPublicKey's key, made without openkms."""
    if spec == "ML_KEM_512":
        raw_length = ML_KEM[spec][0]
        return ML_KEM_512.encaps(public[-raw_length:])
    return serialization.load_der_public_key(public).encapsulate()


@pytest.mark.parametrize("spec", ML_KEM)
def test_a_ciphertext_made_offline_decapsulates_to_its_secret(kms, spec):
    """The sender needs only the public key: cryptography (768/1024) or kyber-py (512)
    encapsulates to it, and openkms recovers the same secret."""
    key = kem_key(kms, spec)
    public = public_key(kms, key)
    for _ in range(2):
        secret, ciphertext = offline_encapsulation(spec, public)
        assert len(ciphertext) == ML_KEM[spec][1]
        assert decapsulate(kms, key, bytes(ciphertext)) == bytes(secret)


@pytest.mark.parametrize("spec", ML_KEM)
def test_a_changed_ciphertext_of_the_right_length_gives_another_secret(kms, spec):
    """ML-KEM's implicit rejection: no error, but a 32-byte secret unrelated to the real one,
    the same each time for the same bytes. A ciphertext for another key is no better."""
    key = kem_key(kms, spec)
    secret, ciphertext = offline_encapsulation(spec, public_key(kms, key))
    ciphertext, secret = bytes(ciphertext), bytes(secret)
    for index in (0, len(ciphertext) // 2, len(ciphertext) - 1):
        tampered = bytearray(ciphertext)
        tampered[index] ^= 0x01
        rejected = decapsulate(kms, key, bytes(tampered))
        assert len(rejected) == 32
        assert rejected != secret
        assert decapsulate(kms, key, bytes(tampered)) == rejected
    other_key = kem_key(kms, spec)
    other_secret = decapsulate(kms, other_key, ciphertext)
    assert len(other_secret) == 32
    assert other_secret != secret
    assert decapsulate(kms, key, ciphertext) == secret


@pytest.mark.parametrize("spec", ML_KEM)
def test_a_ciphertext_of_the_wrong_length_is_invalid(kms, spec):
    _, length, _ = ML_KEM[spec]
    key = kem_key(kms, spec)
    ciphertext = kms.encapsulate(KeyId=key["KeyId"], EncapsulationAlgorithm="ML_KEM")[
        "SharedSecretCiphertextBlob"
    ]
    other_lengths = {other for _, other, _ in ML_KEM.values()} - {length}
    candidates = [b"\x00", ciphertext[:-1], ciphertext + b"\x00", ciphertext[:32]]
    candidates += [os.urandom(n) for n in other_lengths]
    for candidate in candidates:
        invalid_ciphertext(
            kms.decapsulate,
            KeyId=key["KeyId"],
            SharedSecretCiphertextBlob=candidate,
            EncapsulationAlgorithm="ML_KEM",
        )


def test_kem_request_validation(server, kms):
    key = kem_key(kms, "ML_KEM_512")
    unchecked = unchecked_client(server)
    enum_error = (
        "1 validation error detected: Value 'RSA' at 'encapsulationAlgorithm' failed to "
        "satisfy constraint: Member must satisfy enum value set: [ML_KEM]"
    )
    fails(
        unchecked.encapsulate,
        "ValidationException",
        enum_error,
        KeyId=key["KeyId"],
        EncapsulationAlgorithm="RSA",
    )
    fails(
        unchecked.decapsulate,
        "ValidationException",
        enum_error,
        KeyId=key["KeyId"],
        SharedSecretCiphertextBlob=b"\x00" * 768,
        EncapsulationAlgorithm="RSA",
    )
    for blob, constraint in (
        (b"", "greater than or equal to 1"),
        (b"\x00" * 6145, "less than or equal to 6144"),
    ):
        fails(
            unchecked.decapsulate,
            "ValidationException",
            "1 validation error detected: Value at 'sharedSecretCiphertextBlob' failed to "
            f"satisfy constraint: Member must have length {constraint}",
            KeyId=key["KeyId"],
            SharedSecretCiphertextBlob=blob,
            EncapsulationAlgorithm="ML_KEM",
        )


def test_kem_operations_refuse_keys_of_other_usages(kms):
    signing = new_key(kms, KeySpec="ML_DSA_44", KeyUsage="SIGN_VERIFY")
    symmetric = new_key(kms)
    agreement = agreement_key(kms)
    for key, usage in (
        (signing, "SIGN_VERIFY"),
        (symmetric, "ENCRYPT_DECRYPT"),
        (agreement, "KEY_AGREEMENT"),
    ):
        fails(
            kms.encapsulate,
            "InvalidKeyUsageException",
            f"{key['Arn']} key usage is {usage} which is not valid for Encapsulate.",
            KeyId=key["KeyId"],
            EncapsulationAlgorithm="ML_KEM",
        )
        fails(
            kms.decapsulate,
            "InvalidKeyUsageException",
            f"{key['Arn']} key usage is {usage} which is not valid for Decapsulate.",
            KeyId=key["KeyId"],
            SharedSecretCiphertextBlob=b"\x00" * 1088,
            EncapsulationAlgorithm="ML_KEM",
        )


def test_an_ml_kem_key_needs_its_usage_and_refuses_other_operations(kms):
    fails(
        kms.create_key,
        "ValidationException",
        "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.",
        KeySpec="ML_KEM_768",
    )
    for usage in ("ENCRYPT_DECRYPT", "SIGN_VERIFY", "KEY_AGREEMENT", "GENERATE_VERIFY_MAC"):
        fails(
            kms.create_key,
            "ValidationException",
            f"KeyUsage {usage} is not compatible with KeySpec ML_KEM_768",
            KeySpec="ML_KEM_768",
            KeyUsage=usage,
        )
    key = kem_key(kms, "ML_KEM_768")
    usage_error = f"{key['Arn']} key usage is ENCAPSULATE_DECAPSULATE which is not valid for "
    for call, params, operation in (
        (kms.encrypt, {"Plaintext": b"p"}, "Encrypt"),
        (kms.sign, {"Message": b"m", "SigningAlgorithm": "ML_DSA_SHAKE_256"}, "Sign"),
        (kms.generate_data_key, {"KeySpec": "AES_256"}, "GenerateDataKey"),
    ):
        fails(
            call,
            "InvalidKeyUsageException",
            usage_error + f"{operation}.",
            KeyId=key["KeyId"],
            **params,
        )


def test_a_disabled_ml_kem_key_refuses_both_operations(kms):
    key = kem_key(kms, "ML_KEM_1024")
    sealed = kms.encapsulate(KeyId=key["KeyId"], EncapsulationAlgorithm="ML_KEM")
    kms.disable_key(KeyId=key["KeyId"])
    disabled = f"{key['Arn']} is disabled."
    for extra in ({}, {"DryRun": True}):
        fails(
            kms.encapsulate,
            "DisabledException",
            disabled,
            KeyId=key["KeyId"],
            EncapsulationAlgorithm="ML_KEM",
            **extra,
        )
        for blob in (sealed["SharedSecretCiphertextBlob"], b"\x00"):
            fails(
                kms.decapsulate,
                "DisabledException",
                disabled,
                KeyId=key["KeyId"],
                SharedSecretCiphertextBlob=blob,
                EncapsulationAlgorithm="ML_KEM",
                **extra,
            )
    kms.enable_key(KeyId=key["KeyId"])
    assert decapsulate(kms, key, sealed["SharedSecretCiphertextBlob"]) == sealed["SharedSecret"]


def test_kem_dry_run(kms):
    key = kem_key(kms, "ML_KEM_512")
    ciphertext = kms.encapsulate(KeyId=key["KeyId"], EncapsulationAlgorithm="ML_KEM")[
        "SharedSecretCiphertextBlob"
    ]
    response = dry_run(kms.encapsulate, KeyId=key["KeyId"], EncapsulationAlgorithm="ML_KEM")
    assert not {"SharedSecret", "SharedSecretCiphertextBlob"} & set(response)
    response = dry_run(
        kms.decapsulate,
        KeyId=key["KeyId"],
        SharedSecretCiphertextBlob=ciphertext,
        EncapsulationAlgorithm="ML_KEM",
    )
    assert "SharedSecret" not in response
    symmetric = new_key(kms)
    fails(
        kms.encapsulate,
        "InvalidKeyUsageException",
        f"{symmetric['Arn']} key usage is ENCRYPT_DECRYPT which is not valid for Encapsulate.",
        KeyId=symmetric["KeyId"],
        EncapsulationAlgorithm="ML_KEM",
        DryRun=True,
    )


def test_another_account_cannot_use_the_ml_kem_key(server, kms, other_account):
    key = kem_key(kms, "ML_KEM_768")
    ciphertext = kms.encapsulate(KeyId=key["KeyId"], EncapsulationAlgorithm="ML_KEM")[
        "SharedSecretCiphertextBlob"
    ]
    other = client(server, other_account)
    other_id = other_account["AccountId"]
    refused_to_other_account(
        other.encapsulate, other_id, key, "kms:Encapsulate", EncapsulationAlgorithm="ML_KEM"
    )
    refused_to_other_account(
        other.decapsulate,
        other_id,
        key,
        "kms:Decapsulate",
        SharedSecretCiphertextBlob=ciphertext,
        EncapsulationAlgorithm="ML_KEM",
    )
