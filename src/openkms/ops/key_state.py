"""The key state machine: which states allow which kinds of use."""

from __future__ import annotations

from openkms.errors import DisabledException, KMSInvalidStateException
from openkms.storage import KeyRecord

ENABLED = "Enabled"
DISABLED = "Disabled"
PENDING_DELETION = "PendingDeletion"


def require_usable_for_crypto(record: KeyRecord) -> None:
    """Cryptographic operations need an Enabled key."""
    if record.key_state == ENABLED:
        return
    if record.key_state == DISABLED:
        raise DisabledException(f"{record.arn} is disabled.")
    raise _invalid_state(record)


def require_manageable(record: KeyRecord) -> None:
    """Management operations (describe-only excepted) refuse a key pending deletion."""
    if record.key_state in (ENABLED, DISABLED):
        return
    raise _invalid_state(record)


def _invalid_state(record: KeyRecord) -> KMSInvalidStateException:
    if record.key_state == PENDING_DELETION:
        return KMSInvalidStateException(f"{record.arn} is pending deletion.")
    return KMSInvalidStateException(f"{record.arn} is {record.key_state}.")
