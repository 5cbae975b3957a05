"""HMAC keys' operations: GenerateMac and VerifyMac. The dispatcher has already checked the
key's state, usage and that the MAC algorithm is its spec's."""

from __future__ import annotations

from typing import Any

from openkms.errors import KMSInvalidMacException
from openkms.ops.context import Services
from openkms.ops.declaration import Call, handles
from openkms.ops.key_handles import current_handle


@handles("GenerateMac")
def generate_mac(services: Services, call: Call) -> dict[str, Any]:
    req = call.params
    tag = services.keystore.mac(current_handle(call.key), req["MacAlgorithm"], req["Message"])
    return {"Mac": tag, "MacAlgorithm": req["MacAlgorithm"], "KeyId": call.key.record.arn}


@handles("VerifyMac")
def verify_mac(services: Services, call: Call) -> dict[str, Any]:
    req = call.params
    if not services.keystore.verify_mac(
        current_handle(call.key), req["MacAlgorithm"], req["Message"], req["Mac"]
    ):
        raise KMSInvalidMacException()
    return {"KeyId": call.key.record.arn, "MacValid": True, "MacAlgorithm": req["MacAlgorithm"]}
