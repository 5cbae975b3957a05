"""The root key as the rest of openkms holds it: one object that can be sealed and unsealed.

Every component (key store, authenticator, STS, IAM) holds this one object, so sealing drops
the root key for all of them at once, and a sealed node wraps and unwraps nothing: each call
raises ``ServiceSealed`` (answered as a 503) instead of a ``KeyError`` deep in a handler.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from openkms.crypto.integrity import IntegrityError
from openkms.errors import SEALED_MESSAGE, ServiceSealed
from openkms.seal.keyring import Keyring, SealCipher
from openkms.seal.root_key import AesGcmRootKey, generation_of


class SealableRootKey:
    def __init__(self, seal_type: str) -> None:
        self.seal_type = seal_type
        self._root: AesGcmRootKey | None = None
        self._keyring: Keyring | None = None
        self._cipher: SealCipher | None = None
        self._lock = threading.Lock()
        # Reads the keyring's newer generations from the database (set by the runtime).
        self.find_newer: Callable[[Keyring], Keyring] | None = None

    def __repr__(self) -> str:
        return f"SealableRootKey({self.seal_type}, sealed={self.sealed})"

    @property
    def sealed(self) -> bool:
        return self._root is None

    @property
    def keyring(self) -> Keyring:
        if self._keyring is None:
            raise ServiceSealed(SEALED_MESSAGE)
        return self._keyring

    @property
    def cipher(self) -> SealCipher | None:
        """The seal that opened the keyring (for rotation), while unsealed."""
        return self._cipher

    def unseal(self, keyring: Keyring, cipher: SealCipher | None) -> None:
        with self._lock:
            self._keyring, self._cipher = keyring, cipher
            self._root = keyring.root_key()

    def seal(self) -> None:
        with self._lock:
            self._root = self._keyring = self._cipher = None

    @property
    def generation(self) -> int:
        return self._current().generation

    def wrap(self, plaintext: bytes, binding: bytes) -> bytes:
        return self._current().wrap(plaintext, binding)

    def unwrap(self, wrapped: bytes, binding: bytes) -> bytes:
        root = self._current()
        try:
            return root.unwrap(wrapped, binding)
        except IntegrityError:
            # A generation added by another worker or node since this one unsealed: learn it
            # from the keyring's upgrade entries and try once more.
            if self.find_newer is None or not wrapped or generation_of(wrapped) <= root.generation:
                raise
        keyring = self.find_newer(self.keyring)
        if keyring.newest > root.generation:
            with self._lock:
                if self._root is not None:
                    self._keyring, self._root = keyring, keyring.root_key()
        return self._current().unwrap(wrapped, binding)

    def _current(self) -> AesGcmRootKey:
        root = self._root
        if root is None:
            raise ServiceSealed(SEALED_MESSAGE)
        return root
