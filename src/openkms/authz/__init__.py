"""Authorisation: who may perform which action on which resource."""

from openkms.authz.authorizer import (
    AuthorizationRequest,
    Authorizer,
    OwningAccountAuthorizer,
    access_denied,
)

__all__ = ["AuthorizationRequest", "Authorizer", "OwningAccountAuthorizer", "access_denied"]
