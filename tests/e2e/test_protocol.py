"""The AWS JSON 1.1 wire protocol, spoken with raw (SigV4-signed) HTTP requests."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openkms.model import load_kms_model
from openkms.ops import OPERATIONS
from tests.support import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY

JSON_11 = "application/x-amz-json-1.1"
MODEL = load_kms_model()


def send(
    server,  # noqa: ANN001
    operation: str | None,
    body: Any = None,
    *,
    target: str | None = None,
    headers: dict[str, str] | None = None,
    credentials: tuple[str, str] | None = (ACCESS_KEY_ID, SECRET_ACCESS_KEY),
) -> requests.Response:
    """POST one request, signed as botocore signs (unless ``credentials`` is None).

    ``body`` is sent as is when it is bytes or str, else as its JSON."""
    if isinstance(body, bytes):
        data = body
    elif isinstance(body, str):
        data = body.encode()
    else:
        data = json.dumps({} if body is None else body).encode()
    all_headers = {"Content-Type": JSON_11, **(headers or {})}
    if target is None and operation is not None:
        target = f"TrentService.{operation}"
    if target is not None:
        all_headers["X-Amz-Target"] = target
    request = AWSRequest(method="POST", url=f"{server.endpoint}/", data=data, headers=all_headers)
    if credentials is not None:
        SigV4Auth(Credentials(*credentials), "kms", REGION).add_auth(request)
    prepared = request.prepare()
    return requests.post(
        prepared.url, headers=dict(prepared.headers), data=prepared.body, timeout=30
    )


def assert_error(
    response: requests.Response, code: str, message: str | None = None, status: int = 400
) -> dict:
    """An AWS-shaped error: the status, the JSON 1.1 content type, exactly {__type, message}
    (message only when there is one) and a request id."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == JSON_11
    body = response.json()
    assert body["__type"] == code, body
    assert set(body) <= {"__type", "message"}
    if message is not None:
        if message == "":
            assert "message" not in body
        else:
            assert body["message"] == message
    assert uuid.UUID(response.headers["x-amzn-RequestId"])
    return body


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def key_id(server) -> str:
    response = send(server, "CreateKey", {})
    assert response.status_code == 200, response.text
    return response.json()["KeyMetadata"]["KeyId"]


# -- success ------------------------------------------------------------------------------


def test_a_successful_answer(server, key_id):
    response = send(server, "Encrypt", {"KeyId": key_id, "Plaintext": b64(b"hello")})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == JSON_11
    assert uuid.UUID(response.headers["x-amzn-RequestId"])
    body = response.json()
    assert set(body) == {"CiphertextBlob", "KeyId", "EncryptionAlgorithm"}
    blob = base64.b64decode(body["CiphertextBlob"], validate=True)
    decrypted = send(server, "Decrypt", {"CiphertextBlob": b64(blob)}).json()
    assert base64.b64decode(decrypted["Plaintext"]) == b"hello"


def test_timestamps_are_epoch_seconds(server, key_id):
    metadata = send(server, "DescribeKey", {"KeyId": key_id}).json()["KeyMetadata"]
    assert isinstance(metadata["CreationDate"], int | float)
    assert metadata["CreationDate"] > 1_600_000_000


def test_request_ids_are_unique(server, key_id):
    ids = {
        send(server, "DescribeKey", {"KeyId": key_id}).headers["x-amzn-RequestId"] for _ in range(5)
    }
    ids |= {send(server, "NoSuchOperation").headers["x-amzn-RequestId"] for _ in range(3)}
    assert len(ids) == 8


def test_an_empty_body_is_an_empty_request(server):
    response = send(server, "ListKeys", b"")
    assert response.status_code == 200, response.text
    assert "Keys" in response.json()


def test_null_members_are_absent_and_unknown_members_ignored(server, key_id):
    response = send(
        server,
        "Encrypt",
        {
            "KeyId": key_id,
            "Plaintext": b64(b"p"),
            "EncryptionContext": None,
            "GrantTokens": None,
            "DryRun": None,
            "SomethingNew": {"nested": [1, 2, 3]},
        },
    )
    assert response.status_code == 200, response.text
    assert_error(
        send(server, "Encrypt", {"KeyId": None, "Plaintext": b64(b"p")}),
        "ValidationException",
        "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: "
        "Member must not be null",
    )


