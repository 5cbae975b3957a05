"""AWS JSON 1.1: ``X-Amz-Target: TrentService.<Operation>``, JSON bodies, blobs in base64,
timestamps in epoch seconds, errors as ``{"__type": ..., "message": ...}``."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import orjson

from openkms.errors import KmsError, SerializationException, UnknownOperationException

CONTENT_TYPE = "application/x-amz-json-1.1"


def operation_from_target(target: str | None, prefix: str) -> str:
    if not target:
        raise UnknownOperationException()
    service, _, operation = target.partition(".")
    if service != prefix or not operation:
        raise UnknownOperationException()
    return operation


def decode_body(body: bytes) -> Any:
    """The request's JSON; an empty body is an empty request, as AWS SDKs send for no input."""
    if not body.strip():
        return {}
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise SerializationException() from None
    if isinstance(value, list):
        raise SerializationException("Start of list found where not expected")
    if not isinstance(value, dict):
        raise SerializationException()
    return value


def encode_body(data: dict[str, Any]) -> bytes:
    return orjson.dumps(data, default=_encode_value, option=orjson.OPT_PASSTHROUGH_DATETIME)


def encode_error(error: KmsError) -> bytes:
    body: dict[str, Any] = {"__type": error.code}
    if error.message:
        body["message"] = error.message
    return orjson.dumps(body)


def _encode_value(value: Any) -> Any:
    if type(value) is bytes:  # nearly every call: the blob of each answer
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dt.datetime):
        return value.timestamp()
    raise TypeError(f"cannot encode {type(value).__name__}")
