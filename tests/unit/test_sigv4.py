"""The SigV4 verifier (openkms.auth.sigv4, openkms.auth.authenticator) against requests that
botocore signs, and against AWS's published examples."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from openkms.auth.authenticator import Authenticator
from openkms.auth.sigv4 import (
    SignedRequest,
    canonical_request,
    check_clock_skew,
    check_scope,
    derive_signing_key,
    parse_authorization,
    verify_signature,
)
from openkms.clock import ManualClock
from openkms.errors import (
    IncompleteSignatureException,
    InvalidSignatureException,
    KmsError,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)
from openkms.iam.accounts import ensure_account_with_key
from openkms.storage import open_database
from tests.key_material import root_key_from
from tests.support import SigV4AuthAt

ACCESS_KEY = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
REGION = "us-east-1"
SIGNED_AT = dt.datetime(2026, 3, 14, 15, 9, 26, tzinfo=dt.UTC)
BAD_SIGNATURE = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation "
    "for details."
)


def sign(
    *,
    body: bytes = b'{"KeyId": "alias/x"}',
    url: str = "https://kms.us-east-1.amazonaws.com/",
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    method: str = "POST",
    secret: str = SECRET,
    region: str = REGION,
    service: str = "kms",
    at: dt.datetime = SIGNED_AT,
) -> AWSRequest:
    all_headers = {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "TrentService.DescribeKey",
        **(headers or {}),
    }
    request = AWSRequest(method=method, url=url, data=body, headers=all_headers, params=params)
    SigV4AuthAt(Credentials(ACCESS_KEY, secret), service, region, at).add_auth(request)
    return request


def arrived(request: AWSRequest) -> SignedRequest:
    """The request as the server receives it: the wire path and query, lower-case names."""
    prepared = request.prepare()
    parts = urlsplit(prepared.url)
    headers = [(name.lower(), value) for name, value in prepared.headers.items()]
    if not any(name == "host" for name, _ in headers):
        headers.append(("host", parts.netloc))
    body = prepared.body or b""
    return SignedRequest(
        method=prepared.method,
        raw_path=parts.path,
        raw_query=parts.query,
        headers=headers,
        body=body.encode() if isinstance(body, str) else body,
    )


def verify(
    signed: SignedRequest,
    secret: str = SECRET,
    now: dt.datetime = SIGNED_AT,
    service: str = "kms",
    regions: frozenset[str] = frozenset(),
) -> None:
    """The server's checks, in its order."""
    auth = parse_authorization(signed)
    check_clock_skew(auth, now)
    check_scope(auth, service, lambda region: not regions or region in regions)
    credential = auth.credential
    key = derive_signing_key(
        secret.encode(), credential.date, credential.region, credential.service
    )
    verify_signature(signed, auth, key)


def with_header(signed: SignedRequest, name: str, value: str | None) -> SignedRequest:
    headers = [(n, v) for n, v in signed.headers if n != name]
    if value is not None:
        headers.append((name, value))
    return SignedRequest(signed.method, signed.raw_path, signed.raw_query, headers, signed.body)


def header(signed: SignedRequest, name: str) -> str:
    return next(value for n, value in signed.headers if n == name)


def fails(error: type[KmsError], signed: SignedRequest, **kwargs) -> str:  # noqa: ANN003
    with pytest.raises(error) as info:
        verify(signed, **kwargs)
    return info.value.message or ""


# -- AWS's published examples -------------------------------------------------------------


def test_signing_key_of_the_aws_documentation_example():
    # "Examples of how to derive a signing key for Signature Version 4" (AWS General Reference).
    key = derive_signing_key(SECRET.encode(), "20120215", "us-east-1", "iam")
    assert key.hex() == "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"


def test_get_vanilla_of_the_aws_signature_v4_test_suite():
    signed = SignedRequest(
        method="GET",
        raw_path="/",
        raw_query="",
        headers=[
            ("host", "example.amazonaws.com"),
            ("x-amz-date", "20150830T123600Z"),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                "SignedHeaders=host;x-amz-date, "
                "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            ),
        ],
        body=b"",
    )
    verify(signed, now=dt.datetime(2015, 8, 30, 12, 36, tzinfo=dt.UTC), service="service")


# -- requests signed by botocore ----------------------------------------------------------


