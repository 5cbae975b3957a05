"""The server's key store: each handle goes to the custody that holds its material.

Keys made in a PKCS#11 custom key store are the token's (``TokenKeys``); every other key is
the software store's, rooted in the root key. Only symmetric encryption keys live in custom
key stores, so every other verb is the software store's alone.
"""

from __future__ import annotations

import datetime as dt
import logging

from openkms.keystore.base import (
    AssociatedData,
    KeyHandle,
    StagedImport,
    UnsupportedByKeyStore,
)
from openkms.keystore.software import SoftwareKeyStore
from openkms.keystore.token_keys import (
    StoreNotConnected,
    TokenKeys,
    TokenUnreachable,
    object_label,
)

log = logging.getLogger(__name__)


class KeyStoreRouter:
    name = "router"

    def __init__(self, software: SoftwareKeyStore, tokens: TokenKeys) -> None:
        self.software = software
        self.tokens = tokens

    def __repr__(self) -> str:
        return "KeyStoreRouter()"

    def forget_secrets(self) -> None:
        self.software.forget_secrets()
        self.tokens.forget_secrets()

    # -- material ------------------------------------------------------------------------

    def generate(self, key_spec: str, key_arn: str, version: int) -> bytes:
        return self.software.generate(key_spec, key_arn, version)

    def import_parameters(
        self, key_arn: str, wrapping_algorithm: str, wrapping_key_spec: str, valid_to: dt.datetime
    ) -> tuple[bytes, bytes]:
        return self.software.import_parameters(
            key_arn, wrapping_algorithm, wrapping_key_spec, valid_to
        )

    def open_import(
        self,
        key_spec: str,
        key_arn: str,
        import_token: bytes,
        encrypted_material: bytes,
        now: dt.datetime,
    ) -> StagedImport:
        return self.software.open_import(key_spec, key_arn, import_token, encrypted_material, now)

    def import_material(
        self, key_spec: str, key_arn: str, version: int, staged: StagedImport
    ) -> bytes:
        return self.software.import_material(key_spec, key_arn, version, staged)

    def discard(self, handle: KeyHandle) -> None:
        if handle.custom_key_store_id is None:
            self.software.discard(handle)
            return
        try:
            self.tokens.destroy(
                handle.custom_key_store_id, handle.key_arn, handle.version, handle.opaque
            )
        except (StoreNotConnected, TokenUnreachable):
            # The key is gone all the same (AWS too leaves the material in a cluster it
            # cannot reach); the object can be found by its label and removed by hand.
            log.warning(
                "key material %s of custom key store %s was left in its token: the store is "
                "not connected",
                object_label(handle.key_arn, handle.version),
                handle.custom_key_store_id,
            )

    # -- symmetric encryption ------------------------------------------------------------

    def encrypt(
        self, handle: KeyHandle, plaintext: bytes, associated_data: AssociatedData
    ) -> tuple[bytes, bytes]:
        if handle.custom_key_store_id is None:
            return self.software.encrypt(handle, plaintext, associated_data)
        return self.tokens.encrypt(handle, plaintext, associated_data)

    def decrypt(
        self, handle: KeyHandle, nonce: bytes, sealed: bytes, associated_data: bytes
    ) -> bytes:
        if handle.custom_key_store_id is None:
            return self.software.decrypt(handle, nonce, sealed, associated_data)
        return self.tokens.decrypt(handle, nonce, sealed, associated_data)

    # -- asymmetric, HMAC, key agreement, KEM: software keys only --------------------------

    def public_key(self, handle: KeyHandle) -> bytes:
        return self.software.public_key(_software(handle))

    def sign(self, handle: KeyHandle, algorithm: str, message_type: str, message: bytes) -> bytes:
        return self.software.sign(_software(handle), algorithm, message_type, message)

    def verify(
        self,
        handle: KeyHandle,
        algorithm: str,
        message_type: str,
        message: bytes,
        signature: bytes,
    ) -> bool:
        return self.software.verify(_software(handle), algorithm, message_type, message, signature)

    def encrypt_asymmetric(self, handle: KeyHandle, algorithm: str, plaintext: bytes) -> bytes:
        return self.software.encrypt_asymmetric(_software(handle), algorithm, plaintext)

    def decrypt_asymmetric(self, handle: KeyHandle, algorithm: str, ciphertext: bytes) -> bytes:
        return self.software.decrypt_asymmetric(_software(handle), algorithm, ciphertext)

    def mac(self, handle: KeyHandle, algorithm: str, message: bytes) -> bytes:
        return self.software.mac(_software(handle), algorithm, message)

    def verify_mac(self, handle: KeyHandle, algorithm: str, message: bytes, tag: bytes) -> bool:
        return self.software.verify_mac(_software(handle), algorithm, message, tag)

    def derive_shared_secret(self, handle: KeyHandle, peer_public_key: bytes) -> bytes:
        return self.software.derive_shared_secret(_software(handle), peer_public_key)

    def encapsulate(self, handle: KeyHandle) -> tuple[bytes, bytes]:
        return self.software.encapsulate(_software(handle))

    def decapsulate(self, handle: KeyHandle, ciphertext: bytes) -> bytes:
        return self.software.decapsulate(_software(handle), ciphertext)

    def random_bytes(self, count: int) -> bytes:
        return self.software.random_bytes(count)


def _software(handle: KeyHandle) -> KeyHandle:
    if handle.custom_key_store_id is not None:
        # The dispatcher's usage checks refuse these first: a custom key store holds only
        # symmetric encryption keys.
        raise UnsupportedByKeyStore("Keys in custom key stores are symmetric encryption keys.")
    return handle
