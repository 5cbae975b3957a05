"""SigV4 authentication of every request, and the STS GetCallerIdentity endpoint."""

from __future__ import annotations

import datetime as dt
import re
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.support import (
    ACCESS_KEY_ID,
    ACCOUNT_ID,
    REGION,
    SECRET_ACCESS_KEY,
    OpenKmsServer,
    SigV4AuthAt,
)

JSON_11 = "application/x-amz-json-1.1"
BAD_SIGNATURE = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation "
    "for details."
)
INVALID_TOKEN = "The security token included in the request is invalid."
MISSING = "Request is missing Authentication Token"
STS_NS = "{https://sts.amazonaws.com/doc/2011-06-15/}"
AMZ = "%Y%m%dT%H%M%SZ"


def signed(
    server,  # noqa: ANN001
    operation: str = "ListKeys",
    body: bytes = b"{}",
    *,
    access_key: str = ACCESS_KEY_ID,
    secret: str = SECRET_ACCESS_KEY,
    region: str = REGION,
    service: str = "kms",
    at: dt.datetime | None = None,
    headers: dict[str, str] | None = None,
) -> AWSRequest:
    """A KMS request signed by botocore (at ``at``, if given), not yet sent."""
    all_headers = {
        "Content-Type": JSON_11,
        "X-Amz-Target": f"TrentService.{operation}",
        **(headers or {}),
    }
    request = AWSRequest(method="POST", url=f"{server.endpoint}/", data=body, headers=all_headers)
    if at is None:
        SigV4Auth(Credentials(access_key, secret), service, region).add_auth(request)
    else:
        SigV4AuthAt(Credentials(access_key, secret), service, region, at).add_auth(request)
    return request


def send(request: AWSRequest, body: bytes | None = None) -> requests.Response:
    """Send as signed; ``body`` replaces the signed body (tampering)."""
    prepared = request.prepare()
    headers = dict(prepared.headers)
    if body is not None:
        headers.pop("Content-Length", None)  # requests sets the new body's own
    data = prepared.body if body is None else body
    return requests.post(prepared.url, headers=headers, data=data, timeout=30)


def call(server, **kwargs) -> requests.Response:  # noqa: ANN001
    return send(signed(server, **kwargs))


def assert_error(response: requests.Response, code: str, message: str | None = None) -> str:
    assert response.status_code == 400, response.text
    assert response.headers["Content-Type"] == JSON_11
    assert uuid.UUID(response.headers["x-amzn-RequestId"])
    body = response.json()
    assert body["__type"] == code, body
    assert set(body) <= {"__type", "message"}
    if message is not None:
        assert body["message"] == message
    return body.get("message", "")


