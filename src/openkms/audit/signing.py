"""The audit signing key: Ed25519, its private key wrapped by the root key like any secret.

Ed25519 because a signature is cheap to make on the writer's thread, small to store, and
checked by ``cryptography`` and by the ``openssl`` command line alike
(``openssl pkeyutl -verify -pubin -inkey audit.pem -rawin -in digest.json -sigfile sig``).
The public key is exported (``openkms audit public-key``) so that the trail is verified with
it alone; the key id is the first 16 bytes of the SHA-256 of the raw public key, in hex.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from openkms.seal import RootKey
from openkms.seal.secrets import unwrap_secret, wrap_secret


@dataclass(frozen=True)
class SigningKey:
    key_id: str
    public_pem: str
    _private: Ed25519PrivateKey = field(repr=False)

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self._private.sign(message)).decode("ascii")


class DeferredSigningKey:
    """The trail's signing key, opened (or made) on first use: a node that starts sealed
    cannot unwrap it under the root key until it is unsealed, and writes nothing before."""

    def __init__(self, open_key: Callable[[], SigningKey]) -> None:
        self._open = open_key
        self._key: SigningKey | None = None

    def _opened(self) -> SigningKey:
        if self._key is None:
            self._key = self._open()
        return self._key

    @property
    def key_id(self) -> str:
        return self._opened().key_id

    def sign(self, message: bytes) -> str:
        return self._opened().sign(message)


def new_signing_key() -> SigningKey:
    private = Ed25519PrivateKey.generate()
    return _signing_key(private)


def wrap_signing_key(root_key: RootKey, key: SigningKey) -> bytes:
    raw = key._private.private_bytes(  # noqa: SLF001 - the one place that wraps it
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return wrap_secret(root_key, _label(key.key_id), raw)


def unwrap_signing_key(root_key: RootKey, key_id: str, wrapped: bytes) -> SigningKey:
    raw = unwrap_secret(root_key, _label(key_id), wrapped)
    key = _signing_key(Ed25519PrivateKey.from_private_bytes(raw))
    if key.key_id != key_id:
        raise ValueError("the audit signing key does not match its id")
    return key


def load_public_key(pem: str | bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("an audit public key is an Ed25519 key")
    return key


def public_key_id(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:32]


def signature_valid(key: Ed25519PublicKey, message: bytes, signature: str) -> bool:
    try:
        key.verify(base64.b64decode(signature, validate=True), message)
    except (InvalidSignature, ValueError):
        return False
    return True


def _signing_key(private: Ed25519PrivateKey) -> SigningKey:
    public = private.public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")
    return SigningKey(public_key_id(public), pem, private)


def _label(key_id: str) -> str:
    return f"audit-signing-key:{key_id}"
