"""Private keys of every asymmetric and HMAC key spec: making them, the bytes a key store
keeps (wrapped), loading those bytes back, and the public and PKCS#8 forms handed out.

The kept form is the smallest standard one: PKCS#8 DER for RSA, ECC and Ed25519; the FIPS
204/203 seed for ML-DSA (32 bytes) and ML-KEM-768/1024 (64 bytes, d || z); the raw key for
HMAC.

``cryptography`` has no ML-KEM-512. For it ``kyber-py`` (pure Python, not constant time)
expands a fresh seed into the key pair once, when the key is made (CreateKey, a data key
pair: on worker threads), and the kept form is the seed followed by the expanded
decapsulation key, so loading a key expands nothing. PQClean's constant-time code, through
``pqcrypto``, does every encapsulation and decapsulation: what a caller repeats with inputs
of its choosing never runs in pure Python, and never touches a seed a caller did not get.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pqcrypto.kem.ml_kem_512 as pq_ml_kem_512
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, mlkem, rsa
from kyber_py.ml_kem import ML_KEM_512 as KYBER_ML_KEM_512

from openkms.crypto.key_specs import DataKeyPairSpec, KeySpec

__all__ = [
    "HMAC_KEY_BYTES",
    "MlKem512PrivateKey",
    "NotKeyMaterial",
    "generate_material",
    "imported_material",
    "load_private_key",
    "material_from_pkcs8",
    "new_data_key_pair",
    "pkcs8_der",
    "public_key_der",
]

RSA_BITS: dict[str, int] = {"RSA_2048": 2048, "RSA_3072": 3072, "RSA_4096": 4096}
EC_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "ECC_NIST_P256": ec.SECP256R1,
    "ECC_NIST_P384": ec.SECP384R1,
    "ECC_NIST_P521": ec.SECP521R1,
    "ECC_SECG_P256K1": ec.SECP256K1,
}
_ML_DSA: dict[str, Any] = {
    "ML_DSA_44": mldsa.MLDSA44PrivateKey,
    "ML_DSA_65": mldsa.MLDSA65PrivateKey,
    "ML_DSA_87": mldsa.MLDSA87PrivateKey,
}
# HMAC key length per spec: the hash's output length, as AWS makes them.
HMAC_KEY_BYTES: dict[str, int] = {"HMAC_224": 28, "HMAC_256": 32, "HMAC_384": 48, "HMAC_512": 64}
# What imported HMAC material may be (AWS's developer guide): from the hash's output length
# up to its block size.
HMAC_IMPORT_BYTES: dict[str, tuple[int, int]] = {
    "HMAC_224": (28, 64),
    "HMAC_256": (32, 64),
    "HMAC_384": (48, 128),
    "HMAC_512": (64, 128),
}
# Specs whose material can be imported besides SYMMETRIC_DEFAULT (AWS: HMAC, RSA and ECC;
# openkms takes no ML-DSA or ML-KEM material, which AWS does not document: docs/behaviour.md).
IMPORTABLE_SPECS = frozenset(
    {*HMAC_KEY_BYTES, *RSA_BITS, *EC_CURVES, KeySpec.ECC_NIST_EDWARDS25519.value}
)

_DER = serialization.Encoding.DER
_SPKI = serialization.PublicFormat.SubjectPublicKeyInfo
_PKCS8 = serialization.PrivateFormat.PKCS8
_NO_ENCRYPTION = serialization.NoEncryption()

# The AlgorithmIdentifier OIDs (DER) an imported PKCS#8 must carry, near its start:
# rsaEncryption, id-Ed25519; every EC curve's key is id-ecPublicKey.
_PKCS8_HEADER_BYTES = 32
_EC_PUBLIC_KEY_OID = bytes.fromhex("06072a8648ce3d0201")
_PKCS8_ALGORITHM_OIDS: dict[str, bytes] = {
    **dict.fromkeys(RSA_BITS, bytes.fromhex("06092a864886f70d010101")),
    "ECC_NIST_EDWARDS25519": bytes.fromhex("06032b6570"),
}
# id-alg-ml-kem-512 (NIST CSOR 2.16.840.1.101.3.4.4.1), DER-encoded.
_ML_KEM_512_OID = bytes.fromhex("0609608648016503040401")
_ML_KEM_512_CIPHERTEXT_BYTES = 768
_ML_KEM_512_EXPANDED_BYTES = 1632
_ML_KEM_512_PUBLIC_OFFSET = 768
_ML_KEM_SEED_BYTES = 64


class NotKeyMaterial(ValueError):
    """Bytes that are not a private key of the expected spec."""


@dataclass(frozen=True, slots=True)
class MlKem512PrivateKey:
    """An ML-KEM-512 key pair: its seed, and the keys FIPS 203's KeyGen expands it into."""

    seed: bytes
    public_bytes_raw: bytes
    expanded: bytes

    @staticmethod
    def new_material() -> bytes:
        """A fresh seed and the decapsulation key it expands into: the kept form."""
        seed = os.urandom(_ML_KEM_SEED_BYTES)
        _, expanded = KYBER_ML_KEM_512.key_derive(seed)
        return seed + bytes(expanded)

    @classmethod
    def from_kept(cls, material: bytes) -> MlKem512PrivateKey:
        seed, expanded = material[:_ML_KEM_SEED_BYTES], material[_ML_KEM_SEED_BYTES:]
        if len(seed) != _ML_KEM_SEED_BYTES or len(expanded) != _ML_KEM_512_EXPANDED_BYTES:
            raise NotKeyMaterial("not ML-KEM-512 key material")
        # FIPS 203: dk = dk_PKE (768 bytes for k = 2) || ek (800) || H(ek) || z.
        public = expanded[_ML_KEM_512_PUBLIC_OFFSET : _ML_KEM_512_PUBLIC_OFFSET + 800]
        return cls(seed, public, expanded)

    def __repr__(self) -> str:
        return "MlKem512PrivateKey(...)"

    def encapsulate(self) -> tuple[bytes, bytes]:
        """``(ciphertext, shared secret)`` to this key's public key."""
        ciphertext, secret = pq_ml_kem_512.encaps(self.public_bytes_raw)
        return bytes(ciphertext), bytes(secret)

    def decapsulate(self, ciphertext: bytes) -> bytes:
        if len(ciphertext) != _ML_KEM_512_CIPHERTEXT_BYTES:
            raise ValueError("not an ML-KEM-512 ciphertext")
        return bytes(pq_ml_kem_512.decaps(self.expanded, ciphertext))


