"""Asymmetric keys' own operations: GetPublicKey, Sign, Verify. The dispatcher has already
checked the key's state, usage, that the signing algorithm is one of its spec's, and the
message type and length (``key_input_rules``)."""

from __future__ import annotations

from typing import Any

from openkms.crypto.key_specs import metadata_algorithms, spec_info
from openkms.crypto.signatures import RAW
from openkms.errors import KMSInvalidSignatureException, UnsupportedOperationException
from openkms.ops.context import Services
from openkms.ops.declaration import Call, handles
from openkms.ops.key_handles import current_handle


@handles("GetPublicKey")
def get_public_key(services: Services, call: Call) -> dict[str, Any]:
    record = call.key.record
    if spec_info(record.key_spec).symmetric:
        raise UnsupportedOperationException(
            f"{record.arn} key usage is {record.key_usage} which is not valid for GetPublicKey."
        )
    return {
        "KeyId": record.arn,
        "PublicKey": services.keystore.public_key(current_handle(call.key)),
        "CustomerMasterKeySpec": record.key_spec,
        "KeySpec": record.key_spec,
        "KeyUsage": record.key_usage,
        **metadata_algorithms(record.key_spec, record.key_usage),
    }


@handles("Sign")
def sign(services: Services, call: Call) -> dict[str, Any]:
    req = call.params
    message_type = req.get("MessageType", RAW)
    signature = services.keystore.sign(
        current_handle(call.key), req["SigningAlgorithm"], message_type, req["Message"]
    )
    return {
        "KeyId": call.key.record.arn,
        "Signature": signature,
        "SigningAlgorithm": req["SigningAlgorithm"],
    }


@handles("Verify")
def verify(services: Services, call: Call) -> dict[str, Any]:
    req = call.params
    message_type = req.get("MessageType", RAW)
    valid = services.keystore.verify(
        current_handle(call.key),
        req["SigningAlgorithm"],
        message_type,
        req["Message"],
        req["Signature"],
    )
    if not valid:
        raise KMSInvalidSignatureException()
    return {
        "KeyId": call.key.record.arn,
        "SignatureValid": True,
        "SigningAlgorithm": req["SigningAlgorithm"],
    }
