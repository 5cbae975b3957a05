"""The AWS Query protocol driven by a service model (IAM's): form parameters such as
``Tags.member.1.Key`` read into the operation's input structure, and a result written as
the XML the SDKs parse, element names and order taken from the output shape.

Reading only builds the structure; ``openkms.model.validation`` then checks it against the
same shapes as a JSON request, so both protocols refuse bad input in the same words.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

from openkms.errors import ValidationException
from openkms.model.service_model import ServiceModel

# A list longer than this is not read further (IAM's longest lists are 50 tags).
_MAX_LIST_ITEMS = 1000


def read_input(model: ServiceModel, operation: str, params: Mapping[str, str]) -> dict[str, Any]:
    """The operation's input members found in ``params``, converted to the model's types."""
    shape_name = model.input_shape_name(operation)
    if shape_name is None:
        return {}
    return _structure(model, shape_name, params, "")


def _structure(
    model: ServiceModel, shape_name: str, params: Mapping[str, str], prefix: str
) -> dict[str, Any]:
    members = model.shape(shape_name).get("members", {})
    result: dict[str, Any] = {}
    for name, member in members.items():
        value = _value(model, member["shape"], params, prefix + name)
        if value is not None:
            result[name] = value
    return result


def _value(model: ServiceModel, shape_name: str, params: Mapping[str, str], key: str) -> Any:
    shape = model.shape(shape_name)
    kind = shape["type"]
    if kind == "structure":
        inner = _structure(model, shape_name, params, key + ".")
        return inner or None
    if kind == "list":
        return _list(model, shape["member"]["shape"], params, key)
    if kind == "map":
        return None  # no IAM input this server reads is a map
    text = params.get(key)
    if text is None:
        return None
    if kind == "integer" or kind == "long":
        try:
            return int(text)
        except ValueError:
            raise ValidationException(f"Invalid value for parameter {key}: {text!r}") from None
    if kind == "boolean":
        if text.lower() not in ("true", "false"):
            raise ValidationException(f"Invalid value for parameter {key}: {text!r}")
        return text.lower() == "true"
    return text


def _list(
    model: ServiceModel, member_shape: str, params: Mapping[str, str], key: str
) -> list[Any] | None:
    if key in params and params[key] == "":
        return []  # "Name=" is the Query protocol's empty list
    items: list[Any] = []
    for index in range(1, _MAX_LIST_ITEMS + 1):
        item = _value(model, member_shape, params, f"{key}.member.{index}")
        if item is None:
            break
        items.append(item)
    return items or None


def result_xml(
    model: ServiceModel, operation: str, result: Mapping[str, Any] | None, request_id: str
) -> bytes:
    """``<{Operation}Response>`` with the result (if the operation has one) and the request id."""
    namespace = model.xml_namespace
    spec = model.operations[operation].get("output")
    parts = [f'<{operation}Response xmlns="{namespace}">']
    if spec is not None:
        wrapper = spec.get("resultWrapper", f"{operation}Result")
        parts.append(f"<{wrapper}>")
        _write_structure(model, spec["shape"], result or {}, parts)
        parts.append(f"</{wrapper}>")
    parts.append(f"<ResponseMetadata><RequestId>{escape(request_id)}</RequestId>")
    parts.append(f"</ResponseMetadata></{operation}Response>")
    return "".join(parts).encode()


def _write_structure(
    model: ServiceModel, shape_name: str, value: Mapping[str, Any], parts: list[str]
) -> None:
    for name, member in model.shape(shape_name).get("members", {}).items():
        item = value.get(name)
        if item is None:
            continue
        parts.append(f"<{name}>")
        _write_value(model, member["shape"], item, parts)
        parts.append(f"</{name}>")


def _write_value(model: ServiceModel, shape_name: str, value: Any, parts: list[str]) -> None:
    shape = model.shape(shape_name)
    kind = shape["type"]
    if kind == "structure":
        _write_structure(model, shape_name, value, parts)
    elif kind == "list":
        member_shape = shape["member"]["shape"]
        for item in value:
            parts.append("<member>")
            _write_value(model, member_shape, item, parts)
            parts.append("</member>")
    elif kind == "boolean":
        parts.append("true" if value else "false")
    elif kind == "timestamp":
        parts.append(value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    elif kind == "blob":
        parts.append(base64.b64encode(value).decode())
    elif shape_name == "policyDocumentType":
        # IAM answers policy documents URL-encoded; the SDKs decode them.
        parts.append(escape(quote(value, safe="")))
    else:
        parts.append(escape(str(value)))