def test_a_botocore_signed_request_verifies():
    signed = arrived(sign())
    verify(signed)
    auth = parse_authorization(signed)
    assert auth.credential.access_key_id == ACCESS_KEY
    assert auth.credential.region == REGION
    assert auth.credential.date == "20260314"
    assert auth.amz_date == "20260314T150926Z"
    assert auth.security_token is None


def test_a_request_dated_by_the_http_date_header_verifies():
    signed = arrived(sign(headers={"Date": "placeholder"}))
    assert header(signed, "date") == "Sat, 14 Mar 2026 15:09:26 -0000"  # email.utils.formatdate
    assert not any(name == "x-amz-date" for name, _ in signed.headers)
    assert parse_authorization(signed).amz_date == "20260314T150926Z"
    verify(signed)
    later = SIGNED_AT + dt.timedelta(minutes=6)
    assert fails(InvalidSignatureException, signed, now=later).startswith("Signature expired: ")


@pytest.mark.parametrize(
    "http_date",
    [
        "Sat, 14 Mar 2026 15:09:26 GMT",
        "Sat, 14 Mar 2026 16:09:26 +0100",
        "Sat, 14 Mar 2026 15:09:26 -0000",
    ],
)
def test_http_dates_are_read_as_utc(http_date):
    signed = with_header(with_header(arrived(sign()), "x-amz-date", None), "date", http_date)
    assert parse_authorization(signed).amz_date == "20260314T150926Z"


def test_x_amz_date_wins_over_date():
    signed = with_header(arrived(sign()), "date", "Sun, 01 Jan 2023 00:00:00 GMT")
    assert parse_authorization(signed).amz_date == "20260314T150926Z"
    verify(signed)


def test_the_security_token_is_read():
    signed = arrived(sign(headers={"X-Amz-Security-Token": "token"}))
    assert parse_authorization(signed).security_token == "token"


_unreserved = st.text(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~", min_size=1, max_size=8
)
_segment = st.one_of(_unreserved, st.sampled_from(["%20", "%2F", "a%3Db", ".", "..", ""]))
_header_value = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.just("\t"), max_size=20
).map(lambda text: "x" + text + "x")


@settings(max_examples=200, deadline=None)
@given(
    body=st.binary(max_size=300),
    segments=st.lists(_segment, max_size=5),
    trailing_slash=st.booleans(),
    params=st.dictionaries(st.text(min_size=1, max_size=6), st.text(max_size=6), max_size=4),
    extra=st.dictionaries(
        st.sampled_from(["X-Amz-Meta-One", "X-Custom", "Accept", "X-Amz-Security-Token"]),
        _header_value,
        max_size=3,
    ),
)
def test_the_canonical_request_is_botocores(body, segments, trailing_slash, params, extra):
    path = "/" + "/".join(segments) + ("/" if trailing_slash and segments else "")
    request = sign(
        body=body, url=f"https://kms.us-east-1.amazonaws.com{path}", params=params, headers=extra
    )
    signed = arrived(request)
    auth = parse_authorization(signed)
    authorization = request.headers["Authorization"]
    del request.headers["Authorization"]  # as it was when botocore signed it
    signer = SigV4Auth(Credentials(ACCESS_KEY, SECRET), "kms", REGION)
    botocore_canonical = signer.canonical_request(request)
    request.headers["Authorization"] = authorization
    assert canonical_request(signed, auth.signed_headers) == botocore_canonical
    verify(signed)


@settings(max_examples=100, deadline=None)
@given(body=st.binary(min_size=1, max_size=200), data=st.data())
def test_any_change_to_the_body_is_detected(body, data):
    signed = arrived(sign(body=body))
    index = data.draw(st.integers(0, len(body) - 1))
    flip = data.draw(st.integers(1, 255))
    changed = bytearray(body)
    changed[index] ^= flip
    tampered = SignedRequest(
        signed.method, signed.raw_path, signed.raw_query, signed.headers, bytes(changed)
    )
    assert fails(InvalidSignatureException, tampered) == BAD_SIGNATURE
    shorter = SignedRequest(
        signed.method, signed.raw_path, signed.raw_query, signed.headers, body[:-1]
    )
    assert fails(InvalidSignatureException, shorter) == BAD_SIGNATURE


