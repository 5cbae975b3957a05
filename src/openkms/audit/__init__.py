"""The audit trail: one event for every request, allowed, denied or malformed."""

from openkms.audit.events import AuditEvent, AuditFacts
from openkms.audit.sink import AuditSink, AuditUnavailable, LogAuditSink

__all__ = ["AuditEvent", "AuditFacts", "AuditSink", "AuditUnavailable", "LogAuditSink"]
