"""Signing keys end to end: CreateKey, DescribeKey, GetPublicKey, Sign and Verify for every
signing key spec, driven with boto3 against a real openkms server.

Every signature openkms makes is also checked by code that is not openkms's, from the DER
public key GetPublicKey returns: the ``openssl`` command line for RSA, ECDSA (secp256k1 too)
and pure Ed25519; ``cryptography``'s ML-DSA public keys; pycryptodome for Ed25519ph (OpenSSL
3.0 has neither). The signing keys are made once per module and backend (an RSA_4096 key
takes seconds to make) and only ever used; a test that changes a key makes its own.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from Crypto.Hash import SHA512
from Crypto.PublicKey import ECC
from Crypto.Signature import eddsa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from tests.e2e.kms_management import (
    client,
    fails,
    kept_keys,
    new_key,
    refused_to_other_account,
    unchecked_client,
)
from tests.support import OpenKmsServer

DRY_RUN = "The request would succeed if DryRun wasn't specified."
NO_USAGE = (
    "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys."
)

RSA_ALGORITHMS = [
    "RSASSA_PSS_SHA_256",
    "RSASSA_PSS_SHA_384",
    "RSASSA_PSS_SHA_512",
    "RSASSA_PKCS1_V1_5_SHA_256",
    "RSASSA_PKCS1_V1_5_SHA_384",
    "RSASSA_PKCS1_V1_5_SHA_512",
]
SIGNING_ALGORITHMS = {
    "RSA_2048": RSA_ALGORITHMS,
    "RSA_3072": RSA_ALGORITHMS,
    "RSA_4096": RSA_ALGORITHMS,
    "ECC_NIST_P256": ["ECDSA_SHA_256"],
    "ECC_NIST_P384": ["ECDSA_SHA_384"],
    "ECC_NIST_P521": ["ECDSA_SHA_512"],
    "ECC_SECG_P256K1": ["ECDSA_SHA_256"],
    "ECC_NIST_EDWARDS25519": ["ED25519_SHA_512", "ED25519_PH_SHA_512"],
    "ML_DSA_44": ["ML_DSA_SHAKE_256"],
    "ML_DSA_65": ["ML_DSA_SHAKE_256"],
    "ML_DSA_87": ["ML_DSA_SHAKE_256"],
}
SPECS = list(SIGNING_ALGORITHMS)
ALL_SIGNING_ALGORITHMS = [*{a: None for names in SIGNING_ALGORITHMS.values() for a in names}]
ALL_SIGNING_ALGORITHMS.append("SM2DSA")
# What `openssl pkey -text` names each key (the curve's OID name, or the key's size).
OPENSSL_NAMES = {
    "RSA_2048": "Public-Key: (2048 bit)",
    "RSA_3072": "Public-Key: (3072 bit)",
    "RSA_4096": "Public-Key: (4096 bit)",
    "ECC_NIST_P256": "ASN1 OID: prime256v1",
    "ECC_NIST_P384": "ASN1 OID: secp384r1",
    "ECC_NIST_P521": "ASN1 OID: secp521r1",
    "ECC_SECG_P256K1": "ASN1 OID: secp256k1",
    "ECC_NIST_EDWARDS25519": "ED25519 Public-Key:",
}
CURVES = {
    "ECC_NIST_P256": ec.SECP256R1,
    "ECC_NIST_P384": ec.SECP384R1,
    "ECC_NIST_P521": ec.SECP521R1,
    "ECC_SECG_P256K1": ec.SECP256K1,
}
ML_DSA = {
    # spec: (public key class, SPKI bytes, signature bytes), FIPS 204 and AWS's sizes
    "ML_DSA_44": (mldsa.MLDSA44PublicKey, 1334, 2420),
    "ML_DSA_65": (mldsa.MLDSA65PublicKey, 1974, 3309),
    "ML_DSA_87": (mldsa.MLDSA87PublicKey, 2614, 4627),
}
# Every spec and the usages AWS allows it (SM2, China only, is refused apart).
ALLOWED_USAGES = {
    "SYMMETRIC_DEFAULT": {"ENCRYPT_DECRYPT"},
    **{s: {"ENCRYPT_DECRYPT", "SIGN_VERIFY"} for s in ("RSA_2048", "RSA_3072", "RSA_4096")},
    **{s: {"SIGN_VERIFY", "KEY_AGREEMENT"} for s in CURVES if s != "ECC_SECG_P256K1"},
    "ECC_SECG_P256K1": {"SIGN_VERIFY"},
    "ECC_NIST_EDWARDS25519": {"SIGN_VERIFY"},
    **{f"HMAC_{n}": {"GENERATE_VERIFY_MAC"} for n in (224, 256, 384, 512)},
    **{s: {"SIGN_VERIFY"} for s in ML_DSA},
    **{f"ML_KEM_{n}": {"ENCAPSULATE_DECAPSULATE"} for n in (512, 768, 1024)},
}
USAGES = [
    "ENCRYPT_DECRYPT",
    "SIGN_VERIFY",
    "GENERATE_VERIFY_MAC",
    "KEY_AGREEMENT",
    "ENCAPSULATE_DECAPSULATE",
]
# The algorithm lists of the other usages, never on a signing key.
OTHER_LISTS = [
    "EncryptionAlgorithms",
    "MacAlgorithms",
    "KeyAgreementAlgorithms",
    "EncapsulationAlgorithms",
]

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl command")


# -- keys, made once ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def keys(shared_server: OpenKmsServer) -> Callable[..., dict[str, Any]]:
    return kept_keys(shared_server, "SIGN_VERIFY", "signing tests")


@pytest.fixture(scope="module")
def public_keys(
    shared_server: OpenKmsServer, keys: Callable[..., dict[str, Any]]
) -> Callable[[str], bytes]:
    """``public_keys(spec)``: GetPublicKey's DER for ``keys(spec)``, asked once."""
    got: dict[str, bytes] = {}
    kms = client(shared_server)

    def public_key(spec: str) -> bytes:
        if spec not in got:
            got[spec] = kms.get_public_key(KeyId=keys(spec)["KeyId"])["PublicKey"]
        return got[spec]

    return public_key


