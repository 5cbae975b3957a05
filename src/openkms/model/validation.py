"""Validation of a request body against its input shape, in AWS's words.

Type mismatches (a string where an integer belongs, bad base64) are ``SerializationException``
as AWS answers them; constraint violations (required, length, range, enum, pattern) are
collected and answered together as one ``ValidationException``:
``1 validation error detected: Value 'x' at 'keyId' failed to satisfy constraint: ...``.
Blob and sensitive values are never echoed.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Any

from openkms.errors import SerializationException, ValidationException
from openkms.model.service_model import ServiceModel

_ECHO_LIMIT = 16_384  # longer values are not repeated back
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


def validate_input(model: ServiceModel, operation: str, body: Any) -> dict[str, Any]:
    """Check ``body`` against the operation's input shape; return it with blobs decoded."""
    shape_name = model.input_shape_name(operation)
    if shape_name is None:
        return {}
    if body is None:
        body = {}
    validator = _Validator(model)
    value = validator.structure(shape_name, body, "")
    if validator.violations:
        count = len(validator.violations)
        noun = "error" if count == 1 else "errors"
        raise ValidationException(
            f"{count} validation {noun} detected: " + "; ".join(validator.violations)
        )
    return value


_KINDS = frozenset(
    {"structure", "string", "blob", "integer", "boolean", "timestamp", "list", "map"}
)


def _member_path(parent: str, member: str) -> str:
    name = member[:1].lower() + member[1:]
    return f"{parent}.{name}" if parent else name


