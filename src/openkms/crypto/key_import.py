"""Formats for importing key material (BYOK): wrapping algorithms and specs, the import
token's sealed payload, the unwrapping of EncryptedKeyMaterial, and the KeyMaterialId of
imported material. No I/O and no root key: the key store seals and opens tokens.

Import token (sealed by the key store under the root key, bound to the key's ARN):

    payload = version (1) | algorithm (1) | wrapping spec (1) | valid-to (8, big-endian
              microseconds since the epoch, UTC) | PKCS#8 DER of the wrapping private key

EncryptedKeyMaterial, as AWS defines it:

    RSAES_OAEP_SHA_*          RSA-OAEP(material), MGF1 with the same hash, empty label
    RSA_AES_KEY_WRAP_SHA_*    RSA-OAEP(256-bit AES key) || AES-KWP(AES key, material)
                              (RFC 5649), the RSA block first, exactly the modulus size
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import struct
from dataclasses import dataclass
from enum import StrEnum

from cryptography.hazmat.primitives import keywrap
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from openkms.crypto.rsa_oaep import oaep_padding

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_TOKEN_VERSION = 1
_TOKEN_HEADER = struct.Struct(">BBBq")
_MATERIAL_ID_LABEL = b"openkms/imported-key-material-id/v1\x00"
_AES_KEY_BYTES = 32


class WrappingAlgorithm(StrEnum):
    RSAES_OAEP_SHA_1 = "RSAES_OAEP_SHA_1"
    RSAES_OAEP_SHA_256 = "RSAES_OAEP_SHA_256"
    RSA_AES_KEY_WRAP_SHA_1 = "RSA_AES_KEY_WRAP_SHA_1"
    RSA_AES_KEY_WRAP_SHA_256 = "RSA_AES_KEY_WRAP_SHA_256"


class WrappingKeySpec(StrEnum):
    RSA_2048 = "RSA_2048"
    RSA_3072 = "RSA_3072"
    RSA_4096 = "RSA_4096"


WRAPPING_KEY_BITS = {
    WrappingKeySpec.RSA_2048: 2048,
    WrappingKeySpec.RSA_3072: 3072,
    WrappingKeySpec.RSA_4096: 4096,
}

# One-byte codes in the token; never renumber (tokens live for 24 hours across upgrades).
_ALGORITHM_CODES = {
    WrappingAlgorithm.RSAES_OAEP_SHA_1: 1,
    WrappingAlgorithm.RSAES_OAEP_SHA_256: 2,
    WrappingAlgorithm.RSA_AES_KEY_WRAP_SHA_1: 3,
    WrappingAlgorithm.RSA_AES_KEY_WRAP_SHA_256: 4,
}
_SPEC_CODES = {
    WrappingKeySpec.RSA_2048: 1,
    WrappingKeySpec.RSA_3072: 2,
    WrappingKeySpec.RSA_4096: 3,
}


class MalformedImport(ValueError):
    """A token payload or an EncryptedKeyMaterial that does not parse or does not unwrap.
    Deliberately says nothing more: a failed unwrap is one answer, never an oracle."""


@dataclass(frozen=True, slots=True)
class TokenContents:
    algorithm: WrappingAlgorithm
    wrapping_key_spec: WrappingKeySpec
    valid_to: dt.datetime
    private_key_der: bytes

    def __repr__(self) -> str:
        return (
            f"TokenContents({self.algorithm}, {self.wrapping_key_spec}, "
            f"valid_to={self.valid_to.isoformat()})"
        )


def encode_token_payload(contents: TokenContents) -> bytes:
    micros = (contents.valid_to - _EPOCH) // dt.timedelta(microseconds=1)
    header = _TOKEN_HEADER.pack(
        _TOKEN_VERSION,
        _ALGORITHM_CODES[contents.algorithm],
        _SPEC_CODES[contents.wrapping_key_spec],
        micros,
    )
    return header + contents.private_key_der


def decode_token_payload(payload: bytes) -> TokenContents:
    if len(payload) <= _TOKEN_HEADER.size:
        raise MalformedImport()
    version, algorithm_code, spec_code, micros = _TOKEN_HEADER.unpack_from(payload)
    algorithms = {code: a for a, code in _ALGORITHM_CODES.items()}
    specs = {code: s for s, code in _SPEC_CODES.items()}
    if version != _TOKEN_VERSION or algorithm_code not in algorithms or spec_code not in specs:
        raise MalformedImport()
    return TokenContents(
        algorithms[algorithm_code],
        specs[spec_code],
        _EPOCH + dt.timedelta(microseconds=micros),
        payload[_TOKEN_HEADER.size :],
    )


def _oaep(algorithm: WrappingAlgorithm) -> padding.OAEP:
    return oaep_padding(sha_256=algorithm.endswith("SHA_256"))


def unwrap_encrypted_material(
    private_key: rsa.RSAPrivateKey, algorithm: WrappingAlgorithm, encrypted: bytes
) -> bytes:
    """The key material inside ``encrypted``; ``MalformedImport`` if it does not unwrap."""
    oaep = _oaep(algorithm)
    try:
        if algorithm in (
            WrappingAlgorithm.RSAES_OAEP_SHA_1,
            WrappingAlgorithm.RSAES_OAEP_SHA_256,
        ):
            return private_key.decrypt(encrypted, oaep)
        block = private_key.key_size // 8
        if len(encrypted) <= block:
            raise MalformedImport()
        aes_key = private_key.decrypt(encrypted[:block], oaep)
        if len(aes_key) != _AES_KEY_BYTES:
            raise MalformedImport()
        return keywrap.aes_key_unwrap_with_padding(aes_key, encrypted[block:])
    except (ValueError, keywrap.InvalidUnwrap):
        raise MalformedImport() from None


def imported_material_id(key_id: str, material: bytes) -> str:
    """The KeyMaterialId of imported material: the same for the same key and material, so a
    re-import is recognised, and a MAC keyed by the material, so the id (public: listed,
    logged, audited) tells nothing about the material without it."""
    return hmac.new(material, _MATERIAL_ID_LABEL + key_id.encode(), hashlib.sha256).hexdigest()
