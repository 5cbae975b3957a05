"""Access to botocore's KMS service model (``kms/2014-11-01/service-2.json``), and IAM's for
the admin API.

Operation names, input shapes and constraints are read from the installed botocore so the
server follows the real API: an operation AWS adds shows up as a missing handler, never as a
missing schema.
"""

from __future__ import annotations

import re
from functools import cache, cached_property
from typing import Any

from botocore.loaders import Loader


class ServiceModel:
    def __init__(self, raw: dict[str, Any]) -> None:
        self._raw = raw
        self.shapes: dict[str, dict[str, Any]] = raw["shapes"]
        self.operations: dict[str, dict[str, Any]] = raw["operations"]

    @cached_property
    def target_prefix(self) -> str:
        return str(self._raw["metadata"]["targetPrefix"])

    @cached_property
    def xml_namespace(self) -> str:
        return str(self._raw["metadata"].get("xmlNamespace", ""))

    @cached_property
    def api_version(self) -> str:
        return str(self._raw["metadata"]["apiVersion"])

    def has_operation(self, name: str) -> bool:
        return name in self.operations

    def input_shape_name(self, operation: str) -> str | None:
        spec = self.operations[operation].get("input")
        return spec["shape"] if spec else None

    def input_members(self, operation: str) -> dict[str, str]:
        """The operation's request members and their shape names."""
        shape_name = self.input_shape_name(operation)
        if shape_name is None:
            return {}
        members = self.shapes[shape_name].get("members", {})
        return {name: member["shape"] for name, member in members.items()}

    def may_hold_secret(self, shape_name: str, _seen: frozenset[str] = frozenset()) -> bool:
        """Whether a value of this shape can carry a secret: a blob (plaintexts, ciphertexts,
        key material, tokens), a member marked sensitive, or a container of either."""
        shape = self.shapes[shape_name]
        if shape.get("sensitive") or shape["type"] == "blob":
            return True
        if shape_name in _seen:
            return False
        seen = _seen | {shape_name}
        inner: list[str] = []
        if shape["type"] == "structure":
            inner = [m["shape"] for m in shape.get("members", {}).values()]
        elif shape["type"] == "list":
            inner = [shape["member"]["shape"]]
        elif shape["type"] == "map":
            inner = [shape["key"]["shape"], shape["value"]["shape"]]
        return any(self.may_hold_secret(name, seen) for name in inner)

    def shape(self, name: str) -> dict[str, Any]:
        return self.shapes[name]

    def pattern(self, shape_name: str) -> re.Pattern[str] | None:
        return _compiled_pattern(self.shapes[shape_name].get("pattern"))


@cache
def _compiled_pattern(pattern: str | None) -> re.Pattern[str] | None:
    # The model's patterns are Java regular expressions matched against the whole value,
    # with ASCII-only character classes.
    if not pattern:
        return None
    try:
        return re.compile(pattern, re.ASCII)
    except re.error:
        # Java's Unicode classes (\p{L}, IAM's tag patterns) have no ``re`` form; the domain
        # check of those values (``iam.roles.tag_problem``) applies the same rule.
        return None


@cache
def load_kms_model() -> ServiceModel:
    return ServiceModel(Loader().load_service_model("kms", "service-2"))


@cache
def load_iam_model() -> ServiceModel:
    """IAM's model (``iam/2010-05-08``), for the admin API: its input shapes validate requests
    and its output shapes give the XML answers their element names."""
    return ServiceModel(Loader().load_service_model("iam", "service-2"))


@cache
def load_cloudtrail_model() -> ServiceModel:
    """CloudTrail's model (``cloudtrail/2013-11-01``): LookupEvents and ListPublicKeys read
    their input by it."""
    return ServiceModel(Loader().load_service_model("cloudtrail", "service-2"))
