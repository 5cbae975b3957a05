"""AWS's policy lockout safety check: a new key policy must still let the caller change the
key policy, unless the caller says BypassPolicyLockoutSafetyCheck (AWS's words when not)."""

from __future__ import annotations

import dataclasses

from openkms.authz.authorizer import AuthorizationRequest, Authorizer
from openkms.errors import AccessDeniedException, MalformedPolicyDocumentException

LOCKOUT_MESSAGE = "The new key policy will not allow you to update the key policy in the future."


def check_no_lockout(
    authorizer: Authorizer, request: AuthorizationRequest, new_policy: str
) -> None:
    """``request`` is the caller's request on the key (for CreateKey: on the key it makes);
    it is decided again as kms:PutKeyPolicy under ``new_policy``."""
    if request.parameters.get("BypassPolicyLockoutSafetyCheck"):
        return
    as_put = dataclasses.replace(request, action="kms:PutKeyPolicy", policy=new_policy)
    try:
        authorizer.authorize(as_put)
    except AccessDeniedException:
        raise MalformedPolicyDocumentException(LOCKOUT_MESSAGE) from None
