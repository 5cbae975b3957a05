"""No request, however malformed, makes the server answer 5xx or leak a traceback."""

from __future__ import annotations

import json

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openkms.model import load_kms_model
from openkms.ops import OPERATIONS
from tests.support import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY

MODEL = load_kms_model()
CREDENTIALS = Credentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY)
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


def _member_values(shape_name: str, depth: int = 0) -> st.SearchStrategy:
    """Values that are mostly of the member's type, sometimes not, sometimes out of range."""
    shape = MODEL.shape(shape_name)
    kind = shape["type"]
    wrong = json_values
    if kind == "string":
        choices = [st.text(max_size=300)]
        if "enum" in shape:
            choices.append(st.sampled_from(shape["enum"]))
        right = st.one_of(*choices)
    elif kind == "blob":
        right = st.binary(max_size=300).map(lambda b: __import__("base64").b64encode(b).decode())
        right = right | st.text(max_size=20)
    elif kind == "integer":
        right = st.integers(min_value=-5, max_value=5000)
    elif kind == "boolean":
        right = st.booleans()
    elif kind == "list" and depth < 3:
        right = st.lists(_member_values(shape["member"]["shape"], depth + 1), max_size=4)
    elif kind == "map" and depth < 3:
        right = st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=4)
    elif kind == "structure" and depth < 3:
        right = _structures(shape_name, depth + 1)
    else:
        right = wrong
    return st.one_of(right, right, right, wrong)


def _structures(shape_name: str, depth: int = 0) -> st.SearchStrategy:
    members = MODEL.shape(shape_name).get("members", {})
    return st.fixed_dictionaries(
        {}, optional={name: _member_values(m["shape"], depth) for name, m in members.items()}
    )


def _signed_post(endpoint: str, target: str, body: bytes) -> requests.Response:
    request = AWSRequest(
        method="POST",
        url=endpoint + "/",
        data=body,
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target},
    )
    SigV4Auth(CREDENTIALS, "kms", REGION).add_auth(request)
    prepared = request.prepare()
    return requests.post(prepared.url, data=body, headers=dict(prepared.headers), timeout=30)


def _assert_aws_shaped(response: requests.Response) -> None:
    assert response.status_code < 500, response.text
    assert response.headers.get("x-amzn-RequestId")
    assert "Traceback" not in response.text
    if response.status_code != 200:
        error = response.json()
        assert isinstance(error["__type"], str) and error["__type"]


@FUZZ
@given(data=st.data())
def test_typed_random_requests_get_answers_not_crashes(server, data):
    operation = data.draw(st.sampled_from(sorted(OPERATIONS)))
    shape = MODEL.input_shape_name(operation)
    body = data.draw(_structures(shape)) if shape else {}
    response = _signed_post(server.endpoint, f"TrentService.{operation}", json.dumps(body).encode())
    _assert_aws_shaped(response)


@FUZZ
@given(
    operation=st.sampled_from(sorted(MODEL.operations))
    | st.text(
        st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f"), max_size=30
    ),
    body=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()),
)
def test_raw_random_bodies_get_answers_not_crashes(server, operation, body):
    _assert_aws_shaped(_signed_post(server.endpoint, f"TrentService.{operation}", body))


def test_the_server_is_still_healthy_after_fuzzing(server):
    assert requests.get(f"{server.endpoint}/healthz", timeout=5).status_code == 200
