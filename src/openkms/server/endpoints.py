"""The protocol endpoints behind the envelope: KMS over AWS JSON 1.1, and the STS and IAM
subsets over AWS Query. Each turns a signed request into an answer in its own wire format;
none knows HTTP, and none renders an error any other way than its protocol's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from openkms.audit import AuditFacts
from openkms.auth.authenticator import Authenticator
from openkms.auth.sigv4 import SignedRequest
from openkms.errors import KmsError, KMSInternalException, SerializationException
from openkms.iam.admin_api import AdminCall, IamAdministration
from openkms.iam.sts import SecurityTokenService, TemporaryCredentials
from openkms.model.service_model import load_iam_model
from openkms.model.validation import validate_input
from openkms.ops.dispatcher import Dispatcher
from openkms.protocol import json_protocol, query_protocol, query_shapes

# KMSInternalException is what AWS KMS answers when it cannot complete a request for a
# reason of its own (retryable, 500): the trail that must record the request is such a reason.
AUDIT_UNAVAILABLE_MESSAGE = (
    "The request was rejected because an internal exception occurred (the audit trail is "
    "unavailable). The request can be retried."
)


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    content_type: str
    error_code: str | None = None


class Endpoint(Protocol):
    service: str
    content_type: str

    def handle(self, signed: SignedRequest, facts: AuditFacts) -> Answer: ...

    def name_operation(self, signed: SignedRequest, facts: AuditFacts) -> None:
        """Record in ``facts`` which operation the request asks for (loggable form)."""
        ...

    def error(self, error: KmsError, request_id: str) -> Answer: ...

    def too_large(self, request_id: str) -> Answer: ...

    def internal_error(self, request_id: str) -> Answer: ...

    def audit_unavailable(self, request_id: str) -> Answer: ...


class KmsEndpoint:
    service = "kms"
    content_type = json_protocol.CONTENT_TYPE

    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher

    def name_operation(self, signed: SignedRequest, facts: AuditFacts) -> None:
        target = next((v for k, v in signed.headers if k == "x-amz-target"), None)
        facts.operation = loggable_name((target or "").partition(".")[2])

    def handle(self, signed: SignedRequest, facts: AuditFacts) -> Answer:
        target = next((v for k, v in signed.headers if k == "x-amz-target"), None)
        facts.operation = loggable_name((target or "").partition(".")[2])
        result = self._dispatcher.handle(signed, target, signed.body, facts)
        return Answer(200, json_protocol.encode_body(result), self.content_type)

    def error(self, error: KmsError, request_id: str) -> Answer:
        return Answer(
            error.status, json_protocol.encode_error(error), self.content_type, error.code
        )

    def too_large(self, request_id: str) -> Answer:
        return self.error(SerializationException("The request body is too large."), request_id)

    def internal_error(self, request_id: str) -> Answer:
        return self.error(KMSInternalException("An internal error occurred."), request_id)

    def audit_unavailable(self, request_id: str) -> Answer:
        return self.error(KMSInternalException(AUDIT_UNAVAILABLE_MESSAGE), request_id)


class QueryEndpoint:
    """What the Query services share: errors as ``<ErrorResponse>`` in the service's namespace,
    and an unknown action or version answered as AWS answers it."""

    service = "query"
    content_type = query_protocol.CONTENT_TYPE
    namespace = query_protocol.STS_NAMESPACE

    def error(self, error: KmsError, request_id: str) -> Answer:
        code, status = query_protocol.query_error(error)
        body = query_protocol.error_xml(code, error.message or "", request_id, self.namespace)
        return Answer(status, body, self.content_type, code)

    def too_large(self, request_id: str) -> Answer:
        body = query_protocol.error_xml(
            "RequestEntityTooLarge", "The request body is too large.", request_id, self.namespace
        )
        return Answer(413, body, self.content_type, "RequestEntityTooLarge")

    def internal_error(self, request_id: str) -> Answer:
        body = query_protocol.error_xml("InternalFailure", "", request_id, self.namespace)
        return Answer(500, body, self.content_type, "InternalFailure")

    def audit_unavailable(self, request_id: str) -> Answer:
        # The Query services' own code for a failure on their side (500).
        body = query_protocol.error_xml(
            "InternalFailure", AUDIT_UNAVAILABLE_MESSAGE, request_id, self.namespace
        )
        return Answer(500, body, self.content_type, "InternalFailure")

    def invalid_action(self, action: str, version: str, request_id: str) -> Answer:
        message = f"Could not find operation {action} for version {version}"
        body = query_protocol.error_xml(
            "InvalidAction", message, request_id, query_protocol.FAULT_NAMESPACE
        )
        return Answer(400, body, self.content_type, "InvalidAction")


class StsEndpoint(QueryEndpoint):
    """GetCallerIdentity (which SDKs and tools call to check their credentials), AssumeRole and
    GetSessionToken."""

    service = "sts"
    _VERSION = "2011-06-15"
    _ACTIONS = frozenset({"GetCallerIdentity", "AssumeRole", "GetSessionToken"})

    def __init__(
        self, authenticator: Authenticator, sts: SecurityTokenService | None = None
    ) -> None:
        self._authenticator = authenticator
        self._sts = sts

    def name_operation(self, signed: SignedRequest, facts: AuditFacts) -> None:
        params = query_protocol.decode_parameters(signed.raw_query, signed.body)
        facts.operation = f"sts:{loggable_name(params.get('Action', ''))}"

    def handle(self, signed: SignedRequest, facts: AuditFacts) -> Answer:
        params = query_protocol.decode_parameters(signed.raw_query, signed.body)
        action = params.get("Action", "")
        facts.operation = f"sts:{loggable_name(action)}"
        # What CloudTrail records of an STS request (never TokenCode, the MFA code).
        facts.parameters = {name: params[name] for name in _AUDITED if name in params}
        facts.read_only = True  # as CloudTrail marks STS's calls
        authenticated = self._authenticator.authenticate(signed, "sts", facts.source_address)
        facts.principal, facts.region = authenticated.principal, authenticated.region
        version = params.get("Version") or "NO_VERSION_SPECIFIED"
        known = action in self._ACTIONS and (action == "GetCallerIdentity" or self._sts)
        if not known or version != self._VERSION:
            return self.invalid_action(action, version, facts.request_id)
        principal = authenticated.principal
        if action == "GetCallerIdentity":
            facts.read_only = True
            body = query_protocol.caller_identity_xml(
                principal.arn, principal.user_id, principal.account_id, facts.request_id
            )
            return Answer(200, body, self.content_type)
        assert self._sts is not None
        if action == "AssumeRole":
            issued = self._sts.assume_role(
                principal,
                params,
                authenticated.region,
                facts.source_address,
                facts.secure_transport,
            )
            facts.response = {
                "credentials": _recorded_credentials(issued),
                "assumedRoleUser": {
                    "assumedRoleId": issued.principal.user_id,
                    "arn": issued.principal.arn,
                },
            }
            body = query_protocol.assume_role_xml(
                _credentials(issued),
                issued.principal.user_id,
                issued.principal.arn,
                issued.packed_policy_size,
                facts.request_id,
            )
        else:
            issued = self._sts.get_session_token(principal, params)
            facts.response = {"credentials": _recorded_credentials(issued)}
            body = query_protocol.session_token_xml(_credentials(issued), facts.request_id)
        return Answer(200, body, self.content_type)


class IamEndpoint(QueryEndpoint):
    """The IAM subset that manages an account's users, roles, access keys, inline policies
    and tags (``openkms.iam.admin_api``), read and answered by IAM's service model."""

    service = "iam"
    _VERSION = "2010-05-08"

    def __init__(self, authenticator: Authenticator, admin: IamAdministration) -> None:
        self._authenticator = authenticator
        self._admin = admin
        self._model = load_iam_model()
        self.namespace = self._model.xml_namespace

    def name_operation(self, signed: SignedRequest, facts: AuditFacts) -> None:
        params = query_protocol.decode_parameters(signed.raw_query, signed.body)
        facts.operation = f"iam:{loggable_name(params.get('Action', ''))}"

    def handle(self, signed: SignedRequest, facts: AuditFacts) -> Answer:
        params = query_protocol.decode_parameters(signed.raw_query, signed.body)
        action = params.get("Action", "")
        facts.operation = f"iam:{loggable_name(action)}"
        authenticated = self._authenticator.authenticate(signed, "iam", facts.source_address)
        facts.principal, facts.region = authenticated.principal, authenticated.region
        version = params.get("Version") or "NO_VERSION_SPECIFIED"
        if not self._admin.knows(action) or version != self._VERSION:
            return self.invalid_action(action, version, facts.request_id)
        facts.read_only = action.startswith(("Get", "List"))
        request = validate_input(
            self._model, action, query_shapes.read_input(self._model, action, params)
        )
        # Names only: never a policy document or anything a caller wrote at length.
        facts.parameters = {name: request[name] for name in _IAM_AUDITED if name in request}
        call = AdminCall(
            authenticated.principal,
            action,
            request,
            authenticated.region,
            facts.source_address,
            facts.secure_transport,
        )
        result = self._admin.call(call)
        body = query_shapes.result_xml(self._model, action, result, facts.request_id)
        return Answer(200, body, self.content_type)


_IAM_AUDITED = ("UserName", "RoleName", "PolicyName", "AccessKeyId", "Status", "TagKeys")
_AUDITED = ("RoleArn", "RoleSessionName", "DurationSeconds", "SerialNumber", "ExternalId")


def _recorded_credentials(issued: TemporaryCredentials) -> dict[str, object]:
    # The access key id and expiry; never the secret or the session token.
    return {"accessKeyId": issued.access_key_id, "expiration": issued.expiration}


def _credentials(issued: TemporaryCredentials) -> str:
    return query_protocol.credentials_xml(
        issued.access_key_id, issued.secret_access_key, issued.session_token, issued.expiration
    )


def loggable_name(name: str) -> str:
    """An operation name fit for a log line: letters and digits only, never what a caller
    chose to write there (no newlines, no forged entries)."""
    name = name[:64]
    return name if name.isascii() and name.isalnum() else "-"
