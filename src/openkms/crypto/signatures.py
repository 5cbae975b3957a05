"""Signing and verification as AWS KMS does them, for every SigningAlgorithmSpec.

- RSASSA-PSS uses MGF1 with the same hash and a salt as long as the digest; PKCS #1 v1.5 is
  the usual DigestInfo form. ECDSA signatures are DER (X9.62) as OpenSSL writes them.
- ``MessageType`` DIGEST means the message is already the digest: RSA and ECDSA sign it as a
  prehash, never hashing it again.
- ED25519_SHA_512 is pure Ed25519 and takes RAW only. ED25519_PH_SHA_512 takes DIGEST only
  (a 64-byte SHA-512 digest) and, as AWS documents, still runs Ed25519ph's own SHA-512
  prehash over it (RFC 8032 HashEdDSA, empty context): the input is hashed twice.
- ML-DSA signs the message with an empty context (RAW) or a 64-byte ``mu`` the caller
  computed (EXTERNAL_MU, FIPS 204's external mu); it takes no DIGEST.

Input rules raise ``SigningInputError`` with AWS's message; verification failure is
``False``, never an exception.
"""

from __future__ import annotations

from typing import Any

from Crypto.Hash import SHA512 as PyCryptodomeSha512
from Crypto.Signature import eddsa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

from openkms.crypto.key_specs import SigningAlgorithm as Alg

RAW, DIGEST, EXTERNAL_MU = "RAW", "DIGEST", "EXTERNAL_MU"
_MU_BYTES = 64

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    Alg.RSASSA_PSS_SHA_256: hashes.SHA256,
    Alg.RSASSA_PSS_SHA_384: hashes.SHA384,
    Alg.RSASSA_PSS_SHA_512: hashes.SHA512,
    Alg.RSASSA_PKCS1_V1_5_SHA_256: hashes.SHA256,
    Alg.RSASSA_PKCS1_V1_5_SHA_384: hashes.SHA384,
    Alg.RSASSA_PKCS1_V1_5_SHA_512: hashes.SHA512,
    Alg.ECDSA_SHA_256: hashes.SHA256,
    Alg.ECDSA_SHA_384: hashes.SHA384,
    Alg.ECDSA_SHA_512: hashes.SHA512,
    Alg.ED25519_PH_SHA_512: hashes.SHA512,
}


class SigningInputError(ValueError):
    """The message does not fit the algorithm and message type; the text is AWS's."""


def check_message(key_spec: str, algorithm: str, message_type: str, message: bytes) -> None:
    """Refuse a message type the key or algorithm does not take, or a digest or mu of the
    wrong length, before any key is used."""
    # The algorithm was already checked against the key's spec: only ML-DSA keys have it.
    ml_dsa = algorithm == Alg.ML_DSA_SHAKE_256
    if message_type == EXTERNAL_MU:
        if not ml_dsa:
            raise SigningInputError(
                f"Message type EXTERNAL_MU is incompatible with key spec {key_spec}."
            )
        if len(message) != _MU_BYTES:
            raise SigningInputError(f"External Mu is invalid length for algorithm {algorithm}.")
    elif message_type == DIGEST:
        if ml_dsa:
            raise SigningInputError(
                f"Message type DIGEST is incompatible with key spec {key_spec}."
            )
        if algorithm == Alg.ED25519_SHA_512:
            raise SigningInputError(
                f"Message type DIGEST is incompatible with algorithm {algorithm}."
            )
        if len(message) != _HASHES[algorithm].digest_size:
            raise SigningInputError(f"Digest is invalid length for algorithm {algorithm}.")
    elif algorithm == Alg.ED25519_PH_SHA_512:
        raise SigningInputError(f"Message type RAW is incompatible with algorithm {algorithm}.")


def sign(key: Any, algorithm: str, message_type: str, message: bytes) -> bytes:
    """Callers run ``check_message`` first."""
    if isinstance(key, rsa.RSAPrivateKey):
        hash_algorithm, prehashed = _hashing(algorithm, message_type)
        return key.sign(message, _rsa_padding(algorithm, hash_algorithm), prehashed)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        _, prehashed = _hashing(algorithm, message_type)
        return key.sign(message, ec.ECDSA(prehashed))
    if isinstance(key, ed25519.Ed25519PrivateKey):
        if algorithm == Alg.ED25519_SHA_512:
            return key.sign(message)
        signer = eddsa.new(eddsa.import_private_key(key.private_bytes_raw()), "rfc8032")
        return bytes(signer.sign(PyCryptodomeSha512.new(message)))
    if message_type == EXTERNAL_MU:
        return bytes(key.sign_mu(message))
    return bytes(key.sign(message))


def verify(key: Any, algorithm: str, message_type: str, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is ``key``'s over ``message`` (``key``: the private key or its
    public key). Callers run ``check_message`` first."""
    public = key.public_key() if hasattr(key, "public_key") else key
    try:
        if isinstance(public, rsa.RSAPublicKey):
            hash_algorithm, prehashed = _hashing(algorithm, message_type)
            public.verify(signature, message, _rsa_padding(algorithm, hash_algorithm), prehashed)
        elif isinstance(public, ec.EllipticCurvePublicKey):
            _, prehashed = _hashing(algorithm, message_type)
            public.verify(signature, message, ec.ECDSA(prehashed))
        elif isinstance(public, ed25519.Ed25519PublicKey):
            if algorithm == Alg.ED25519_SHA_512:
                public.verify(signature, message)
            else:
                verifier = eddsa.new(eddsa.import_public_key(public.public_bytes_raw()), "rfc8032")
                verifier.verify(PyCryptodomeSha512.new(message), signature)
        elif message_type == EXTERNAL_MU:
            public.verify_mu(signature, message)
        else:
            public.verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def _hashing(algorithm: str, message_type: str) -> tuple[hashes.HashAlgorithm, Any]:
    hash_algorithm = _HASHES[algorithm]()
    prehashed = utils.Prehashed(hash_algorithm) if message_type == DIGEST else hash_algorithm
    return hash_algorithm, prehashed


def _rsa_padding(algorithm: str, hash_algorithm: hashes.HashAlgorithm) -> padding.AsymmetricPadding:
    if algorithm.startswith("RSASSA_PSS"):
        return padding.PSS(padding.MGF1(hash_algorithm), hash_algorithm.digest_size)
    return padding.PKCS1v15()
