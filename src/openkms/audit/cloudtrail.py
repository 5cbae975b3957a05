"""One request as a CloudTrail record, in the shape CloudTrail gives KMS and STS calls.

The record is rendered once, by the audit writer, into compact JSON whose bytes are what the
trail stores and hashes: there is no second canonical form to drift from the first. What
repeats from request to request is prebuilt (the userIdentity of each principal, the
constant members) so a warm Encrypt's record costs little more than its request parameters.

Request parameters are the members the operation's declaration lists (never a secret: the
dispatcher refuses to start otherwise), named as CloudTrail names them (``keyId``,
``encryptionContext``: lower camel case for the model's structure members, the caller's own
keys of a map such as an encryption context untouched). Response elements are recorded for
writes only, as KMS does (null for cryptographic and other read operations), and without any
member the model marks sensitive or binary, nor grant tokens.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

import orjson

from openkms.audit.events import AuditEvent
from openkms.crypto.random_pool import random_uuid
from openkms.iam.principal import Principal, role_arn_of_session
from openkms.model import ServiceModel

EVENT_VERSION = "1.08"
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME
# Entries per fragment cache (identities, callers, resource sets); a full cache starts over.
_CACHE_LIMIT = 10_000
# What KMS records for a member the caller left out (the operation's default).
_DEFAULTS: dict[str, dict[str, str]] = {
    "Encrypt": {"encryptionAlgorithm": "SYMMETRIC_DEFAULT"},
    "Decrypt": {"encryptionAlgorithm": "SYMMETRIC_DEFAULT"},
}
# Members of an answer never recorded whatever the model says of them: bearer tokens.
_NEVER_RECORDED = frozenset({"GrantToken", "GrantTokens", "ImportToken", "SessionToken"})


class RecordKeys(NamedTuple):
    """The columns a record is found by (``openkms audit lookup``), taken with its JSON."""

    event_id: str
    event_time: dt.datetime
    event_source: str
    event_name: str
    principal_arn: str | None
    access_key_id: str | None
    error_code: str | None
    resources: str  # the key ARNs and requested key ids, space-separated, for a LIKE filter


def camel(name: str) -> str:
    """CloudTrail's member names: ``KeyId`` -> ``keyId``; ``AWSAccountId`` stays."""
    if len(name) > 1 and name[1].isupper():
        return name
    return name[:1].lower() + name[1:]


