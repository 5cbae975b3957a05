"""The model-driven Query codec of the IAM admin API, checked against botocore's own Query
serializer (what the SDKs send) and parser (how they read openkms's answers)."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qsl, unquote

from botocore.model import ServiceModel as BotocoreModel
from botocore.parsers import QueryParser
from botocore.serialize import QuerySerializer

from openkms.iam.admin_api import OPERATIONS
from openkms.model.service_model import load_iam_model
from openkms.protocol.query_shapes import read_input, result_xml

MODEL = load_iam_model()
BOTOCORE = BotocoreModel(MODEL._raw, "iam")  # noqa: SLF001 - the same raw model


def _sent(operation: str, params: dict) -> dict[str, str]:
    request = QuerySerializer().serialize_to_request(params, BOTOCORE.operation_model(operation))
    body = request["body"]
    if isinstance(body, dict):  # botocore keeps the form as a mapping until it is sent
        return {k: str(v) for k, v in body.items()}
    return dict(parse_qsl(body, keep_blank_values=True))


def test_every_admin_operation_is_an_iam_operation() -> None:
    assert set(OPERATIONS) <= set(MODEL.operations)


def test_what_botocore_sends_reads_back_as_its_parameters() -> None:
    params = {
        "UserName": "alice",
        "Tags": [{"Key": "team", "Value": "blue"}, {"Key": "empty", "Value": ""}],
    }
    assert read_input(MODEL, "CreateUser", _sent("CreateUser", params)) == params
    untag = {"UserName": "alice", "TagKeys": ["a", "b"]}
    assert read_input(MODEL, "UntagUser", _sent("UntagUser", untag)) == untag
    listing = {"MaxItems": 5, "Marker": "bob"}
    assert read_input(MODEL, "ListUsers", _sent("ListUsers", listing)) == listing


def test_botocore_parses_the_answers_as_written() -> None:
    created = dt.datetime(2026, 12, 2, 10, 0, tzinfo=dt.UTC)
    user = {
        "Path": "/",
        "UserName": "a&b<c>",
        "UserId": "AIDAEXAMPLE",
        "Arn": "arn:aws:iam::123456789012:user/a",
        "CreateDate": created,
        "Tags": [{"Key": "k", "Value": "v"}],
    }
    parsed = _parse("GetUser", {"User": user})
    assert parsed["User"] == user
    policy = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "x:*"}]}'
    got = _parse("GetUserPolicy", {"UserName": "a", "PolicyName": "p", "PolicyDocument": policy})
    # IAM URL-encodes policy documents; botocore's parser hands back the encoded text.
    assert unquote(got["PolicyDocument"]) == policy
    listed = _parse("ListUsers", {"Users": [user, user], "IsTruncated": True, "Marker": "m"})
    assert listed["Users"] == [user, user] and listed["IsTruncated"] is True
    assert _parse("DeleteUser", None) == {}


def _parse(operation: str, result: dict | None) -> dict:
    body = result_xml(MODEL, operation, result, "request-1")
    output = BOTOCORE.operation_model(operation).output_shape
    parsed = QueryParser().parse({"body": body, "headers": {}, "status_code": 200}, output)
    assert parsed["ResponseMetadata"]["RequestId"] == "request-1"
    parsed.pop("ResponseMetadata")
    return parsed
