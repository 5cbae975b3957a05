"""Wrapping under the root key, with a format byte and the root-key generation in every value.

Every wrapped value starts with a format byte, so the wrapping can change while old values stay
readable (as OpenBao's barrier prefixes a version and key term):

    format 1:  0x01 | generation (4 bytes, big-endian) | nonce (12) | AES-256-GCM ciphertext+tag
               the 5-byte header is authenticated together with the caller's binding
    format 0:  0x00 | nonce (12) | ciphertext+tag
               values written before formats existed (release 0.1), prefixed by migration
               0002; always root-key generation 1, binding alone as associated data

The generation names which root key wrapped a value, so a rotated root key keeps older
generations for unwrapping while new values use the newest.
"""

from __future__ import annotations

import os
import struct
from enum import IntEnum
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from openkms.crypto.integrity import IntegrityError

_NONCE = 12
_HEADER = struct.Struct(">BI")
_LEGACY_GENERATION = 1


class WrappedFormat(IntEnum):
    LEGACY = 0
    AES_GCM_V1 = 1


class RootKey(Protocol):
    """What the rest of openkms sees of the root of trust."""

    @property
    def generation(self) -> int:
        """The generation new values are wrapped under."""
        ...

    def wrap(self, plaintext: bytes, binding: bytes) -> bytes:
        """Wrap ``plaintext``; it unwraps only with the same ``binding``."""
        ...

    def unwrap(self, wrapped: bytes, binding: bytes) -> bytes:
        """Raise ``IntegrityError`` for a value not wrapped here with this binding."""
        ...


class AesGcmRootKey:
    """Root keys held in memory by generation; the newest wraps, any known one unwraps."""

    def __init__(self, keys: dict[int, bytes]) -> None:
        if not keys:
            raise ValueError("at least one root key generation is needed")
        for generation, key in keys.items():
            if len(key) != 32:
                raise ValueError("a root key must be 256 bits")
            if not 1 <= generation < 2**32:
                raise ValueError("root key generations are 1 to 2**32-1")
        self._ciphers = {generation: AESGCM(key) for generation, key in keys.items()}
        self._generation = max(keys)

    def __repr__(self) -> str:
        return f"AesGcmRootKey(generations={sorted(self._ciphers)})"

    @property
    def generation(self) -> int:
        return self._generation

    def wrap(self, plaintext: bytes, binding: bytes) -> bytes:
        header = _HEADER.pack(WrappedFormat.AES_GCM_V1, self._generation)
        nonce = os.urandom(_NONCE)
        sealed = self._ciphers[self._generation].encrypt(nonce, plaintext, header + binding)
        return header + nonce + sealed

    def unwrap(self, wrapped: bytes, binding: bytes) -> bytes:
        if not wrapped:
            raise IntegrityError()
        if wrapped[0] == WrappedFormat.AES_GCM_V1 and len(wrapped) > _HEADER.size + _NONCE:
            _, generation = _HEADER.unpack_from(wrapped)
            body = wrapped[_HEADER.size :]
            aad = wrapped[: _HEADER.size] + binding
        elif wrapped[0] == WrappedFormat.LEGACY:
            generation, body, aad = _LEGACY_GENERATION, wrapped[1:], binding
        else:
            raise IntegrityError()
        cipher = self._ciphers.get(generation)
        if cipher is None or len(body) <= _NONCE:
            raise IntegrityError()
        try:
            return cipher.decrypt(body[:_NONCE], body[_NONCE:], aad)
        except InvalidTag:
            raise IntegrityError() from None


def generation_of(wrapped: bytes) -> int:
    """Which root-key generation wrapped a value (for rotation jobs and reports)."""
    if wrapped[:1] == bytes([WrappedFormat.AES_GCM_V1]) and len(wrapped) >= _HEADER.size:
        return int(_HEADER.unpack_from(wrapped)[1])
    return _LEGACY_GENERATION
