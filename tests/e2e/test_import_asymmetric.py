"""Importing HMAC, ECC and RSA key material, through boto3 against a running server.

The customer's material is made outside openkms (the ``openssl`` command line, the standard
library), and what openkms then computes with it is checked by code that holds the same
material: HMACs recomputed with ``hmac``, signatures verified and ciphertexts made with
``cryptography``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from tests.e2e.kms_management import fails, new_key
from tests.e2e.test_import import NO_EXPIRY, wrap, wrap_with_openssl

DER = serialization.Encoding.DER
SPKI = serialization.PublicFormat.SubjectPublicKeyInfo
HMAC_DIGESTS = {
    "HMAC_224": ("HMAC_SHA_224", hashlib.sha224),
    "HMAC_256": ("HMAC_SHA_256", hashlib.sha256),
    "HMAC_384": ("HMAC_SHA_384", hashlib.sha384),
    "HMAC_512": ("HMAC_SHA_512", hashlib.sha512),
}


def openssl_private_key(workdir: Path, *algorithm: str) -> bytes:
    """A PKCS#8 DER private key made by the openssl command line. (genpkey's own DER output
    is the traditional form for EC keys, SEC 1, which AWS does not take: hence pkcs8.)"""
    pem, der = workdir / "key.pem", workdir / "key.der"
    for command in (
        ["openssl", "genpkey", *algorithm, "-out", str(pem)],
        [
            "openssl",
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            str(pem),
            "-outform",
            "DER",
            "-out",
            str(der),
        ],
    ):
        subprocess.run(command, check=True, capture_output=True)
    return der.read_bytes()


def test_a_traditional_sec1_ec_key_is_not_pkcs8_and_is_refused(kms, tmp_path):
    key = external(kms, "ECC_NIST_P256", "SIGN_VERIFY")
    sec1 = tmp_path / "sec1.der"
    subprocess.run(
        ["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-outform", "DER",
         "-out", str(sec1)],
        check=True, capture_output=True,
    )  # fmt: skip
    assert sec1.read_bytes()[:4] == bytes.fromhex("30770201")  # ECPrivateKey, version 1
    fails(
        import_into,
        "ValidationException",
        "The key material is not a DER-encoded PKCS#8 private key of key spec ECC_NIST_P256.",
        kms=kms,
        key_id=key["KeyId"],
        material=sec1.read_bytes(),
    )


def import_into(
    kms: Any,
    key_id: str,
    material: bytes,
    algorithm: str = "RSAES_OAEP_SHA_256",
    wrapping_spec: str = "RSA_3072",
    workdir: Path | None = None,
    **params: Any,
) -> dict[str, Any]:
    given = kms.get_parameters_for_import(
        KeyId=key_id, WrappingAlgorithm=algorithm, WrappingKeySpec=wrapping_spec
    )
    if workdir is not None:
        encrypted = wrap_with_openssl(given["PublicKey"], algorithm, material, workdir)
    else:
        encrypted = wrap(given["PublicKey"], algorithm, material)
    return kms.import_key_material(
        KeyId=key_id,
        ImportToken=given["ImportToken"],
        EncryptedKeyMaterial=encrypted,
        **(params or NO_EXPIRY),
    )


def external(kms: Any, spec: str, usage: str) -> dict[str, Any]:
    key = new_key(kms, Origin="EXTERNAL", KeySpec=spec, KeyUsage=usage)
    assert key["KeyState"] == "PendingImport"
    return key


@pytest.mark.parametrize("spec", sorted(HMAC_DIGESTS))
def test_imported_hmac_material_macs_as_the_standard_library_does(kms, spec):
    algorithm, digest = HMAC_DIGESTS[spec]
    key = external(kms, spec, "GENERATE_VERIFY_MAC")
    material = os.urandom(digest().digest_size)
    import_into(kms, key["KeyId"], material)
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"
    message = os.urandom(300)
    expected = hmac.new(material, message, digest).digest()
    mac = kms.generate_mac(KeyId=key["KeyId"], Message=message, MacAlgorithm=algorithm)["Mac"]
    assert mac == expected
    verified = kms.verify_mac(
        KeyId=key["KeyId"], Message=message, Mac=expected, MacAlgorithm=algorithm
    )
    assert verified["MacValid"] is True


def test_hmac_material_may_be_longer_than_the_digest_but_not_shorter_or_too_long(kms):
    key = external(kms, "HMAC_256", "GENERATE_VERIFY_MAC")
    for size in (31, 65):
        message = fails(
            import_into,
            "ValidationException",
            kms=kms,
            key_id=key["KeyId"],
            material=os.urandom(size),
        )
        assert message == "The key material of an HMAC_256 key must be 32 to 64 bytes long."
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "PendingImport"
    material = os.urandom(64)
    import_into(kms, key["KeyId"], material)
    mac = kms.generate_mac(KeyId=key["KeyId"], Message=b"m", MacAlgorithm="HMAC_SHA_256")["Mac"]
    assert mac == hmac.new(material, b"m", hashlib.sha256).digest()


@pytest.mark.parametrize(
    "spec, openssl_args, curve",
    [
        (
            "ECC_NIST_P256",
            ("-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"),
            ec.SECP256R1,
        ),
        (
            "ECC_NIST_P384",
            ("-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"),
            ec.SECP384R1,
        ),
        (
            "ECC_SECG_P256K1",
            ("-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:secp256k1"),
            ec.SECP256K1,
        ),
    ],
)
def test_imported_ecc_material_signs_and_verifies_with_the_customers_key(
    kms, tmp_path, spec, openssl_args, curve
):
    key = external(kms, spec, "SIGN_VERIFY")
    pkcs8 = openssl_private_key(tmp_path, *openssl_args)
    private = serialization.load_der_private_key(pkcs8, None)
    assert isinstance(private, ec.EllipticCurvePrivateKey) and isinstance(private.curve, curve)
    import_into(kms, key["KeyId"], pkcs8, workdir=tmp_path)
    public = kms.get_public_key(KeyId=key["KeyId"])["PublicKey"]
    assert public == private.public_key().public_bytes(DER, SPKI)
    algorithm = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["SigningAlgorithms"][0]
    hash_algorithm = {"ECDSA_SHA_256": hashes.SHA256(), "ECDSA_SHA_384": hashes.SHA384()}[algorithm]
    signature = kms.sign(KeyId=key["KeyId"], Message=b"signed", SigningAlgorithm=algorithm)[
        "Signature"
    ]
    private.public_key().verify(signature, b"signed", ec.ECDSA(hash_algorithm))
    mine = private.sign(b"mine", ec.ECDSA(hash_algorithm))
    verified = kms.verify(
        KeyId=key["KeyId"], Message=b"mine", Signature=mine, SigningAlgorithm=algorithm
    )
    assert verified["SignatureValid"] is True


def test_imported_ed25519_material_signs_as_the_customers_key(kms, tmp_path):
    key = external(kms, "ECC_NIST_EDWARDS25519", "SIGN_VERIFY")
    pkcs8 = openssl_private_key(tmp_path, "-algorithm", "ED25519")
    private = serialization.load_der_private_key(pkcs8, None)
    assert isinstance(private, ed25519.Ed25519PrivateKey)
    import_into(kms, key["KeyId"], pkcs8)
    signature = kms.sign(KeyId=key["KeyId"], Message=b"pure", SigningAlgorithm="ED25519_SHA_512")[
        "Signature"
    ]
    # Ed25519 is deterministic: the customer's own key makes the very same signature.
    assert signature == private.sign(b"pure")


def test_imported_rsa_material_decrypts_what_its_public_key_encrypted(kms, tmp_path):
    key = external(kms, "RSA_2048", "ENCRYPT_DECRYPT")
    pkcs8 = openssl_private_key(tmp_path, "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048")
    # An RSA private key does not fit in RSAES_OAEP: AWS requires an RSA_AES wrapping.
    fails(
        kms.get_parameters_for_import,
        "ValidationException",
        f"{key['Arn']} has key spec RSA_2048: RSA private key material must be wrapped with "
        "RSA_AES_KEY_WRAP_SHA_1 or RSA_AES_KEY_WRAP_SHA_256.",
        KeyId=key["KeyId"],
        WrappingAlgorithm="RSAES_OAEP_SHA_256",
        WrappingKeySpec="RSA_4096",
    )
    import_into(kms, key["KeyId"], pkcs8, "RSA_AES_KEY_WRAP_SHA_256", "RSA_4096", tmp_path)
    private = serialization.load_der_private_key(pkcs8, None)
    assert isinstance(private, rsa.RSAPrivateKey)
    oaep = padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)
    ciphertext = private.public_key().encrypt(b"to the imported key", oaep)
    plaintext = kms.decrypt(
        KeyId=key["KeyId"], CiphertextBlob=ciphertext, EncryptionAlgorithm="RSAES_OAEP_SHA_256"
    )["Plaintext"]
    assert plaintext == b"to the imported key"
    made = kms.encrypt(
        KeyId=key["KeyId"], Plaintext=b"back", EncryptionAlgorithm="RSAES_OAEP_SHA_256"
    )["CiphertextBlob"]
    assert private.decrypt(made, oaep) == b"back"


def test_material_of_another_spec_or_not_a_key_is_refused_and_changes_nothing(kms, tmp_path):
    key = external(kms, "ECC_NIST_P256", "SIGN_VERIFY")
    expected = "The key material is not a DER-encoded PKCS#8 private key of key spec ECC_NIST_P256."
    other_curve = openssl_private_key(
        tmp_path, "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"
    )
    for material in (
        other_curve,
        os.urandom(100),
        openssl_private_key(tmp_path, "-algorithm", "ED25519"),
    ):
        assert (
            fails(
                import_into, "ValidationException", kms=kms, key_id=key["KeyId"], material=material
            )
            == expected
        )
    metadata = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    assert metadata["KeyState"] == "PendingImport"
    assert "ExpirationModel" not in metadata


def test_an_asymmetric_key_keeps_its_first_material_for_life(kms, tmp_path):
    key = external(kms, "ECC_NIST_P256", "SIGN_VERIFY")
    first = openssl_private_key(tmp_path, "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256")
    import_into(kms, key["KeyId"], first)
    public = kms.get_public_key(KeyId=key["KeyId"])["PublicKey"]
    second = openssl_private_key(
        tmp_path, "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"
    )
    fails(
        import_into, "IncorrectKeyMaterialException", kms=kms, key_id=key["KeyId"], material=second
    )
    message = fails(
        import_into,
        "ValidationException",
        kms=kms,
        key_id=key["KeyId"],
        material=first,
        ImportType="NEW_KEY_MATERIAL",
        ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
    )
    assert message.startswith("ImportType, KeyMaterialId and KeyMaterialDescription are valid only")
    fails(kms.rotate_key_on_demand, "UnsupportedOperationException", KeyId=key["KeyId"])
    # Deleted, it is pending import again; the same material (only) brings it back.
    kms.delete_imported_key_material(KeyId=key["KeyId"])
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "PendingImport"
    fails(
        import_into, "IncorrectKeyMaterialException", kms=kms, key_id=key["KeyId"], material=second
    )
    import_into(kms, key["KeyId"], first)
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"
    assert kms.get_public_key(KeyId=key["KeyId"])["PublicKey"] == public


@pytest.mark.parametrize(
    "spec, usage", [("ML_DSA_65", "SIGN_VERIFY"), ("ML_KEM_768", "ENCAPSULATE_DECAPSULATE")]
)
def test_post_quantum_keys_take_no_imported_material(kms, spec, usage):
    fails(
        kms.create_key,
        "UnsupportedOperationException",
        f"Origin EXTERNAL is not supported for KeySpec {spec}: this openkms server imports "
        "symmetric, HMAC, RSA and ECC key material.",
        Origin="EXTERNAL",
        KeySpec=spec,
        KeyUsage=usage,
    )
