"""Encryption operations: Encrypt, Decrypt, ReEncrypt, GenerateDataKey,
GenerateDataKeyWithoutPlaintext, GenerateDataKeyPair, GenerateDataKeyPairWithoutPlaintext,
GenerateRandom. The dispatcher has already found, authorised and checked the keys (state,
usage, algorithm, ciphertext binding for symmetric keys, dry run).

A symmetric key seals into openkms's self-describing blob (``ops.symmetric``); an RSA key
encrypts with RSAES-OAEP and its ciphertext is the bare OAEP output, as AWS's is, so that
anyone holding the public key can make one (and Decrypt must be told the key).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openkms.crypto import key_pairs
from openkms.crypto.key_specs import EncryptionAlgorithm, KeySpec
from openkms.errors import InvalidCiphertextException
from openkms.keystore import IntegrityError
from openkms.ops.catalogue import data_key_bytes
from openkms.ops.context import Services
from openkms.ops.custom_key_stores import connected_store
from openkms.ops.declaration import Call, handles
from openkms.ops.key_directory import LoadedKey
from openkms.ops.key_handles import current_handle
from openkms.ops.key_input_rules import check_plaintext_fits
from openkms.ops.resolution import request_ciphertext
from openkms.ops.symmetric import open_blob, seal
from openkms.storage.blocking import check_may_block

_SYMMETRIC_DEFAULT = EncryptionAlgorithm.SYMMETRIC_DEFAULT.value


def _is_symmetric(key: LoadedKey) -> bool:
    return key.record.key_spec == KeySpec.SYMMETRIC_DEFAULT


def _encrypt_under(
    services: Services,
    key: LoadedKey,
    plaintext: bytes,
    algorithm: str,
    context: Mapping[str, str] | None,
) -> tuple[bytes, str | None]:
    """The ciphertext, and the KeyMaterialId used (symmetric keys only)."""
    if _is_symmetric(key):
        blob, material = seal(services, key, plaintext, context)
        return blob, material.material_id
    return services.keystore.encrypt_asymmetric(current_handle(key), algorithm, plaintext), None


def _decrypt_with(
    services: Services,
    call: Call,
    key: LoadedKey,
    algorithm: str,
    context: Mapping[str, str] | None,
) -> tuple[bytes, str | None]:
    """The plaintext, and the KeyMaterialId that opened it (symmetric keys only)."""
    if _is_symmetric(key):
        blob = call.resolved.blob
        assert blob is not None  # bound by the dispatcher; a dry run ended before
        plaintext, material = open_blob(services, key, blob, context)
        return plaintext, material.material_id
    ciphertext = request_ciphertext(call.params)
    try:
        plaintext = services.keystore.decrypt_asymmetric(current_handle(key), algorithm, ciphertext)
    except IntegrityError:
        raise InvalidCiphertextException() from None
    return plaintext, None


@handles("Encrypt")
def encrypt(services: Services, call: Call) -> dict[str, Any]:
    req = call.params
    algorithm = req.get("EncryptionAlgorithm", _SYMMETRIC_DEFAULT)
    blob, _ = _encrypt_under(
        services, call.key, req["Plaintext"], algorithm, req.get("EncryptionContext")
    )
    return {"CiphertextBlob": blob, "KeyId": call.key.record.arn, "EncryptionAlgorithm": algorithm}


@handles("Decrypt")
def decrypt(services: Services, call: Call) -> dict[str, Any]:
    algorithm = call.params.get("EncryptionAlgorithm", _SYMMETRIC_DEFAULT)
    plaintext, material_id = _decrypt_with(
        services, call, call.key, algorithm, call.params.get("EncryptionContext")
    )
    response = {
        "KeyId": call.key.record.arn,
        "Plaintext": plaintext,
        "EncryptionAlgorithm": algorithm,
    }
    if material_id is not None:
        response["KeyMaterialId"] = material_id
    return response


@handles("ReEncrypt")
def re_encrypt(services: Services, call: Call) -> dict[str, Any]:
    req = call.params
    source = call.resolved.keys["source"]
    destination = call.resolved.keys["destination"]
    source_algorithm = req.get("SourceEncryptionAlgorithm", _SYMMETRIC_DEFAULT)
    destination_algorithm = req.get("DestinationEncryptionAlgorithm", _SYMMETRIC_DEFAULT)
    plaintext, source_material = _decrypt_with(
        services, call, source, source_algorithm, req.get("SourceEncryptionContext")
    )
    # Encrypt's plaintext was checked before DryRun; ReEncrypt's is known only now.
    check_plaintext_fits(destination, destination_algorithm, plaintext)
    new_blob, destination_material = _encrypt_under(
        services,
        destination,
        plaintext,
        destination_algorithm,
        req.get("DestinationEncryptionContext"),
    )
    response = {
        "CiphertextBlob": new_blob,
        "SourceKeyId": source.record.arn,
        "KeyId": destination.record.arn,
        "SourceEncryptionAlgorithm": source_algorithm,
        "DestinationEncryptionAlgorithm": destination_algorithm,
    }
    if source_material is not None:
        response["SourceKeyMaterialId"] = source_material
    if destination_material is not None:
        response["DestinationKeyMaterialId"] = destination_material
    return response


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


@handles("GenerateDataKeyPair")
def generate_data_key_pair(services: Services, call: Call) -> dict[str, Any]:
    return _data_key_pair(services, call, with_plaintext=True)


@handles("GenerateDataKeyPairWithoutPlaintext")
def generate_data_key_pair_without_plaintext(services: Services, call: Call) -> dict[str, Any]:
    return _data_key_pair(services, call, with_plaintext=False)


def _data_key_pair(services: Services, call: Call, with_plaintext: bool) -> dict[str, Any]:
    spec = call.params["KeyPairSpec"]
    if spec in key_pairs.RSA_BITS or spec == KeySpec.ML_KEM_512:
        # RSA key generation takes up to a second of CPU, ML-KEM-512's (pure Python) a few
        # milliseconds: never on the event loop, where it would hold up every other request
        # (the request reruns on a worker thread).
        check_may_block()
    private_key = key_pairs.new_data_key_pair(spec)
    private_der = key_pairs.pkcs8_der(private_key)
    blob, material = seal(services, call.key, private_der, call.params.get("EncryptionContext"))
    response: dict[str, Any] = {
        "PrivateKeyCiphertextBlob": blob,
        "PublicKey": key_pairs.public_key_der(spec, private_key),
        "KeyId": call.key.record.arn,
        "KeyPairSpec": spec,
        "KeyMaterialId": material.material_id,
    }
    if with_plaintext:
        response["PrivateKeyPlaintext"] = private_der
    return response


@handles("GenerateRandom")
def generate_random(services: Services, call: Call) -> dict[str, Any]:
    if "CustomKeyStoreId" in call.params:
        store = connected_store(services, call)
        assert services.tokens is not None  # the runtime always gives one
        random = services.tokens.random_bytes(
            store.custom_key_store_id, call.params["NumberOfBytes"]
        )
        return {"Plaintext": random}
    return {"Plaintext": services.keystore.random_bytes(call.params["NumberOfBytes"])}
