"""The values metric labels may take: a bounded vocabulary, so that nothing a caller writes
(an operation name it made up, a key id, an account id) becomes a label and a time series.

Operations are the names of the service models openkms serves (KMS's 56, IAM's, CloudTrail's,
STS's three); outcomes are ``ok`` or an AWS error code openkms can answer. Anything else is
counted under ``other``."""

from __future__ import annotations

import functools

from openkms import errors
from openkms.model.service_model import (
    ServiceModel,
    load_cloudtrail_model,
    load_iam_model,
    load_kms_model,
)

OK = "ok"
OTHER = "other"
# Outcomes the envelope names itself, not as a KmsError.
_ENVELOPE_CODES = frozenset(
    {"RequestTooLarge", "ClientDisconnected", "InternalFailure", "ServiceUnavailable"}
)
_STS_OPERATIONS = ("GetCallerIdentity", "AssumeRole", "GetSessionToken")


class LabelVocabulary:
    """Maps an operation name and an error code to a label value in O(1)."""

    def __init__(self, operations: frozenset[str], error_codes: frozenset[str]) -> None:
        self.operations = operations
        self.error_codes = error_codes

    def operation(self, name: str) -> str:
        return name if name in self.operations else OTHER

    def outcome(self, error_code: str | None) -> str:
        if error_code is None:
            return OK
        return error_code if error_code in self.error_codes else OTHER


@functools.cache
def vocabulary() -> LabelVocabulary:
    kms, iam, cloudtrail = load_kms_model(), load_iam_model(), load_cloudtrail_model()
    operations = set(kms.operations)
    operations.update(f"iam:{name}" for name in iam.operations)
    operations.update(f"cloudtrail:{name}" for name in cloudtrail.operations)
    operations.update(f"sts:{name}" for name in _STS_OPERATIONS)
    codes = set(_ENVELOPE_CODES) | _kms_error_codes()
    for model in (kms, iam, cloudtrail):
        codes |= _model_error_codes(model)
    return LabelVocabulary(frozenset(operations), frozenset(codes))


def _kms_error_codes() -> set[str]:
    codes: set[str] = set()
    pending: list[type[errors.KmsError]] = [errors.KmsError]
    while pending:
        cls = pending.pop()
        codes.add(cls.code)
        pending.extend(cls.__subclasses__())
    return codes


def _model_error_codes(model: ServiceModel) -> set[str]:
    codes: set[str] = set()
    for name, shape in model.shapes.items():
        if shape.get("exception"):
            codes.add(name)
            # Query services (IAM) answer the code in the shape's error trait.
            code = shape.get("error", {}).get("code")
            if isinstance(code, str):
                codes.add(code)
    return codes