# -- independent verifiers ----------------------------------------------------------------


def digest_of(algorithm: str, message: bytes) -> bytes:
    """The digest a DIGEST-type request carries for ``algorithm`` (SHA-2 named by its end)."""
    return hashlib.new("sha" + algorithm.rsplit("_", 1)[1], message).digest()


def openssl_verifies(
    workdir: Path,
    public_key: bytes,
    algorithm: str,
    message_type: str,
    message: bytes,
    signature: bytes,
) -> bool:
    """Whether the openssl command line accepts ``signature``: ``openssl dgst`` over a RAW
    message, ``openssl pkeyutl`` over a digest, ``pkeyutl -rawin`` for Ed25519. PSS is checked
    with MGF1 of the same hash and a salt as long as the digest, exactly (saltlen:digest)."""
    (workdir / "public.der").write_bytes(public_key)
    (workdir / "message.bin").write_bytes(message)
    (workdir / "signature.bin").write_bytes(signature)
    key_args = ["-keyform", "DER"]
    if algorithm == "ED25519_SHA_512":
        assert message_type == "RAW"
        command = ["openssl", "pkeyutl", "-verify", "-pubin", *key_args, "-inkey", "public.der"]
        command += ["-rawin", "-in", "message.bin", "-sigfile", "signature.bin"]
    else:
        md = "sha" + algorithm.rsplit("_", 1)[1]
        options: list[str] = []
        if algorithm.startswith("RSASSA_PSS"):
            options = ["rsa_padding_mode:pss", "rsa_pss_saltlen:digest", f"rsa_mgf1_md:{md}"]
        elif algorithm.startswith("RSASSA_PKCS1"):
            options = ["rsa_padding_mode:pkcs1"]
        if message_type == "RAW":
            command = ["openssl", "dgst", f"-{md}", *key_args, "-verify", "public.der"]
            command += ["-signature", "signature.bin"]
            command += [arg for option in options for arg in ("-sigopt", option)]
            command += ["message.bin"]
        else:
            command = ["openssl", "pkeyutl", "-verify", "-pubin", *key_args]
            command += ["-inkey", "public.der", "-in", "message.bin", "-sigfile", "signature.bin"]
            command += ["-pkeyopt", f"digest:{md}"]
            command += [arg for option in options for arg in ("-pkeyopt", option)]
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
    if result.returncode == 0:
        assert result.stdout.strip() in ("Verified OK", "Signature Verified Successfully")
        return True
    # A refusal, not a command openssl could not run (which would make a negative check
    # pass for the wrong reason).
    assert "failure" in result.stdout.lower(), (result.stdout, result.stderr)
    return False


def ed25519ph_verifies(public_key: bytes, digest: bytes, signature: bytes) -> bool:
    """RFC 8032 Ed25519ph (empty context) over the 64-byte ``digest`` taken as the message,
    i.e. PH(digest) = SHA-512(digest): AWS hashes the caller's digest once more."""
    verifier = eddsa.new(ECC.import_key(public_key), "rfc8032")
    try:
        verifier.verify(SHA512.new(digest), signature)
    except ValueError:
        return False
    return True


def ml_dsa_public_key(der: bytes) -> Any:
    return serialization.load_der_public_key(der)


def external_mu(public_key: Any, message: bytes) -> bytes:
    """FIPS 204's mu for pure ML-DSA with an empty context, computed here from the public
    key: SHAKE256(SHAKE256(pk, 64) || 0x00 || 0x00 || M, 64)."""
    tr = hashlib.shake_256(public_key.public_bytes_raw()).digest(64)
    return hashlib.shake_256(tr + b"\x00\x00" + message).digest(64)


def ml_dsa_verifies(public_key: Any, message: bytes, signature: bytes) -> bool:
    try:
        public_key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


def signs_and_verifies(kms: Any, key: dict[str, Any], **params: Any) -> bytes:
    """Sign, check the response, check Verify takes the signature back; the signature."""
    signed = kms.sign(KeyId=key["KeyId"], **params)
    assert signed["KeyId"] == key["Arn"]
    assert signed["SigningAlgorithm"] == params["SigningAlgorithm"]
    verified = kms.verify(KeyId=key["KeyId"], Signature=signed["Signature"], **params)
    assert verified == {
        "KeyId": key["Arn"],
        "SignatureValid": True,
        "SigningAlgorithm": params["SigningAlgorithm"],
        "ResponseMetadata": verified["ResponseMetadata"],
    }
    return bytes(signed["Signature"])


