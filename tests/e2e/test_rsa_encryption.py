"""RSA encryption keys end to end: Encrypt, Decrypt and ReEncrypt with RSAES_OAEP_SHA_1 and
RSAES_OAEP_SHA_256 under RSA_2048, RSA_3072 and RSA_4096 keys, driven with boto3 against a
real openkms server.

openkms's decryption is checked against ciphertext made outside it, as a customer makes it:
``openssl pkeyutl -encrypt`` with the public key GetPublicKey returns (OAEP, MGF1 of the same
hash, empty label). The keys are made once per module and backend (an RSA_4096 key takes
seconds to make) and only ever used; a test that changes a key makes its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.e2e.kms_management import client, fails, kept_keys, new_key, refused_to_other_account
from tests.support import OpenKmsServer

DRY_RUN = "The request would succeed if DryRun wasn't specified."
NO_CONTEXT = (
    "EncryptionContext is not supported with asymmetric KMS keys: the RSAES_OAEP algorithms "
    "cannot bind an encryption context."
)
ALGORITHMS = ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]
SPECS = ["RSA_2048", "RSA_3072", "RSA_4096"]
# AWS's documented maximum plaintext: k - 2·hLen - 2 bytes.
LARGEST = {
    ("RSA_2048", "RSAES_OAEP_SHA_1"): 214,
    ("RSA_3072", "RSAES_OAEP_SHA_1"): 342,
    ("RSA_4096", "RSAES_OAEP_SHA_1"): 470,
    ("RSA_2048", "RSAES_OAEP_SHA_256"): 190,
    ("RSA_3072", "RSAES_OAEP_SHA_256"): 318,
    ("RSA_4096", "RSAES_OAEP_SHA_256"): 446,
}
OTHER = {"RSAES_OAEP_SHA_1": "RSAES_OAEP_SHA_256", "RSAES_OAEP_SHA_256": "RSAES_OAEP_SHA_1"}

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl command")


def modulus_bytes(spec: str) -> int:
    return int(spec.removeprefix("RSA_")) // 8


@pytest.fixture(scope="module")
def keys(shared_server: OpenKmsServer) -> Callable[..., dict[str, Any]]:
    return kept_keys(shared_server, "ENCRYPT_DECRYPT", "RSA encryption tests")


@pytest.fixture
def symmetric(kms) -> dict[str, Any]:
    return new_key(kms, Description="RSA encryption tests, symmetric")


def openssl_encrypt(workdir: Path, public_key: bytes, algorithm: str, plaintext: bytes) -> bytes:
    """RSAES-OAEP as a customer does it outside KMS, with the openssl command line."""
    md = "sha1" if algorithm.endswith("SHA_1") else "sha256"
    (workdir / "public.der").write_bytes(public_key)
    (workdir / "plain.bin").write_bytes(plaintext)
    subprocess.run(
        [
            "openssl", "pkeyutl", "-encrypt", "-pubin", "-inkey", "public.der",
            "-keyform", "DER", "-in", "plain.bin", "-out", "cipher.bin",
            "-pkeyopt", "rsa_padding_mode:oaep",
            "-pkeyopt", f"rsa_oaep_md:{md}", "-pkeyopt", f"rsa_mgf1_md:{md}",
        ],
        cwd=workdir, check=True, capture_output=True,
    )  # fmt: skip
    return (workdir / "cipher.bin").read_bytes()


def decrypts(kms: Any, key: dict[str, Any], ciphertext: bytes, algorithm: str) -> bytes:
    """Decrypt with the key and algorithm named; the response has no KeyMaterialId (AWS
    gives one for symmetric keys only)."""
    response = kms.decrypt(
        KeyId=key["KeyId"], CiphertextBlob=ciphertext, EncryptionAlgorithm=algorithm
    )
    assert response["KeyId"] == key["Arn"]
    assert response["EncryptionAlgorithm"] == algorithm
    assert "KeyMaterialId" not in response
    return bytes(response["Plaintext"])


def invalid_ciphertext(call: Any, **params: Any) -> None:
    """InvalidCiphertextException with an empty message, as AWS's."""
    fails(call, "InvalidCiphertextException", "", **params)


def dry_run(call: Any, **params: Any) -> None:
    with pytest.raises(ClientError) as info:
        call(DryRun=True, **params)
    response = info.value.response
    assert response["Error"]["Code"] == "DryRunOperationException", response["Error"]
    assert response["Error"]["Message"] == DRY_RUN
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 412


