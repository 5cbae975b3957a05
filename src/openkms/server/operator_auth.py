"""Who the operator is: the root user of the store's first account, signing with long-term
credentials (SigV4, service ``kms``). The seal API's seal and rotate, and the detailed
``/healthz``, accept only this caller."""

from __future__ import annotations

from openkms.auth.authenticator import Authenticator
from openkms.auth.sigv4 import SignedRequest
from openkms.errors import AccessDeniedException
from openkms.storage import Database

FIRST_ACCOUNT_SETTING = "first-account"


def require_operator(
    authenticator: Authenticator, db: Database, signed: SignedRequest, refusal: str
) -> None:
    """Raise (``AccessDeniedException``, or the authentication error) unless ``signed`` is
    the operator's; ``refusal`` is the message a valid non-operator caller gets."""
    principal = authenticator.authenticate(signed, "kms").principal
    with db.transaction() as tx:
        first = tx.get_setting(FIRST_ACCOUNT_SETTING)
    if (
        first is None
        or principal.temporary
        or principal.arn != f"arn:aws:iam::{first.decode()}:root"
    ):
        raise AccessDeniedException(refusal)