def invalid_signature(kms: Any, key: dict[str, Any], **params: Any) -> None:
    """Verify refuses: KMSInvalidSignatureException with an empty message, as AWS's."""
    fails(kms.verify, "KMSInvalidSignatureException", "", KeyId=key["KeyId"], **params)


def dry_run(call: Any, **params: Any) -> None:
    with pytest.raises(ClientError) as info:
        call(DryRun=True, **params)
    response = info.value.response
    assert response["Error"]["Code"] == "DryRunOperationException", response["Error"]
    assert response["Error"]["Message"] == DRY_RUN
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 412


# -- CreateKey, DescribeKey, GetPublicKey --------------------------------------------------


@pytest.mark.parametrize("spec", SPECS)
def test_a_signing_key_describes_its_spec_and_algorithms(kms, keys, spec):
    """CreateKey's and DescribeKey's metadata: the spec (also as CustomerMasterKeySpec), the
    usage, the spec's signing algorithms and no other algorithm list, no key material id."""
    created = keys(spec)
    described = kms.describe_key(KeyId=created["KeyId"])["KeyMetadata"]
    for metadata in (created, described):
        assert metadata["KeySpec"] == spec
        assert metadata["CustomerMasterKeySpec"] == spec
        assert metadata["KeyUsage"] == "SIGN_VERIFY"
        assert metadata["KeyState"] == "Enabled"
        assert metadata["Origin"] == "AWS_KMS"
        assert sorted(metadata["SigningAlgorithms"]) == sorted(SIGNING_ALGORITHMS[spec])
        assert len(metadata["SigningAlgorithms"]) == len(SIGNING_ALGORITHMS[spec])
        for absent in (*OTHER_LISTS, "CurrentKeyMaterialId"):
            assert absent not in metadata


