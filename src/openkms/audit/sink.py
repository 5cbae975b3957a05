"""Where audit events go. Today: the request log line. The audit issue adds a durable,
hash-chained CloudTrail-format log behind the same interface."""

from __future__ import annotations

import logging
from typing import Protocol

from openkms.audit.events import AuditEvent

log = logging.getLogger("openkms.requests")


class AuditSink(Protocol):
    def record(self, event: AuditEvent) -> None:
        """Keep ``event``; the answer to the request leaves after this returns."""
        ...


class LogAuditSink:
    """One line per request: request id, operation, HTTP status, error code or OK."""

    def record(self, event: AuditEvent) -> None:
        log.info(
            "%s %s %d %s",
            event.facts.request_id,
            event.facts.operation,
            event.status,
            event.error_code or "OK",
        )
