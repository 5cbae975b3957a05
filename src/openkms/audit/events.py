"""What an audit event records about one request.

Only facts that are safe to keep: who called, what operation, on which resources, which
request parameters the operation's declaration lists as loggable (never plaintexts, blobs,
key material or passwords), and how it ended.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

from openkms.iam.principal import Principal


@dataclass(slots=True)
class AuditFacts:
    """Filled in as a request goes through the envelope and the dispatcher."""

    request_id: str
    service: str  # "kms", "sts", "iam" or "cloudtrail"
    event_time: dt.datetime
    source_address: str | None = None
    secure_transport: bool = False
    user_agent: str | None = None
    operation: str = "-"  # a name fit for a log line, never what a caller chose to write
    principal: Principal | None = None
    region: str | None = None
    read_only: bool | None = None
    resources: list[tuple[str, str]] = field(default_factory=list)  # (role, ARN)
    parameters: dict[str, Any] = field(default_factory=dict)
    # What a writing operation answered (the envelope's event drops any member that could
    # hold a secret); None for reads, as CloudTrail records them.
    response: dict[str, Any] | None = None
    # Work the server did on its own (a rotation, a deletion, an expiry): the record is
    # CloudTrail's AwsServiceEvent with these serviceEventDetails, no caller and no request.
    service_event: dict[str, Any] | None = None
    # Not audit facts: whether this request's quota was charged already (a request that
    # needed the database runs again on a thread and must not pay twice).
    quota_charged: bool = False
    # When the request began (time.perf_counter), for the log line's latency.
    started: float = field(default_factory=time.perf_counter)

    def outcome(
        self, status: int, error_code: str | None, error_message: str | None = None
    ) -> AuditEvent:
        return AuditEvent(self, status, error_code, error_message)


@dataclass(frozen=True, slots=True)
class AuditEvent:
    facts: AuditFacts
    status: int
    error_code: str | None  # None: the request succeeded
    # The message the caller was answered with (never a value the model marks sensitive).
    error_message: str | None = None
