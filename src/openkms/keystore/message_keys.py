"""The per-message key derivation that defines the ciphertext blob, written once.

Messages are never encrypted under a key's backing material itself. Each encryption draws a
256-bit random nonce and derives a one-time AES-256-GCM key and 96-bit IV from the material
with HKDF-SHA256 (info = label + nonce), as AWS KMS derives per-request keys, so the GCM
limit of 2^32 random-IV messages per key does not apply to a KMS key however busy it is.

Every backend that can read its symmetric material uses these functions, so a blob made by
one such backend opens on another holding the same material. A key inside a PKCS#11 token
cannot be read, so the token encrypts under it directly (``keystore.token_keys``).
"""

from __future__ import annotations

from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from openkms.crypto.integrity import IntegrityError
from openkms.crypto.random_pool import random_bytes

MESSAGE_NONCE_SIZE = 32
MESSAGE_KEY_INFO = b"openkms/message-key/v1\x00"
_KEY_BYTES = 32
_IV_BYTES = 12


def message_cipher(material: bytes, nonce: bytes) -> tuple[AESGCM, bytes]:
    derived = HKDF(
        algorithm=hashes.SHA256(),
        length=_KEY_BYTES + _IV_BYTES,
        salt=None,
        info=MESSAGE_KEY_INFO + nonce,
    ).derive(material)
    return AESGCM(derived[:_KEY_BYTES]), derived[_KEY_BYTES:]


def seal_message(
    material: bytes, plaintext: bytes, associated_data: Callable[[bytes], bytes]
) -> tuple[bytes, bytes]:
    nonce = random_bytes(MESSAGE_NONCE_SIZE)
    cipher, iv = message_cipher(material, nonce)
    return nonce, cipher.encrypt(iv, plaintext, associated_data(nonce))


def open_message(material: bytes, nonce: bytes, sealed: bytes, associated_data: bytes) -> bytes:
    if len(nonce) != MESSAGE_NONCE_SIZE:
        raise IntegrityError()
    cipher, iv = message_cipher(material, nonce)
    try:
        return cipher.decrypt(iv, sealed, associated_data)
    except InvalidTag:
        raise IntegrityError() from None