def assert_ok(response: requests.Response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


# -- the happy path -----------------------------------------------------------------------


def test_a_signed_request_is_accepted(server):
    assert "Keys" in assert_ok(call(server))


def test_unsigned_headers_may_be_added(server):
    request = signed(server)
    request.headers["X-Forwarded-For"] = "10.0.0.1"
    request.headers["User-Agent"] = "something else"
    assert_ok(send(request))


def test_a_request_dated_with_the_date_header(server):
    """botocore signs with the HTTP Date header instead of X-Amz-Date when one is present."""
    request = signed(server, headers={"Date": "placeholder"})
    assert "X-Amz-Date" not in request.headers
    assert "date" in request.headers["Authorization"]
    assert_ok(send(request))


# -- missing or malformed credentials -----------------------------------------------------


def test_no_authorization_header(server):
    response = requests.post(
        f"{server.endpoint}/",
        data=b"{}",
        headers={"Content-Type": JSON_11, "X-Amz-Target": "TrentService.ListKeys"},
        timeout=10,
    )
    assert_error(response, "MissingAuthenticationTokenException", MISSING)


def test_authentication_comes_before_the_operation_and_its_body(server):
    for target, body in (("TrentService.NoSuchOperation", b"{}"), ("TrentService.Encrypt", b"{")):
        response = requests.post(
            f"{server.endpoint}/",
            data=body,
            headers={"Content-Type": JSON_11, "X-Amz-Target": target},
            timeout=10,
        )
        assert_error(response, "MissingAuthenticationTokenException", MISSING)


@pytest.mark.parametrize("authorization", ["Basic Zm9vOmJhcg==", "Bearer token", "garbage"])
def test_an_authorization_header_of_another_scheme(server, authorization):
    request = signed(server)
    request.headers.replace_header("Authorization", authorization)
    assert_error(send(request), "MissingAuthenticationTokenException", MISSING)


def test_an_incomplete_authorization_header(server):
    request = signed(server)
    request.headers.replace_header("Authorization", "AWS4-HMAC-SHA256 Credential=fake")
    assert_error(
        send(request),
        "IncompleteSignatureException",
        "Authorization header requires 'Signature' parameter. Authorization header requires "
        "'SignedHeaders' parameter. Authorization=AWS4-HMAC-SHA256 Credential=fake",
    )
    del request.headers["X-Amz-Date"]
    message = assert_error(send(request), "IncompleteSignatureException")
    assert (
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        in message
    )


def test_a_credential_of_the_wrong_shape(server):
    request = signed(server)
    authorization = request.headers["Authorization"]
    short = re.sub(
        r"Credential=[^,]+", f"Credential={ACCESS_KEY_ID}/20200101/{REGION}", authorization
    )
    request.headers.replace_header("Authorization", short)
    assert_error(
        send(request),
        "IncompleteSignatureException",
        "Credential must have exactly 5 slash-delimited elements, e.g. "
        f"keyid/date/region/service/term, got '{ACCESS_KEY_ID}/20200101/{REGION}'",
    )


def test_a_signature_algorithm_that_is_not_sigv4(server):
    request = signed(server)
    authorization = request.headers["Authorization"].replace(
        "AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256"
    )
    request.headers.replace_header("Authorization", authorization)
    assert_error(
        send(request),
        "IncompleteSignatureException",
        "Unsupported AWS 'algorithm': 'AWS4-ECDSA-P256-SHA256'",
    )


def test_a_malformed_date(server):
    request = signed(server)
    request.headers.replace_header("X-Amz-Date", request.headers["X-Amz-Date"][:8] + "T25")
    message = assert_error(send(request), "IncompleteSignatureException")
    assert message.startswith("Date must be in ISO-8601 'basic format'.")


# -- whose credentials --------------------------------------------------------------------


def test_an_unknown_access_key(server):
    assert_error(
        call(server, access_key="AKIANOSUCHKEY0000000"),
        "UnrecognizedClientException",
        INVALID_TOKEN,
    )
    with pytest.raises(ClientError) as info:
        server.client(access_key_id="AKIANOSUCHKEY0000000").list_keys()
    assert info.value.response["Error"] == {
        "Code": "UnrecognizedClientException",
        "Message": INVALID_TOKEN,
    }


def test_a_wrong_secret(server):
    assert_error(call(server, secret="not-the-secret"), "InvalidSignatureException", BAD_SIGNATURE)
    with pytest.raises(ClientError) as info:
        server.client(secret_access_key=SECRET_ACCESS_KEY + "x").list_keys()
    assert info.value.response["Error"]["Code"] == "InvalidSignatureException"
    # A failure is not remembered against the right secret.
    assert_ok(call(server))


def test_a_session_token_this_server_did_not_issue(server):
    request = signed(server, headers={"X-Amz-Security-Token": "FQoGZXIvYXdzEJr"})
    assert_error(send(request), "UnrecognizedClientException", INVALID_TOKEN)


def test_each_account_signs_with_its_own_secret(server, other_account):
    assert_ok(
        call(
            server, access_key=other_account["AccessKeyId"], secret=other_account["SecretAccessKey"]
        )
    )
    assert_error(
        call(server, access_key=other_account["AccessKeyId"], secret=SECRET_ACCESS_KEY),
        "InvalidSignatureException",
        BAD_SIGNATURE,
    )
    assert_error(
        call(server, access_key=ACCESS_KEY_ID, secret=other_account["SecretAccessKey"]),
        "InvalidSignatureException",
        BAD_SIGNATURE,
    )


# -- tampering ----------------------------------------------------------------------------


def test_a_body_changed_after_signing(server):
    request = signed(server, "GenerateRandom", b'{"NumberOfBytes": 16}')
    assert_error(
        send(request, b'{"NumberOfBytes": 17}'), "InvalidSignatureException", BAD_SIGNATURE
    )
    assert_error(
        send(request, b'{"NumberOfBytes": 16} '), "InvalidSignatureException", BAD_SIGNATURE
    )
    assert_error(send(request, b""), "InvalidSignatureException", BAD_SIGNATURE)
    assert_ok(send(request))


def test_a_signed_header_changed_after_signing(server):
    request = signed(server, "DescribeKey", b'{"KeyId": "alias/x"}')
    request.headers.replace_header("X-Amz-Target", "TrentService.DisableKey")
    assert_error(send(request), "InvalidSignatureException", BAD_SIGNATURE)

    request = signed(server)
    request.headers.replace_header("Content-Type", "application/x-amz-json-1.0")
    assert_error(send(request), "InvalidSignatureException", BAD_SIGNATURE)

    request = signed(server)
    moment = dt.datetime.strptime(request.headers["X-Amz-Date"], AMZ) + dt.timedelta(seconds=1)
    request.headers.replace_header("X-Amz-Date", moment.strftime(AMZ))
    assert_error(send(request), "InvalidSignatureException", BAD_SIGNATURE)

    request = signed(server)
    request.headers["Host"] = f"localhost:{server.port}"
    assert_error(send(request), "InvalidSignatureException", BAD_SIGNATURE)


def test_a_signed_header_removed_after_signing(server):
    request = signed(server)
    del request.headers["Content-Type"]
    assert_error(send(request), "InvalidSignatureException", BAD_SIGNATURE)


def test_a_query_string_added_after_signing(server):
    request = signed(server)
    prepared = request.prepare()
    response = requests.post(
        prepared.url + "?Action=x", headers=dict(prepared.headers), data=prepared.body, timeout=10
    )
    assert_error(response, "InvalidSignatureException", BAD_SIGNATURE)


def test_a_signature_altered(server):
    request = signed(server)
    authorization = request.headers["Authorization"]
    signature = authorization.rsplit("Signature=", 1)[1]
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    request.headers.replace_header("Authorization", authorization.replace(signature, flipped))
    assert_error(send(request), "InvalidSignatureException", BAD_SIGNATURE)
    request.headers.replace_header(
        "Authorization", authorization.replace(signature, signature.upper()[:10])
    )
    assert_error(send(request), "InvalidSignatureException", BAD_SIGNATURE)


def test_host_and_target_must_be_signed(server):
    for header, message in (
        ("host", "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."),
        ("x-amz-target", "'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization."),
    ):
        request = signed(server)
        authorization = request.headers["Authorization"]
        names = re.search(r"SignedHeaders=([^,]+)", authorization).group(1)
        fewer = ";".join(name for name in names.split(";") if name != header)
        request.headers.replace_header("Authorization", authorization.replace(names, fewer))
        assert_error(send(request), "InvalidSignatureException", message)


# -- time ---------------------------------------------------------------------------------


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _parse(stamp: str) -> dt.datetime:
    return dt.datetime.strptime(stamp, AMZ).replace(tzinfo=dt.UTC)


def _assert_expired(message: str, signed_at: dt.datetime, server_now: dt.datetime) -> None:
    match = re.fullmatch(
        r"Signature expired: (\d{8}T\d{6}Z) is now earlier than (\d{8}T\d{6}Z) "
        r"\((\d{8}T\d{6}Z) - 5 min\.\)",
        message,
    )
    assert match, message
    assert match.group(1) == signed_at.strftime(AMZ)
    assert _parse(match.group(3)) - _parse(match.group(2)) == dt.timedelta(minutes=5)
    assert abs(_parse(match.group(3)) - server_now) < dt.timedelta(seconds=30)


def _assert_not_yet_current(message: str, signed_at: dt.datetime, server_now: dt.datetime) -> None:
    match = re.fullmatch(
        r"Signature not yet current: (\d{8}T\d{6}Z) is still later than (\d{8}T\d{6}Z) "
        r"\((\d{8}T\d{6}Z) \+ 5 min\.\)",
        message,
    )
    assert match, message
    assert match.group(1) == signed_at.strftime(AMZ)
    assert _parse(match.group(2)) - _parse(match.group(3)) == dt.timedelta(minutes=5)
    assert abs(_parse(match.group(3)) - server_now) < dt.timedelta(seconds=30)


def test_a_signature_ten_minutes_old_has_expired(server):
    at = _now() - dt.timedelta(minutes=10)
    message = assert_error(call(server, at=at), "InvalidSignatureException")
    _assert_expired(message, at, _now())


def test_a_signature_ten_minutes_ahead_is_not_yet_current(server):
    at = _now() + dt.timedelta(minutes=10)
    message = assert_error(call(server, at=at), "InvalidSignatureException")
    _assert_not_yet_current(message, at, _now())


def test_four_minutes_of_skew_either_way_is_tolerated(server):
    assert_ok(call(server, at=_now() - dt.timedelta(minutes=4)))
    assert_ok(call(server, at=_now() + dt.timedelta(minutes=4)))


def test_the_skew_is_measured_by_the_servers_clock(server):
    try:
        server.move_clock(600)
        with pytest.raises(ClientError) as info:
            server.client().list_keys()
        error = info.value.response["Error"]
        assert error["Code"] == "InvalidSignatureException"
        assert error["Message"].startswith("Signature expired: ")
        # Signed at the server's own time, the request is current.
        assert_ok(call(server, at=_now() + dt.timedelta(seconds=600)))

        server.move_clock(-600)
        with pytest.raises(ClientError) as info:
            server.client().list_keys()
        assert info.value.response["Error"]["Message"].startswith("Signature not yet current: ")
        at = _now()
        message = assert_error(call(server, at=at), "InvalidSignatureException")
        _assert_not_yet_current(message, at, _now() - dt.timedelta(seconds=600))

        server.move_clock(240)
        assert "Keys" in server.client().list_keys()
    finally:
        server.move_clock(0)
    assert "Keys" in server.client().list_keys()


def test_a_date_header_too_old(server):
    request = signed(server, headers={"Date": "placeholder"}, at=_now() - dt.timedelta(minutes=10))
    assert "Signature expired: " in assert_error(send(request), "InvalidSignatureException")


# -- credential scope ---------------------------------------------------------------------


def test_a_credential_scoped_to_another_service(server):
    assert_error(
        call(server, service="sts"),
        "InvalidSignatureException",
        "Credential should be scoped to correct service: 'kms'. ",
    )


def test_a_credential_scoped_with_another_terminator_or_date(server):
    request = signed(server)
    authorization = request.headers["Authorization"]
    request.headers.replace_header(
        "Authorization", authorization.replace("/aws4_request", "/aws5_request")
    )
    assert_error(
        send(request),
        "InvalidSignatureException",
        "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'. ",
    )
    stamp = request.headers["X-Amz-Date"]
    scope_date = (_parse(stamp) - dt.timedelta(days=1)).strftime("%Y%m%d")
    request.headers.replace_header(
        "Authorization", authorization.replace(f"/{stamp[:8]}/", f"/{scope_date}/")
    )
    assert_error(
        send(request),
        "InvalidSignatureException",
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
        f"HTTP: '{scope_date}' != '{stamp[:8]}', from '{stamp}'. ",
    )


@pytest.mark.parametrize("region", ["US-EAST-1", "a" * 33, "us_east_1", "-us-east-1"])
def test_a_region_not_shaped_like_a_region(server, region):
    assert_error(
        call(server, region=region),
        "InvalidSignatureException",
        "Credential should be scoped to a valid region. ",
    )


def test_any_well_formed_region_is_served_by_default(server):
    for region in ("eu-west-1", "us-gov-west-1", "local", "a" * 32):
        assert "Keys" in assert_ok(call(server, region=region))


@pytest.fixture
def us_east_1_server(tmp_path: Path, backend: str, database_url_factory):  # noqa: ANN001, ANN201
    server = OpenKmsServer(
        tmp_path / "data", database_url_factory(backend), extra_args=["--region", "us-east-1"]
    )
    yield server.start()
    server.stop()


def test_a_server_limited_to_one_region(us_east_1_server):
    server = us_east_1_server
    assert_ok(call(server, region="us-east-1"))
    assert_error(
        call(server, region="eu-west-1"),
        "InvalidSignatureException",
        "Credential should be scoped to a valid region. ",
    )
    assert_error(
        call(server, region="eu-west-1", service="sts"),
        "InvalidSignatureException",
        "Credential should be scoped to a valid region. "
        "Credential should be scoped to correct service: 'kms'. ",
    )
    with pytest.raises(ClientError) as info:
        server.client(region="eu-west-1").create_key()
    assert (
        info.value.response["Error"]["Message"] == "Credential should be scoped to a valid region. "
    )
    with pytest.raises(ClientError) as info:
        server.client("sts", region="eu-west-1").get_caller_identity()
    assert info.value.response["Error"] == {
        "Type": "Sender",
        "Code": "SignatureDoesNotMatch",
        "Message": "Credential should be scoped to a valid region. ",
    }
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert server.client("sts").get_caller_identity()["Account"] == ACCOUNT_ID


# -- STS GetCallerIdentity ----------------------------------------------------------------


def sts_request(
    server,  # noqa: ANN001
    body: bytes = b"Action=GetCallerIdentity&Version=2011-06-15",
    *,
    access_key: str = ACCESS_KEY_ID,
    secret: str = SECRET_ACCESS_KEY,
    service: str = "sts",
    at: dt.datetime | None = None,
) -> requests.Response:
    request = AWSRequest(
        method="POST",
        url=f"{server.endpoint}/",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    if at is None:
        SigV4Auth(Credentials(access_key, secret), service, REGION).add_auth(request)
    else:
        SigV4AuthAt(Credentials(access_key, secret), service, REGION, at).add_auth(request)
    return send(request)


def sts_error(
    response: requests.Response, status: int, code: str, message: str | None = None
) -> str:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("text/xml")
    request_id = response.headers["x-amzn-RequestId"]
    root = ET.fromstring(response.text)
    assert root.tag.endswith("ErrorResponse")
    assert root.findtext("{*}Error/{*}Code") == code
    assert root.findtext("{*}Error/{*}Type") == "Sender"
    assert root.findtext("{*}RequestId") == request_id
    text = root.findtext("{*}Error/{*}Message")
    if message is not None:
        assert text == message
    return text


def test_get_caller_identity(server, other_account):
    identity = server.client("sts").get_caller_identity()
    assert (identity["Account"], identity["Arn"], identity["UserId"]) == (
        ACCOUNT_ID,
        f"arn:aws:iam::{ACCOUNT_ID}:root",
        ACCOUNT_ID,
    )
    theirs = server.client_for(other_account, "sts").get_caller_identity()
    assert theirs["Account"] == other_account["AccountId"]
    assert theirs["Arn"] == other_account["Arn"] == f"arn:aws:iam::{theirs['Account']}:root"


def test_get_caller_identity_on_the_wire(server):
    response = sts_request(server)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/xml")
    request_id = response.headers["x-amzn-RequestId"]
    assert response.text == (
        '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">\n'
        "  <GetCallerIdentityResult>\n"
        f"    <Arn>arn:aws:iam::{ACCOUNT_ID}:root</Arn>\n"
        f"    <UserId>{ACCOUNT_ID}</UserId>\n"
        f"    <Account>{ACCOUNT_ID}</Account>\n"
        "  </GetCallerIdentityResult>\n"
        "  <ResponseMetadata>\n"
        f"    <RequestId>{request_id}</RequestId>\n"
        "  </ResponseMetadata>\n"
        "</GetCallerIdentityResponse>\n"
    )


def test_get_caller_identity_with_bad_credentials(server):
    with pytest.raises(ClientError) as info:
        server.client("sts", access_key_id="AKIANOSUCHKEY0000000").get_caller_identity()
    assert info.value.response["Error"]["Code"] == "InvalidClientTokenId"
    assert info.value.response["Error"]["Message"] == INVALID_TOKEN
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403

    with pytest.raises(ClientError) as info:
        server.client("sts", secret_access_key="wrong").get_caller_identity()
    assert info.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert info.value.response["Error"]["Message"] == BAD_SIGNATURE

    sts_error(sts_request(server, secret="wrong"), 403, "SignatureDoesNotMatch", BAD_SIGNATURE)
    sts_error(
        sts_request(server, service="kms"),
        403,
        "SignatureDoesNotMatch",
        "Credential should be scoped to correct service: 'sts'. ",
    )
    at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    message = sts_error(sts_request(server, at=at), 403, "SignatureDoesNotMatch")
    assert message.startswith(f"Signature expired: {at.strftime(AMZ)} is now earlier than ")
    unsigned = requests.post(
        f"{server.endpoint}/",
        data=b"Action=GetCallerIdentity&Version=2011-06-15",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    sts_error(unsigned, 403, "MissingAuthenticationToken", MISSING)


def test_sts_actions_not_served(server):
    response = sts_request(server, b"Action=GetFederationToken&Version=2011-06-15")
    sts_error(
        response,
        400,
        "InvalidAction",
        "Could not find operation GetFederationToken for version 2011-06-15",
    )
    assert "http://webservices.amazon.com/AWSFault/2005-15-09" in response.text
    sts_error(
        sts_request(server, b"Action=GetCallerIdentity"),
        400,
        "InvalidAction",
        "Could not find operation GetCallerIdentity for version NO_VERSION_SPECIFIED",
    )


def test_an_sts_request_cannot_be_tampered_with(server):
    request = AWSRequest(
        method="POST",
        url=f"{server.endpoint}/",
        data=b"Action=GetCallerIdentity&Version=2011-06-15",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    SigV4Auth(Credentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY), "sts", REGION).add_auth(request)
    response = send(request, b"Action=GetCallerIdentity&Version=2011-06-15&X=1")
    sts_error(response, 403, "SignatureDoesNotMatch", BAD_SIGNATURE)


def test_an_sts_action_cannot_forge_log_lines(server):
    marker = f"FORGED-{uuid.uuid4().hex}"
    response = sts_request(server, f"Action=X%0A{marker}%20INFO&Version=2011-06-15".encode())
    sts_error(response, 400, "InvalidAction")
    request_id = response.headers["x-amzn-RequestId"]
    lines = [line for line in server.wait_for_log(request_id).splitlines() if request_id in line]
    assert len(lines) == 1
    assert marker not in server.log()