class CloudTrailRenderer:
    def __init__(self, model: ServiceModel) -> None:
        self._model = model
        self._identities: dict[Principal, bytes] = {}
        self._input_members: dict[str, dict[str, str]] = {}
        self._output_members: dict[str, dict[str, str]] = {}
        self._origins: dict[tuple[Any, ...], bytes] = {}
        self._tails: dict[tuple[Any, ...], bytes] = {}
        self._second = dt.datetime.min
        self._second_text = b""

    def render(self, event: AuditEvent) -> tuple[bytes, RecordKeys]:
        """The record's JSON and its look-up columns. The JSON is joined from fragments:
        the parts that repeat request after request are encoded once and cached."""
        facts = event.facts
        if facts.service_event is not None:
            return _service_event(facts)
        kms = facts.service == "kms"
        source = f"{facts.service}.amazonaws.com"  # kms, sts or iam
        event_name = facts.operation.removeprefix(f"{facts.service}:")
        principal = facts.principal
        event_id = random_uuid()
        # The record says the second, as CloudTrail's eventTime does; the look-up column keeps
        # the microseconds, so events of one second from different workers still come back
        # newest first.
        exact = facts.event_time.astimezone(dt.UTC)
        when = exact.replace(microsecond=0)
        parameters = (
            self._request_parameters(event_name, facts.parameters)
            if kms
            else _sts_parameters(facts.parameters)
        )
        if kms and facts.read_only is not None and event_name in _DEFAULTS:
            # The dispatcher ran (read_only is its mark): the defaults applied.
            parameters = {**_DEFAULTS[event_name], **parameters}
        response = None
        arns = [arn for role, arn in facts.resources if role != "alias"]
        if event.error_code is None and facts.response is not None:
            response = (
                self._response_elements(event_name, facts.response) if kms else facts.response
            )
            made = (facts.response.get("KeyMetadata") or {}).get("Arn") if kms else None
            if made and not arns:
                arns.append(made)  # CreateKey: the key it made is its resource
        account = principal.account_id if principal is not None else None
        parts = [
            b'{"eventVersion":"' + EVENT_VERSION.encode() + b'","userIdentity":',
            self._identity(principal),
            b',"eventTime":"',
            self._time_text(when),
            self._origin(source, event_name, facts.region, facts.source_address, facts.user_agent),
        ]
        if event.error_code is not None:
            parts += [b',"errorCode":', _json(event.error_code)]
            if event.error_message:
                parts += [b',"errorMessage":', _json(event.error_message)]
        parts += [
            b',"requestParameters":',
            _json(parameters) if parameters else b"null",
            b',"responseElements":',
            _json(response) if response is not None else b"null",
            b',"requestID":',
            _json(facts.request_id),
            b',"eventID":"',
            event_id.encode(),
            b'","readOnly":true' if facts.read_only else b'","readOnly":false',
            self._resources(tuple(arns), account),
        ]
        keys = RecordKeys(
            event_id,
            exact,
            source,
            event_name,
            principal.arn if principal is not None else None,
            principal.access_key_id if principal is not None else None,
            event.error_code,
            _resource_text(arns, facts.parameters),
        )
        return b"".join(parts), keys

    def _time_text(self, when: dt.datetime) -> bytes:
        if when != self._second:
            self._second, self._second_text = when, when.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
        return self._second_text

    def _origin(
        self,
        source: str,
        event_name: str,
        region: str | None,
        address: str | None,
        user_agent: str | None,
    ) -> bytes:
        """From eventSource to userAgent: one fragment per caller and operation."""
        key = (source, event_name, region, address, user_agent)
        cached = self._origins.get(key)
        if cached is None:
            cached = (
                b'","eventSource":"'
                + source.encode()
                + b'"'
                + orjson.dumps(
                    {
                        "eventName": event_name,
                        "awsRegion": region,
                        "sourceIPAddress": address,
                        "userAgent": user_agent,
                    }
                ).replace(b"{", b",", 1)[:-1]
            )
            if len(self._origins) > _CACHE_LIMIT:
                self._origins.clear()
            self._origins[key] = cached
        return cached

    def _resources(self, arns: tuple[str, ...], account: str | None) -> bytes:
        """resources to the end of the record: one fragment per set of keys (and caller)."""
        key = (arns, account)
        cached = self._tails.get(key)
        if cached is None:
            tail: dict[str, Any] = {}
            if arns:
                tail["resources"] = [
                    {"accountId": _account_of(arn), "type": "AWS::KMS::Key", "ARN": arn}
                    for arn in arns
                ]
            tail["eventType"] = "AwsApiCall"
            tail["managementEvent"] = True
            # The account the event is delivered to: the key owner's (a cross-account use
            # is recorded for the key's account too), else the caller's.
            tail["recipientAccountId"] = _account_of(arns[0]) if arns else account
            tail["eventCategory"] = "Management"
            cached = orjson.dumps(tail).replace(b"{", b",", 1)
            if len(self._tails) > _CACHE_LIMIT:
                self._tails.clear()
            self._tails[key] = cached
        return cached

    # -- userIdentity ---------------------------------------------------------------------

    def _identity(self, principal: Principal | None) -> bytes:
        if principal is None:
            # Authentication failed: nobody is known to have called.
            return b'{"type":"Unknown","principalId":"","accountId":null}'
        cached = self._identities.get(principal)
        if cached is None:
            cached = orjson.dumps(user_identity(principal))
            if len(self._identities) > _CACHE_LIMIT:
                self._identities.clear()
            self._identities[principal] = cached
        return cached

    # -- parameters and answers -----------------------------------------------------------

    def _request_parameters(self, operation: str, parameters: dict[str, Any]) -> dict[str, Any]:
        if not parameters:
            return {}
        members = self._input_members.get(operation)
        if members is None:
            members = (
                self._model.input_members(operation) if self._model.has_operation(operation) else {}
            )
            self._input_members[operation] = members
        return {
            camel(name): self._value(value, members.get(name)) for name, value in parameters.items()
        }

    def _response_elements(self, operation: str, result: dict[str, Any]) -> dict[str, Any] | None:
        members = self._output_members.get(operation)
        if members is None:
            members = _output_members(self._model, operation)
            self._output_members[operation] = members
        recorded = {
            camel(name): self._value(value, members[name])
            for name, value in result.items()
            if name in members
            and name not in _NEVER_RECORDED
            and not self._model.may_hold_secret(members[name])
        }
        return recorded or None

    def _value(self, value: Any, shape_name: str | None) -> Any:
        """``value`` with the member names of the model's structures in lower camel case."""
        if shape_name is None:
            return value
        shape = self._model.shape(shape_name)
        kind = shape["type"]
        if kind == "structure" and isinstance(value, dict):
            members = shape.get("members", {})
            return {
                camel(name): self._value(inner, members[name]["shape"])
                for name, inner in value.items()
                if name in members
                and name not in _NEVER_RECORDED
                and not self._model.may_hold_secret(members[name]["shape"])
            }
        if kind == "list" and isinstance(value, list):
            return [self._value(item, shape["member"]["shape"]) for item in value]
        if kind == "map" and isinstance(value, dict):
            inner_shape = shape["value"]["shape"]
            return {key: self._value(inner, inner_shape) for key, inner in value.items()}
        return value