# -- operations ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "TrentService.NoSuchOperation",
        "TrentService.encrypt",
        "TrentService.",
        "TrentService",
        "Trentservice.Encrypt",
        "DynamoDB_20120810.ListTables",
        ".Encrypt",
        "TrentService.Encrypt.Extra",
        "TrentService.Encrypt\tX",
    ],
)
def test_unknown_operations(server, target):
    response = send(server, None, {}, target=target)
    body = assert_error(response, "UnknownOperationException", "")
    assert body == {"__type": "UnknownOperationException"}


def test_a_request_without_a_target_is_an_unknown_operation(server):
    assert_error(send(server, None, {}), "UnknownOperationException", "")


UNBUILT = sorted(set(MODEL.operations) - set(OPERATIONS))


def test_operations_in_the_model_but_not_built_are_unsupported(server):
    assert UNBUILT, "every operation is built: choose another way to test this"
    for operation in UNBUILT:
        body = assert_error(send(server, operation, {}), "UnsupportedOperationException")
        assert operation in body["message"]


@pytest.mark.parametrize("operation", ["ReplicateKey", "UpdatePrimaryRegion"])
def test_named_unbuilt_operations(server, operation):
    if operation in OPERATIONS:
        pytest.skip(f"{operation} is built now")
    assert_error(
        send(server, operation, {"KeyId": "x"}),
        "UnsupportedOperationException",
        f"{operation} is not supported by this openkms server yet.",
    )


# -- serialization ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b'{"KeyId":',
        b'{"KeyId": "x",}',
        b"null",
        b"1",
        b'"a string"',
        b"true",
        b"\xff\xfe\x00garbage",
        b'{"KeyId": "\\ud800"}',
        b"[" * 5000 + b"]" * 5000,
        b'{"a":' * 3000 + b"1" + b"}" * 3000,
        b"NaN",
    ],
    ids=lambda body: repr(body[:20]),
)
def test_bodies_that_are_not_a_json_object(server, body):
    assert_error(send(server, "DescribeKey", body), "SerializationException", "")


def test_a_json_list_body(server):
    assert_error(
        send(server, "DescribeKey", b"[]"),
        "SerializationException",
        "Start of list found where not expected",
    )


@pytest.mark.parametrize(
    ("operation", "body", "message"),
    [
        (
            "GenerateRandom",
            {"NumberOfBytes": "5"},
            "STRING_VALUE can not be converted to an Integer",
        ),
        (
            "GenerateRandom",
            {"NumberOfBytes": True},
            "TRUE_VALUE can not be converted to an Integer",
        ),
        (
            "GenerateRandom",
            {"NumberOfBytes": False},
            "FALSE_VALUE can not be converted to an Integer",
        ),
        ("GenerateRandom", {"NumberOfBytes": [1]}, "Start of list found where not expected"),
        (
            "GenerateRandom",
            {"NumberOfBytes": {"n": 1}},
            "Start of structure or map found where not expected.",
        ),
        ("DescribeKey", {"KeyId": 5}, "NUMBER_VALUE can not be converted to a String"),
        ("DescribeKey", {"KeyId": 5.5}, "NUMBER_VALUE can not be converted to a String"),
        ("DescribeKey", {"KeyId": True}, "TRUE_VALUE can not be converted to a String"),
        ("DescribeKey", {"KeyId": ["k"]}, "Start of list found where not expected"),
        ("DescribeKey", {"KeyId": {}}, "Start of structure or map found where not expected."),
        (
            "Encrypt",
            {"KeyId": "k", "Plaintext": "AA==", "GrantTokens": "t"},
            "Expected list or null",
        ),
        (
            "Encrypt",
            {"KeyId": "k", "Plaintext": "AA==", "GrantTokens": [1]},
            "NUMBER_VALUE can not be converted to a String",
        ),
        (
            "Encrypt",
            {"KeyId": "k", "Plaintext": "AA==", "DryRun": "yes"},
            "STRING_VALUE can not be converted to an Boolean",
        ),
        (
            "Encrypt",
            {"KeyId": "k", "Plaintext": "AA==", "EncryptionContext": "a=b"},
            "Expected map or null",
        ),
        (
            "Encrypt",
            {"KeyId": "k", "Plaintext": "AA==", "EncryptionContext": {"a": 1}},
            "NUMBER_VALUE can not be converted to a String",
        ),
        ("Decrypt", {"CiphertextBlob": "AA==", "Recipient": "x"}, "Expected null"),
        ("Decrypt", {"CiphertextBlob": 12}, "NUMBER_VALUE can not be converted to a Blob"),
    ],
)
def test_values_of_the_wrong_json_type(server, operation, body, message):
    assert_error(send(server, operation, body), "SerializationException", message)


