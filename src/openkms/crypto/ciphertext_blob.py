"""The self-describing ciphertext blob for symmetric KMS keys.

Layout (all integers big-endian)::

    offset  size  field
    0       1     format version (1)
    1       16    key id (UUID bytes)
    17      4     backing-key version
    21      32    message nonce (random; the key store derives the one-time key and IV from
                  it, or, for a key inside a PKCS#11 token, uses its first 12 bytes as IV)
    53      n+16  AES-256-GCM ciphertext and tag

The 53-byte header is authenticated together with the canonical encryption context (it is the
GCM associated data), so changing any byte of the blob or of the context fails to decrypt.
"""

from __future__ import annotations

import functools
import struct
import uuid
from dataclasses import dataclass

FORMAT_VERSION = 1
NONCE_SIZE = 32
TAG_SIZE = 16
_HEADER = struct.Struct(">B16sI32s")
HEADER_SIZE = _HEADER.size


@functools.lru_cache(maxsize=4096)
def _key_id_bytes(key_id: str) -> bytes:
    return uuid.UUID(key_id).bytes


# Decrypt names its key by the blob's 16 bytes: parsing them as a UUID costs more than
# opening a small message, and a server's busy keys are few.
@functools.lru_cache(maxsize=4096)
def _key_id_text(key_bytes: bytes) -> str:
    return str(uuid.UUID(bytes=key_bytes))


class MalformedBlob(ValueError):
    """The bytes are not a ciphertext blob this server wrote."""


@dataclass(frozen=True, slots=True)
class CiphertextBlob:
    key_id: str
    material_version: int
    nonce: bytes
    sealed: bytes  # ciphertext followed by the GCM tag

    @property
    def header(self) -> bytes:
        return _HEADER.pack(
            FORMAT_VERSION, _key_id_bytes(self.key_id), self.material_version, self.nonce
        )

    def associated_data(self, canonical_context: bytes) -> bytes:
        return self.header + canonical_context

    def to_bytes(self) -> bytes:
        return self.header + self.sealed

    @classmethod
    def header_for(cls, key_id: str, material_version: int, nonce: bytes) -> bytes:
        return _HEADER.pack(FORMAT_VERSION, _key_id_bytes(key_id), material_version, nonce)

    @classmethod
    def parse(cls, data: bytes) -> CiphertextBlob:
        if len(data) < HEADER_SIZE + TAG_SIZE:
            raise MalformedBlob("too short")
        version, key_bytes, material_version, nonce = _HEADER.unpack_from(data)
        if version != FORMAT_VERSION:
            raise MalformedBlob("unknown format version")
        return cls(
            key_id=_key_id_text(key_bytes),
            material_version=material_version,
            nonce=nonce,
            sealed=bytes(data[HEADER_SIZE:]),
        )
