"""The trail's CloudTrail API: who may call it, and what each operation answers.

A caller acts on its own account only (there is no parameter that names another). Its
account's root user may call every operation; anyone else needs an identity policy that
allows ``cloudtrail:<Operation>`` on ``*``, an explicit Deny winning, as AWS decides it.
The wire (AWS JSON 1.1, CloudTrail's errors) is ``openkms.server.cloudtrail_api``'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from openkms.audit import log_files
from openkms.audit.lookup_events import lookup_events, query_of
from openkms.audit.store import AuditStore
from openkms.authz.authorizer import AuthorizationRequest, condition_keys_of
from openkms.authz.evaluation import Reach, caller_of, evaluate_all
from openkms.authz.identity import IdentityPolicies
from openkms.clock import Clock
from openkms.errors import AccessDeniedException, InvalidTimeRangeException
from openkms.iam.principal import Principal

OPERATIONS = ("LookupEvents", "ListPublicKeys")


@dataclass(frozen=True, slots=True)
class TrailCall:
    principal: Principal
    operation: str
    params: dict[str, Any]  # validated against CloudTrail's input shape
    region: str
    source_ip: str | None = None
    secure_transport: bool = False


class TrailApi:
    def __init__(self, store: AuditStore, identities: IdentityPolicies, clock: Clock) -> None:
        self._store = store
        self._identities = identities
        self._clock = clock

    @property
    def store(self) -> AuditStore:
        return self._store

    def call(self, call: TrailCall) -> dict[str, Any]:
        self._authorize(call)
        if call.operation == "LookupEvents":
            if call.params.get("EventCategory") == "insight":
                return {"Events": []}  # openkms has no CloudTrail Insights
            query = query_of(call.principal.account_id, call.region, call.params)
            return lookup_events(self._store, query)
        return self._list_public_keys(call.params)

    def _list_public_keys(self, params: dict[str, Any]) -> dict[str, Any]:
        """The log-file digests' public keys (``openkms audit export-logs``), as CloudTrail
        lists its own: DER PKCS#1, each valid from its making until the next key's."""
        start, end = params.get("StartTime"), params.get("EndTime")
        if start is not None and end is not None and start > end:
            raise InvalidTimeRangeException("The start time must be before the end time.")
        found = []
        for key in log_files.public_keys(self._store):
            if end is not None and key.valid_from > end:
                continue
            if start is not None and key.valid_until is not None and key.valid_until < start:
                continue
            entry: dict[str, Any] = {
                "Value": key.der_pkcs1,
                "ValidityStartTime": key.valid_from,
                "Fingerprint": key.fingerprint,
            }
            if key.valid_until is not None:
                entry["ValidityEndTime"] = key.valid_until
            found.append(entry)
        return {"PublicKeyList": found}

    def _authorize(self, call: TrailCall) -> None:
        principal = call.principal
        caller = caller_of(principal)
        if caller.is_root:
            return  # the account's root user reads its own account's trail
        action = f"cloudtrail:{call.operation}"
        denied = f"User: {principal.arn} is not authorized to perform: {action} on resource: *"
        request = AuthorizationRequest(
            principal=principal,
            action=action,
            resource_arn="*",
            resource_account=principal.account_id,
            region=call.region,
            when=self._clock.now(),
            source_ip=call.source_ip,
            secure_transport=call.secure_transport,
        )
        outcome = evaluate_all(
            self._identities.of(caller.arn), caller, action, "*", condition_keys_of(request)
        )
        if outcome.denied:
            raise AccessDeniedException(
                f"{denied} with an explicit deny in an identity-based policy"
            )
        if outcome.reach is Reach.NONE:
            raise AccessDeniedException(
                f"{denied} because no identity-based policy allows the {action} action"
            )
