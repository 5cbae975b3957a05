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

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        # The class name is the AWS error code.
        if "code" not in cls.__dict__:
            cls.code = cls.__name__

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or "")
        self.message = message


# Protocol and authentication errors (common to AWS JSON services).
class SerializationException(KmsError):
    pass


class UnknownOperationException(KmsError):
    pass


class ValidationException(KmsError):
    pass


class MissingAuthenticationTokenException(KmsError):
    pass


class IncompleteSignatureException(KmsError):
    pass


class InvalidSignatureException(KmsError):
    pass


class UnrecognizedClientException(KmsError):
    pass


class ExpiredTokenException(KmsError):
    """A session token past its expiry (the Query protocol calls it ExpiredToken)."""


class AccessDeniedException(KmsError):
    pass


class InternalFailure(KmsError):
    status = 500


# KMS service errors (names from the service model).
class AlreadyExistsException(KmsError):
    pass


class ConflictException(KmsError):
    pass


class CustomKeyStoreNotFoundException(KmsError):
    pass


class CustomKeyStoreNameInUseException(KmsError):
    pass


class CustomKeyStoreInvalidStateException(KmsError):
    pass


class CustomKeyStoreHasCMKsException(KmsError):
    pass


class CloudHsmClusterNotFoundException(KmsError):
    pass


class CloudHsmClusterInUseException(KmsError):
    pass


class DependencyTimeoutException(KmsError):
    # AWS: "The system timed out while trying to fulfill the request"; retryable.
    status = 503


class DisabledException(KmsError):
    pass


class DryRunOperationException(KmsError):
    status = 412


class ExpiredImportTokenException(KmsError):
    pass


class IncorrectKeyMaterialException(KmsError):
    pass


class InvalidImportTokenException(KmsError):
    pass


class IncorrectKeyException(KmsError):
    pass


class InvalidAliasNameException(KmsError):
    pass


class InvalidArnException(KmsError):
    pass


class InvalidCiphertextException(KmsError):
    pass


class InvalidGrantIdException(KmsError):
    pass


class InvalidGrantTokenException(KmsError):
    pass


class InvalidKeyUsageException(KmsError):
    pass


class InvalidMarkerException(KmsError):
    pass


class KMSInternalException(KmsError):
    status = 500


SEALED_MESSAGE = "The service is sealed"


class ServiceSealed(KmsError):
    # AWS KMS has no word for a sealed service: its internal error's code, with 503 (the
    # SDKs retry it) and a message that says what is wrong (docs/behaviour.md).
    code = "KMSInternalException"
    status = 503


class ServiceUnavailable(KmsError):
    # The Query services' (STS, IAM) word for the same.
    status = 503


class KMSInvalidMacException(KmsError):
    pass


class KMSInvalidSignatureException(KmsError):
    pass


class KMSInvalidStateException(KmsError):
    pass


class LimitExceededException(KmsError):
    pass


class MalformedPolicyDocumentException(KmsError):
    pass


# Not in the KMS model, but what AWS answers for a reserved alias name (alias/aws/...).
class NotAuthorizedException(KmsError):
    pass


class NotFoundException(KmsError):
    pass


class TagException(KmsError):
    pass


class UnsupportedOperationException(KmsError):
    pass


class ThrottlingException(KmsError):
    pass


# CloudTrail's LookupEvents and ListPublicKeys (openkms.audit.lookup_events).
class InvalidLookupAttributesException(KmsError):
    pass


class InvalidTimeRangeException(KmsError):
    pass


class InvalidMaxResultsException(KmsError):
    pass


class InvalidNextTokenException(KmsError):
    pass


class InvalidEventCategoryException(KmsError):
    pass


DRY_RUN_MESSAGE = "The request would succeed if DryRun wasn't specified."
THROTTLED_MESSAGE = (
    "You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls."
)