@pytest.mark.parametrize("spec", SPECS)
def test_get_public_key_returns_the_key_as_der_spki(kms, keys, tmp_path, spec):
    """GetPublicKey: the key's ARN, spec, usage and signing algorithms, and a DER
    SubjectPublicKeyInfo of the right type and size, which openssl reads too."""
    key = keys(spec)
    got = kms.get_public_key(KeyId=key["KeyId"])
    assert got["KeyId"] == key["Arn"]
    assert got["KeySpec"] == spec
    assert got["CustomerMasterKeySpec"] == spec
    assert got["KeyUsage"] == "SIGN_VERIFY"
    assert sorted(got["SigningAlgorithms"]) == sorted(SIGNING_ALGORITHMS[spec])
    for absent in OTHER_LISTS:
        assert absent not in got
    der = got["PublicKey"]
    assert kms.get_public_key(KeyId=key["Arn"])["PublicKey"] == der

    public = serialization.load_der_public_key(der)
    if spec.startswith("RSA_"):
        assert isinstance(public, rsa.RSAPublicKey)
        assert public.key_size == int(spec.removeprefix("RSA_"))
    elif spec in CURVES:
        assert isinstance(public, ec.EllipticCurvePublicKey)
        assert isinstance(public.curve, CURVES[spec])
    elif spec == "ECC_NIST_EDWARDS25519":
        assert isinstance(public, ed25519.Ed25519PublicKey)
        assert len(der) == 44
    else:
        assert isinstance(public, ML_DSA[spec][0])
        assert len(der) == ML_DSA[spec][1]
    if spec in OPENSSL_NAMES and shutil.which("openssl"):
        (tmp_path / "public.der").write_bytes(der)
        text = subprocess.run(
            ["openssl", "pkey", "-pubin", "-inform", "DER", "-in", "public.der", "-noout"]
            + ["-text"],
            cwd=tmp_path,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        assert OPENSSL_NAMES[spec] in text


# -- signatures, checked independently -----------------------------------------------------


@needs_openssl
@pytest.mark.parametrize("algorithm", RSA_ALGORITHMS)
@pytest.mark.parametrize("spec", ["RSA_2048", "RSA_3072", "RSA_4096"])
def test_rsa_signatures_verify_with_openssl(kms, keys, public_keys, tmp_path, spec, algorithm):
    """RSASSA-PSS (MGF1 same hash, salt = digest length) and PKCS #1 v1.5 over a RAW message
    and over its DIGEST: openssl accepts both from the public key, and not for another
    message; Verify takes each either way (a DIGEST signature with the RAW message and the
    reverse). PKCS #1 v1.5 is deterministic, so the DIGEST signature is the RAW one: the
    digest is not hashed again."""
    key, public = keys(spec), public_keys(spec)
    message = os.urandom(300)
    digest = digest_of(algorithm, message)
    raw = signs_and_verifies(kms, key, Message=message, SigningAlgorithm=algorithm)
    prehashed = signs_and_verifies(
        kms, key, Message=digest, MessageType="DIGEST", SigningAlgorithm=algorithm
    )
    for signature in (raw, prehashed):
        assert len(signature) == int(spec.removeprefix("RSA_")) // 8
        assert openssl_verifies(tmp_path, public, algorithm, "RAW", message, signature)
        assert openssl_verifies(tmp_path, public, algorithm, "DIGEST", digest, signature)
        assert not openssl_verifies(tmp_path, public, algorithm, "RAW", message + b"!", signature)
    assert kms.verify(
        KeyId=key["KeyId"], Message=message, Signature=prehashed, SigningAlgorithm=algorithm
    )["SignatureValid"]
    assert kms.verify(
        KeyId=key["KeyId"],
        Message=digest,
        MessageType="DIGEST",
        Signature=raw,
        SigningAlgorithm=algorithm,
    )["SignatureValid"]
    if "PKCS1" in algorithm:
        assert raw == prehashed


@needs_openssl
@pytest.mark.parametrize("spec", list(CURVES))
def test_ecdsa_signatures_verify_with_openssl(kms, keys, public_keys, tmp_path, spec):
    """ECDSA over a RAW message and over its DIGEST (secp256k1 included): DER Ecdsa-Sig-Value
    signatures that openssl accepts from the public key, and Verify takes either way."""
    (algorithm,) = SIGNING_ALGORITHMS[spec]
    key, public = keys(spec), public_keys(spec)
    message = os.urandom(1000)
    digest = digest_of(algorithm, message)
    raw = signs_and_verifies(kms, key, Message=message, SigningAlgorithm=algorithm)
    prehashed = signs_and_verifies(
        kms, key, Message=digest, MessageType="DIGEST", SigningAlgorithm=algorithm
    )
    order_bits = CURVES[spec].key_size
    for signature in (raw, prehashed):
        r, s = decode_dss_signature(signature)  # DER, as X9.62 and AWS say
        assert 0 < r < 2**order_bits and 0 < s < 2**order_bits
        assert openssl_verifies(tmp_path, public, algorithm, "RAW", message, signature)
        assert openssl_verifies(tmp_path, public, algorithm, "DIGEST", digest, signature)
        assert not openssl_verifies(tmp_path, public, algorithm, "RAW", b"x" + message, signature)
    assert kms.verify(
        KeyId=key["KeyId"], Message=message, Signature=prehashed, SigningAlgorithm=algorithm
    )["SignatureValid"]
    assert kms.verify(
        KeyId=key["KeyId"],
        Message=digest,
        MessageType="DIGEST",
        Signature=raw,
        SigningAlgorithm=algorithm,
    )["SignatureValid"]


@needs_openssl
def test_ed25519_signatures_verify_with_openssl(kms, keys, public_keys, tmp_path):
    """ED25519_SHA_512 is pure Ed25519 over the RAW message (MessageType defaults to RAW):
    64 bytes, deterministic (RFC 8032), accepted by ``openssl pkeyutl -rawin``."""
    spec = "ECC_NIST_EDWARDS25519"
    key, public = keys(spec), public_keys(spec)
    message = os.urandom(4096)
    signature = signs_and_verifies(kms, key, Message=message, SigningAlgorithm="ED25519_SHA_512")
    assert len(signature) == 64
    explicit = signs_and_verifies(
        kms, key, Message=message, MessageType="RAW", SigningAlgorithm="ED25519_SHA_512"
    )
    assert explicit == signature
    assert openssl_verifies(tmp_path, public, "ED25519_SHA_512", "RAW", message, signature)
    assert not openssl_verifies(tmp_path, public, "ED25519_SHA_512", "RAW", message[:-1], signature)


def test_ed25519ph_signatures_verify_with_pycryptodome(kms, keys, public_keys):
    """ED25519_PH_SHA_512 takes the 64-byte SHA-512 digest and, as AWS documents, runs
    Ed25519ph's own prehash over it: pycryptodome accepts the signature as Ed25519ph of the
    digest (the input hashed twice), not as Ed25519ph of the original message."""
    spec = "ECC_NIST_EDWARDS25519"
    key, public = keys(spec), public_keys(spec)
    message = os.urandom(500)
    digest = hashlib.sha512(message).digest()
    signature = signs_and_verifies(
        kms, key, Message=digest, MessageType="DIGEST", SigningAlgorithm="ED25519_PH_SHA_512"
    )
    assert len(signature) == 64
    assert ed25519ph_verifies(public, digest, signature)
    assert not ed25519ph_verifies(public, message, signature)
    assert not ed25519ph_verifies(public, hashlib.sha512(b"other").digest(), signature)
    # The two algorithms' signatures are not each other's.
    pure = kms.sign(KeyId=key["KeyId"], Message=digest, SigningAlgorithm="ED25519_SHA_512")
    invalid_signature(
        kms,
        key,
        Message=digest,
        MessageType="DIGEST",
        Signature=pure["Signature"],
        SigningAlgorithm="ED25519_PH_SHA_512",
    )
    invalid_signature(
        kms, key, Message=digest, Signature=signature, SigningAlgorithm="ED25519_SHA_512"
    )


@pytest.mark.parametrize("spec", list(ML_DSA))
def test_ml_dsa_signatures_verify_with_cryptography(kms, keys, public_keys, spec):
    """ML_DSA_SHAKE_256 over a RAW message is pure ML-DSA with an empty context, and over
    EXTERNAL_MU signs the 64-byte mu (computed here from the public key) so that the result
    verifies as a signature of the message itself: ``cryptography`` accepts both, Verify
    takes each in the other form, and the signatures have FIPS 204's sizes."""
    key = keys(spec)
    public = ml_dsa_public_key(public_keys(spec))
    assert isinstance(public, ML_DSA[spec][0])
    message = os.urandom(4096)
    mu = external_mu(public, message)
    raw = signs_and_verifies(kms, key, Message=message, SigningAlgorithm="ML_DSA_SHAKE_256")
    from_mu = signs_and_verifies(
        kms, key, Message=mu, MessageType="EXTERNAL_MU", SigningAlgorithm="ML_DSA_SHAKE_256"
    )
    for signature in (raw, from_mu):
        assert len(signature) == ML_DSA[spec][2]
        assert ml_dsa_verifies(public, message, signature)
        public.verify_mu(signature, mu)
        assert not ml_dsa_verifies(public, message[1:], signature)
    assert kms.verify(
        KeyId=key["KeyId"],
        Message=mu,
        MessageType="EXTERNAL_MU",
        Signature=raw,
        SigningAlgorithm="ML_DSA_SHAKE_256",
    )["SignatureValid"]
    assert kms.verify(
        KeyId=key["KeyId"], Message=message, Signature=from_mu, SigningAlgorithm="ML_DSA_SHAKE_256"
    )["SignatureValid"]


def test_sign_and_verify_name_the_key_by_alias(kms, keys):
    """Sign and Verify find the key by alias name and alias ARN and answer with its ARN."""
    key = keys("ECC_NIST_P256")
    alias = f"alias/signing-{os.urandom(6).hex()}"
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    alias_arn = key["Arn"].split(":key/")[0] + ":" + alias
    try:
        signed = kms.sign(KeyId=alias, Message=b"by alias", SigningAlgorithm="ECDSA_SHA_256")
        assert signed["KeyId"] == key["Arn"]
        verified = kms.verify(
            KeyId=alias_arn,
            Message=b"by alias",
            Signature=signed["Signature"],
            SigningAlgorithm="ECDSA_SHA_256",
        )
        assert verified["KeyId"] == key["Arn"] and verified["SignatureValid"]
    finally:
        kms.delete_alias(AliasName=alias)


# -- Verify refusing -----------------------------------------------------------------------

TAMPER_CASES = [
    ("RSA_2048", "RSASSA_PSS_SHA_256", "RAW"),
    ("RSA_2048", "RSASSA_PKCS1_V1_5_SHA_512", "DIGEST"),
    ("ECC_NIST_P384", "ECDSA_SHA_384", "RAW"),
    ("ECC_SECG_P256K1", "ECDSA_SHA_256", "DIGEST"),
    ("ECC_NIST_EDWARDS25519", "ED25519_SHA_512", "RAW"),
    ("ECC_NIST_EDWARDS25519", "ED25519_PH_SHA_512", "DIGEST"),
    ("ML_DSA_44", "ML_DSA_SHAKE_256", "RAW"),
    ("ML_DSA_65", "ML_DSA_SHAKE_256", "EXTERNAL_MU"),
]


@pytest.mark.parametrize(("spec", "algorithm", "message_type"), TAMPER_CASES)
def test_verify_refuses_what_the_key_did_not_sign(kms, keys, spec, algorithm, message_type):
    """A signature with one bit flipped, cut short or lengthened, another message, or a
    signature by another key of the same spec: KMSInvalidSignatureException with an empty
    message, never SignatureValid false."""
    key, other = keys(spec), keys(spec, copy=1)
    message = os.urandom(64)
    if message_type == "DIGEST":
        message = digest_of(algorithm, message)
    params = {"Message": message, "MessageType": message_type, "SigningAlgorithm": algorithm}
    signature = signs_and_verifies(kms, key, **params)
    by_other = kms.sign(KeyId=other["KeyId"], **params)["Signature"]
    flipped = bytearray(signature)
    flipped[len(flipped) // 2] ^= 0x01
    changed = bytearray(message)
    changed[0] ^= 0x80
    for forged, signed_message in (
        (bytes(flipped), message),
        (signature[:-1], message),
        (signature + b"\x00", message),
        (signature, bytes(changed)),
        (by_other, message),
    ):
        invalid_signature(
            kms,
            key,
            Message=signed_message,
            MessageType=message_type,
            Signature=forged,
            SigningAlgorithm=algorithm,
        )


def test_verify_refuses_a_signature_of_another_rsa_algorithm(kms, keys):
    """The algorithm is part of what is verified: a PSS signature is no PKCS #1 v1.5 one, a
    SHA-256 signature no SHA-384 one."""
    key = keys("RSA_2048")
    signature = kms.sign(KeyId=key["KeyId"], Message=b"m", SigningAlgorithm="RSASSA_PSS_SHA_256")
    for other in ("RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PSS_SHA_384"):
        invalid_signature(
            kms, key, Message=b"m", Signature=signature["Signature"], SigningAlgorithm=other
        )


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", SPECS)
def test_an_algorithm_of_another_spec_is_refused(kms, keys, spec):
    """Sign and Verify with any signing algorithm the spec does not list:
    InvalidKeyUsageException naming the algorithm and the spec."""
    key = keys(spec)
    for algorithm in ALL_SIGNING_ALGORITHMS:
        if algorithm in SIGNING_ALGORITHMS[spec]:
            continue
        message = f"Algorithm {algorithm} is incompatible with key spec {spec}."
        params = {"KeyId": key["KeyId"], "Message": b"m", "SigningAlgorithm": algorithm}
        fails(kms.sign, "InvalidKeyUsageException", message, **params)
        fails(kms.verify, "InvalidKeyUsageException", message, Signature=b"s" * 64, **params)


DIGEST_ALGORITHMS = [
    ("RSA_2048", "RSASSA_PSS_SHA_256", 32),
    ("RSA_2048", "RSASSA_PSS_SHA_384", 48),
    ("RSA_2048", "RSASSA_PSS_SHA_512", 64),
    ("RSA_3072", "RSASSA_PKCS1_V1_5_SHA_256", 32),
    ("RSA_2048", "RSASSA_PKCS1_V1_5_SHA_384", 48),
    ("RSA_2048", "RSASSA_PKCS1_V1_5_SHA_512", 64),
    ("ECC_NIST_P256", "ECDSA_SHA_256", 32),
    ("ECC_NIST_P384", "ECDSA_SHA_384", 48),
    ("ECC_NIST_P521", "ECDSA_SHA_512", 64),
    ("ECC_SECG_P256K1", "ECDSA_SHA_256", 32),
    ("ECC_NIST_EDWARDS25519", "ED25519_PH_SHA_512", 64),
]


@pytest.mark.parametrize(("spec", "algorithm", "length"), DIGEST_ALGORITHMS)
def test_a_digest_of_the_wrong_length_is_refused(kms, keys, spec, algorithm, length):
    """A DIGEST must be exactly the algorithm's hash length (P-521 signs a 64-byte SHA-512
    digest): any other length is a ValidationException, for Sign and for Verify."""
    key = keys(spec)
    message = f"Digest is invalid length for algorithm {algorithm}."
    for wrong in sorted({1, 20, 28, 32, 48, 64, 66, length - 1, length + 1} - {length}):
        params = {
            "KeyId": key["KeyId"],
            "Message": b"d" * wrong,
            "MessageType": "DIGEST",
            "SigningAlgorithm": algorithm,
        }
        fails(kms.sign, "ValidationException", message, **params)
        fails(kms.verify, "ValidationException", message, Signature=b"s" * 64, **params)
    # The right length is taken.
    kms.sign(
        KeyId=key["KeyId"], Message=b"d" * length, MessageType="DIGEST", SigningAlgorithm=algorithm
    )


ED25519_RULES = [
    (
        "ED25519_SHA_512",
        "DIGEST",
        64,
        "Message type DIGEST is incompatible with algorithm ED25519_SHA_512.",
    ),
    (
        "ED25519_PH_SHA_512",
        "RAW",
        64,
        "Message type RAW is incompatible with algorithm ED25519_PH_SHA_512.",
    ),
    (
        "ED25519_PH_SHA_512",
        None,
        64,
        "Message type RAW is incompatible with algorithm ED25519_PH_SHA_512.",
    ),
    (
        "ED25519_SHA_512",
        "EXTERNAL_MU",
        64,
        "Message type EXTERNAL_MU is incompatible with key spec ECC_NIST_EDWARDS25519.",
    ),
    (
        "ED25519_PH_SHA_512",
        "EXTERNAL_MU",
        64,
        "Message type EXTERNAL_MU is incompatible with key spec ECC_NIST_EDWARDS25519.",
    ),
]


@pytest.mark.parametrize(("algorithm", "message_type", "length", "message"), ED25519_RULES)
def test_ed25519_message_type_rules(kms, keys, algorithm, message_type, length, message):
    """ED25519_SHA_512 takes RAW only, ED25519_PH_SHA_512 DIGEST only (RAW is also what an
    omitted MessageType means), and neither takes EXTERNAL_MU: ValidationException."""
    key = keys("ECC_NIST_EDWARDS25519")
    params: dict[str, Any] = {
        "KeyId": key["KeyId"],
        "Message": b"m" * length,
        "SigningAlgorithm": algorithm,
    }
    if message_type is not None:
        params["MessageType"] = message_type
    fails(kms.sign, "ValidationException", message, **params)
    fails(kms.verify, "ValidationException", message, Signature=b"s" * 64, **params)


@pytest.mark.parametrize("spec", list(ML_DSA))
def test_ml_dsa_takes_no_digest_and_a_64_byte_mu(kms, keys, spec):
    """ML-DSA keys refuse MessageType DIGEST (naming the key spec) and an EXTERNAL_MU that is
    not exactly 64 bytes: ValidationException, for Sign and for Verify."""
    key = keys(spec)
    base = {"KeyId": key["KeyId"], "SigningAlgorithm": "ML_DSA_SHAKE_256"}
    for length in (32, 64):
        params = {**base, "Message": b"d" * length, "MessageType": "DIGEST"}
        message = f"Message type DIGEST is incompatible with key spec {spec}."
        fails(kms.sign, "ValidationException", message, **params)
        fails(kms.verify, "ValidationException", message, Signature=b"s" * 64, **params)
    for length in (1, 32, 63, 65, 128, 4096):
        params = {**base, "Message": b"u" * length, "MessageType": "EXTERNAL_MU"}
        message = "External Mu is invalid length for algorithm ML_DSA_SHAKE_256."
        fails(kms.sign, "ValidationException", message, **params)
        fails(kms.verify, "ValidationException", message, Signature=b"s" * 64, **params)


@pytest.mark.parametrize(
    ("spec", "algorithm"),
    [
        ("RSA_2048", "RSASSA_PSS_SHA_512"),
        ("RSA_4096", "RSASSA_PKCS1_V1_5_SHA_256"),
        ("ECC_NIST_P256", "ECDSA_SHA_256"),
        ("ECC_NIST_P521", "ECDSA_SHA_512"),
        ("ECC_SECG_P256K1", "ECDSA_SHA_256"),
    ],
)
def test_external_mu_is_for_ml_dsa_only(kms, keys, spec, algorithm):
    """EXTERNAL_MU with an RSA or ECDSA key, even with a 64-byte message: ValidationException
    naming the key spec."""
    message = f"Message type EXTERNAL_MU is incompatible with key spec {spec}."
    params = {
        "KeyId": keys(spec)["KeyId"],
        "Message": b"u" * 64,
        "MessageType": "EXTERNAL_MU",
        "SigningAlgorithm": algorithm,
    }
    fails(kms.sign, "ValidationException", message, **params)
    fails(kms.verify, "ValidationException", message, Signature=b"s" * 64, **params)


def test_message_length_limits(server, kms, keys):
    """A RAW message of 4096 bytes is signed; 4097 bytes and an empty message fail the
    request's validation (boto3 checks this itself, so an unchecked client sends them)."""
    key = keys("ECC_NIST_P256")
    signs_and_verifies(kms, key, Message=b"m" * 4096, SigningAlgorithm="ECDSA_SHA_256")
    unchecked = unchecked_client(server)
    for message, constraint in (
        (b"m" * 4097, "Member must have length less than or equal to 4096"),
        (b"", "Member must have length greater than or equal to 1"),
    ):
        text = (
            f"1 validation error detected: Value at 'message' failed to satisfy constraint: "
            f"{constraint}"
        )
        params = {"KeyId": key["KeyId"], "Message": message, "SigningAlgorithm": "ECDSA_SHA_256"}
        fails(unchecked.sign, "ValidationException", text, **params)
        fails(unchecked.verify, "ValidationException", text, Signature=b"s" * 64, **params)


@pytest.mark.parametrize(
    ("spec", "usage"),
    [
        ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT"),
        ("RSA_2048", "ENCRYPT_DECRYPT"),
        ("HMAC_256", "GENERATE_VERIFY_MAC"),
        ("ECC_NIST_P256", "KEY_AGREEMENT"),
        ("ML_KEM_768", "ENCAPSULATE_DECAPSULATE"),
    ],
)
def test_a_key_of_another_usage_cannot_sign_or_verify(kms, keys, spec, usage):
    """Sign and Verify with a key whose usage is not SIGN_VERIFY: InvalidKeyUsageException
    naming the usage and the operation, checked before the algorithm (even one of the spec,
    as RSASSA_* is of an RSA ENCRYPT_DECRYPT key's) and before the signature."""
    key = keys(spec, usage)
    for algorithm in ("RSASSA_PSS_SHA_256", "ECDSA_SHA_256", "ML_DSA_SHAKE_256"):
        params = {"KeyId": key["KeyId"], "Message": b"m", "SigningAlgorithm": algorithm}
        fails(
            kms.sign,
            "InvalidKeyUsageException",
            f"{key['Arn']} key usage is {usage} which is not valid for Sign.",
            **params,
        )
        fails(
            kms.verify,
            "InvalidKeyUsageException",
            f"{key['Arn']} key usage is {usage} which is not valid for Verify.",
            Signature=b"junk",
            **params,
        )


@pytest.mark.parametrize(
    ("spec", "usage"),
    [("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT"), ("HMAC_256", "GENERATE_VERIFY_MAC")],
)
def test_get_public_key_of_a_symmetric_or_hmac_key_is_unsupported(kms, keys, spec, usage):
    """A symmetric or HMAC key has no public key: UnsupportedOperationException."""
    key = keys(spec, usage)
    fails(
        kms.get_public_key,
        "UnsupportedOperationException",
        f"{key['Arn']} key usage is {usage} which is not valid for GetPublicKey.",
        KeyId=key["KeyId"],
    )


def test_create_key_refuses_a_usage_the_spec_does_not_have(fresh):
    """Every spec with every usage AWS does not allow it: ValidationException "KeyUsage U is
    not compatible with KeySpec S" (no full stop), and no key is made."""
    _, kms = fresh
    for spec, allowed in ALLOWED_USAGES.items():
        for usage in USAGES:
            if usage in allowed:
                continue
            message = fails(kms.create_key, "ValidationException", KeySpec=spec, KeyUsage=usage)
            if spec != "SYMMETRIC_DEFAULT":
                # (AWS's text for a symmetric key is not recorded; the code is.)
                assert message == f"KeyUsage {usage} is not compatible with KeySpec {spec}"
    assert kms.list_keys()["Keys"] == []


def test_create_key_needs_a_key_usage_for_every_spec_but_symmetric(fresh):
    """No KeyUsage default outside SYMMETRIC_DEFAULT: ValidationException for every other
    spec, and no key is made."""
    _, kms = fresh
    for spec in ALLOWED_USAGES:
        if spec != "SYMMETRIC_DEFAULT":
            fails(kms.create_key, "ValidationException", NO_USAGE, KeySpec=spec)
    assert kms.list_keys()["Keys"] == []


def test_create_key_refuses_sm2_outside_china(fresh):
    """SM2 is served only in AWS's China Regions: UnsupportedOperationException (no full
    stop), whatever its usage."""
    _, kms = fresh
    for usage in ("ENCRYPT_DECRYPT", "SIGN_VERIFY", "KEY_AGREEMENT"):
        fails(
            kms.create_key,
            "UnsupportedOperationException",
            "KeySpec SM2 is not supported in this Region",
            KeySpec="SM2",
            KeyUsage=usage,
        )
    assert kms.list_keys()["Keys"] == []


# -- key state, DryRun, other accounts -----------------------------------------------------


def test_a_disabled_key_refuses_before_usage_and_algorithm(kms):
    """A disabled key answers DisabledException to Sign, Verify and GetPublicKey, before its
    usage is looked at (a disabled ENCRYPT_DECRYPT or HMAC key asked to Sign) and before the
    algorithm or message is; enabled again, it signs."""
    signing = new_key(kms, KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    symmetric = new_key(kms)
    hmac_key = new_key(kms, KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
    signature = kms.sign(KeyId=signing["KeyId"], Message=b"m", SigningAlgorithm="ECDSA_SHA_256")[
        "Signature"
    ]
    for key in (signing, symmetric, hmac_key):
        kms.disable_key(KeyId=key["KeyId"])
        disabled = f"{key['Arn']} is disabled."
        for algorithm, message_type in (
            ("ECDSA_SHA_256", "RAW"),
            ("ECDSA_SHA_256", "DIGEST"),  # a digest of the wrong length
            ("RSASSA_PSS_SHA_256", "RAW"),
        ):
            params = {
                "KeyId": key["KeyId"],
                "Message": b"m",
                "MessageType": message_type,
                "SigningAlgorithm": algorithm,
            }
            fails(kms.sign, "DisabledException", disabled, **params)
            fails(kms.sign, "DisabledException", disabled, DryRun=True, **params)
            fails(kms.verify, "DisabledException", disabled, Signature=signature, **params)
    fails(
        kms.get_public_key,
        "DisabledException",
        f"{signing['Arn']} is disabled.",
        KeyId=signing["KeyId"],
    )
    kms.enable_key(KeyId=signing["KeyId"])
    signs_and_verifies(kms, signing, Message=b"m", SigningAlgorithm="ECDSA_SHA_256")


def test_a_key_pending_deletion_cannot_sign_verify_or_give_its_public_key(kms):
    """A key scheduled for deletion: KMSInvalidStateException for Sign, Verify and
    GetPublicKey."""
    key = new_key(kms, KeySpec="ECC_NIST_EDWARDS25519", KeyUsage="SIGN_VERIFY")
    params = {"KeyId": key["KeyId"], "Message": b"m", "SigningAlgorithm": "ED25519_SHA_512"}
    signature = kms.sign(**params)["Signature"]
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    pending = f"{key['Arn']} is pending deletion."
    fails(kms.sign, "KMSInvalidStateException", pending, **params)
    fails(kms.verify, "KMSInvalidStateException", pending, Signature=signature, **params)
    fails(kms.get_public_key, "KMSInvalidStateException", pending, KeyId=key["KeyId"])


def test_dry_run_sign_and_verify(kms, keys):
    """DryRun: DryRunOperationException (HTTP 412) for a Sign or Verify that would succeed; a
    request that would fail on its key's usage or algorithm answers that error instead;
    DryRun false is an ordinary request."""
    key = keys("ML_DSA_44")
    params = {"KeyId": key["KeyId"], "Message": b"m", "SigningAlgorithm": "ML_DSA_SHAKE_256"}
    signature = kms.sign(**params)["Signature"]
    dry_run(kms.sign, **params)
    dry_run(kms.verify, Signature=signature, **params)
    assert kms.sign(DryRun=False, **params)["Signature"]
    assert kms.verify(DryRun=False, Signature=signature, **params)["SignatureValid"]
    fails(
        kms.sign,
        "InvalidKeyUsageException",
        "Algorithm ECDSA_SHA_256 is incompatible with key spec ML_DSA_44.",
        DryRun=True,
        **{**params, "SigningAlgorithm": "ECDSA_SHA_256"},
    )
    symmetric = keys("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")
    fails(
        kms.sign,
        "InvalidKeyUsageException",
        f"{symmetric['Arn']} key usage is ENCRYPT_DECRYPT which is not valid for Sign.",
        DryRun=True,
        **{**params, "KeyId": symmetric["KeyId"]},
    )


def test_another_account_cannot_sign_verify_or_get_the_public_key(server, kms, keys, other_account):
    """Another account naming the key: by key id it is not found (in that account), by ARN it
    is denied kms:Sign, kms:Verify, kms:GetPublicKey."""
    key = keys("ECC_NIST_P384")
    other = client(server, other_account)
    other_id = other_account["AccountId"]
    params = {"Message": b"m", "SigningAlgorithm": "ECDSA_SHA_384"}
    signature = kms.sign(KeyId=key["KeyId"], **params)["Signature"]
    refused_to_other_account(other.sign, other_id, key, "kms:Sign", **params)
    refused_to_other_account(
        other.verify, other_id, key, "kms:Verify", Signature=signature, **params
    )
    refused_to_other_account(other.get_public_key, other_id, key, "kms:GetPublicKey")