class _Validator:
    def __init__(self, model: ServiceModel) -> None:
        self.model = model
        self.violations: list[str] = []

    def violation(self, value_text: str | None, path: str, constraint: str) -> None:
        """Record one broken constraint; ``value_text`` None hides the value (sensitive)."""
        shown = f"Value {value_text} at" if value_text is not None else "Value at"
        self.violations.append(f"{shown} '{path}' failed to satisfy constraint: {constraint}")

    def value(self, shape_name: str, value: Any, path: str) -> Any:
        shape = self.model.shape(shape_name)
        kind = shape["type"]
        if kind not in _KINDS:
            # A type a newer botocore model may bring: pass the value through unchecked
            # rather than fail the request.
            return value
        return getattr(self, kind)(shape_name, value, path)

    def structure(self, shape_name: str, value: Any, path: str) -> dict[str, Any]:
        shape = self.model.shape(shape_name)
        if not isinstance(value, dict):
            raise SerializationException(_mismatch(value, "structure"))
        members = shape.get("members", {})
        result: dict[str, Any] = {}
        for name in shape.get("required", []):
            if value.get(name) is None:
                sensitive = self.model.shape(members[name]["shape"]).get("sensitive", False)
                shown = None if sensitive else "null"
                self.violation(shown, _member_path(path, name), "Member must not be null")
        for name, member_value in value.items():
            member = members.get(name)
            if member is None or member_value is None:
                # AWS ignores members it does not know; null is the same as absent.
                continue
            result[name] = self.value(member["shape"], member_value, _member_path(path, name))
        return result

    def string(self, shape_name: str, value: Any, path: str) -> str:
        shape = self.model.shape(shape_name)
        if not isinstance(value, str):
            raise SerializationException(_mismatch(value, "a String"))
        sensitive = shape.get("sensitive", False)
        shown = None if sensitive or len(value) > _ECHO_LIMIT else _quote(value)
        self._length(shape, len(value), shown, path)
        if "enum" in shape and value not in shape["enum"]:
            enum_text = ", ".join(shape["enum"])
            self.violation(shown, path, f"Member must satisfy enum value set: [{enum_text}]")
        pattern = self.model.pattern(shape_name)
        if pattern is not None and pattern.fullmatch(value) is None:
            self.violation(
                shown, path, f"Member must satisfy regular expression pattern: {pattern.pattern}"
            )
        return value

    def blob(self, shape_name: str, value: Any, path: str) -> bytes:
        shape = self.model.shape(shape_name)
        if not isinstance(value, str):
            raise SerializationException(_mismatch(value, "a Blob"))
        try:
            decoded = _b64decode(value)
        except (binascii.Error, ValueError):
            raise SerializationException(
                f"Could not decode the base64-encoded value of '{path}'"
            ) from None
        self._length(shape, len(decoded), None, path)
        return decoded

    def integer(self, shape_name: str, value: Any, path: str) -> int:
        shape = self.model.shape(shape_name)
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise SerializationException(_mismatch(value, "an Integer"))
        if not _INT_MIN <= value <= _INT_MAX:
            # AWS's front end reads integers as 32-bit; a larger number does not parse.
            raise SerializationException()
        if "min" in shape and value < shape["min"]:
            self.violation(
                _quote(str(value)),
                path,
                f"Member must have value greater than or equal to {shape['min']}",
            )
        if "max" in shape and value > shape["max"]:
            self.violation(
                _quote(str(value)),
                path,
                f"Member must have value less than or equal to {shape['max']}",
            )
        return value

    def boolean(self, shape_name: str, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            raise SerializationException(_mismatch(value, "an Boolean"))
        return value

    def timestamp(self, shape_name: str, value: Any, path: str) -> dt.datetime:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SerializationException(_mismatch(value, "a Date"))
        try:
            return dt.datetime.fromtimestamp(value, dt.UTC)
        except (OverflowError, OSError, ValueError):
            raise SerializationException(f"Timestamp out of range at '{path}'") from None

    def list(self, shape_name: str, value: Any, path: str) -> list[Any]:
        shape = self.model.shape(shape_name)
        if not isinstance(value, list):
            raise SerializationException(_mismatch(value, "list"))
        self._length(shape, len(value), None, path)
        member_shape = shape["member"]["shape"]
        return [
            self.value(member_shape, item, f"{path}.{index}.member")
            for index, item in enumerate(value, start=1)
        ]

    def map(self, shape_name: str, value: Any, path: str) -> dict[str, Any]:
        shape = self.model.shape(shape_name)
        if not isinstance(value, dict):
            raise SerializationException(_mismatch(value, "map"))
        self._length(shape, len(value), None, path)
        key_shape = shape["key"]["shape"]
        value_shape = shape["value"]["shape"]
        result: dict[str, Any] = {}
        for key, item in value.items():
            if item is None:
                raise SerializationException(f"Map values at '{path}' must not be null")
            result[self.value(key_shape, key, path)] = self.value(value_shape, item, path)
        return result

    def _length(self, shape: dict[str, Any], length: int, shown: str | None, path: str) -> None:
        if "min" in shape and length < shape["min"]:
            self.violation(
                shown, path, f"Member must have length greater than or equal to {shape['min']}"
            )
        if "max" in shape and length > shape["max"]:
            self.violation(
                shown, path, f"Member must have length less than or equal to {shape['max']}"
            )


def _b64decode(value: str) -> bytes:
    """Standard base64; like AWS's (Java's) decoder, the "=" padding may be left off."""
    if len(value) % 4 in (2, 3) and not value.endswith("="):
        value += "=" * (-len(value) % 4)
    return base64.b64decode(value, validate=True)


def _quote(value: str) -> str:
    return f"'{value}'"


def _mismatch(value: Any, expected: str) -> str | None:
    """AWS's own words for a JSON value of the wrong type (its Coral front end's)."""
    if value is None:
        return None  # a null inside a list: AWS's wording for it is not known
    if isinstance(value, list):
        return "Start of list found where not expected"
    if isinstance(value, dict):
        return "Start of structure or map found where not expected."
    if expected == "structure":
        return "Expected null"
    if expected in ("list", "map"):
        return f"Expected {expected} or null"
    if isinstance(value, bool):
        json_kind = "TRUE_VALUE" if value else "FALSE_VALUE"
    elif isinstance(value, str):
        json_kind = "STRING_VALUE"
    else:
        json_kind = "NUMBER_VALUE"
    return f"{json_kind} can not be converted to {expected}"
