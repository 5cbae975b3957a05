"""Verification of AWS Signature Version 4 in the Authorization header.

The canonical request is rebuilt from what arrived on the wire (method, path, query, the
signed headers, and the SHA-256 of the body actually received), so a signature proves both who
sent the request and that nothing in it changed. Error codes and texts are AWS's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import quote, unquote

from openkms.errors import (
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
)

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = dt.timedelta(minutes=5)
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_BAD_SIGNATURE = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation "
    "for details."
)
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class SignedRequest:
    method: str
    raw_path: str
    raw_query: str
    headers: list[tuple[str, str]]  # lower-case names, in arrival order
    body: bytes


@dataclass(frozen=True, slots=True)
class Credential:
    access_key_id: str
    date: str
    region: str
    service: str


@dataclass(frozen=True, slots=True)
class AuthorizationHeader:
    credential: Credential
    signed_headers: list[str]
    signature: str
    amz_date: str
    security_token: str | None


def parse_authorization(request: SignedRequest) -> AuthorizationHeader:
    """Check the header's form (not yet the signature); raise AWS's error if it is off."""
    headers = _header_map(request.headers)
    authorization = headers.get("authorization")
    if not authorization:
        raise MissingAuthenticationTokenException("Request is missing Authentication Token")
    algorithm, _, rest = authorization.strip().partition(" ")
    if algorithm != ALGORITHM:
        if not algorithm.startswith("AWS4-"):
            raise MissingAuthenticationTokenException("Request is missing Authentication Token")
        raise IncompleteSignatureException(f"Unsupported AWS 'algorithm': '{algorithm}'")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, sep, value = part.strip().partition("=")
        if sep:
            fields[name.strip()] = value.strip()
    amz_date = headers.get("x-amz-date")
    problems = [
        f"Authorization header requires '{name}' parameter."
        for name in ("Credential", "Signature", "SignedHeaders")
        if not fields.get(name)
    ]
    if amz_date is None:
        problems.append(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        )
    if problems:
        raise IncompleteSignatureException(
            " ".join(problems) + f" Authorization={_redacted(authorization)}"
        )
    credential_parts = fields["Credential"].split("/")
    if len(credential_parts) != 5:
        raise IncompleteSignatureException(
            "Credential must have exactly 5 slash-delimited elements, e.g. "
            f"keyid/date/region/service/term, got '{fields['Credential']}'"
        )
    access_key_id, date, region, service, terminator = credential_parts
    scope_problems = []
    if terminator != "aws4_request":
        scope_problems.append(
            "Credential should be scoped with a valid terminator: 'aws4_request', "
            f"not '{terminator}'. "
        )
    if not amz_date.startswith(date) or len(date) != 8:
        scope_problems.append(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{date}' != '{amz_date[:8]}', from '{amz_date}'. "
        )
    if scope_problems:
        raise InvalidSignatureException("".join(scope_problems))
    signed_headers = fields["SignedHeaders"].split(";")
    if "host" not in signed_headers:
        raise InvalidSignatureException(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
        )
    return AuthorizationHeader(
        credential=Credential(access_key_id, date, region, service),
        signed_headers=signed_headers,
        signature=fields["Signature"],
        amz_date=amz_date,
        security_token=headers.get("x-amz-security-token"),
    )


def check_scope(
    auth: AuthorizationHeader, service: str, region_allowed: Callable[[str], bool]
) -> None:
    problems = []
    if not region_allowed(auth.credential.region):
        problems.append("Credential should be scoped to a valid region. ")
    if auth.credential.service != service:
        problems.append(f"Credential should be scoped to correct service: '{service}'. ")
    if problems:
        raise InvalidSignatureException("".join(problems))


def check_clock_skew(auth: AuthorizationHeader, now: dt.datetime) -> None:
    try:
        signed_at = dt.datetime.strptime(auth.amz_date, _AMZ_DATE).replace(tzinfo=dt.UTC)
    except ValueError:
        raise IncompleteSignatureException(
            f"Date must be in ISO-8601 'basic format'. Got '{auth.amz_date}'. See "
            "http://en.wikipedia.org/wiki/ISO_8601"
        ) from None
    now = now.astimezone(dt.UTC).replace(microsecond=0)
    if signed_at < now - MAX_SKEW:
        raise InvalidSignatureException(
            f"Signature expired: {auth.amz_date} is now earlier than "
            f"{_fmt(now - MAX_SKEW)} ({_fmt(now)} - 5 min.)"
        )
    if signed_at > now + MAX_SKEW:
        raise InvalidSignatureException(
            f"Signature not yet current: {auth.amz_date} is still later than "
            f"{_fmt(now + MAX_SKEW)} ({_fmt(now)} + 5 min.)"
        )


def verify_signature(request: SignedRequest, auth: AuthorizationHeader, signing_key: bytes) -> None:
    """Compare the signature in constant time; raise InvalidSignatureException if it differs."""
    expected = hmac.new(
        signing_key, string_to_sign(request, auth).encode("utf-8"), hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(expected.encode("ascii"), auth.signature.encode("ascii", "replace")):
        raise InvalidSignatureException(_BAD_SIGNATURE)


def derive_signing_key(secret: bytes, date: str, region: str, service: str) -> bytes:
    key = _hmac(b"AWS4" + secret, date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, "aws4_request")


def string_to_sign(request: SignedRequest, auth: AuthorizationHeader) -> str:
    credential = auth.credential
    scope = f"{credential.date}/{credential.region}/{credential.service}/aws4_request"
    digest = hashlib.sha256(canonical_request(request, auth.signed_headers).encode("utf-8"))
    return f"{ALGORITHM}\n{auth.amz_date}\n{scope}\n{digest.hexdigest()}"


def canonical_request(request: SignedRequest, signed_headers: Iterable[str]) -> str:
    names = list(signed_headers)
    grouped: dict[str, list[str]] = {}
    for name, value in request.headers:
        grouped.setdefault(name, []).append(_SPACES.sub(" ", value.strip()))
    header_lines = "".join(f"{name}:{','.join(grouped.get(name, []))}\n" for name in names)
    return "\n".join(
        [
            request.method.upper(),
            _canonical_path(request.raw_path),
            _canonical_query(request.raw_query),
            header_lines,
            ";".join(names),
            hashlib.sha256(request.body).hexdigest(),
        ]
    )


def _canonical_path(raw_path: str) -> str:
    # Services other than S3 sign the URI-encoded form of the (already encoded) path.
    return quote(raw_path or "/", safe="/~")


def _canonical_query(raw_query: str) -> str:
    pairs = []
    for item in raw_query.split("&") if raw_query else []:
        name, _, value = item.partition("=")
        pairs.append(
            (
                quote(unquote(name), safe="-_.~"),
                quote(unquote(value.replace("+", " ")), safe="-_.~"),
            )
        )
    return "&".join(f"{n}={v}" for n, v in sorted(pairs))


def _header_map(headers: list[tuple[str, str]]) -> dict[str, str]:
    result: dict[str, str] = {}
    for name, value in headers:
        result.setdefault(name, value)
    return result


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def _fmt(when: dt.datetime) -> str:
    return when.strftime(_AMZ_DATE)


def _redacted(authorization: str) -> str:
    # The signature is no secret, but there is no reason to echo it either.
    return re.sub(r"Signature=[0-9a-fA-F]*", "Signature=<redacted>", authorization)