_ML_KEM: dict[str, Any] = {
    "ML_KEM_768": mlkem.MLKEM768PrivateKey,
    "ML_KEM_1024": mlkem.MLKEM1024PrivateKey,
}


def generate_material(spec: str) -> bytes:
    """New private material of ``spec`` in its kept form."""
    if spec in HMAC_KEY_BYTES:
        return os.urandom(HMAC_KEY_BYTES[spec])
    if spec in _ML_DSA:
        return os.urandom(32)
    if spec in _ML_KEM:
        return os.urandom(_ML_KEM_SEED_BYTES)
    if spec == KeySpec.ML_KEM_512:
        return MlKem512PrivateKey.new_material()
    key: Any
    if spec in RSA_BITS:
        key = rsa.generate_private_key(65537, RSA_BITS[spec])
    elif spec in EC_CURVES:
        key = ec.generate_private_key(EC_CURVES[spec]())
    elif spec == KeySpec.ECC_NIST_EDWARDS25519:
        key = ed25519.Ed25519PrivateKey.generate()
    else:
        raise NotKeyMaterial(f"no private key of {spec}")
    return bytes(key.private_bytes(_DER, _PKCS8, _NO_ENCRYPTION))


def load_private_key(spec: str, material: bytes) -> Any:
    """The usable private key (for HMAC: the key bytes) from its kept form."""
    if spec in HMAC_KEY_BYTES:
        return material
    if spec in _ML_DSA:
        return _ML_DSA[spec].from_seed_bytes(material)
    if spec in _ML_KEM:
        return _ML_KEM[spec].from_seed_bytes(material)
    if spec == KeySpec.ML_KEM_512:
        return MlKem512PrivateKey.from_kept(material)
    # Only a key store can have sealed the material, so OpenSSL's slow RSA check is redundant.
    return serialization.load_der_private_key(material, None, unsafe_skip_rsa_key_validation=True)


