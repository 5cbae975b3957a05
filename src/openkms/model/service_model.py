"""Access to botocore's KMS service model (``kms/2014-11-01/service-2.json``).

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
    def api_version(self) -> str:
        return str(self._raw["metadata"]["apiVersion"])

    def has_operation(self, name: str) -> bool:
        return name in self.operations

    def input_shape_name(self, operation: str) -> str | None:
        spec = self.operations[operation].get("input")
        return spec["shape"] if spec else None

    def shape(self, name: str) -> dict[str, Any]:
        return self.shapes[name]

    def pattern(self, shape_name: str) -> re.Pattern[str] | None:
        return _compiled_pattern(self.shapes[shape_name].get("pattern"))


@cache
def _compiled_pattern(pattern: str | None) -> re.Pattern[str] | None:
    # The model's patterns are Java regular expressions matched against the whole value,
    # with ASCII-only character classes.
    return re.compile(pattern, re.ASCII) if pattern else None


@cache
def load_kms_model() -> ServiceModel:
    return ServiceModel(Loader().load_service_model("kms", "service-2"))
