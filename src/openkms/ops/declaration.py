"""How an operation is declared: once, with everything the dispatcher enforces for it.

A declaration names the IAM action(s) and on which resource each is checked, how the
resource is found, whether the operation only reads, whether DryRun applies, which request
parameters an audit record may carry, and which key usages and algorithms it accepts.
Handlers, which do only the operation's own work, register separately (``handles``); the
dispatcher binds the two at start-up and refuses to start when either has no partner.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from openkms.crypto.key_specs import AlgorithmFamily, KeyUsage

if TYPE_CHECKING:
    from openkms.authz.grants import Grant
    from openkms.crypto.ciphertext_blob import CiphertextBlob
    from openkms.ops.context import RequestContext, Services
    from openkms.ops.key_directory import LoadedKey


class Resolve(Enum):
    """How the dispatcher finds an operation's resources, and under which roles."""

    ACCOUNT = "account"  # no key; the resource is the caller's account ("*")
    KEY = "key"  # KeyId: key id, key ARN, alias name or alias ARN -> "key"
    KEY_ID_OR_ARN = "key-id-or-arn"  # KeyId: key id or key ARN only -> "key"
    # CreateGrant: as KEY_ID_OR_ARN, but an alias name or alias ARN is InvalidArnException
    # (AWS's answer for this operation), not "not found"
    GRANT_KEY = "grant-key"
    OPTIONAL_KEY = "optional-key"  # KeyId when given (key id or ARN) -> "key"
    CIPHERTEXT = "ciphertext"  # the key the ciphertext names, or KeyId checked against it
    RE_ENCRYPT = "re-encrypt"  # "source" (from the ciphertext) and "destination"
    ALIAS_TARGET = "alias-target"  # AliasName -> "alias", TargetKeyId -> "key"
    # UpdateAlias: as ALIAS_TARGET, and the alias's current target -> "old_key"
    ALIAS_RETARGET = "alias-retarget"
    ALIAS = "alias"  # AliasName -> "alias", and the key it names -> "key"
    CUSTOM_KEY_STORE = "custom-key-store"
    # RetireGrant: the grant its GrantToken names, or KeyId + GrantId -> "key" (its key)
    GRANT = "grant"


ACCOUNT_RESOURCE = "*"


@dataclass(frozen=True, slots=True)
class Permission:
    """One IAM action checked on the resource found under ``role``."""

    action: str
    role: str = "key"
    # Checked only when the request has this member (CreateKey's Tags need kms:TagResource).
    only_with: str | None = None


@dataclass(frozen=True, slots=True)
class KeyUse:
    """Which keys an operation accepts under ``role``: usage, and the algorithm parameter
    checked against the key spec's list for ``family``."""

    usages: tuple[KeyUsage, ...]
    role: str = "key"
    algorithm_parameter: str | None = None
    family: AlgorithmFamily | None = None
    # What an absent algorithm parameter means (Encrypt's defaults to SYMMETRIC_DEFAULT).
    default_algorithm: str | None = None
    # Operations only symmetric encryption keys can do (data keys) say so here.
    symmetric_only: bool = False


@dataclass(slots=True)
class Resolved:
    """The resources a request names, by role."""

    keys: dict[str, LoadedKey] = field(default_factory=dict)
    alias_name: str | None = None
    alias_arn: str | None = None
    blob: CiphertextBlob | None = None
    grant: Grant | None = None  # the grant a RetireGrant names


@dataclass(frozen=True, slots=True)
class Call:
    """One authorised, checked request, as a handler receives it."""

    ctx: RequestContext
    params: dict[str, Any]
    resolved: Resolved

    @property
    def key(self) -> LoadedKey:
        return self.resolved.keys["key"]


Handler = Callable[["Services", Call], dict[str, Any]]
InputCheck = Callable[[dict[str, Any]], None]
KeyInputCheck = Callable[[dict[str, Any], Resolved], None]

# Every handler in the ops modules, by operation name (filled by ``handles`` at import).
HANDLERS: dict[str, Handler] = {}


def handles(operation: str) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of ``operation``."""

    def register(handler: Handler) -> Handler:
        if operation in HANDLERS:
            raise RuntimeError(f"two handlers for {operation}")
        HANDLERS[operation] = handler
        return handler

    return register


@dataclass(frozen=True, slots=True)
class Declaration:
    name: str
    permissions: tuple[Permission, ...]
    resolve: Resolve
    read_only: bool
    dry_run: bool = False
    # Request members an audit record may carry. Never a secret: the dispatcher refuses to
    # start if one names a blob or a sensitive member of the model.
    audit_parameters: tuple[str, ...] = ()
    key_uses: tuple[KeyUse, ...] = ()
    # Operation-specific input rules beyond the model, run before any resource is looked up.
    check_input: InputCheck | None = None
    # Input rules that depend on the keys found (their spec), run after the usage and
    # algorithm checks and before DryRun answers.
    check_with_keys: KeyInputCheck | None = None
    # Members this server does not support yet: member -> the UnsupportedOperation message.
    unsupported_members: Mapping[str, str] = field(default_factory=dict)
    # Roles whose key state the key-state table checks (UpdateAlias: not the old target).
    state_roles: tuple[str, ...] | None = None
    # False for operations declared so that they answer AWS-shaped, but not built yet.
    implemented: bool = True
