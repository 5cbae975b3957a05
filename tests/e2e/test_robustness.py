"""Inputs found in review that once crashed the server, and start-up under contention."""

from __future__ import annotations

import re
import threading

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.support import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, OpenKmsServer


def _post(server, headers: dict[str, str | bytes], body: bytes = b"{}") -> requests.Response:
    return requests.post(f"{server.endpoint}/", data=body, headers=headers, timeout=30)


def test_an_out_of_range_http_date_is_an_auth_error_not_a_crash(server):
    for date in ("Fri, 31 Dec 9999 23:59:59 -0100", "Mon, 01 Jan 0001 00:00:00 +2359"):
        headers = {
            "X-Amz-Target": "TrentService.ListKeys",
            "Content-Type": "application/x-amz-json-1.1",
            "Date": date,
            "Authorization": (
                f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/20260101/{REGION}/kms/aws4_request, "
                "SignedHeaders=date;host;x-amz-target, Signature=" + "0" * 64
            ),
        }
        response = _post(server, headers)
        assert response.status_code == 400, response.text
        assert response.json()["__type"] in (
            "IncompleteSignatureException",
            "InvalidSignatureException",
        )
        sts = _post(
            server,
            {**headers, "Content-Type": "application/x-www-form-urlencoded"},
            b"Action=GetCallerIdentity&Version=2011-06-15",
        )
        assert 400 <= sts.status_code < 500


def test_a_deeply_nested_policy_is_malformed_not_a_crash(kms):
    for policy in ("[" * 5000 + "]" * 5000, "[" * 100_000, '{"a":' * 3000 + "1" + "}" * 3000):
        # Beyond AWS's 32 KB a policy is refused for its size before it is parsed.
        expected = (
            "LimitExceededException"
            if len(policy) > 32_768
            else ("MalformedPolicyDocumentException")
        )
        try:
            kms.create_key(Policy=policy)
        except ClientError as error:
            assert error.response["Error"]["Code"] == expected
        else:
            raise AssertionError("a nested non-policy was accepted")


def test_untagging_very_many_keys_works_and_logs_no_values(server, kms):
    key_id = kms.create_key(Tags=[{"TagKey": "keep", "TagValue": "v"}])["KeyMetadata"]["KeyId"]
    marker = "Zq"
    many = [f"{marker}{i}" for i in range(70_001)]
    untagged = kms.untag_resource(KeyId=key_id, TagKeys=many)
    assert kms.list_resource_tags(KeyId=key_id)["Tags"] == [{"TagKey": "keep", "TagValue": "v"}]
    # Once the request's own line is written, anything it would have logged is too.
    assert "Zq69999" not in server.wait_for_log(untagged["ResponseMetadata"]["RequestId"])


def test_a_utf8_signed_header_value_is_verified_over_its_bytes(server):
    request = AWSRequest(
        method="POST",
        url=f"{server.endpoint}/",
        data=b"{}",
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "TrentService.ListKeys",
            "X-Amz-Meta-Note": "h\u00e9llo \u2713",
        },
    )
    SigV4Auth(Credentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY), "kms", REGION).add_auth(request)
    prepared = request.prepare()
    # Send the header as UTF-8 bytes, as SDKs in other languages do.
    headers = {
        k: (v.encode("utf-8") if k == "X-Amz-Meta-Note" else v) for k, v in prepared.headers.items()
    }
    response = requests.post(prepared.url, data=prepared.body, headers=headers, timeout=30)
    assert response.status_code == 200, response.text


def test_nodes_starting_together_on_an_empty_database_make_one_first_account(
    tmp_path, database_url_factory
):
    url = database_url_factory("postgresql")
    root_key = tmp_path / "root.key"
    root_key.write_bytes(__import__("os").urandom(32))
    nodes = [OpenKmsServer(tmp_path / f"n{i}", url, root_key_file=root_key) for i in range(3)]
    for node in nodes:
        for name in ("OPENKMS_ACCOUNT_ID", "OPENKMS_ACCESS_KEY_ID", "OPENKMS_SECRET_ACCESS_KEY"):
            node.env.pop(name)
    errors: list[Exception] = []

    def start(node: OpenKmsServer) -> None:
        try:
            node.start()
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=start, args=(node,)) for node in nodes]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors
        printed = [re.search(r"secret access key:\s+(\S+)", node.log()) for node in nodes]
        announced = [(node, match) for node, match in zip(nodes, printed, strict=True) if match]
        assert len(announced) == 1
        node, match = announced[0]
        access_key = re.search(r"access key id:\s+(\S+)", node.log()).group(1)
        for other in nodes:  # every node accepts the one first account
            client = other.client("sts", access_key_id=access_key, secret_access_key=match.group(1))
            assert client.get_caller_identity()["Arn"].endswith(":root")
    finally:
        for node in nodes:
            node.stop()
