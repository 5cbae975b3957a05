"""Keys inside PKCS#11 custom key stores: made, used and destroyed in the token.

A key in a custom key store is an AES-256 secret key object the token generates as sensitive
and non-extractable: its value never leaves the token, not even wrapped. The key's material
row holds only a reference (``pkcs11:`` and the object's CKA_ID); the object is found by
that id *and* by a label naming the key's ARN and version, so a reference moved to another
key's row finds nothing.

Encryption is AES-256-GCM through C_Encrypt / C_Decrypt in the token. The ciphertext blob is
openkms's usual one (docs/behaviour.md, "Keys in custom key stores"): its 32-byte message
nonce is drawn as for any key, the token's 96-bit GCM IV is the nonce's first 12 bytes, and
the additional data (the blob header with the whole nonce, and the encryption context) is the
same as a software key's. Every verb talks to the token, so each leaves the event loop first.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Callable, Iterator
from typing import Any

from pkcs11 import KeyType, Mechanism, ObjectClass
from pkcs11.exceptions import (
    EncryptedDataInvalid,
    EncryptedDataLenRange,
    GeneralError,
    NoSuchKey,
    PKCS11Error,
)
from pkcs11.mechanisms import GCMParams

from openkms.crypto.integrity import IntegrityError
from openkms.crypto.random_pool import random_bytes
from openkms.keystore.base import AssociatedData, KeyHandle
from openkms.keystore.clusters import TokenLocation
from openkms.keystore.message_keys import MESSAGE_NONCE_SIZE
from openkms.keystore.token_login import SEALED_AES_KEY
from openkms.keystore.token_sessions import PooledSession, TokenSessionPool, TokenUnreachable
from openkms.storage.blocking import check_may_block

__all__ = ["StoreLogin", "StoreNotConnected", "TokenKeys", "TokenUnreachable"]

_REFERENCE_PREFIX = b"pkcs11:"
_OBJECT_ID_BYTES = 16
_IV_BYTES = 12
_TAG_BITS = 128
# What SoftHSM2 and other tokens answer when a GCM tag does not match: the ciphertext's
# fault, not the session's.
_NOT_AUTHENTIC = (GeneralError, EncryptedDataInvalid, EncryptedDataLenRange)


class StoreNotConnected(Exception):
    """The custom key store is not CONNECTED (or no longer exists)."""


# A store's token and PIN, looked up when a process first uses the store; raises
# StoreNotConnected unless the store is CONNECTED.
StoreLogin = Callable[[str], tuple[TokenLocation, str]]


def object_label(key_arn: str, version: int) -> str:
    return f"openkms:{key_arn}#{version}"


class TokenKeys:
    def __init__(self, login: StoreLogin, sessions_per_store: int = 8) -> None:
        self._login = login
        self._sessions_per_store = sessions_per_store
        self._lock = threading.Lock()
        self._pools: dict[str, TokenSessionPool] = {}

    def __repr__(self) -> str:
        return "TokenKeys()"

    # -- material ------------------------------------------------------------------------

    def generate(self, store_id: str, key_arn: str, version: int) -> bytes:
        """A new AES-256 key in the store's token for (arn, version); returns its reference."""
        object_id = secrets.token_bytes(_OBJECT_ID_BYTES)
        with self._session(store_id) as pooled:
            pooled.session.generate_key(
                KeyType.AES,
                256,
                id=object_id,
                label=object_label(key_arn, version),
                store=True,
                template=SEALED_AES_KEY,
            )
        return _REFERENCE_PREFIX + object_id

    def destroy(self, store_id: str, key_arn: str, version: int, reference: bytes) -> None:
        """Destroy the key's object in the token; one already gone is not an error."""
        label = object_label(key_arn, version)
        with self._session(store_id) as pooled:
            pooled.forget(label)
            try:
                found = _find(pooled.session, label, _object_id(reference))
            except NoSuchKey:
                return
            found.destroy()

    # -- symmetric encryption ------------------------------------------------------------

    def encrypt(
        self, handle: KeyHandle, plaintext: bytes, associated_data: AssociatedData
    ) -> tuple[bytes, bytes]:
        nonce = random_bytes(MESSAGE_NONCE_SIZE)
        params = GCMParams(nonce[:_IV_BYTES], associated_data(nonce), _TAG_BITS)
        with self._key(handle) as key:
            sealed = key.encrypt(plaintext, mechanism=Mechanism.AES_GCM, mechanism_param=params)
        return nonce, bytes(sealed)

    def decrypt(
        self, handle: KeyHandle, nonce: bytes, sealed: bytes, associated_data: bytes
    ) -> bytes:
        if len(nonce) != MESSAGE_NONCE_SIZE or len(sealed) < _TAG_BITS // 8:
            raise IntegrityError()
        params = GCMParams(nonce[:_IV_BYTES], associated_data, _TAG_BITS)
        with self._key(handle) as key:
            try:
                return bytes(
                    key.decrypt(sealed, mechanism=Mechanism.AES_GCM, mechanism_param=params)
                )
            except _NOT_AUTHENTIC:
                pass  # raised below, outside the session: the session itself is fine
        raise IntegrityError()

    # -- randomness ----------------------------------------------------------------------

    def random_bytes(self, store_id: str, count: int) -> bytes:
        with self._session(store_id) as pooled:
            return bytes(pooled.session.generate_random(count * 8))

    # -- connections ---------------------------------------------------------------------

    def close(self, store_id: str) -> None:
        """Close this process's sessions on the store's token (it was disconnected, changed
        or deleted); the next use logs in again if the store is connected then."""
        with self._lock:
            pool = self._pools.pop(store_id, None)
        if pool is not None:
            pool.close()

    def forget_secrets(self) -> None:
        """Log out of every token and drop the PINs (the service is being sealed)."""
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()

    # -- internals -----------------------------------------------------------------------

    def _pool(self, store_id: str) -> TokenSessionPool:
        check_may_block()
        with self._lock:
            pool = self._pools.get(store_id)
        if pool is not None:
            return pool
        location, pin = self._login(store_id)
        made = TokenSessionPool(location, pin, self._sessions_per_store)
        with self._lock:
            pool = self._pools.setdefault(store_id, made)
        return pool

    @contextlib.contextmanager
    def _session(self, store_id: str) -> Iterator[PooledSession]:
        pool = self._pool(store_id)
        try:
            with pool.session() as pooled:
                yield pooled
        except PKCS11Error:
            raise TokenUnreachable("INTERNAL_ERROR") from None

    @contextlib.contextmanager
    def _key(self, handle: KeyHandle) -> Iterator[Any]:
        """The handle's key object, in a session lent for the ``with`` block."""
        assert handle.custom_key_store_id is not None
        object_id = _object_id(handle.opaque)
        with self._session(handle.custom_key_store_id) as pooled:
            try:
                key = pooled.key(
                    object_label(handle.key_arn, handle.version),
                    lambda session, label: _find(session, label, object_id),
                )
            except NoSuchKey:
                raise TokenUnreachable("KEY_NOT_IN_TOKEN") from None
            yield key


def _object_id(reference: bytes) -> bytes:
    if not reference.startswith(_REFERENCE_PREFIX):
        raise IntegrityError()
    return reference[len(_REFERENCE_PREFIX) :]


def _find(session: Any, label: str, object_id: bytes) -> Any:
    return session.get_key(ObjectClass.SECRET_KEY, KeyType.AES, label=label, id=object_id)