@pytest.mark.parametrize("number", [2**31, -(2**31) - 1, 2**63, 10**30, 1e300])
def test_integers_beyond_32_bits_do_not_parse(server, number):
    assert_error(
        send(server, "GenerateRandom", b'{"NumberOfBytes": %s}' % str(number).encode()),
        "SerializationException",
        "",
    )


@pytest.mark.parametrize("value", ["not base64!", "Y", "YQ=", "YQ==YQ==", "Y Q=="])
def test_blobs_that_are_not_base64(server, key_id, value):
    body = assert_error(
        send(server, "Encrypt", {"KeyId": key_id, "Plaintext": value}), "SerializationException"
    )
    assert value not in body.get("message", "")


# -- validation ---------------------------------------------------------------------------


def _violations(body: dict) -> tuple[str, set[str]]:
    head, _, rest = body["message"].partition(": ")
    return head, set(rest.split("; "))


def test_every_violation_is_reported_at_once(server):
    body = assert_error(
        send(server, "Encrypt", {"KeyId": "", "Plaintext": ""}), "ValidationException"
    )
    assert _violations(body) == (
        "2 validation errors detected",
        {
            "Value '' at 'keyId' failed to satisfy constraint: "
            "Member must have length greater than or equal to 1",
            "Value at 'plaintext' failed to satisfy constraint: "
            "Member must have length greater than or equal to 1",
        },
    )
    body = assert_error(send(server, "Encrypt", {}), "ValidationException")
    assert _violations(body) == (
        "2 validation errors detected",
        {
            "Value null at 'keyId' failed to satisfy constraint: Member must not be null",
            "Value at 'plaintext' failed to satisfy constraint: Member must not be null",
        },
    )


def test_violations_in_nested_members_name_their_path(server):
    body = assert_error(
        send(
            server,
            "CreateKey",
            {
                "Tags": [{"TagKey": "ok", "TagValue": "v"}, {"TagKey": "", "TagValue": "x" * 257}],
                "KeyUsage": "ENCRYPT_ONLY",
            },
        ),
        "ValidationException",
    )
    head, violations = _violations(body)
    assert head == "3 validation errors detected"
    assert violations == {
        "Value '' at 'tags.2.member.tagKey' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1",
        f"Value '{'x' * 257}' at 'tags.2.member.tagValue' failed to satisfy constraint: "
        "Member must have length less than or equal to 256",
        "Value 'ENCRYPT_ONLY' at 'keyUsage' failed to satisfy constraint: Member must satisfy "
        f"enum value set: [{', '.join(MODEL.shape('KeyUsageType')['enum'])}]",
    }


def test_patterns_are_checked(server, key_id):
    body = assert_error(
        send(server, "CreateAlias", {"AliasName": "alias/has space", "TargetKeyId": key_id}),
        "ValidationException",
    )
    assert body["message"] == (
        "1 validation error detected: Value 'alias/has space' at 'aliasName' failed to satisfy "
        "constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$"
    )


