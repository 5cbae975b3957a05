"""Key agreement and key encapsulation: DeriveSharedSecret (ECDH), Encapsulate and
Decapsulate (ML-KEM). The dispatcher has already checked the key's state, usage and
algorithm."""

from __future__ import annotations

from typing import Any

from openkms.crypto.key_agreement import PeerKeyError
from openkms.errors import InvalidCiphertextException, ValidationException
from openkms.keystore import IntegrityError
from openkms.ops.context import Services
from openkms.ops.declaration import Call, handles
from openkms.ops.key_handles import current_handle


@handles("DeriveSharedSecret")
def derive_shared_secret(services: Services, call: Call) -> dict[str, Any]:
    req, record = call.params, call.key.record
    try:
        secret = services.keystore.derive_shared_secret(current_handle(call.key), req["PublicKey"])
    except PeerKeyError:
        # AWS answers an unusable public key with no message.
        raise ValidationException() from None
    return {
        "KeyId": record.arn,
        "SharedSecret": secret,
        "KeyAgreementAlgorithm": req["KeyAgreementAlgorithm"],
        "KeyOrigin": record.origin,
    }


@handles("Encapsulate")
def encapsulate(services: Services, call: Call) -> dict[str, Any]:
    ciphertext, secret = services.keystore.encapsulate(current_handle(call.key))
    return {
        "KeyId": call.key.record.arn,
        "SharedSecret": secret,
        "SharedSecretCiphertextBlob": ciphertext,
        "EncapsulationAlgorithm": call.params["EncapsulationAlgorithm"],
    }


@handles("Decapsulate")
def decapsulate(services: Services, call: Call) -> dict[str, Any]:
    req = call.params
    try:
        secret = services.keystore.decapsulate(
            current_handle(call.key), req["SharedSecretCiphertextBlob"]
        )
    except IntegrityError:
        raise InvalidCiphertextException() from None
    return {
        "KeyId": call.key.record.arn,
        "SharedSecret": secret,
        "EncapsulationAlgorithm": req["EncapsulationAlgorithm"],
    }
