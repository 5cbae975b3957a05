"""The key-store interface every backend (software, PKCS#11, external) implements."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class MaterialRef:
    """Names one version of a key's backing material, as stored (wrapped)."""

    key_arn: str
    version: int
    wrapped: bytes


class KeyStore(Protocol):
    def new_symmetric_material(self, key_arn: str, version: int) -> bytes:
        """Generate 256 bits of backing material; return it wrapped, bound to arn and version."""
        ...

    def encrypt(
        self, ref: MaterialRef, plaintext: bytes, associated_data: Callable[[bytes], bytes]
    ) -> tuple[bytes, bytes]:
        """AES-256-GCM with a fresh nonce; ``associated_data`` maps the nonce to the AAD.

        Returns ``(nonce, ciphertext_and_tag)``.
        """
        ...

    def decrypt(
        self, ref: MaterialRef, nonce: bytes, sealed: bytes, associated_data: bytes
    ) -> bytes:
        """Open a sealed value; raise ``openkms.keystore.base.IntegrityError`` on any mismatch."""
        ...

    def random_bytes(self, count: int) -> bytes: ...

    def wrap_secret(self, label: str, secret: bytes) -> bytes:
        """Wrap a non-key secret (an access key's secret) under the root key, bound to label."""
        ...

    def unwrap_secret(self, label: str, wrapped: bytes) -> bytes: ...


class IntegrityError(Exception):
    """Authenticated decryption failed: wrong key, wrong context or tampered bytes."""
