"""Verification of AWS Signature Version 4 in the Authorization header.

The canonical request is rebuilt from what arrived on the wire (method, path, query, the
signed headers, and the SHA-256 of the body actually received), so a signature proves both who
sent the request and that nothing in it changed. Error codes and texts are AWS's.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import functools
import hashlib
import hmac
import math
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
TERMINATOR = "aws4_request"
MAX_SKEW = dt.timedelta(minutes=5)
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_BAD_SIGNATURE = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation "
    "for details."
)
_SPACES = re.compile(r"\s+")
# A value _SPACES would change: a run of two whitespace characters, or one that is not " ".
_FOLDABLE = re.compile(r"\s\s|[^\S ]")
# Even a server that serves "any" region serves only names shaped like AWS's (us-east-1,
# us-gov-west-1, and "local" for development): lowercase letters, digits and inner hyphens, at
# most 32 characters. A region is part of every ARN and of the keys' storage.
_REGION_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?")


# Not frozen, though nothing changes them once made: made for every request, where a frozen
# dataclass's __init__ costs four times a plain one's.
@dataclass(slots=True)
class SignedRequest:
    method: str
    raw_path: str
    raw_query: str
    headers: list[tuple[str, str]]  # lower-case names, in arrival order
    body: bytes


@dataclass(slots=True)
class Credential:
    access_key_id: str
    date: str
    region: str
    service: str
    terminator: str = "aws4_request"


@dataclass(slots=True)
class AuthorizationHeader:
    credential: Credential
    signed_headers: list[str]
    signature: str
    amz_date: str  # ISO-8601 basic format, from X-Amz-Date or else from Date
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
    amz_date = _request_timestamp(headers)
    if amz_date is None or not (
        fields.get("Credential") and fields.get("Signature") and fields.get("SignedHeaders")
    ):
        problems = [
            f"Authorization header requires '{name}' parameter."
            for name in ("Credential", "Signature", "SignedHeaders")
            if not fields.get(name)
        ]
        if amz_date is None:
            problems.append(
                "Authorization header requires existence of either a 'X-Amz-Date' or a "
                "'Date' header."
            )
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
    signed_headers = fields["SignedHeaders"].split(";")
    if "host" not in signed_headers:
        raise InvalidSignatureException(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
        )
    if "x-amz-target" in headers and "x-amz-target" not in signed_headers:
        # The operation a request asks for must be covered by its signature, or a captured
        # request could be replayed as another operation with the same body.
        raise InvalidSignatureException(
            "'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization."
        )
    return AuthorizationHeader(
        credential=Credential(access_key_id, date, region, service, terminator),
        signed_headers=signed_headers,
        signature=fields["Signature"],
        amz_date=amz_date,
        security_token=headers.get("x-amz-security-token"),
    )


def check_scope(
    auth: AuthorizationHeader, service: str, region_allowed: Callable[[str], bool]
) -> None:
    """The credential scope's region, service, terminator and date, in AWS's order; every
    problem found is named, each sentence ending in ". " as AWS's do."""
    credential = auth.credential
    problems = []
    if not (_REGION_NAME.fullmatch(credential.region) and region_allowed(credential.region)):
        problems.append("Credential should be scoped to a valid region. ")
    if credential.service != service:
        problems.append(f"Credential should be scoped to correct service: '{service}'. ")
    if credential.terminator != TERMINATOR:
        problems.append(
            f"Credential should be scoped with a valid terminator: '{TERMINATOR}', "
            f"not '{credential.terminator}'. "
        )
    if credential.date != auth.amz_date[:8]:
        problems.append(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{credential.date}' != '{auth.amz_date[:8]}', from '{auth.amz_date}'. "
        )
    if problems:
        raise InvalidSignatureException("".join(problems))


@functools.lru_cache(maxsize=256)
def _amz_epoch_seconds(text: str) -> int | None:
    # Requests signed in the same second share their date: parse each once.
    try:
        return int(dt.datetime.strptime(text, _AMZ_DATE).replace(tzinfo=dt.UTC).timestamp())
    except ValueError:
        return None


