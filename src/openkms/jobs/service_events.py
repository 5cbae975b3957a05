"""The trail's record of work the lifecycle jobs did on their own: KMS's service events.

AWS KMS writes a CloudTrail entry with no caller when it rotates a key automatically
(RotateKey), deletes a key at the end of its waiting period (DeleteKey) and deletes expired
imported material (DeleteExpiredKeyMaterial); these are those entries' facts, rendered by
``openkms.audit.cloudtrail`` as AwsServiceEvent records."""

from __future__ import annotations

import datetime as dt
from typing import Any

from openkms.audit import AuditEvent, AuditFacts
from openkms.crypto.random_pool import random_uuid
from openkms.storage import KeyRecord


def service_event(
    name: str,
    key: KeyRecord,
    when: dt.datetime,
    details: dict[str, Any],
    response: dict[str, Any] | None = None,
) -> AuditEvent:
    facts = AuditFacts(
        request_id=random_uuid(),  # the request log line's; a service event records none
        service="kms",
        event_time=when,
        operation=name,
        region=key.region,
        read_only=False,
        resources=[("key", key.arn)],
        response=response,
        service_event=details,
    )
    return facts.outcome(200, None)


def rotated(key: KeyRecord, when: dt.datetime, previous: str | None, current: str) -> AuditEvent:
    details: dict[str, Any] = {"rotationType": "AUTOMATIC", "keyOrigin": key.origin}
    if previous is not None:
        details["previousKeyMaterialId"] = previous
    details["currentKeyMaterialId"] = current
    return service_event("RotateKey", key, when, details)


def deleted(key: KeyRecord, when: dt.datetime) -> AuditEvent:
    # AWS records the key's ARN in responseElements.keyId (entries since December 2022).
    return service_event("DeleteKey", key, when, {}, {"keyId": key.arn})


def material_expired(key: KeyRecord, when: dt.datetime, material_id: str) -> AuditEvent:
    details = {"keyId": key.key_id, "keyMaterialId": material_id}
    return service_event("DeleteExpiredKeyMaterial", key, when, details)
