"""The key-store interface every backend (software, PKCS#11, external) implements.

A key store is custody: it makes key material, keeps it (or keeps it wrapped), and runs every
operation that needs it. Everything outside sees only opaque ``KeyHandle`` values; no verb
returns private or secret key material.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from openkms.crypto.integrity import IntegrityError

__all__ = [
    "ImportRejected",
    "ImportTokenExpired",
    "ImportTokenInvalid",
    "IntegrityError",
    "KeyHandle",
    "KeyStore",
    "StagedImport",
    "UnsupportedByKeyStore",
]


@dataclass(frozen=True, slots=True)
class KeyHandle:
    """One version of a key's material as its key store gave it out.

    ``opaque`` means something only to the key store that made it (the software store: the
    material wrapped under the root key; an HSM: an object reference). A key made in a custom
    key store names it: its material is in that store's token.
    """

    key_arn: str
    version: int
    opaque: bytes
    key_spec: str = "SYMMETRIC_DEFAULT"
    custom_key_store_id: str | None = None

    def __repr__(self) -> str:
        return f"KeyHandle({self.key_arn!r}, version={self.version}, spec={self.key_spec})"


class UnsupportedByKeyStore(Exception):
    """The key store cannot do this (yet) for this kind of key."""


class ImportTokenExpired(Exception):
    """The import token's 24 hours are over."""


class ImportTokenInvalid(Exception):
    """Not an import token this key store issued for this key."""


class ImportRejected(Exception):
    """The material unwrapped but cannot be this key's (its size); the message is safe to
    show and names no material."""


@dataclass(frozen=True, slots=True)
class StagedImport:
    """Material a customer imported, unwrapped from its import wrapping and held by the key
    store (``sealed`` means something only to the store that made it) until the caller has
    decided which version of the key it becomes. ``material_id`` is its KeyMaterialId."""

    key_arn: str
    material_id: str
    sealed: bytes

    def __repr__(self) -> str:
        return f"StagedImport({self.key_arn!r}, id={self.material_id})"


AssociatedData = Callable[[bytes], bytes]


class KeyStore(Protocol):
    name: str

    def forget_secrets(self) -> None:
        """Drop every unwrapped material held in memory (the service is being sealed)."""
        ...

    # -- material ---------------------------------------------------------------------

    def generate(self, key_spec: str, key_arn: str, version: int) -> bytes:
        """New material of ``key_spec`` for (arn, version); returns the handle's opaque bytes."""
        ...

    def import_parameters(
        self, key_arn: str, wrapping_algorithm: str, wrapping_key_spec: str, valid_to: dt.datetime
    ) -> tuple[bytes, bytes]:
        """A fresh wrapping key pair for importing material into ``key_arn`` until
        ``valid_to``: ``(public key as DER SubjectPublicKeyInfo, import token)``. The token
        carries the private key sealed; nothing needs to be stored."""
        ...

    def open_import(
        self,
        key_spec: str,
        key_arn: str,
        import_token: bytes,
        encrypted_material: bytes,
        now: dt.datetime,
    ) -> StagedImport:
        """Unwrap ``encrypted_material`` with the token's private key. Raises
        ``ImportTokenExpired``, ``ImportTokenInvalid`` (not issued here for ``key_arn``),
        ``IntegrityError`` (does not unwrap) or ``ImportRejected`` (not material of
        ``key_spec``)."""
        ...

    def import_material(
        self, key_spec: str, key_arn: str, version: int, staged: StagedImport
    ) -> bytes:
        """Take custody of staged imported material as (arn, version); returns the handle's
        opaque bytes. Raw material is never accepted from outside the key store."""
        ...

    def discard(self, handle: KeyHandle) -> None:
        """Forget any copy of this material the store holds outside its opaque bytes, and
        destroy what it keeps of it elsewhere (a token's object): the material was deleted."""
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
    # Input that does not fit the key raises the crypto modules' own errors
    # (``SigningInputError``, ``PeerKeyError``); a ciphertext that does not open raises
    # ``IntegrityError``. Verification answers False rather than raising.

    def public_key(self, handle: KeyHandle) -> bytes:
        """DER SubjectPublicKeyInfo."""
        ...

    def sign(
        self, handle: KeyHandle, algorithm: str, message_type: str, message: bytes
    ) -> bytes: ...

    def verify(
        self,
        handle: KeyHandle,
        algorithm: str,
        message_type: str,
        message: bytes,
        signature: bytes,
    ) -> bool: ...

    def encrypt_asymmetric(self, handle: KeyHandle, algorithm: str, plaintext: bytes) -> bytes:
        """RSAES-OAEP under the key's public key (the caller checked the size)."""
        ...

    def decrypt_asymmetric(self, handle: KeyHandle, algorithm: str, ciphertext: bytes) -> bytes: ...

    def mac(self, handle: KeyHandle, algorithm: str, message: bytes) -> bytes: ...

    def verify_mac(self, handle: KeyHandle, algorithm: str, message: bytes, tag: bytes) -> bool:
        """Compared in constant time."""
        ...

    def derive_shared_secret(self, handle: KeyHandle, peer_public_key: bytes) -> bytes: ...

    def encapsulate(self, handle: KeyHandle) -> tuple[bytes, bytes]:
        """Returns ``(ciphertext, shared_secret)``."""
        ...

    def decapsulate(self, handle: KeyHandle, ciphertext: bytes) -> bytes: ...

    # -- randomness --------------------------------------------------------------------

    def random_bytes(self, count: int) -> bytes: ...
