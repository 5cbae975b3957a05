"""CloudTrail over AWS JSON 1.1 (``X-Amz-Target: CloudTrail_20131101.<Operation>``, SigV4
for service ``cloudtrail``): LookupEvents and ListPublicKeys on the audit trail, read and
checked by botocore's CloudTrail model, answered by ``openkms.audit.trail_api``."""

from __future__ import annotations

from typing import Any

from openkms.audit import AuditFacts
from openkms.audit.lookup_events import check_query
from openkms.audit.trail_api import OPERATIONS, TrailApi, TrailCall
from openkms.auth.authenticator import Authenticator
from openkms.auth.sigv4 import SignedRequest
from openkms.errors import UnknownOperationException, UnsupportedOperationException
from openkms.model.service_model import load_cloudtrail_model
from openkms.model.validation import validate_input
from openkms.protocol import json_protocol
from openkms.server.endpoints import Answer, KmsEndpoint, loggable_name

_SHORT_PREFIX = "CloudTrail_20131101"


class CloudTrailEndpoint(KmsEndpoint):
    """The JSON endpoint's error shapes are KMS's: AWS JSON 1.1 renders every service's
    errors as ``{"__type": code, "message": …}``."""

    service = "cloudtrail"

    def __init__(self, authenticator: Authenticator, api: TrailApi | None) -> None:
        self._authenticator = authenticator
        self._api = api
        self._model = load_cloudtrail_model()
        # boto3 and the AWS CLI send the model's long prefix; the short one is CloudTrail's
        # documented form.
        self._prefixes = (self._model.target_prefix, _SHORT_PREFIX)

    def serves(self, target: bytes) -> bool:
        return any(target.startswith(p.encode() + b".") for p in self._prefixes)

    def _operation(self, signed: SignedRequest) -> str:
        target = next((v for k, v in signed.headers if k == "x-amz-target"), "") or ""
        prefix, _, operation = target.rpartition(".")
        if prefix not in self._prefixes or not operation:
            raise UnknownOperationException()
        return operation

    def name_operation(self, signed: SignedRequest, facts: AuditFacts) -> None:
        target = next((v for k, v in signed.headers if k == "x-amz-target"), "") or ""
        facts.operation = f"cloudtrail:{loggable_name(target.rpartition('.')[2])}"

    def handle(self, signed: SignedRequest, facts: AuditFacts) -> Answer:
        self.name_operation(signed, facts)
        facts.read_only = True  # both operations only read
        operation = self._operation(signed)
        authenticated = self._authenticator.authenticate(signed, "cloudtrail", facts.source_address)
        facts.principal, facts.region = authenticated.principal, authenticated.region
        if operation not in OPERATIONS or not self._model.has_operation(operation):
            raise UnknownOperationException()
        body = json_protocol.decode_body(signed.body)
        if operation == "LookupEvents":
            check_query(body)
        params = validate_input(self._model, operation, body)
        facts.parameters = _recorded(params)
        if self._api is None:
            raise UnsupportedOperationException(
                "The audit trail is off on this server (--no-audit-trail)."
            )
        result = self._api.call(
            TrailCall(
                authenticated.principal,
                operation,
                params,
                authenticated.region,
                facts.source_address,
                facts.secure_transport,
            )
        )
        return Answer(200, json_protocol.encode_body(result), self.content_type)


def _recorded(params: dict[str, Any]) -> dict[str, Any]:
    """requestParameters as CloudTrail records a lookup: member names in lower camel case
    (the renderer lowers the outer ones), never the paging token."""
    recorded: dict[str, Any] = {}
    for name, value in params.items():
        if name == "NextToken":
            continue
        if name == "LookupAttributes":
            value = [
                {"attributeKey": a.get("AttributeKey"), "attributeValue": a.get("AttributeValue")}
                for a in value
            ]
        recorded[name] = value
    return recorded