def check_clock_skew(auth: AuthorizationHeader, now: dt.datetime) -> None:
    signed_at = _amz_epoch_seconds(auth.amz_date)
    if signed_at is None:
        raise IncompleteSignatureException(
            f"Date must be in ISO-8601 'basic format'. Got '{auth.amz_date}'. See "
            "http://en.wikipedia.org/wiki/ISO_8601"
        )
    # Whole seconds, as the signed time has them (compared as Unix seconds: no datetime
    # arithmetic on every request).
    now_seconds = math.floor(now.timestamp())
    skew = int(MAX_SKEW.total_seconds())
    if signed_at < now_seconds - skew or signed_at > now_seconds + skew:
        whole = dt.datetime.fromtimestamp(now_seconds, dt.UTC)
        if signed_at < now_seconds - skew:
            raise InvalidSignatureException(
                f"Signature expired: {auth.amz_date} is now earlier than "
                f"{_fmt(whole - MAX_SKEW)} ({_fmt(whole)} - 5 min.)"
            )
        raise InvalidSignatureException(
            f"Signature not yet current: {auth.amz_date} is still later than "
            f"{_fmt(whole + MAX_SKEW)} ({_fmt(whole)} + 5 min.)"
        )


def verify_signature(request: SignedRequest, auth: AuthorizationHeader, signing_key: bytes) -> None:
    """Compare the signature in constant time; raise InvalidSignatureException if it differs."""
    expected = hmac.digest(
        signing_key, string_to_sign(request, auth).encode("utf-8", "surrogateescape"), "sha256"
    ).hex()
    if not hmac.compare_digest(expected.encode("ascii"), auth.signature.encode("ascii", "replace")):
        raise InvalidSignatureException(_BAD_SIGNATURE)


def derive_signing_key(secret: bytes, date: str, region: str, service: str) -> bytes:
    key = _hmac(b"AWS4" + secret, date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, TERMINATOR)


def string_to_sign(request: SignedRequest, auth: AuthorizationHeader) -> str:
    credential = auth.credential
    scope = f"{credential.date}/{credential.region}/{credential.service}/{credential.terminator}"
    digest = hashlib.sha256(
        canonical_request(request, auth.signed_headers).encode("utf-8", "surrogateescape")
    )
    return f"{ALGORITHM}\n{auth.amz_date}\n{scope}\n{digest.hexdigest()}"


def canonical_request(request: SignedRequest, signed_headers: Iterable[str]) -> str:
    names = list(signed_headers)
    wanted = set(names)
    grouped: dict[str, list[str]] = {}
    for name, value in request.headers:
        if name in wanted:
            value = value.strip()
            if _FOLDABLE.search(value) is not None:
                value = _SPACES.sub(" ", value)
            grouped.setdefault(name, []).append(value)
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
    # Services other than S3 sign the normalised (RFC 3986 dot segments removed, empty
    # segments dropped), URI-encoded form of the already encoded path.
    if raw_path == "/":
        return raw_path
    return quote(_normalised_path(raw_path), safe="/~")


def _normalised_path(path: str) -> str:
    if not path:
        return "/"
    segments: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    first = "/" if path.startswith("/") else ""
    last = "/" if path.endswith("/") and segments else ""
    return first + "/".join(segments) + last


def _canonical_query(raw_query: str) -> str:
    pairs = []
    for item in raw_query.split("&") if raw_query else []:
        name, _, value = item.partition("=")
        # A "+" is a space, as form encoding (and botocore's own URLs) write one.
        pairs.append((_uri_encode(name), _uri_encode(value)))
    return "&".join(f"{n}={v}" for n, v in sorted(pairs))


def _request_timestamp(headers: dict[str, str]) -> str | None:
    """The request's time as SigV4 signs it: X-Amz-Date, or else the HTTP Date header
    (RFC 7231, as botocore writes it when a request carries one) in ISO-8601 basic format."""
    amz_date = headers.get("x-amz-date")
    if amz_date is not None:
        return amz_date
    http_date = headers.get("date")
    if http_date is None:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(http_date)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        return parsed.astimezone(dt.UTC).strftime(_AMZ_DATE)
    except (TypeError, ValueError, IndexError, OverflowError):
        return http_date  # reported as not ISO-8601 by the clock check


def _uri_encode(component: str) -> str:
    return quote(unquote(component.replace("+", " ")), safe="-_.~")


def _header_map(headers: list[tuple[str, str]]) -> dict[str, str]:
    # The first of repeated names wins: built back to front, it is written last.
    return dict(reversed(headers))


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def _fmt(when: dt.datetime) -> str:
    return when.strftime(_AMZ_DATE)


def _redacted(authorization: str) -> str:
    # The signature is no secret, but there is no reason to echo it either.
    return re.sub(r"Signature=[0-9a-fA-F]*", "Signature=<redacted>", authorization)
