"""GetKeyLastUsage, answered from the audit trail (``openkms.audit.key_usage``)."""

from __future__ import annotations

from typing import Any

from openkms.errors import UnsupportedOperationException
from openkms.ops.context import Services
from openkms.ops.declaration import Call, handles
from openkms.storage.blocking import check_may_block


@handles("GetKeyLastUsage")
def get_key_last_usage(services: Services, call: Call) -> dict[str, Any]:
    check_may_block()  # the trail is read from a worker thread, never the event loop
    record = call.key.record
    usage = services.key_usage
    if usage is None:
        raise UnsupportedOperationException(
            "GetKeyLastUsage reads the audit trail, which is off on this server."
        )
    started = usage.tracking_start()
    # The later of the trail's start and the key's creation (AWS's TrackingStartDate).
    tracking = max(started, record.creation_date) if started else record.creation_date
    last = usage.last_usage(record.arn, tracking)
    response: dict[str, Any] = {"KeyId": record.key_id}
    response["KeyLastUsage"] = {k: v for k, v in (last or {}).items() if v is not None}
    response["TrackingStartDate"] = tracking
    response["KeyCreationDate"] = record.creation_date
    return response
