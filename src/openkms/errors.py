"""Errors as AWS shapes them.

Every failure that reaches a client is a ``KmsError``: an AWS error code, a message and an
HTTP status. The protocol layer renders it; nothing else decides how an error looks on the
wire, so a message never carries more than the code that raised it chose to put in it.
"""

from __future__ import annotations


class KmsError(Exception):
    """An error answered to the client in AWS's shape."""

    code: str = "KMSInternalException"
    status: int = 400

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or "")
        self.message = message


def _error(code: str, status: int = 400) -> type[KmsError]:
    return type(code, (KmsError,), {"code": code, "status": status})


# Protocol and authentication errors (common to AWS JSON services).
SerializationException = _error("SerializationException")
UnknownOperationException = _error("UnknownOperationException")
ValidationException = _error("ValidationException")
MissingAuthenticationTokenException = _error("MissingAuthenticationTokenException")
IncompleteSignatureException = _error("IncompleteSignatureException")
InvalidSignatureException = _error("InvalidSignatureException")
UnrecognizedClientException = _error("UnrecognizedClientException")
AccessDeniedException = _error("AccessDeniedException")
InternalFailure = _error("InternalFailure", 500)

# KMS service errors (names from the service model).
AlreadyExistsException = _error("AlreadyExistsException")
CustomKeyStoreNotFoundException = _error("CustomKeyStoreNotFoundException")
DisabledException = _error("DisabledException")
DryRunOperationException = _error("DryRunOperationException", 412)
IncorrectKeyException = _error("IncorrectKeyException")
InvalidAliasNameException = _error("InvalidAliasNameException")
InvalidArnException = _error("InvalidArnException")
InvalidCiphertextException = _error("InvalidCiphertextException")
InvalidKeyUsageException = _error("InvalidKeyUsageException")
InvalidMarkerException = _error("InvalidMarkerException")
KMSInternalException = _error("KMSInternalException", 500)
KMSInvalidStateException = _error("KMSInvalidStateException")
LimitExceededException = _error("LimitExceededException")
MalformedPolicyDocumentException = _error("MalformedPolicyDocumentException")
# Not in the KMS model, but what AWS answers for a reserved alias name (alias/aws/...).
NotAuthorizedException = _error("NotAuthorizedException")
NotFoundException = _error("NotFoundException")
TagException = _error("TagException")
UnsupportedOperationException = _error("UnsupportedOperationException")

DRY_RUN_MESSAGE = "The request would succeed if DryRun wasn't specified."
