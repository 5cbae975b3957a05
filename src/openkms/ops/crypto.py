"""Cryptographic operations on symmetric keys: Encrypt, Decrypt, ReEncrypt, GenerateDataKey,
GenerateDataKeyWithoutPlaintext, GenerateRandom. The dispatcher has already found, authorised
and checked the keys (state, usage, algorithm, ciphertext binding, dry run)."""

from __future__ import annotations

from typing import Any

from openkms.crypto.key_specs import EncryptionAlgorithm
from openkms.ops.catalogue import data_key_bytes
from openkms.ops.context import Services
from openkms.ops.declaration import Call, handles
from openkms.ops.symmetric import open_blob, seal

_SYMMETRIC_DEFAULT = EncryptionAlgorithm.SYMMETRIC_DEFAULT.value


@handles("Encrypt")
def encrypt(services: Services, call: Call) -> dict[str, Any]:
    req = call.params
    blob, _ = seal(services, call.key, req["Plaintext"], req.get("EncryptionContext"))
    return {
        "CiphertextBlob": blob,
        "KeyId": call.key.record.arn,
        "EncryptionAlgorithm": _SYMMETRIC_DEFAULT,
    }


@handles("Decrypt")
def decrypt(services: Services, call: Call) -> dict[str, Any]:
    blob = call.resolved.blob
    assert blob is not None  # only a dry run goes without its ciphertext, and it ended before
    plaintext, material = open_blob(services, call.key, blob, call.params.get("EncryptionContext"))
    return {
        "KeyId": call.key.record.arn,
        "Plaintext": plaintext,
        "EncryptionAlgorithm": _SYMMETRIC_DEFAULT,
        "KeyMaterialId": material.material_id,
    }


@handles("ReEncrypt")
def re_encrypt(services: Services, call: Call) -> dict[str, Any]:
    req = call.params
    source = call.resolved.keys["source"]
    destination = call.resolved.keys["destination"]
    blob = call.resolved.blob
    assert blob is not None  # only a dry run goes without its ciphertext, and it ended before
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
        "SourceEncryptionAlgorithm": _SYMMETRIC_DEFAULT,
        "DestinationEncryptionAlgorithm": _SYMMETRIC_DEFAULT,
        "SourceKeyMaterialId": source_material.material_id,
        "DestinationKeyMaterialId": destination_material.material_id,
    }


@handles("GenerateDataKey")
def generate_data_key(services: Services, call: Call) -> dict[str, Any]:
    return _data_key(services, call, with_plaintext=True)


@handles("GenerateDataKeyWithoutPlaintext")
def generate_data_key_without_plaintext(services: Services, call: Call) -> dict[str, Any]:
    return _data_key(services, call, with_plaintext=False)


def _data_key(services: Services, call: Call, with_plaintext: bool) -> dict[str, Any]:
    plaintext = services.keystore.random_bytes(data_key_bytes(call.params))
    blob, material = seal(services, call.key, plaintext, call.params.get("EncryptionContext"))
    response: dict[str, Any] = {
        "CiphertextBlob": blob,
        "KeyId": call.key.record.arn,
        "KeyMaterialId": material.material_id,
    }
    if with_plaintext:
        response["Plaintext"] = plaintext
    return response


@handles("GenerateRandom")
def generate_random(services: Services, call: Call) -> dict[str, Any]:
    return {"Plaintext": services.keystore.random_bytes(call.params["NumberOfBytes"])}
