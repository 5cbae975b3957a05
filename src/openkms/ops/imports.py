"""Imported key material (BYOK): GetParametersForImport, ImportKeyMaterial,
DeleteImportedKeyMaterial. The key store holds the wrapping keys and unwraps the import; the
rules that change the key are ``openkms.domain.imports``."""

from __future__ import annotations

from typing import Any

from openkms.crypto import key_pairs
from openkms.domain import imports
from openkms.errors import (
    ExpiredImportTokenException,
    InvalidCiphertextException,
    InvalidImportTokenException,
    ValidationException,
)
from openkms.keystore import ImportRejected, ImportTokenExpired, ImportTokenInvalid, IntegrityError
from openkms.ops.context import Services
from openkms.ops.declaration import Call, handles
from openkms.storage.blocking import check_may_block


@handles("GetParametersForImport")
def get_parameters_for_import(services: Services, call: Call) -> dict[str, Any]:
    record, req = call.key.record, call.params
    imports.check_external(record)
    if record.key_spec in key_pairs.RSA_BITS and req["WrappingAlgorithm"].startswith("RSAES_"):
        # An RSA private key is larger than any RSAES_OAEP wrapping can carry (AWS: RSA
        # key material needs an RSA_AES_KEY_WRAP algorithm); say so now, not at import.
        raise ValidationException(
            f"{record.arn} has key spec {record.key_spec}: RSA private key material must be "
            "wrapped with RSA_AES_KEY_WRAP_SHA_1 or RSA_AES_KEY_WRAP_SHA_256."
        )
    # Making an RSA key pair takes up to seconds (RSA_4096): never on the event loop.
    check_may_block()
    valid_to = services.clock.now() + imports.IMPORT_PARAMETERS_LIFETIME
    public_key, token = services.keystore.import_parameters(
        record.arn, req["WrappingAlgorithm"], req["WrappingKeySpec"], valid_to
    )
    return {
        "KeyId": record.arn,
        "ImportToken": token,
        "PublicKey": public_key,
        "ParametersValidTo": valid_to,
    }


@handles("ImportKeyMaterial")
def import_key_material(services: Services, call: Call) -> dict[str, Any]:
    record, req = call.key.record, call.params
    imports.check_external(record)
    now = services.clock.now()
    request = imports.ImportRequest.from_params(req)
    imports.check_valid_to(request.valid_to, now)
    try:
        staged = services.keystore.open_import(
            record.key_spec, record.arn, req["ImportToken"], req["EncryptedKeyMaterial"], now
        )
    except ImportTokenExpired:
        raise ExpiredImportTokenException(
            "The import token has expired. Call GetParametersForImport for a new public key "
            "and import token, and wrap the key material again."
        ) from None
    except ImportTokenInvalid:
        raise InvalidImportTokenException(
            "The import token is invalid or is associated with a different KMS key."
        ) from None
    except IntegrityError:
        raise InvalidCiphertextException(
            "The encrypted key material does not unwrap with the wrapping key and wrapping "
            "algorithm of the import token."
        ) from None
    except ImportRejected as error:
        raise ValidationException(str(error)) from None
    imports.import_material(services.db, services.keystore, record.key_id, staged, request, now)
    return {"KeyId": record.arn, "KeyMaterialId": staged.material_id}


@handles("DeleteImportedKeyMaterial")
def delete_imported_key_material(services: Services, call: Call) -> dict[str, Any]:
    record = call.key.record
    _, material_id = imports.delete_material(
        services.db, services.keystore, record.key_id, call.params.get("KeyMaterialId")
    )
    response: dict[str, Any] = {"KeyId": record.arn}
    if material_id is not None:
        response["KeyMaterialId"] = material_id
    return response
