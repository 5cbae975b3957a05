"""The envelope every API request goes through, probed as an attacker would: only POST runs an
operation, one header of each kind that decides what runs, a request id on every answer, and
a client that hangs up mid-body is not a server fault."""

from __future__ import annotations

import http.client
import json
import socket
import time
import uuid

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.support import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, OpenKmsServer

JSON_11 = "application/x-amz-json-1.1"


def _signed(
    server: OpenKmsServer, method: str, operation: str, body: bytes, service: str = "kms"
) -> dict[str, str]:
    headers = {"Content-Type": JSON_11, "X-Amz-Target": f"TrentService.{operation}"}
    request = AWSRequest(method=method, url=f"{server.endpoint}/", data=body, headers=headers)
    SigV4Auth(Credentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY), service, REGION).add_auth(request)
    return dict(request.prepare().headers)


def _key_count(server: OpenKmsServer) -> int:
    kms = server.client()
    return sum(len(page["Keys"]) for page in kms.get_paginator("list_keys").paginate())


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE", "PATCH"])
def test_only_post_runs_an_operation(server, method):
    before = _key_count(server)
    body = b"{}"
    headers = _signed(server, method, "CreateKey", body)
    response = requests.request(
        method, f"{server.endpoint}/", headers=headers, data=body, timeout=10
    )
    assert response.status_code in (404, 405)
    assert response.headers["x-amzn-RequestId"]
    if method != "HEAD":
        assert response.json() == {"__type": "UnknownOperationException"}
    assert _key_count(server) == before, f"a signed {method} CreateKey made a key"


def _raw_post(
    server: OpenKmsServer, headers: list[tuple[str, str]], body: bytes
) -> tuple[int, dict, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.putrequest("POST", "/", skip_accept_encoding=True)
        for name, value in headers:
            connection.putheader(name, value)
        connection.endheaders(body)
        response = connection.getresponse()
        headers = {k.lower(): v for k, v in response.getheaders()}
        return response.status, headers, response.read()
    finally:
        connection.close()


def _with_duplicate(headers: dict[str, str], name: str, extra: str) -> list[tuple[str, str]]:
    pairs = list(headers.items())
    index = next(i for i, (k, _) in enumerate(pairs) if k.lower() == name.lower())
    return pairs[: index + 1] + [(name, extra)] + pairs[index + 1 :]


def test_two_authorization_headers_are_refused(server):
    before = _key_count(server)
    body = b"{}"
    headers = _signed(server, "POST", "CreateKey", body)
    pairs = _with_duplicate(headers, "Authorization", "AWS4-HMAC-SHA256 Credential=x")
    status, response_headers, data = _raw_post(server, pairs, body)
    assert status == 400
    assert json.loads(data)["__type"] == "IncompleteSignatureException"
    assert response_headers["x-amzn-requestid"]
    assert _key_count(server) == before


def test_two_targets_are_refused_not_first_one_wins(server):
    before = _key_count(server)
    body = b"{}"
    headers = _signed(server, "POST", "ListKeys", body)
    pairs = _with_duplicate(headers, "X-Amz-Target", "TrentService.CreateKey")
    status, _, data = _raw_post(server, pairs, body)
    assert status == 400
    assert json.loads(data)["__type"] == "UnknownOperationException"
    assert _key_count(server) == before


def test_a_client_that_hangs_up_mid_body_is_not_a_server_error(server):
    log_before = len(server.log())
    body = json.dumps({"Description": "x" * 1000}).encode()
    headers = _signed(server, "POST", "CreateKey", body)
    headers["Content-Length"] = str(len(body))
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        head = f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        sock.sendall(head.encode() + b"\r\n" + body[:100])
        time.sleep(0.2)  # the server is reading the body when the client goes
    # The server keeps answering, and logged no error for the client's hang-up.
    assert server.client().list_keys(Limit=1)["Keys"] is not None
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and "ClientDisconnected" not in server.log()[log_before:]:
        time.sleep(0.05)
    written = server.log()[log_before:]
    assert "ClientDisconnected" in written
    assert "ERROR" not in written and "Traceback" not in written


def test_an_oversized_sts_request_gets_a_request_id(server):
    body = b"Action=GetCallerIdentity&Version=2011-06-15&Pad=" + b"x" * (1024 * 1024 + 1)
    response = requests.post(
        f"{server.endpoint}/",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=30,
    )
    assert response.status_code == 413
    assert response.headers["x-amzn-RequestId"]
    assert "<Code>RequestEntityTooLarge</Code>" in response.text
    assert response.headers["x-amzn-RequestId"] in response.text


def test_an_oversized_kms_request_gets_a_request_id(server):
    body = b"{" + b" " * (1024 * 1024 + 1) + b"}"
    headers = _signed(server, "POST", "ListKeys", b"{}")
    response = requests.post(f"{server.endpoint}/", data=body, headers=headers, timeout=30)
    assert response.status_code == 400
    assert response.json() == {
        "__type": "SerializationException",
        "message": "The request body is too large.",
    }
    assert response.headers["x-amzn-RequestId"]


def test_every_request_gets_one_log_line_with_its_request_id(server):
    kms = server.client()
    marker = f"alias/{uuid.uuid4().hex}"
    response = kms.list_aliases()
    request_id = response["ResponseMetadata"]["RequestId"]
    try:
        kms.describe_key(KeyId=marker)
    except kms.exceptions.NotFoundException as error:
        failed_id = error.response["ResponseMetadata"]["RequestId"]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and failed_id not in server.log():
        time.sleep(0.05)
    lines = server.log().splitlines()
    assert " op=ListAliases key=- status=200 error=OK latency_ms=" in next(
        line for line in lines if request_id in line
    )
    failed = [line for line in lines if failed_id in line]
    assert len(failed) == 1
    assert " op=DescribeKey key=- status=400 error=NotFoundException latency_ms=" in failed[0]
    assert marker not in server.log()