# What AWS writes where a service event has no caller (KMS's RotateKey, DeleteKey and
# DeleteExpiredKeyMaterial entries in AWS's documentation).
SERVICE_INVOKER = "AWS Internal"


def _service_event(facts: Any) -> tuple[bytes, RecordKeys]:
    """Work the server did on its own, as CloudTrail records KMS's service events: no
    userIdentity beyond the account, no request, eventType AwsServiceEvent."""
    event_id = random_uuid()
    exact = facts.event_time.astimezone(dt.UTC)
    when = exact.replace(microsecond=0)
    arns = [arn for role, arn in facts.resources if role != "alias"]
    account = _account_of(arns[0]) if arns else None
    record: dict[str, Any] = {
        "eventVersion": EVENT_VERSION,
        "userIdentity": {"accountId": account, "invokedBy": SERVICE_INVOKER},
        "eventTime": _iso(when),
        "eventSource": f"{facts.service}.amazonaws.com",
        "eventName": facts.operation,
        "awsRegion": facts.region,
        "sourceIPAddress": SERVICE_INVOKER,
        "userAgent": SERVICE_INVOKER,
        "requestParameters": None,
        "responseElements": facts.response,
        "eventID": event_id,
        "readOnly": False,
        "resources": [
            {"accountId": _account_of(arn), "type": "AWS::KMS::Key", "ARN": arn} for arn in arns
        ],
        "eventType": "AwsServiceEvent",
        "managementEvent": True,
        "recipientAccountId": account,
    }
    if facts.service_event:
        record["serviceEventDetails"] = facts.service_event
    record["eventCategory"] = "Management"
    keys = RecordKeys(
        event_id,
        exact,
        record["eventSource"],
        facts.operation,
        None,
        None,
        None,
        _resource_text(arns, {}),
    )
    return _json(record), keys


def user_identity(principal: Principal) -> dict[str, Any]:
    """CloudTrail's userIdentity of an authenticated caller."""
    arn = principal.arn
    identity: dict[str, Any]
    if principal.principal_type == "AssumedRole":
        role_arn = role_arn_of_session(arn) or ""
        role_id = principal.user_id.split(":", 1)[0]
        identity = {
            "type": "AssumedRole",
            "principalId": principal.user_id,
            "arn": arn,
            "accountId": principal.account_id,
            "accessKeyId": principal.access_key_id,
        }
        issuer = {
            "type": "Role",
            "principalId": role_id,
            "arn": role_arn,
            "accountId": principal.account_id,
            "userName": role_arn.rsplit("/", 1)[-1],
        }
        identity["sessionContext"] = {
            "sessionIssuer": issuer,
            "attributes": _session_attributes(principal),
        }
        return identity
    kind = "Root" if principal.principal_type == "Account" else "IAMUser"
    identity = {
        "type": kind,
        "principalId": principal.user_id,
        "arn": arn,
        "accountId": principal.account_id,
        "accessKeyId": principal.access_key_id,
    }
    if kind == "IAMUser":
        identity["userName"] = arn.rsplit("/", 1)[-1]
    if principal.temporary:
        # GetSessionToken credentials: the user's (or root's) own identity, as a session.
        identity["sessionContext"] = {"attributes": _session_attributes(principal)}
    return identity


def _session_attributes(principal: Principal) -> dict[str, str | None]:
    issued = principal.session_issued_at
    return {
        "creationDate": _iso(issued) if issued is not None else None,
        "mfaAuthenticated": "true" if principal.mfa_authenticated_at is not None else "false",
    }


def _sts_parameters(parameters: dict[str, Any]) -> dict[str, Any]:
    # The members the STS or IAM endpoint chose: a number where CloudTrail has one.
    return {
        camel(name): int(value) if name == "DurationSeconds" and value.isdigit() else value
        for name, value in parameters.items()
    }


def _output_members(model: ServiceModel, operation: str) -> dict[str, str]:
    if not model.has_operation(operation):
        return {}
    spec = model.operations[operation].get("output")
    if not spec:
        return {}
    members = model.shape(spec["shape"]).get("members", {})
    return {name: member["shape"] for name, member in members.items()}


def _account_of(arn: str) -> str | None:
    parts = arn.split(":", 5)
    return parts[4] if len(parts) > 4 else None


def _resource_text(arns: list[str], parameters: dict[str, Any]) -> str:
    refs = list(arns)
    for name in ("KeyId", "SourceKeyId", "DestinationKeyId", "TargetKeyId"):
        value = parameters.get(name)
        if isinstance(value, str) and value not in refs:
            refs.append(value)
    return " ".join(refs)


def _json(value: Any) -> bytes:
    return orjson.dumps(value, default=_encode_value, option=_OPTIONS)


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _encode_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return _iso(value)
    if isinstance(value, bytes | bytearray | memoryview):
        # Never reached for a declared member (blobs are refused at start-up); a guard, not a
        # rendering: a byte string is not written out.
        return None
    raise TypeError(f"cannot record a {type(value).__name__}")