def public_key_der(spec: str, key: Any) -> bytes:
    """The DER SubjectPublicKeyInfo of a loaded private key."""
    if isinstance(key, MlKem512PrivateKey):
        return _spki(_ML_KEM_512_OID, key.public_bytes_raw)
    return bytes(key.public_key().public_bytes(_DER, _SPKI))


def pkcs8_der(key: Any) -> bytes:
    """The PKCS#8 DER PrivateKeyInfo of a loaded private key (data key pairs)."""
    if isinstance(key, MlKem512PrivateKey):
        # The seed choice of ML-KEM-PrivateKey, [0] IMPLICIT OCTET STRING (RFC 9935), as
        # cryptography writes ML-KEM-768/1024 and AWS its ML-KEM data key pairs.
        inner = _der(0x80, key.seed)
        return _der(0x30, b"\x02\x01\x00" + _der(0x30, _ML_KEM_512_OID) + _der(0x04, inner))
    return bytes(key.private_bytes(_DER, _PKCS8, _NO_ENCRYPTION))


def new_data_key_pair(spec: str) -> Any:
    """A fresh key pair of a DataKeyPairSpec, loaded."""
    DataKeyPairSpec(spec)
    return load_private_key(spec, generate_material(spec))


def imported_material(spec: str, data: bytes) -> bytes:
    """Imported material (HMAC: the raw key; others: PKCS#8 DER) as the kept form of
    ``spec``; raises ``NotKeyMaterial`` with a message that names no material."""
    if spec in HMAC_IMPORT_BYTES:
        low, high = HMAC_IMPORT_BYTES[spec]
        if not low <= len(data) <= high:
            raise NotKeyMaterial(
                f"The key material of an {spec} key must be {low} to {high} bytes long."
            )
        return data
    if spec not in IMPORTABLE_SPECS:
        raise NotKeyMaterial(f"Key material cannot be imported into {spec} keys.")
    return material_from_pkcs8(spec, data)


def material_from_pkcs8(spec: str, der: bytes) -> bytes:
    """Imported PKCS#8 private key bytes as the kept form of ``spec``; raises
    ``NotKeyMaterial`` when they are not a private key of that spec."""
    refused = NotKeyMaterial(
        f"The key material is not a DER-encoded PKCS#8 private key of key spec {spec}."
    )
    try:
        key: Any = serialization.load_der_private_key(der, None)
    except (ValueError, TypeError, NotImplementedError, UnsupportedAlgorithm):
        raise refused from None
    # The algorithm named in the PKCS#8 must be the plain one: an RSASSA-PSS-only key, say,
    # would otherwise be re-encoded as rsaEncryption and lose its restriction.
    expected_oid = _PKCS8_ALGORITHM_OIDS.get(spec, _EC_PUBLIC_KEY_OID)
    if expected_oid not in der[:_PKCS8_HEADER_BYTES]:
        raise refused
    if spec in RSA_BITS:
        matches = isinstance(key, rsa.RSAPrivateKey) and key.key_size == RSA_BITS[spec]
    elif spec in EC_CURVES:
        matches = isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(
            key.curve, EC_CURVES[spec]
        )
    elif spec == KeySpec.ECC_NIST_EDWARDS25519:
        matches = isinstance(key, ed25519.Ed25519PrivateKey)
    else:
        matches = False
    if not matches:
        raise refused
    return bytes(key.private_bytes(_DER, _PKCS8, _NO_ENCRYPTION))


def _spki(algorithm_oid: bytes, public: bytes) -> bytes:
    return _der(0x30, _der(0x30, algorithm_oid) + _der(0x03, b"\x00" + public))


def _der(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes([tag, length]) + content
    size = (length.bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + length.to_bytes(size, "big") + content
