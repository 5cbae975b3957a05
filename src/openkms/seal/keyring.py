"""The keyring: every root-key generation, stored in the database wrapped by a seal.

The root key is not a file or a share: it is the newest generation of a keyring that lives in
``server_settings`` wrapped by the *seal* (a key split into Shamir shares, or a key inside a
PKCS#11 token). So unsealing is unwrapping the keyring; rotating adds a generation without
touching any wrapped value (old generations stay for reading); rekeying wraps the same keyring
under a new seal, so no data is re-encrypted either way.

Each generation after the first is also stored wrapped by the generation before it (the
"upgrade" entries, as OpenBao keeps keyring upgrades): a node that holds generation n but not
the seal can learn generation n+1 that another node or worker added.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from openkms.crypto.integrity import IntegrityError
from openkms.seal.root_key import AesGcmRootKey

KEYRING_SETTING = "seal-keyring"
SEAL_CONFIG_SETTING = "seal-config"
_UPGRADE_SETTING = "seal-keyring-upgrade-"
_KEYRING_BINDING = b"openkms/keyring/v1\x00"
_UPGRADE_BINDING = b"openkms/keyring-upgrade/v1\x00"
_SEAL_FORMAT = 1
_NONCE = 12


class SealCipher(Protocol):
    """What wraps the keyring: a seal key in memory, or a key that never leaves a token."""

    def seal(self, plaintext: bytes, aad: bytes) -> bytes: ...

    def open(self, sealed: bytes, aad: bytes) -> bytes:
        """Raise ``IntegrityError`` for anything this seal did not seal with ``aad``."""
        ...


class SealKey:
    """A 256-bit seal key held in memory (combined from Shamir shares), AES-256-GCM."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("a seal key is 256 bits")
        self._cipher = AESGCM(key)
        self._key = key

    def __repr__(self) -> str:
        return "SealKey()"

    @property
    def material(self) -> bytes:
        """The raw key, for handing to the other workers of this node (never to disk)."""
        return self._key

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return bytes([_SEAL_FORMAT]) + nonce + self._cipher.encrypt(nonce, plaintext, aad)

    def open(self, sealed: bytes, aad: bytes) -> bytes:
        if len(sealed) <= 1 + _NONCE or sealed[0] != _SEAL_FORMAT:
            raise IntegrityError()
        try:
            return self._cipher.decrypt(sealed[1 : 1 + _NONCE], sealed[1 + _NONCE :], aad)
        except InvalidTag:
            raise IntegrityError() from None


@dataclass
class Keyring:
    generations: dict[int, bytes] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Keyring(generations={sorted(self.generations)})"

    @classmethod
    def new(cls) -> Keyring:
        return cls({1: os.urandom(32)})

    @property
    def newest(self) -> int:
        return max(self.generations)

    def root_key(self) -> AesGcmRootKey:
        return AesGcmRootKey(dict(self.generations))

    def rotated(self) -> Keyring:
        return Keyring({**self.generations, self.newest + 1: os.urandom(32)})

    def encode(self) -> bytes:
        return json.dumps({str(g): k.hex() for g, k in sorted(self.generations.items())}).encode()

    @classmethod
    def decode(cls, data: bytes) -> Keyring:
        return cls({int(g): bytes.fromhex(k) for g, k in json.loads(data).items()})


def seal_keyring(keyring: Keyring, cipher: SealCipher, seal_id: str) -> bytes:
    """The keyring wrapped by the seal, bound to the seal's id (a keyring wrapped by an
    earlier seal of the same store never opens as this one's)."""
    return cipher.seal(keyring.encode(), _KEYRING_BINDING + seal_id.encode())


def open_keyring(sealed: bytes, cipher: SealCipher, seal_id: str) -> Keyring:
    """Raise ``IntegrityError`` if ``cipher`` is not the seal that wrapped it."""
    return Keyring.decode(cipher.open(sealed, _KEYRING_BINDING + seal_id.encode()))


def upgrade_setting(generation: int) -> str:
    return f"{_UPGRADE_SETTING}{generation}"


def wrap_upgrade(keyring: Keyring, generation: int) -> bytes:
    """Generation ``generation`` wrapped by the one before it."""
    previous = AesGcmRootKey({generation - 1: keyring.generations[generation - 1]})
    return previous.wrap(keyring.generations[generation], _UPGRADE_BINDING + b"%d" % generation)


def follow_upgrades(keyring: Keyring, upgrades: Mapping[int, bytes]) -> Keyring:
    """``keyring`` with every later generation ``upgrades`` (generation -> entry) leads to."""
    generations = dict(keyring.generations)
    while (following := max(generations) + 1) in upgrades:
        previous = AesGcmRootKey({following - 1: generations[following - 1]})
        generations[following] = previous.unwrap(
            upgrades[following], _UPGRADE_BINDING + b"%d" % following
        )
    return Keyring(generations)
