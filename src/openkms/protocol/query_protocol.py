"""The AWS Query protocol, for the STS subset (GetCallerIdentity, AssumeRole,
GetSessionToken): form-encoded requests, XML responses and errors."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from openkms.errors import KmsError

CONTENT_TYPE = "text/xml"
STS_NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
FAULT_NAMESPACE = "http://webservices.amazon.com/AWSFault/2005-15-09"


def decode_parameters(query: str, body: bytes) -> dict[str, str]:
    params: dict[str, str] = {}
    for source in (query, body.decode("utf-8", "replace")):
        for name, value in parse_qsl(source, keep_blank_values=True):
            params.setdefault(name, value)
    return params


def caller_identity_xml(arn: str, user_id: str, account: str, request_id: str) -> bytes:
    return (
        f'<GetCallerIdentityResponse xmlns="{STS_NAMESPACE}">\n'
        "  <GetCallerIdentityResult>\n"
        f"    <Arn>{escape(arn)}</Arn>\n"
        f"    <UserId>{escape(user_id)}</UserId>\n"
        f"    <Account>{escape(account)}</Account>\n"
        "  </GetCallerIdentityResult>\n"
        "  <ResponseMetadata>\n"
        f"    <RequestId>{escape(request_id)}</RequestId>\n"
        "  </ResponseMetadata>\n"
        "</GetCallerIdentityResponse>\n"
    ).encode()


def credentials_xml(
    access_key_id: str, secret_access_key: str, session_token: str, expiration: dt.datetime
) -> str:
    return (
        "    <Credentials>\n"
        f"      <AccessKeyId>{escape(access_key_id)}</AccessKeyId>\n"
        f"      <SecretAccessKey>{escape(secret_access_key)}</SecretAccessKey>\n"
        f"      <SessionToken>{escape(session_token)}</SessionToken>\n"
        f"      <Expiration>{_timestamp(expiration)}</Expiration>\n"
        "    </Credentials>\n"
    )


def assume_role_xml(
    credentials: str,
    assumed_role_id: str,
    arn: str,
    packed_policy_size: int | None,
    request_id: str,
) -> bytes:
    packed = (
        f"    <PackedPolicySize>{packed_policy_size}</PackedPolicySize>\n"
        if packed_policy_size is not None
        else ""
    )
    return (
        f'<AssumeRoleResponse xmlns="{STS_NAMESPACE}">\n'
        "  <AssumeRoleResult>\n"
        f"{credentials}"
        "    <AssumedRoleUser>\n"
        f"      <AssumedRoleId>{escape(assumed_role_id)}</AssumedRoleId>\n"
        f"      <Arn>{escape(arn)}</Arn>\n"
        "    </AssumedRoleUser>\n"
        f"{packed}"
        "  </AssumeRoleResult>\n"
        "  <ResponseMetadata>\n"
        f"    <RequestId>{escape(request_id)}</RequestId>\n"
        "  </ResponseMetadata>\n"
        "</AssumeRoleResponse>\n"
    ).encode()


def session_token_xml(credentials: str, request_id: str) -> bytes:
    return (
        f'<GetSessionTokenResponse xmlns="{STS_NAMESPACE}">\n'
        "  <GetSessionTokenResult>\n"
        f"{credentials}"
        "  </GetSessionTokenResult>\n"
        "  <ResponseMetadata>\n"
        f"    <RequestId>{escape(request_id)}</RequestId>\n"
        "  </ResponseMetadata>\n"
        "</GetSessionTokenResponse>\n"
    ).encode()


def _timestamp(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def error_xml(code: str, message: str, request_id: str, namespace: str = STS_NAMESPACE) -> bytes:
    return (
        f'<ErrorResponse xmlns="{namespace}">\n'
        "  <Error>\n"
        "    <Type>Sender</Type>\n"
        f"    <Code>{escape(code)}</Code>\n"
        f"    <Message>{escape(message)}</Message>\n"
        "  </Error>\n"
        f"  <RequestId>{escape(request_id)}</RequestId>\n"
        "</ErrorResponse>\n"
    ).encode()


# The JSON services' signature errors have Query-protocol names of their own.
_QUERY_CODES = {
    "InvalidSignatureException": ("SignatureDoesNotMatch", 403),
    "UnrecognizedClientException": ("InvalidClientTokenId", 403),
    "MissingAuthenticationTokenException": ("MissingAuthenticationToken", 403),
    "IncompleteSignatureException": ("IncompleteSignature", 400),
    "ExpiredTokenException": ("ExpiredToken", 403),
    "AccessDeniedException": ("AccessDenied", 403),
    "ValidationException": ("ValidationError", 400),
}


def query_error(error: KmsError) -> tuple[str, int]:
    return _QUERY_CODES.get(error.code, (error.code, error.status))
