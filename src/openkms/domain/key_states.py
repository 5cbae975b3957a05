"""AWS's key states, what each operation may do in each, and which transitions exist.

The operation × state table is AWS's (developer guide, "Key states of AWS KMS keys"). Each
row is written in the column order of ``_COLUMNS``; one letter per state:

    Y  allowed                       D  DisabledException "<arn> is disabled."
    P  KMSInvalidStateException "<arn> is pending deletion."
    N  KMSInvalidStateException "<arn> is not pending deletion."
    I  KMSInvalidStateException "<arn> is pending import."
    U  KMSInvalidStateException "<arn> is unavailable."
    C  KMSInvalidStateException "<arn> is creating."
    T  KMSInvalidStateException "<arn> is updating."
    X  UnsupportedOperationException "<arn> origin is EXTERNAL which is not valid for this
       operation."
    ?  allowed here; the operation itself decides (AWS: "succeeds only under conditions")
    -  cannot happen for keys this operation accepts (the usage check refuses them first)
"""

from __future__ import annotations

from enum import StrEnum

from openkms.errors import (
    DisabledException,
    KmsError,
    KMSInvalidStateException,
    UnsupportedOperationException,
)


class KeyState(StrEnum):
    CREATING = "Creating"
    ENABLED = "Enabled"
    DISABLED = "Disabled"
    PENDING_DELETION = "PendingDeletion"
    PENDING_IMPORT = "PendingImport"
    PENDING_REPLICA_DELETION = "PendingReplicaDeletion"
    UNAVAILABLE = "Unavailable"
    UPDATING = "Updating"


_COLUMNS = (
    KeyState.ENABLED,
    KeyState.DISABLED,
    KeyState.PENDING_DELETION,  # and PendingReplicaDeletion, which AWS puts in one column
    KeyState.PENDING_IMPORT,
    KeyState.UNAVAILABLE,
    KeyState.CREATING,
    KeyState.UPDATING,
)

_CRYPTO = "YDPIUCY"
_ASYMMETRIC = "YDPI-CY"  # keys that cannot live in custom key stores
_ANY = "YYYYYYY"

STATE_TABLE: dict[str, str] = {
    "CancelKeyDeletion": "NNYNNNN",
    "CreateAlias": "YYPYYYY",
    "CreateGrant": "YDPIYCY",
    "Decapsulate": _ASYMMETRIC,
    "Decrypt": _CRYPTO,
    "DeleteAlias": _ANY,
    "DeleteImportedKeyMaterial": "???Y-CT",
    "DeriveSharedSecret": _ASYMMETRIC,
    "DescribeKey": _ANY,
    "DisableKey": "YYPIYCT",
    "DisableKeyRotation": "?DPX?C?",
    "EnableKey": "YYPIYCT",
    "EnableKeyRotation": "?DPX?C?",
    "Encapsulate": _ASYMMETRIC,
    "Encrypt": _CRYPTO,
    "GenerateDataKey": _CRYPTO,
    "GenerateDataKeyPair": _CRYPTO,
    "GenerateDataKeyPairWithoutPlaintext": _CRYPTO,
    "GenerateDataKeyWithoutPlaintext": _CRYPTO,
    "GenerateMac": _ASYMMETRIC,
    "GetKeyLastUsage": _ANY,
    "GetKeyPolicy": _ANY,
    "GetKeyRotationStatus": "???X???",
    "GetParametersForImport": "??PY?CT",
    "GetPublicKey": _ASYMMETRIC,
    "ImportKeyMaterial": "??PY?CY",
    "ListAliases": _ANY,
    "ListGrants": _ANY,
    "ListKeyPolicies": _ANY,
    "ListKeyRotations": "???X???",
    "ListResourceTags": _ANY,
    "PutKeyPolicy": _ANY,
    "ReEncrypt": _CRYPTO,
    "ReplicateKey": "YDPI-CT",
    "RetireGrant": _ANY,
    "RevokeGrant": _ANY,
    "RotateKeyOnDemand": "?DP??CT",
    "ScheduleKeyDeletion": "YYPYYYT",
    "Sign": _ASYMMETRIC,
    "TagResource": "YYPYYYY",
    "UntagResource": "YYPYYYY",
    # The alias's new target: a key pending deletion is refused; its old target is not checked.
    "UpdateAlias": "YYPYYYY",
    "UpdateKeyDescription": "YYPYYYY",
    "UpdatePrimaryRegion": "YDPI-CY",
    "Verify": _ASYMMETRIC,
    "VerifyMac": _ASYMMETRIC,
}

