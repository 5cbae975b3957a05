"""Cryptographic operations on symmetric keys: Encrypt, Decrypt, ReEncrypt, GenerateDataKey,
GenerateDataKeyWithoutPlaintext, GenerateRandom."""

from __future__ import annotations

from typing import Any

from openkms.crypto.ciphertext_blob import CiphertextBlob
from openkms.errors import (
    DRY_RUN_MESSAGE,
    AccessDeniedException,
    CustomKeyStoreNotFoundException,
    DryRunOperationException,
    IncorrectKeyException,
    InvalidCiphertextException,
    InvalidKeyUsageException,
    UnsupportedOperationException,
    ValidationException,
)
from openkms.ops.context import RequestContext, Services
from openkms.ops.key_directory import LoadedKey
from openkms.ops.key_resolution import resolve_key
from openkms.ops.key_state import require_usable_for_crypto
from openkms.ops.symmetric import open_blob, parse_blob, seal

SYMMETRIC_DEFAULT = "SYMMETRIC_DEFAULT"
_DATA_KEY_BYTES = {"AES_256": 32, "AES_128": 16}


def encrypt(services: Services, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    key = _encryption_key(services, ctx, req["KeyId"], "kms:Encrypt")
    _check_algorithm(key, req.get("EncryptionAlgorithm"))
    _dry_run(req)
    blob, _ = seal(services, key, req["Plaintext"], req.get("EncryptionContext"))
    return {
        "CiphertextBlob": blob,
        "KeyId": key.record.arn,
        "EncryptionAlgorithm": SYMMETRIC_DEFAULT,
    }


def decrypt(services: Services, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    _refuse_recipient(req)
    key, blob = _key_for_ciphertext(services, ctx, req, req.get("KeyId"), "kms:Decrypt")
    _check_algorithm(key, req.get("EncryptionAlgorithm"))
    _dry_run(req)
    assert blob is not None  # only a dry run goes without its ciphertext, and it ended above
    plaintext, material = open_blob(services, key, blob, req.get("EncryptionContext"))
    return {
        "KeyId": key.record.arn,
        "Plaintext": plaintext,
        "EncryptionAlgorithm": SYMMETRIC_DEFAULT,
        "KeyMaterialId": material.material_id,
    }


def re_encrypt(services: Services, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    source, blob = _key_for_ciphertext(
        services, ctx, req, req.get("SourceKeyId"), "kms:ReEncryptFrom"
    )
    _check_algorithm(source, req.get("SourceEncryptionAlgorithm"))
    destination = _encryption_key(services, ctx, req["DestinationKeyId"], "kms:ReEncryptTo")
    _check_algorithm(destination, req.get("DestinationEncryptionAlgorithm"))
    _dry_run(req)
    assert blob is not None  # only a dry run goes without its ciphertext, and it ended above
    plaintext, source_material = open_blob(
        services, source, blob, req.get("SourceEncryptionContext")
    )
    new_blob, destination_material = seal(
        services, destination, plaintext, req.get("DestinationEncryptionContext")
    )
    return {
        "CiphertextBlob": new_blob,
        "SourceKeyId": source.record.arn,
        "KeyId": destination.record.arn,
        "SourceEncryptionAlgorithm": SYMMETRIC_DEFAULT,
        "DestinationEncryptionAlgorithm": SYMMETRIC_DEFAULT,
        "SourceKeyMaterialId": source_material.material_id,
        "DestinationKeyMaterialId": destination_material.material_id,
    }


def generate_data_key(
    services: Services, ctx: RequestContext, req: dict[str, Any]
) -> dict[str, Any]:
    _refuse_recipient(req)
    size = _data_key_size(req)
    key = _encryption_key(services, ctx, req["KeyId"], "kms:GenerateDataKey")
    _dry_run(req)
    plaintext = services.keystore.random_bytes(size)
    blob, material = seal(services, key, plaintext, req.get("EncryptionContext"))
    return {
        "CiphertextBlob": blob,
        "Plaintext": plaintext,
        "KeyId": key.record.arn,
        "KeyMaterialId": material.material_id,
    }


def generate_data_key_without_plaintext(
    services: Services, ctx: RequestContext, req: dict[str, Any]
) -> dict[str, Any]:
    size = _data_key_size(req)
    key = _encryption_key(services, ctx, req["KeyId"], "kms:GenerateDataKeyWithoutPlaintext")
    _dry_run(req)
    plaintext = services.keystore.random_bytes(size)
    blob, material = seal(services, key, plaintext, req.get("EncryptionContext"))
    return {"CiphertextBlob": blob, "KeyId": key.record.arn, "KeyMaterialId": material.material_id}


def generate_random(services: Services, ctx: RequestContext, req: dict[str, Any]) -> dict[str, Any]:
    _refuse_recipient(req)
    if "CustomKeyStoreId" in req:
        raise CustomKeyStoreNotFoundException(
            f"Custom key store '{req['CustomKeyStoreId']}' does not exist."
        )
    if "NumberOfBytes" not in req:
        raise ValidationException("NumberOfBytes is required.")
    return {"Plaintext": services.keystore.random_bytes(req["NumberOfBytes"])}


# -- shared rules -------------------------------------------------------------------------


def _encryption_key(services: Services, ctx: RequestContext, key_id: str, action: str) -> LoadedKey:
    key = resolve_key(services, ctx, key_id, action=action)
    _require_encryption_use(key, action)
    return key


def _require_encryption_use(key: LoadedKey, action: str) -> None:
    require_usable_for_crypto(key.record)
    if key.record.key_usage != "ENCRYPT_DECRYPT":
        raise InvalidKeyUsageException(
            f"{key.record.arn} key usage is {key.record.key_usage} which is not valid for "
            f"{action.removeprefix('kms:')}."
        )


def _key_for_ciphertext(
    services: Services,
    ctx: RequestContext,
    req: dict[str, Any],
    key_id: str | None,
    action: str,
) -> tuple[LoadedKey, CiphertextBlob | None]:
    """The key the request's ciphertext was made under (checked against ``key_id`` when one is
    named) and the parsed blob. A dry run with IGNORE_CIPHERTEXT that names its key checks
    that key only, and has no blob."""
    if _ignores_ciphertext(req) and key_id is not None:
        return _encryption_key(services, ctx, key_id, action), None
    data = req.get("CiphertextBlob")
    if data is None:
        raise ValidationException(
            "1 validation error detected: Value null at 'ciphertextBlob' failed to satisfy "
            "constraint: Member must not be null"
        )
    named = _encryption_key(services, ctx, key_id, action) if key_id is not None else None
    blob = parse_blob(data)
    if named is not None:
        if named.record.key_id != blob.key_id:
            raise IncorrectKeyException(
                "The key ID in the request does not identify a CMK that can perform this operation."
            )
        return named, blob
    key = services.keys.get(blob.key_id)
    if key is None or key.record.region != ctx.region:
        raise InvalidCiphertextException()
    if key.record.account_id != ctx.account_id:
        raise AccessDeniedException(
            f"User: {ctx.principal.arn} is not authorized to perform: {action} on resource: "
            f"{key.record.arn} because no resource-based policy allows the {action} action"
        )
    _require_encryption_use(key, action)
    return key, blob


def _check_algorithm(key: LoadedKey, algorithm: str | None) -> None:
    if algorithm is not None and algorithm != SYMMETRIC_DEFAULT:
        raise InvalidKeyUsageException(
            f"Algorithm {algorithm} is incompatible with key spec {key.record.key_spec}."
        )


def _data_key_size(req: dict[str, Any]) -> int:
    has_spec = "KeySpec" in req
    has_bytes = "NumberOfBytes" in req
    if has_spec == has_bytes:
        raise ValidationException("Please specify either number of bytes or key spec.")
    return _DATA_KEY_BYTES[req["KeySpec"]] if has_spec else int(req["NumberOfBytes"])


def _dry_run(req: dict[str, Any]) -> None:
    if req.get("DryRun"):
        raise DryRunOperationException(DRY_RUN_MESSAGE)


def _ignores_ciphertext(req: dict[str, Any]) -> bool:
    """DryRun with DryRunModifiers IGNORE_CIPHERTEXT: check permissions, not the ciphertext."""
    return bool(req.get("DryRun")) and "IGNORE_CIPHERTEXT" in req.get("DryRunModifiers", [])


def _refuse_recipient(req: dict[str, Any]) -> None:
    if "Recipient" in req:
        raise UnsupportedOperationException(
            "Recipient (Nitro Enclaves attestation) is not supported by this openkms server."
        )
