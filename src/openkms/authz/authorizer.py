"""The ``Authorizer`` interface the dispatcher asks before any key state or key property is
revealed, and the implementation that decides from key policies, as AWS KMS does.

A request on a key is allowed when the key policy allows it and nothing denies it:

- an explicit Deny that applies, in the key policy, always wins ("with an explicit deny in a
  resource-based policy");
- an explicit Deny in one of the caller's identity-based policies (an IAM user's) wins too
  ("with an explicit deny in an identity-based policy");
- an Allow naming the caller (or everyone) allows it; an Allow naming the caller's account
  delegates to the account's IAM policies. The account's root user *is* the account, so for
  it delegation is an Allow; an IAM user needs an Allow in its own policies too, else "no
  identity-based policy allows";
- nothing that applies: "because no resource-based policy allows". AWS gives the account
  nothing a key policy does not: the root user too is refused by a policy that names neither
  it nor its account.
- A caller of another account must be allowed by the key policy (naming it or its account)
  *and* by its own account's policies (its root user: always), and only for the operations
  AWS lets other accounts use.

Requests on no key (CreateKey, ListKeys, aliases, …) are decided by identity-based policies
alone: a root user may do anything in its own account, a user what its policies allow, and
neither anything in another account.

An AWS managed key is decided by the rule openkms gives its policy (``customer_may``: use and
metadata, no management), not by evaluating the policy text: the text's statements allow use
only through the AWS service (``kms:ViaService``), which no openkms caller is
(docs/behaviour.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from openkms.authz.evaluation import (
    NOTHING_APPLIES,
    Caller,
    ConditionKeys,
    Outcome,
    Reach,
    caller_of,
    evaluate,
    evaluate_all,
    evaluation_outcome,
)
from openkms.authz.grants import GRANT_OPERATIONS, Grant, GrantDirectory
from openkms.authz.identity import IdentityPolicies
from openkms.authz.policy import parse_policy
from openkms.authz.request_keys import PolicyVariables, RequestKeys
from openkms.domain.managed_keys import KEY_MANAGER_AWS, customer_may
from openkms.errors import (
    AccessDeniedException,
    LimitExceededException,
    MalformedPolicyDocumentException,
)
from openkms.iam.principal import Principal

if TYPE_CHECKING:
    from openkms.ops.key_directory import LoadedKey

# What another account may do with a key its policy shares (AWS: "If you give a user in a
# different account permission for other operations, those permissions have no effect").
CROSS_ACCOUNT_ACTIONS = frozenset(
    {
        "kms:Decrypt",
        "kms:Encrypt",
        "kms:GenerateDataKey",
        "kms:GenerateDataKeyWithoutPlaintext",
        "kms:GenerateDataKeyPair",
        "kms:GenerateDataKeyPairWithoutPlaintext",
        "kms:GenerateMac",
        "kms:VerifyMac",
        "kms:ReEncryptFrom",
        "kms:ReEncryptTo",
        "kms:Sign",
        "kms:Verify",
        "kms:DeriveSharedSecret",
        "kms:Encapsulate",
        "kms:Decapsulate",
        "kms:GetPublicKey",
        "kms:DescribeKey",
        "kms:GetKeyRotationStatus",
        "kms:CreateGrant",
        "kms:ListGrants",
        "kms:RetireGrant",
        "kms:RevokeGrant",
    }
)

NO_RESOURCE_POLICY = "no resource-based policy allows the {action} action"
NO_IDENTITY_POLICY = "no identity-based policy allows the {action} action"
EXPLICIT_DENY = "with an explicit deny in a resource-based policy"
EXPLICIT_IDENTITY_DENY = "with an explicit deny in an identity-based policy"


# Not frozen, though nothing changes one once made: one is made for every permission a
# request needs, and a frozen dataclass's __init__ costs four times a plain one's.
@dataclass(slots=True)
class AuthorizationRequest:
    principal: Principal
    action: str  # "kms:Encrypt"
    resource_arn: str  # a key or alias ARN, or "*" for account-level operations
    resource_account: str  # the account that owns the resource
    region: str
    key: LoadedKey | None = None  # the key (for its policy) when the resource is a key
    # The validated request, for condition keys (kms:EncryptionContext:…, kms:ViaService…).
    parameters: dict[str, Any] = field(default_factory=dict)
    when: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    source_ip: str | None = None
    secure_transport: bool = False
    # The key's tags, read only if a condition asks for aws:ResourceTag/… (a database read).
    resource_tags: Callable[[], dict[str, str]] | None = None
    # The grants the request's GrantTokens name (their grants are looked for even if not yet
    # cached).
    grant_ids: tuple[str, ...] = ()
    # RetireGrant: the grant to retire, whose own terms say who may.
    grant: Grant | None = None
    # The key's alias names, read only if a condition asks for kms:ResourceAliases.
    resource_aliases: Callable[[], list[str]] | None = None
    # Decide with this policy text instead of the key's (the lockout check of a new policy).
    policy: str | None = None
    # ReEncrypt: whether the source and destination are one key (kms:ReEncryptOnSameKey).
    same_key: bool | None = None


class Authorizer(Protocol):
    def authorize(self, request: AuthorizationRequest) -> None:
        """Return if the request is allowed; raise ``AccessDeniedException`` if not."""
        ...


class PolicyAuthorizer:
    def __init__(
        self, identities: IdentityPolicies | None = None, grants: GrantDirectory | None = None
    ) -> None:
        # None: no principal but root users exists (tests of the key-policy rules alone).
        self._identities = identities
        self._grants = grants

    def authorize(self, request: AuthorizationRequest) -> None:
        caller = _caller(request.principal)
        same_account = request.resource_account == caller.account_id
        # One set of condition keys for both passes, built only if a Condition asks.
        condition_keys = condition_keys_of(request)
        identity = self._identity_outcome(request, caller, condition_keys)
        if identity.denied:
            raise access_denied(request, EXPLICIT_IDENTITY_DENY)
        # A root user's identity policy is implicit: everything in its own account.
        identity_allows = caller.is_root or identity.reach is not Reach.NONE
        key = request.key
        if key is None:
            # Identity-based policies only (aliases, account-level operations).
            if not (same_account and identity_allows):
                raise access_denied(request, NO_IDENTITY_POLICY)
            return
        if request.grant is not None and _grant_lets_retire(request, caller, identity_allows):
            return
        if key.record.key_manager == KEY_MANAGER_AWS and request.policy is None:
            if not same_account or not customer_may(request.action):
                raise access_denied(request, NO_RESOURCE_POLICY)
            if not identity_allows:
                raise access_denied(request, NO_IDENTITY_POLICY)
            return
        outcome = self.key_policy_outcome(request, caller, condition_keys)
        if outcome.denied:
            raise access_denied(request, EXPLICIT_DENY)
        refusal = _policy_refusal(request, outcome.reach, same_account, identity_allows)
        if refusal is not None and not self._grant_allows(request):
            raise access_denied(request, refusal)

    def _grant_allows(self, request: AuthorizationRequest) -> bool:
        """Whether a grant of the key gives the caller this action (explicit Denies were
        checked already: they win over grants too)."""
        if self._grants is None or request.key is None or request.policy is not None:
            return False
        operation = request.action.removeprefix("kms:")
        if operation not in GRANT_OPERATIONS or operation == "RetireGrant":
            # A grant's RetireGrant lets its grantee retire that grant only (decided with the
            # grant being retired), never the key's other grants.
            return False
        grants = self._grants.for_grantee(
            request.key.record.key_id, grantee_names(request.principal), request.grant_ids
        )
        return any(grant.allows(operation, request.parameters) for grant in grants)

    def key_policy_outcome(
        self, request: AuthorizationRequest, caller: Caller, condition_keys: ConditionKeys
    ) -> Outcome:
        assert request.key is not None
        if request.policy is None:
            try:
                document = parse_policy(request.key.record.policy)
            except (MalformedPolicyDocumentException, LimitExceededException):
                return _stored_policy_refused(request, caller)
        else:
            document = parse_policy(request.policy)
        # The resource of a key policy statement is the key ("*", or its ARN).
        return evaluate(document, caller, request.action, request.resource_arn, condition_keys)

    def _identity_outcome(
        self, request: AuthorizationRequest, caller: Caller, condition_keys: ConditionKeys
    ) -> Outcome:
        if caller.is_root or self._identities is None:
            return NOTHING_APPLIES
        return evaluate_all(
            self._identities.of(caller.arn),
            caller,
            request.action,
            request.resource_arn,
            condition_keys,
        )


def _policy_refusal(
    request: AuthorizationRequest, reach: Reach, same_account: bool, identity_allows: bool
) -> str | None:
    """Why the policies do not allow the request (None: they do)."""
    if reach is Reach.NONE:
        return NO_RESOURCE_POLICY
    if not same_account and request.action not in CROSS_ACCOUNT_ACTIONS:
        return NO_RESOURCE_POLICY
    if same_account and reach is Reach.DIRECT:
        return None  # the key policy names the caller: enough within the account
    # Delegated to the account, or another account's caller: its own policies decide too.
    return None if identity_allows else NO_IDENTITY_POLICY


def _grant_lets_retire(
    request: AuthorizationRequest, caller: Caller, identity_allows: bool
) -> bool:
    """AWS: a grant may be retired by its retiring principal, by its grantee if it gives
    RetireGrant, and by the account that made it (its root user, or a principal its own
    policies allow). Anyone else needs the policies to allow kms:RetireGrant."""
    grant = request.grant
    assert grant is not None
    names = grantee_names(request.principal)
    if grant.retiring is not None and grant.retiring in names:
        return True
    if grant.grantee in names and "RetireGrant" in grant.operations:
        return True
    return caller.account_id == grant.issuing_account and identity_allows


def grantee_names(principal: Principal) -> tuple[str, ...]:
    """The names a grant may give the caller by (a role's grants reach its sessions)."""
    if principal.policy_arn != principal.arn:
        return (principal.policy_arn, principal.arn)
    return (principal.arn,)


# What the owning account's root user may still do with a key whose stored policy this
# version cannot read (written by an earlier, more lenient release): see it and replace it.
_REPAIR_ACTIONS = frozenset({"kms:DescribeKey", "kms:GetKeyPolicy", "kms:PutKeyPolicy"})


def _stored_policy_refused(request: AuthorizationRequest, caller: Caller) -> Outcome:
    """A stored policy that does not parse allows nothing, but its key is not lost: the
    account's root user can read it and put a valid one (docs/behaviour.md)."""
    assert request.key is not None
    owner = caller.is_root and caller.account_id == request.key.record.account_id
    if owner and request.action in _REPAIR_ACTIONS:
        return evaluation_outcome(False, Reach.DIRECT)
    return NOTHING_APPLIES


def condition_keys_of(request: AuthorizationRequest) -> ConditionKeys:
    """The request's condition keys, made on the first call and the same on every later one
    (each document evaluated reads the values already worked out)."""
    made: list[tuple[RequestKeys, PolicyVariables]] = []

    def make() -> tuple[RequestKeys, PolicyVariables]:
        if not made:
            keys = RequestKeys(request)
            made.append((keys, PolicyVariables(keys)))
        return made[0]

    return make


def _caller(principal: Principal) -> Caller:
    # One construction for the key policies here and the trust policies of STS (a role
    # session is named by its role's ARN and by its own).
    return caller_of(principal)


def access_denied(request: AuthorizationRequest, reason: str) -> AccessDeniedException:
    action = request.action
    because = reason.format(action=action)
    if not because.startswith("with"):
        because = f"because {because}"
    return AccessDeniedException(
        f"User: {request.principal.arn} is not authorized to perform: {action} on resource: "
        f"{request.resource_arn} {because}"
    )
