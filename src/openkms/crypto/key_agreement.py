"""ECDH as AWS KMS's DeriveSharedSecret does it, and ML-KEM encapsulation.

DeriveSharedSecret returns the raw shared secret (the x-coordinate of the shared point, as
NIST SP 800-56A's ECC CDH primitive gives it), not a key derived from it: the caller runs its
own KDF. The other party's public key arrives as DER SubjectPublicKeyInfo (AWS takes no PEM
and no bare point) and must be a valid point on the KMS key's curve.
"""

from __future__ import annotations

from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from openkms.crypto.key_pairs import MlKem512PrivateKey


class PeerKeyError(ValueError):
    """The other party's public key is unusable with this key (AWS explains no further)."""


def derive_shared_secret(private_key: ec.EllipticCurvePrivateKey, peer_public_key: bytes) -> bytes:
    peer = _load_peer(peer_public_key)
    if not isinstance(peer, ec.EllipticCurvePublicKey):
        raise PeerKeyError("The public key is not an elliptic curve public key.")
    if peer.curve.name != private_key.curve.name:
        raise PeerKeyError(
            "The public key's curve does not match the curve of the KMS key's key spec."
        )
    return private_key.exchange(ec.ECDH(), peer)


def _load_peer(data: bytes) -> Any:
    try:
        return serialization.load_der_public_key(data)
    except (ValueError, TypeError, NotImplementedError, UnsupportedAlgorithm):
        raise PeerKeyError(
            "The public key is not a valid DER-encoded X.509 SubjectPublicKeyInfo."
        ) from None


def encapsulate(private_key: Any) -> tuple[bytes, bytes]:
    """``(ciphertext, shared secret)`` to the public half of an ML-KEM key."""
    if isinstance(private_key, MlKem512PrivateKey):
        return private_key.encapsulate()
    secret, ciphertext = private_key.public_key().encapsulate()
    return bytes(ciphertext), bytes(secret)


def decapsulate(private_key: Any, ciphertext: bytes) -> bytes:
    """Raises ValueError for a ciphertext of the wrong length. (ML-KEM's implicit rejection
    answers a wrong ciphertext of the right length with an unrelated secret.)"""
    return bytes(private_key.decapsulate(ciphertext))