_INVALID_STATE_TEXT = {
    "P": "is pending deletion.",
    "N": "is not pending deletion.",
    "I": "is pending import.",
    "U": "is unavailable.",
    "C": "is creating.",
    "T": "is updating.",
}


def _column(state: str) -> int:
    if state == KeyState.PENDING_REPLICA_DELETION:
        state = KeyState.PENDING_DELETION
    return _COLUMNS.index(KeyState(state))


def state_error(operation: str, key_arn: str, key_state: str) -> KmsError | None:
    """The error ``operation`` answers for a key in ``key_state``; None if it may go on."""
    row = STATE_TABLE[operation]
    verdict = row[_column(key_state)]
    if verdict in "Y?-":
        return None
    if verdict == "D":
        return DisabledException(f"{key_arn} is disabled.")
    if verdict == "X":
        return UnsupportedOperationException(
            f"{key_arn} origin is EXTERNAL which is not valid for this operation."
        )
    return KMSInvalidStateException(f"{key_arn} {_INVALID_STATE_TEXT[verdict]}")


def check_state(operation: str, key_arn: str, key_state: str) -> None:
    error = state_error(operation, key_arn, key_state)
    if error is not None:
        raise error


# Which state changes exist at all. An operation's own row decides whether a caller may ask
# for one; this table guards against a rule (or a job) moving a key where AWS never does.
TRANSITIONS: dict[KeyState, frozenset[KeyState]] = {
    KeyState.CREATING: frozenset(
        {KeyState.ENABLED, KeyState.PENDING_IMPORT, KeyState.PENDING_DELETION}
    ),
    KeyState.ENABLED: frozenset(
        {
            KeyState.ENABLED,
            KeyState.DISABLED,
            KeyState.PENDING_DELETION,
            KeyState.PENDING_REPLICA_DELETION,
            KeyState.PENDING_IMPORT,
            KeyState.UPDATING,
            KeyState.UNAVAILABLE,
        }
    ),
    KeyState.DISABLED: frozenset(
        {
            KeyState.ENABLED,
            KeyState.DISABLED,
            KeyState.PENDING_DELETION,
            KeyState.PENDING_REPLICA_DELETION,
            KeyState.PENDING_IMPORT,
            KeyState.UNAVAILABLE,
        }
    ),
    # Cancelled: Disabled, or PendingImport for a key without its imported material.
    KeyState.PENDING_DELETION: frozenset({KeyState.DISABLED, KeyState.PENDING_IMPORT}),
    KeyState.PENDING_REPLICA_DELETION: frozenset({KeyState.PENDING_DELETION, KeyState.DISABLED}),
    KeyState.PENDING_IMPORT: frozenset({KeyState.ENABLED, KeyState.PENDING_DELETION}),
    KeyState.UNAVAILABLE: frozenset(
        {KeyState.ENABLED, KeyState.DISABLED, KeyState.PENDING_DELETION}
    ),
    KeyState.UPDATING: frozenset({KeyState.ENABLED}),
}


class IllegalTransition(Exception):
    """A rule tried a state change AWS never makes: a defect, not a client error."""


def check_transition(current: str, target: str) -> None:
    if KeyState(target) not in TRANSITIONS[KeyState(current)]:
        raise IllegalTransition(f"no key state transition {current} -> {target}")
