"""The key-store interface every backend (software, PKCS#11, external) implements.

A key store is custody: it makes key material, keeps it (or keeps it wrapped), and runs every
operation that needs it. Everything outside sees only opaque ``KeyHandle`` values; no verb
returns private or secret key material.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from openkms.crypto.integrity import IntegrityError

__all__ = ["IntegrityError", "KeyHandle", "KeyStore", "UnsupportedByKeyStore"]


@dataclass(frozen=True, slots=True)
class KeyHandle:
    """One version of a key's material as its key store gave it out.

    ``opaque`` means something only to the key store that made it (the software store: the
    material wrapped under the root key; an HSM: an object reference).
    """

    key_arn: str
    version: int
    opaque: bytes
    key_spec: str = "SYMMETRIC_DEFAULT"

    def __repr__(self) -> str:
        return f"KeyHandle({self.key_arn!r}, version={self.version}, spec={self.key_spec})"


class UnsupportedByKeyStore(Exception):
    """The key store cannot do this (yet) for this kind of key."""


AssociatedData = Callable[[bytes], bytes]


class KeyStore(Protocol):
    name: str

    # -- material ---------------------------------------------------------------------

    def generate(self, key_spec: str, key_arn: str, version: int) -> bytes:
        """New material of ``key_spec`` for (arn, version); returns the handle's opaque bytes."""
        ...

    def import_material(self, key_spec: str, key_arn: str, version: int, material: bytes) -> bytes:
        """Take custody of material a customer imported; returns the handle's opaque bytes."""
        ...

    # -- symmetric encryption (the ciphertext blob's body) ------------------------------

    def encrypt(
        self, handle: KeyHandle, plaintext: bytes, associated_data: AssociatedData
    ) -> tuple[bytes, bytes]:
        """Seal under a one-time key derived for a fresh message nonce.

        ``associated_data`` maps the nonce to the AAD. Returns ``(nonce, ciphertext_and_tag)``.
        """
        ...

    def decrypt(
        self, handle: KeyHandle, nonce: bytes, sealed: bytes, associated_data: bytes
    ) -> bytes:
        """Open a sealed value; raise ``IntegrityError`` on any mismatch."""
        ...

    # -- asymmetric, HMAC, key agreement, KEM ------------------------------------------

    def public_key(self, handle: KeyHandle) -> bytes:
        """DER SubjectPublicKeyInfo."""
        ...

    def sign(self, handle: KeyHandle, message: bytes, algorithm: str, digest: bool) -> bytes: ...

    def verify(
        self, handle: KeyHandle, message: bytes, signature: bytes, algorithm: str, digest: bool
    ) -> bool: ...

    def mac(self, handle: KeyHandle, message: bytes, algorithm: str) -> bytes: ...

    def derive_shared_secret(self, handle: KeyHandle, peer_public_key: bytes) -> bytes: ...

    def encapsulate(self, handle: KeyHandle) -> tuple[bytes, bytes]:
        """Returns ``(ciphertext, shared_secret)``."""
        ...

    def decapsulate(self, handle: KeyHandle, ciphertext: bytes) -> bytes: ...

    # -- randomness --------------------------------------------------------------------

    def random_bytes(self, count: int) -> bytes: ...