def test_secret_values_are_never_echoed(server, key_id):
    secret = b"TOPSECRET" * 500
    for body in (
        {"KeyId": key_id, "Plaintext": b64(secret)},
        {"KeyId": "", "Plaintext": b64(secret)},
    ):
        response = send(server, "Encrypt", body)
        assert_error(response, "ValidationException")
        assert "Value at 'plaintext'" in response.text
        assert b64(secret)[:40] not in response.text
        assert "TOPSECRET" not in response.text


# -- robustness ---------------------------------------------------------------------------


def test_a_body_over_the_limit_is_refused(server):
    response = send(server, "Encrypt", b'{"KeyId": "' + b"k" * (2 * 1024 * 1024) + b'"}')
    assert 400 <= response.status_code < 500
    assert response.json()["__type"] == "SerializationException"


def test_other_paths_and_methods_are_not_server_errors(server):
    for method, path in (("PUT", "/"), ("DELETE", "/"), ("POST", "/no/such/path"), ("GET", "/x")):
        response = requests.request(method, f"{server.endpoint}{path}", timeout=10)
        assert 400 <= response.status_code < 500, (method, path, response.status_code)
        assert "Traceback" not in response.text


def test_nul_characters_in_stored_strings_are_not_server_errors(server):
    """AWS accepts any Unicode in a description or tag; so must every storage backend."""
    response = send(
        server,
        "CreateKey",
        {"Description": "a\x00b", "Tags": [{"TagKey": "k", "TagValue": "\x00"}]},
    )
    assert response.status_code < 500, response.text
    if response.status_code == 200:
        key_id = response.json()["KeyMetadata"]["KeyId"]
        described = send(server, "DescribeKey", {"KeyId": key_id}).json()["KeyMetadata"]
        assert described["Description"] == "a\x00b"


def test_errors_before_and_after_authentication_carry_request_ids(server, key_id):
    for response in (
        send(server, "Encrypt", {}, credentials=None),
        send(server, "Encrypt", {}, credentials=("NOSUCHKEY", "x")),
        send(server, "Encrypt", b"{"),
        send(server, "Encrypt", {"KeyId": str(uuid.uuid4()), "Plaintext": b64(b"p")}),
        send(server, "Decrypt", {"CiphertextBlob": b64(b"x" * 64)}),
    ):
        assert response.status_code == 400
        assert uuid.UUID(response.headers["x-amzn-RequestId"])
        assert response.headers["Content-Type"] == JSON_11


BUILT = sorted(OPERATIONS)

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**40), max_value=2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    # NUL has a test of its own (test_nul_characters_in_stored_strings_are_not_server_errors).
    | st.text(st.characters(exclude_characters="\x00"), max_size=12)
    | st.sampled_from(["", "AA==", "alias/x", "SYMMETRIC_DEFAULT", "AES_256", "alias/aws/x"]),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def _requests(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    operation = draw(st.sampled_from(BUILT))
    shape = MODEL.input_shape_name(operation)
    members = sorted(MODEL.shape(shape)["members"]) if shape else []
    chosen = (
        draw(st.lists(st.sampled_from(members), unique=True, max_size=len(members)))
        if members
        else []
    )
    body = {name: draw(_json) for name in chosen}
    if draw(st.booleans()):
        body[draw(st.text(max_size=8))] = draw(_json)
    return operation, body


@pytest.fixture(scope="module")
def fuzz_account(shared_server) -> dict[str, str]:
    """A fresh account of its own: whatever the fuzzing makes stays out of others' way."""
    return shared_server.create_account()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(request=_requests())
def test_no_body_makes_a_server_error(server, fuzz_account, request):
    operation, body = request
    response = send(
        server,
        operation,
        body,
        credentials=(fuzz_account["AccessKeyId"], fuzz_account["SecretAccessKey"]),
    )
    assert response.status_code < 500, (operation, body, response.text)
    assert "Traceback" not in response.text
    assert uuid.UUID(response.headers["x-amzn-RequestId"])
    if response.status_code != 200:
        assert_error(response, response.json()["__type"], None, response.status_code)
