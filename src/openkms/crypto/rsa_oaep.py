"""RSA encryption as AWS KMS does it: RSAES-OAEP with SHA-1 or SHA-256 for both the label
hash and MGF1, an empty label, and at most k - 2·hLen - 2 bytes of plaintext."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "RSAES_OAEP_SHA_1": hashes.SHA1,
    "RSAES_OAEP_SHA_256": hashes.SHA256,
}


def oaep_padding(sha_256: bool) -> padding.OAEP:
    """AWS's OAEP (also its import wrapping's): one hash for the label and MGF1, no label."""
    hash_algorithm: hashes.HashAlgorithm = hashes.SHA256() if sha_256 else hashes.SHA1()  # noqa: S303
    return padding.OAEP(padding.MGF1(hash_algorithm), hash_algorithm, None)


def max_plaintext_bytes(key_bits: int, algorithm: str) -> int:
    return key_bits // 8 - 2 * _HASHES[algorithm]().digest_size - 2


def _oaep(algorithm: str) -> padding.OAEP:
    return oaep_padding(_HASHES[algorithm] is hashes.SHA256)


def encrypt(public_key: rsa.RSAPublicKey, algorithm: str, plaintext: bytes) -> bytes:
    """Callers check ``max_plaintext_bytes`` first."""
    return public_key.encrypt(plaintext, _oaep(algorithm))


def decrypt(private_key: rsa.RSAPrivateKey, algorithm: str, ciphertext: bytes) -> bytes:
    """Raises ValueError when the ciphertext does not decrypt (any cause alike)."""
    return private_key.decrypt(ciphertext, _oaep(algorithm))
