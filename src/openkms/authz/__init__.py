"""Authorisation: who may perform which action on which resource."""

from openkms.authz.authorizer import (
    AuthorizationRequest,
    Authorizer,
    PolicyAuthorizer,
    access_denied,
)

__all__ = ["AuthorizationRequest", "Authorizer", "PolicyAuthorizer", "access_denied"]