# -- the keys ------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", SPECS)
def test_an_rsa_encryption_key_lists_the_oaep_algorithms(kms, keys, tmp_path, spec):
    """CreateKey, DescribeKey and GetPublicKey: EncryptionAlgorithms is exactly the two
    RSAES_OAEP algorithms, with no other algorithm list and no key material id; the public
    key is a DER SPKI of the spec's size, which openssl reads too."""
    key = keys(spec)
    described = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    got = kms.get_public_key(KeyId=key["KeyId"])
    for answer in (key, described, got):
        assert answer["KeySpec"] == spec
        assert answer["CustomerMasterKeySpec"] == spec
        assert answer["KeyUsage"] == "ENCRYPT_DECRYPT"
        assert sorted(answer["EncryptionAlgorithms"]) == ALGORITHMS
        for absent in ("SigningAlgorithms", "MacAlgorithms", "KeyAgreementAlgorithms"):
            assert absent not in answer
        assert "CurrentKeyMaterialId" not in answer
    assert got["KeyId"] == key["Arn"]
    public = serialization.load_der_public_key(got["PublicKey"])
    assert isinstance(public, rsa.RSAPublicKey)
    assert public.key_size == int(spec.removeprefix("RSA_"))
    if shutil.which("openssl"):
        (tmp_path / "public.der").write_bytes(got["PublicKey"])
        text = subprocess.run(
            ["openssl", "pkey", "-pubin", "-inform", "DER", "-in", "public.der", "-noout"]
            + ["-text"],
            cwd=tmp_path,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        assert f"Public-Key: ({spec.removeprefix('RSA_')} bit)" in text


# -- Encrypt and Decrypt -------------------------------------------------------------------


@needs_openssl
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("spec", SPECS)
def test_ciphertext_made_offline_with_openssl_decrypts(kms, keys, tmp_path, spec, algorithm):
    """Ciphertext made with ``openssl pkeyutl -encrypt`` from GetPublicKey's key (OAEP, MGF1
    of the same hash, empty label), of one byte and of the largest plaintext AWS allows,
    decrypts in openkms; with the other OAEP hash it does not."""
    key = keys(spec)
    public = kms.get_public_key(KeyId=key["KeyId"])["PublicKey"]
    for plaintext in (os.urandom(1), os.urandom(LARGEST[(spec, algorithm)])):
        ciphertext = openssl_encrypt(tmp_path, public, algorithm, plaintext)
        assert len(ciphertext) == modulus_bytes(spec)
        assert decrypts(kms, key, ciphertext, algorithm) == plaintext
        invalid_ciphertext(
            kms.decrypt,
            KeyId=key["KeyId"],
            CiphertextBlob=ciphertext,
            EncryptionAlgorithm=OTHER[algorithm],
        )


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("spec", SPECS)
def test_encrypt_up_to_the_largest_plaintext(kms, keys, spec, algorithm):
    """openkms's own ciphertext: bare OAEP output of the modulus length, fresh each time,
    decrypting to the plaintext with the same algorithm only. The largest plaintext AWS
    documents for the spec and algorithm is encrypted; one byte more is a ValidationException
    that says the limit."""
    key = keys(spec)
    largest = LARGEST[(spec, algorithm)]
    for plaintext in (b"p", os.urandom(largest)):
        encrypted = kms.encrypt(
            KeyId=key["KeyId"], Plaintext=plaintext, EncryptionAlgorithm=algorithm
        )
        assert encrypted["KeyId"] == key["Arn"]
        assert encrypted["EncryptionAlgorithm"] == algorithm
        assert "KeyMaterialId" not in encrypted
        ciphertext = encrypted["CiphertextBlob"]
        assert len(ciphertext) == modulus_bytes(spec)
        again = kms.encrypt(KeyId=key["KeyId"], Plaintext=plaintext, EncryptionAlgorithm=algorithm)
        assert again["CiphertextBlob"] != ciphertext
        assert decrypts(kms, key, ciphertext, algorithm) == plaintext
        assert decrypts(kms, key, again["CiphertextBlob"], algorithm) == plaintext
        invalid_ciphertext(
            kms.decrypt,
            KeyId=key["KeyId"],
            CiphertextBlob=ciphertext,
            EncryptionAlgorithm=OTHER[algorithm],
        )
    fails(
        kms.encrypt,
        "ValidationException",
        f"Algorithm {algorithm} and key spec {spec} cannot encrypt data larger than "
        f"{largest} bytes.",
        KeyId=key["KeyId"],
        Plaintext=b"A" * (largest + 1),
        EncryptionAlgorithm=algorithm,
    )


def test_encrypt_needs_an_algorithm_of_the_key(kms, keys, symmetric):
    """An RSA key with EncryptionAlgorithm left out (SYMMETRIC_DEFAULT) or one of another
    spec, and a symmetric key with an RSAES_OAEP algorithm: InvalidKeyUsageException naming
    the algorithm and the spec."""
    for spec in SPECS:
        key = keys(spec)
        for algorithm in (None, "SYMMETRIC_DEFAULT", "SM2PKE"):
            params: dict[str, Any] = {"KeyId": key["KeyId"], "Plaintext": b"p"}
            if algorithm is not None:
                params["EncryptionAlgorithm"] = algorithm
            fails(
                kms.encrypt,
                "InvalidKeyUsageException",
                f"Algorithm {algorithm or 'SYMMETRIC_DEFAULT'} is incompatible with key spec "
                f"{spec}.",
                **params,
            )
    for algorithm in ALGORITHMS:
        fails(
            kms.encrypt,
            "InvalidKeyUsageException",
            f"Algorithm {algorithm} is incompatible with key spec SYMMETRIC_DEFAULT.",
            KeyId=symmetric["KeyId"],
            Plaintext=b"p",
            EncryptionAlgorithm=algorithm,
        )


def test_decrypt_needs_the_key_and_its_algorithm(kms, keys):
    """An RSA ciphertext names no key: Decrypt without KeyId (with or without the algorithm)
    and Decrypt naming the RSA key with the algorithm left out or SYMMETRIC_DEFAULT are all
    InvalidCiphertextException, as AWS reads the bytes as a symmetric ciphertext first."""
    key = keys("RSA_2048")
    ciphertext = kms.encrypt(
        KeyId=key["KeyId"], Plaintext=b"p", EncryptionAlgorithm="RSAES_OAEP_SHA_256"
    )["CiphertextBlob"]
    invalid_ciphertext(kms.decrypt, CiphertextBlob=ciphertext)
    invalid_ciphertext(
        kms.decrypt, CiphertextBlob=ciphertext, EncryptionAlgorithm="RSAES_OAEP_SHA_256"
    )
    invalid_ciphertext(kms.decrypt, CiphertextBlob=ciphertext, KeyId=key["KeyId"])
    invalid_ciphertext(
        kms.decrypt,
        CiphertextBlob=ciphertext,
        KeyId=key["KeyId"],
        EncryptionAlgorithm="SYMMETRIC_DEFAULT",
    )
    assert decrypts(kms, key, ciphertext, "RSAES_OAEP_SHA_256") == b"p"


def test_corrupted_and_foreign_ciphertexts_are_invalid(kms, keys, symmetric):
    """Any byte changed, a byte cut or added, zeros or random bytes of the modulus length,
    another RSA key's ciphertext (of the same or another size) or a symmetric ciphertext:
    InvalidCiphertextException with an empty message."""
    algorithm = "RSAES_OAEP_SHA_256"
    key, same_size, bigger = keys("RSA_2048"), keys("RSA_2048", copy=1), keys("RSA_3072")

    def encrypted(under: dict[str, Any]) -> bytes:
        return kms.encrypt(
            KeyId=under["KeyId"], Plaintext=b"secret", EncryptionAlgorithm=algorithm
        )["CiphertextBlob"]

    ciphertext = encrypted(key)
    candidates = [ciphertext[:-1], ciphertext + b"\x00", b"\x00" * 256, os.urandom(256)]
    for position in (0, 1, 100, 255):
        changed = bytearray(ciphertext)
        changed[position] ^= 0x01
        candidates.append(bytes(changed))
    candidates += [encrypted(same_size), encrypted(bigger)]
    candidates.append(kms.encrypt(KeyId=symmetric["KeyId"], Plaintext=b"secret")["CiphertextBlob"])
    for candidate in candidates:
        invalid_ciphertext(
            kms.decrypt, KeyId=key["KeyId"], CiphertextBlob=candidate, EncryptionAlgorithm=algorithm
        )
    assert decrypts(kms, key, ciphertext, algorithm) == b"secret"


def test_an_encryption_context_is_refused(kms, keys, symmetric):
    """RSAES_OAEP cannot bind an encryption context: Encrypt, Decrypt and either side of
    ReEncrypt with one and an RSA key are a ValidationException, not a context silently
    dropped."""
    key = keys("RSA_2048")
    algorithm = "RSAES_OAEP_SHA_1"
    context = {"purpose": "test"}
    base = {"KeyId": key["KeyId"], "EncryptionAlgorithm": algorithm}
    fails(
        kms.encrypt,
        "ValidationException",
        NO_CONTEXT,
        Plaintext=b"p",
        EncryptionContext=context,
        **base,
    )
    ciphertext = kms.encrypt(Plaintext=b"p", **base)["CiphertextBlob"]
    fails(
        kms.decrypt,
        "ValidationException",
        NO_CONTEXT,
        CiphertextBlob=ciphertext,
        EncryptionContext=context,
        **base,
    )
    fails(
        kms.re_encrypt,
        "ValidationException",
        NO_CONTEXT,
        CiphertextBlob=ciphertext,
        SourceKeyId=key["KeyId"],
        SourceEncryptionAlgorithm=algorithm,
        SourceEncryptionContext=context,
        DestinationKeyId=symmetric["KeyId"],
    )
    blob = kms.encrypt(KeyId=symmetric["KeyId"], Plaintext=b"p")["CiphertextBlob"]
    fails(
        kms.re_encrypt,
        "ValidationException",
        NO_CONTEXT,
        CiphertextBlob=blob,
        DestinationKeyId=key["KeyId"],
        DestinationEncryptionAlgorithm=algorithm,
        DestinationEncryptionContext=context,
    )


def test_a_signing_rsa_key_cannot_encrypt_or_decrypt(kms, keys):
    """An RSA SIGN_VERIFY key: InvalidKeyUsageException naming the usage and the operation,
    before the algorithm is looked at."""
    key = keys("RSA_2048", "SIGN_VERIFY")
    for algorithm in (None, "RSAES_OAEP_SHA_256"):
        extra = {"EncryptionAlgorithm": algorithm} if algorithm else {}
        fails(
            kms.encrypt,
            "InvalidKeyUsageException",
            f"{key['Arn']} key usage is SIGN_VERIFY which is not valid for Encrypt.",
            KeyId=key["KeyId"],
            Plaintext=b"p",
            **extra,
        )
    fails(
        kms.decrypt,
        "InvalidKeyUsageException",
        f"{key['Arn']} key usage is SIGN_VERIFY which is not valid for Decrypt.",
        KeyId=key["KeyId"],
        CiphertextBlob=b"c" * 256,
        EncryptionAlgorithm="RSAES_OAEP_SHA_256",
    )


# -- ReEncrypt -----------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_re_encrypt_from_rsa_to_a_symmetric_key(kms, keys, symmetric, algorithm):
    """ReEncrypt of an RSA ciphertext (source key and algorithm named) to a symmetric key:
    the response names both keys and algorithms and carries the destination's KeyMaterialId
    only; the new ciphertext decrypts with the symmetric key and its context."""
    key = keys("RSA_3072")
    ciphertext = kms.encrypt(
        KeyId=key["KeyId"], Plaintext=b"moving", EncryptionAlgorithm=algorithm
    )["CiphertextBlob"]
    moved = kms.re_encrypt(
        CiphertextBlob=ciphertext,
        SourceKeyId=key["KeyId"],
        SourceEncryptionAlgorithm=algorithm,
        DestinationKeyId=symmetric["KeyId"],
        DestinationEncryptionContext={"to": "symmetric"},
    )
    assert moved["SourceKeyId"] == key["Arn"]
    assert moved["KeyId"] == symmetric["Arn"]
    assert moved["SourceEncryptionAlgorithm"] == algorithm
    assert moved["DestinationEncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    assert moved["DestinationKeyMaterialId"] == symmetric["CurrentKeyMaterialId"]
    assert "SourceKeyMaterialId" not in moved
    decrypted = kms.decrypt(
        CiphertextBlob=moved["CiphertextBlob"], EncryptionContext={"to": "symmetric"}
    )
    assert decrypted["Plaintext"] == b"moving"
    assert decrypted["KeyId"] == symmetric["Arn"]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_re_encrypt_from_a_symmetric_key_to_rsa(kms, keys, symmetric, algorithm):
    """ReEncrypt of a symmetric ciphertext (with its context) to an RSA key: the source's
    KeyMaterialId only, a ciphertext of the modulus length that decrypts with the RSA key
    and the algorithm."""
    key = keys("RSA_4096")
    blob = kms.encrypt(
        KeyId=symmetric["KeyId"], Plaintext=b"moving", EncryptionContext={"from": "symmetric"}
    )["CiphertextBlob"]
    moved = kms.re_encrypt(
        CiphertextBlob=blob,
        SourceEncryptionContext={"from": "symmetric"},
        DestinationKeyId=key["KeyId"],
        DestinationEncryptionAlgorithm=algorithm,
    )
    assert moved["SourceKeyId"] == symmetric["Arn"]
    assert moved["KeyId"] == key["Arn"]
    assert moved["SourceEncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    assert moved["DestinationEncryptionAlgorithm"] == algorithm
    assert moved["SourceKeyMaterialId"] == symmetric["CurrentKeyMaterialId"]
    assert "DestinationKeyMaterialId" not in moved
    assert len(moved["CiphertextBlob"]) == modulus_bytes("RSA_4096")
    assert decrypts(kms, key, moved["CiphertextBlob"], algorithm) == b"moving"


def test_re_encrypt_between_rsa_keys(kms, keys):
    """RSA to RSA, changing size and hash: no KeyMaterialId on either side."""
    source, destination = keys("RSA_2048"), keys("RSA_3072")
    ciphertext = kms.encrypt(
        KeyId=source["KeyId"], Plaintext=b"moving", EncryptionAlgorithm="RSAES_OAEP_SHA_1"
    )["CiphertextBlob"]
    moved = kms.re_encrypt(
        CiphertextBlob=ciphertext,
        SourceKeyId=source["Arn"],
        SourceEncryptionAlgorithm="RSAES_OAEP_SHA_1",
        DestinationKeyId=destination["KeyId"],
        DestinationEncryptionAlgorithm="RSAES_OAEP_SHA_256",
    )
    assert moved["SourceKeyId"] == source["Arn"]
    assert moved["KeyId"] == destination["Arn"]
    assert "SourceKeyMaterialId" not in moved
    assert "DestinationKeyMaterialId" not in moved
    assert decrypts(kms, destination, moved["CiphertextBlob"], "RSAES_OAEP_SHA_256") == b"moving"


def test_re_encrypt_needs_the_rsa_keys_and_algorithms(kms, keys, symmetric):
    """An RSA source needs SourceKeyId and SourceEncryptionAlgorithm (else
    InvalidCiphertextException); an RSA destination needs DestinationEncryptionAlgorithm
    (else InvalidKeyUsageException) and a plaintext within its limit."""
    key = keys("RSA_2048")
    ciphertext = kms.encrypt(
        KeyId=key["KeyId"], Plaintext=b"p", EncryptionAlgorithm="RSAES_OAEP_SHA_256"
    )["CiphertextBlob"]
    to_symmetric = {"CiphertextBlob": ciphertext, "DestinationKeyId": symmetric["KeyId"]}
    invalid_ciphertext(kms.re_encrypt, **to_symmetric)
    invalid_ciphertext(
        kms.re_encrypt, SourceEncryptionAlgorithm="RSAES_OAEP_SHA_256", **to_symmetric
    )
    invalid_ciphertext(kms.re_encrypt, SourceKeyId=key["KeyId"], **to_symmetric)

    blob = kms.encrypt(KeyId=symmetric["KeyId"], Plaintext=b"p")["CiphertextBlob"]
    fails(
        kms.re_encrypt,
        "InvalidKeyUsageException",
        "Algorithm SYMMETRIC_DEFAULT is incompatible with key spec RSA_2048.",
        CiphertextBlob=blob,
        DestinationKeyId=key["KeyId"],
    )
    large = kms.encrypt(KeyId=symmetric["KeyId"], Plaintext=b"L" * 191)["CiphertextBlob"]
    fails(
        kms.re_encrypt,
        "ValidationException",
        "Algorithm RSAES_OAEP_SHA_256 and key spec RSA_2048 cannot encrypt data larger than "
        "190 bytes.",
        CiphertextBlob=large,
        DestinationKeyId=key["KeyId"],
        DestinationEncryptionAlgorithm="RSAES_OAEP_SHA_256",
    )


# -- key state, DryRun, other accounts -----------------------------------------------------


def test_a_disabled_rsa_key_refuses_every_use(kms, symmetric):
    """A disabled RSA key: DisabledException for GetPublicKey, Encrypt, Decrypt and either
    side of ReEncrypt, even with the algorithm left out; enabled again, it decrypts."""
    key = new_key(kms, KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")
    algorithm = "RSAES_OAEP_SHA_256"
    ciphertext = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"p", EncryptionAlgorithm=algorithm)[
        "CiphertextBlob"
    ]
    blob = kms.encrypt(KeyId=symmetric["KeyId"], Plaintext=b"p")["CiphertextBlob"]
    kms.disable_key(KeyId=key["KeyId"])
    disabled = f"{key['Arn']} is disabled."
    fails(kms.get_public_key, "DisabledException", disabled, KeyId=key["KeyId"])
    for extra in ({}, {"EncryptionAlgorithm": algorithm}):
        fails(
            kms.encrypt, "DisabledException", disabled, KeyId=key["KeyId"], Plaintext=b"p", **extra
        )
        fails(
            kms.decrypt,
            "DisabledException",
            disabled,
            KeyId=key["KeyId"],
            CiphertextBlob=ciphertext,
            **extra,
        )
    fails(
        kms.re_encrypt,
        "DisabledException",
        disabled,
        CiphertextBlob=ciphertext,
        SourceKeyId=key["KeyId"],
        SourceEncryptionAlgorithm=algorithm,
        DestinationKeyId=symmetric["KeyId"],
    )
    fails(
        kms.re_encrypt,
        "DisabledException",
        disabled,
        CiphertextBlob=blob,
        DestinationKeyId=key["KeyId"],
        DestinationEncryptionAlgorithm=algorithm,
    )
    kms.enable_key(KeyId=key["KeyId"])
    assert decrypts(kms, key, ciphertext, algorithm) == b"p"


def test_dry_run_encrypt_decrypt_and_re_encrypt(kms, keys, symmetric):
    """DryRun with an RSA key: DryRunOperationException (HTTP 412) for requests that would
    succeed; one that would fail on its algorithm answers that error instead."""
    key = keys("RSA_2048")
    algorithm = "RSAES_OAEP_SHA_1"
    ciphertext = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"p", EncryptionAlgorithm=algorithm)[
        "CiphertextBlob"
    ]
    dry_run(kms.encrypt, KeyId=key["KeyId"], Plaintext=b"p", EncryptionAlgorithm=algorithm)
    dry_run(
        kms.decrypt, KeyId=key["KeyId"], CiphertextBlob=ciphertext, EncryptionAlgorithm=algorithm
    )
    dry_run(
        kms.re_encrypt,
        CiphertextBlob=ciphertext,
        SourceKeyId=key["KeyId"],
        SourceEncryptionAlgorithm=algorithm,
        DestinationKeyId=symmetric["KeyId"],
    )
    fails(
        kms.encrypt,
        "InvalidKeyUsageException",
        "Algorithm SYMMETRIC_DEFAULT is incompatible with key spec RSA_2048.",
        KeyId=key["KeyId"],
        Plaintext=b"p",
        DryRun=True,
    )


def test_another_account_cannot_use_the_rsa_key(server, kms, keys, other_account):
    """Another account naming the RSA key: by key id it is not found (in that account), by ARN
    it is denied, for GetPublicKey, Encrypt, Decrypt and ReEncrypt from and to it."""
    key = keys("RSA_2048")
    other = client(server, other_account)
    other_id = other_account["AccountId"]
    algorithm = "RSAES_OAEP_SHA_256"
    ciphertext = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"p", EncryptionAlgorithm=algorithm)[
        "CiphertextBlob"
    ]
    refused_to_other_account(other.get_public_key, other_id, key, "kms:GetPublicKey")
    refused_to_other_account(
        other.encrypt, other_id, key, "kms:Encrypt", Plaintext=b"p", EncryptionAlgorithm=algorithm
    )
    refused_to_other_account(
        other.decrypt,
        other_id,
        key,
        "kms:Decrypt",
        CiphertextBlob=ciphertext,
        EncryptionAlgorithm=algorithm,
    )
    theirs = new_key(other)
    refused_to_other_account(
        other.re_encrypt,
        other_id,
        key,
        "kms:ReEncryptFrom",
        "SourceKeyId",
        CiphertextBlob=ciphertext,
        SourceEncryptionAlgorithm=algorithm,
        DestinationKeyId=theirs["KeyId"],
    )
    their_blob = other.encrypt(KeyId=theirs["KeyId"], Plaintext=b"theirs")["CiphertextBlob"]
    refused_to_other_account(
        other.re_encrypt,
        other_id,
        key,
        "kms:ReEncryptTo",
        "DestinationKeyId",
        CiphertextBlob=their_blob,
        DestinationEncryptionAlgorithm=algorithm,
    )