@settings(max_examples=100, deadline=None)
@given(name=st.sampled_from(["content-type", "x-amz-target", "host", "x-amz-date"]), data=st.data())
def test_any_change_to_a_signed_header_is_detected(name, data):
    signed = arrived(sign())
    value = header(signed, name)
    index = data.draw(st.integers(0, len(value) - 1))
    replacement = data.draw(
        st.characters(min_codepoint=0x21, max_codepoint=0x7E).filter(lambda c: c != value[index])
    )
    changed = value[:index] + replacement + value[index + 1 :]
    with pytest.raises((InvalidSignatureException, IncompleteSignatureException)):
        verify(with_header(signed, name, changed))


def test_whitespace_in_header_values_is_canonical():
    signed = arrived(sign(headers={"X-Custom": "a  b"}))
    verify(with_header(signed, "x-custom", "  a \t b  "))


def test_unsigned_headers_may_change():
    signed = arrived(sign())
    verify(with_header(signed, "user-agent", "anything"))
    verify(with_header(signed, "x-forwarded-for", "10.1.2.3"))


def test_a_removed_signed_header_is_detected():
    signed = arrived(sign())
    assert (
        fails(InvalidSignatureException, with_header(signed, "content-type", None)) == BAD_SIGNATURE
    )


def test_method_path_and_query_are_signed():
    signed = arrived(sign(params={"a": "1"}))
    for changed in (
        SignedRequest("PUT", signed.raw_path, signed.raw_query, signed.headers, signed.body),
        SignedRequest(signed.method, "/other", signed.raw_query, signed.headers, signed.body),
        SignedRequest(signed.method, signed.raw_path, "a=2", signed.headers, signed.body),
        SignedRequest(signed.method, signed.raw_path, "a=1&b=2", signed.headers, signed.body),
        SignedRequest(signed.method, signed.raw_path, "", signed.headers, signed.body),
    ):
        assert fails(InvalidSignatureException, changed) == BAD_SIGNATURE


def test_a_wrong_secret_or_a_changed_signature_fails():
    signed = arrived(sign())
    assert fails(InvalidSignatureException, signed, secret=SECRET + "x") == BAD_SIGNATURE
    authorization = header(signed, "authorization")
    truncated = with_header(signed, "authorization", authorization[:-1])
    assert fails(InvalidSignatureException, truncated) == BAD_SIGNATURE
    non_ascii = with_header(signed, "authorization", authorization[:-1] + "é")
    assert fails(InvalidSignatureException, non_ascii) == BAD_SIGNATURE


# -- the Authorization header's form ------------------------------------------------------


def test_no_authorization_at_all():
    signed = with_header(arrived(sign()), "authorization", None)
    assert (
        fails(MissingAuthenticationTokenException, signed)
        == "Request is missing Authentication Token"
    )
    for value in ("", "Basic dXNlcjpwYXNz", "AWS AKID:signature"):
        changed = with_header(signed, "authorization", value)
        assert (
            fails(MissingAuthenticationTokenException, changed)
            == "Request is missing Authentication Token"
        )


