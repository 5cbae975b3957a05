"""Sealing and opening ciphertext blobs with a key's backing material via the key store."""

from __future__ import annotations

from collections.abc import Mapping

from openkms.crypto.ciphertext_blob import CiphertextBlob
from openkms.crypto.encryption_context import canonical_encryption_context
from openkms.errors import InvalidCiphertextException
from openkms.keystore import IntegrityError
from openkms.ops.context import Services
from openkms.ops.key_directory import LoadedKey
from openkms.ops.key_handles import handle_of
from openkms.ops.resolution import parse_blob
from openkms.storage import MaterialRecord

__all__ = ["open_blob", "parse_blob", "seal"]


def seal(
    services: Services, key: LoadedKey, plaintext: bytes, context: Mapping[str, str] | None
) -> tuple[bytes, MaterialRecord]:
    """Encrypt under the key's current material; return the blob and the material used."""
    material = key.current_material
    canonical = canonical_encryption_context(context)
    key_id = key.record.key_id

    def associated_data(nonce: bytes) -> bytes:
        return CiphertextBlob.header_for(key_id, material.version, nonce) + canonical

    nonce, sealed = services.keystore.encrypt(handle_of(key, material), plaintext, associated_data)
    return CiphertextBlob.header_for(key_id, material.version, nonce) + sealed, material


def open_blob(
    services: Services, key: LoadedKey, blob: CiphertextBlob, context: Mapping[str, str] | None
) -> tuple[bytes, MaterialRecord]:
    """Decrypt a blob the caller has already matched to ``key``."""
    material = key.materials.get(blob.material_version)
    if material is None or material.wrapped_material is None:
        raise InvalidCiphertextException()
    aad = blob.associated_data(canonical_encryption_context(context))
    try:
        plaintext = services.keystore.decrypt(
            handle_of(key, material), blob.nonce, blob.sealed, aad
        )
    except IntegrityError:
        raise InvalidCiphertextException() from None
    return plaintext, material
