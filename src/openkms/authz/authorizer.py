"""The ``Authorizer`` interface the dispatcher asks before any key state or key property is
revealed, and today's implementation of it.

``OwningAccountAuthorizer`` is the rule AWS's default key policy gives ("Enable IAM User
Permissions": the owning account, whose principals are all admitted while IAM policies are not
evaluated). An AWS managed key's policy gives the account less: use of the key and its
metadata (``openkms.domain.managed_keys.customer_may``), so managing it is refused. The
access-control issue replaces this with key policies, identity policies, grants and
conditions, without touching handlers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from openkms.domain.managed_keys import KEY_MANAGER_AWS, customer_may
from openkms.errors import AccessDeniedException
from openkms.iam.principal import Principal

if TYPE_CHECKING:
    from openkms.ops.key_directory import LoadedKey


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    principal: Principal
    action: str  # "kms:Encrypt"
    resource_arn: str  # a key or alias ARN, or "*" for account-level operations
    resource_account: str  # the account that owns the resource
    region: str
    key: LoadedKey | None = None  # the key (for its policy) when the resource is a key
    # The validated request, for condition keys (kms:EncryptionContext:…, kms:ViaService…).
    parameters: dict[str, Any] = field(default_factory=dict)


class Authorizer(Protocol):
    def authorize(self, request: AuthorizationRequest) -> None:
        """Return if the request is allowed; raise ``AccessDeniedException`` if not."""
        ...


class OwningAccountAuthorizer:
    def authorize(self, request: AuthorizationRequest) -> None:
        if request.resource_account != request.principal.account_id:
            raise access_denied(request)
        key = request.key
        if (
            key is not None
            and key.record.key_manager == KEY_MANAGER_AWS
            and not customer_may(request.action)
        ):
            raise access_denied(request)


def access_denied(request: AuthorizationRequest) -> AccessDeniedException:
    action = request.action
    return AccessDeniedException(
        f"User: {request.principal.arn} is not authorized to perform: {action} on resource: "
        f"{request.resource_arn} because no resource-based policy allows the {action} action"
    )