def test_an_incomplete_authorization_header():
    signed = with_header(arrived(sign()), "x-amz-date", None)
    for authorization, missing in (
        ("AWS4-HMAC-SHA256", ["Credential", "Signature", "SignedHeaders"]),
        ("AWS4-HMAC-SHA256 Credential=a/b/c/d/e", ["Signature", "SignedHeaders"]),
        ("AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host", ["Signature"]),
    ):
        message = fails(
            IncompleteSignatureException, with_header(signed, "authorization", authorization)
        )
        expected = " ".join(
            f"Authorization header requires '{name}' parameter." for name in missing
        )
        expected += (
            " Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        )
        assert message == f"{expected} Authorization={authorization}"


def test_the_signature_is_not_echoed_in_errors():
    authorization = "AWS4-HMAC-SHA256 Credential=a/b/c/d/e, Signature=abcdef0123"
    signed = with_header(arrived(sign()), "authorization", authorization)
    message = fails(IncompleteSignatureException, signed)
    assert "abcdef0123" not in message
    assert message.endswith(
        "Authorization=AWS4-HMAC-SHA256 Credential=a/b/c/d/e, Signature=<redacted>"
    )


def test_a_credential_with_the_wrong_number_of_parts():
    signed = arrived(sign())
    authorization = header(signed, "authorization").replace("/kms/aws4_request", "/kms")
    message = fails(
        IncompleteSignatureException, with_header(signed, "authorization", authorization)
    )
    assert message == (
        "Credential must have exactly 5 slash-delimited elements, e.g. "
        f"keyid/date/region/service/term, got '{ACCESS_KEY}/20260314/us-east-1/kms'"
    )


def test_an_unsupported_algorithm():
    signed = arrived(sign())
    authorization = header(signed, "authorization").replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512")
    message = fails(
        IncompleteSignatureException, with_header(signed, "authorization", authorization)
    )
    assert message == "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512'"


@pytest.mark.parametrize(
    ("drop", "message"),
    [
        ("host", "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."),
        ("x-amz-target", "'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization."),
    ],
)
def test_host_and_target_must_be_signed(drop, message):
    signed = arrived(sign())
    authorization = header(signed, "authorization")
    names = authorization.split("SignedHeaders=")[1].split(",")[0]
    fewer = ";".join(name for name in names.split(";") if name != drop)
    changed = with_header(signed, "authorization", authorization.replace(names, fewer))
    assert fails(InvalidSignatureException, changed) == message


def test_a_request_without_a_target_need_not_sign_one():
    request = AWSRequest(
        method="POST", url="https://sts.amazonaws.com/", data=b"Action=GetCallerIdentity"
    )
    SigV4AuthAt(Credentials(ACCESS_KEY, SECRET), "sts", REGION, SIGNED_AT).add_auth(request)
    verify(arrived(request), service="sts")


def test_a_malformed_date():
    signed = arrived(sign())
    for value in ("20260314", "2026-03-14T15:09:26Z", "20260314T150926", "x"):
        message = fails(IncompleteSignatureException, with_header(signed, "x-amz-date", value))
        assert message == (
            f"Date must be in ISO-8601 'basic format'. Got '{value}'. See "
            "http://en.wikipedia.org/wiki/ISO_8601"
        )


# -- time ---------------------------------------------------------------------------------


def test_five_minutes_of_skew_is_the_limit():
    signed = arrived(sign())
    for seconds in (-300, -1, 0, 1, 300):
        verify(signed, now=SIGNED_AT + dt.timedelta(seconds=seconds))
    message = fails(InvalidSignatureException, signed, now=SIGNED_AT + dt.timedelta(seconds=301))
    assert message == (
        "Signature expired: 20260314T150926Z is now earlier than 20260314T150927Z "
        "(20260314T151427Z - 5 min.)"
    )
    message = fails(InvalidSignatureException, signed, now=SIGNED_AT - dt.timedelta(seconds=301))
    assert message == (
        "Signature not yet current: 20260314T150926Z is still later than 20260314T150925Z "
        "(20260314T150425Z + 5 min.)"
    )


def test_skew_is_judged_in_utc_whatever_the_clocks_zone():
    signed = arrived(sign())
    tokyo = dt.timezone(dt.timedelta(hours=9))
    verify(signed, now=SIGNED_AT.astimezone(tokyo))
    assert fails(
        InvalidSignatureException, signed, now=(SIGNED_AT + dt.timedelta(hours=1)).astimezone(tokyo)
    )


def test_an_expired_request_is_refused_before_its_scope_is_looked_at():
    signed = arrived(sign(region="eu-west-1", service="sts"))
    message = fails(
        InvalidSignatureException,
        signed,
        now=SIGNED_AT + dt.timedelta(hours=1),
        regions=frozenset({REGION}),
    )
    assert message.startswith("Signature expired: ")


# -- credential scope ---------------------------------------------------------------------


def test_scope_problems_are_all_named_in_awss_order():
    signed = arrived(sign(region="eu-west-1", service="sts"))
    authorization = header(signed, "authorization").replace("/aws4_request", "/aws5_request")
    authorization = authorization.replace("/20260314/", "/20260313/")
    message = fails(
        InvalidSignatureException,
        with_header(signed, "authorization", authorization),
        regions=frozenset({REGION}),
    )
    assert message == (
        "Credential should be scoped to a valid region. "
        "Credential should be scoped to correct service: 'kms'. "
        "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'. "
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
        "'20260313' != '20260314', from '20260314T150926Z'. "
    )


@pytest.mark.parametrize(
    "region", ["us-east-1", "us-gov-west-1", "eusc-de-east-1", "local", "a" * 32]
)
def test_region_names_served_when_any_region_is(region):
    verify(arrived(sign(region=region)))


@pytest.mark.parametrize(
    "region", ["US-EAST-1", "a" * 33, "us_east_1", "us-east-1-", "-us", "us east", "é"]
)
def test_region_names_never_served(region):
    signed = arrived(sign(region=region))
    assert (
        fails(InvalidSignatureException, signed)
        == "Credential should be scoped to a valid region. "
    )


def test_a_server_limited_to_some_regions():
    regions = frozenset({"us-east-1", "eu-central-1"})
    verify(arrived(sign(region="eu-central-1")), regions=regions)
    message = fails(InvalidSignatureException, arrived(sign(region="eu-west-1")), regions=regions)
    assert message == "Credential should be scoped to a valid region. "


# -- the authenticator: stored keys, caching, order ---------------------------------------


@pytest.fixture
def authenticator(tmp_path: Path) -> tuple[Authenticator, ManualClock]:
    db = open_database(f"sqlite:///{tmp_path / 'auth.db'}")
    db.migrate()
    root_key = root_key_from(bytes(range(32)))
    clock = ManualClock(SIGNED_AT)
    ensure_account_with_key(db, root_key, clock, "111122223333", ACCESS_KEY, SECRET)
    yield (
        Authenticator(db, root_key, clock, lambda region: region != "eu-west-3", cache_seconds=60),
        clock,
    )
    db.dispose()


def test_the_authenticator_names_the_principal_and_region(authenticator):
    auth, _ = authenticator
    result = auth.authenticate(arrived(sign(region="ap-south-1")), "kms")
    assert result.region == "ap-south-1"
    assert result.principal.account_id == "111122223333"
    assert result.principal.arn == "arn:aws:iam::111122223333:root"
    assert result.principal.access_key_id == ACCESS_KEY


def test_the_authenticator_refuses_in_awss_order(authenticator):
    auth, clock = authenticator
    unknown = arrived(sign())
    unknown = with_header(
        unknown,
        "authorization",
        header(unknown, "authorization").replace(ACCESS_KEY, "AKIDUNKNOWN"),
    )
    with pytest.raises(UnrecognizedClientException) as info:
        auth.authenticate(unknown, "kms")
    assert info.value.message == "The security token included in the request is invalid."
    # The wrong service is noticed before the unknown key ...
    with pytest.raises(InvalidSignatureException, match="correct service: 'sts'"):
        auth.authenticate(unknown, "sts")
    # ... and the expired signature before both.
    clock.advance(3600)
    with pytest.raises(InvalidSignatureException, match="^Signature expired: "):
        auth.authenticate(unknown, "sts")


def test_the_authenticator_checks_every_signature_even_when_cached(authenticator):
    auth, _ = authenticator
    auth.authenticate(arrived(sign()), "kms")
    with pytest.raises(InvalidSignatureException):
        auth.authenticate(arrived(sign(secret="wrong")), "kms")
    with pytest.raises(InvalidSignatureException, match="valid region"):
        auth.authenticate(arrived(sign(region="eu-west-3")), "kms")
    auth.authenticate(arrived(sign()), "kms")


def test_the_authenticator_refuses_session_tokens(authenticator):
    auth, _ = authenticator
    with pytest.raises(UnrecognizedClientException):
        auth.authenticate(arrived(sign(headers={"X-Amz-Security-Token": "t"})), "kms")


def test_the_signing_key_is_botocores():
    key = derive_signing_key(SECRET.encode(), "20260314", REGION, "kms")
    string_to_sign = "AWS4-HMAC-SHA256\n20260314T150926Z\n20260314/us-east-1/kms/aws4_request\nabc"
    request = AWSRequest(method="POST", url="https://example.com/")
    request.context["timestamp"] = "20260314T150926Z"
    expected = SigV4Auth(Credentials(ACCESS_KEY, SECRET), "kms", REGION).signature(
        string_to_sign, request
    )
    assert hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest() == expected
