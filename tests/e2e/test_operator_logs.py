"""The server log: one format for every line (text, or JSON lines), request lines with the
caller, operation, key, outcome and latency, and no secret anywhere in it."""

from __future__ import annotations

import base64
import contextlib
import json
import re

import pytest

from tests.support import ACCOUNT_ID, SECRET_ACCESS_KEY, OpenKmsServer


@pytest.fixture
def json_server(tmp_path):
    server = OpenKmsServer(tmp_path / "data", extra_args=["--log-format", "json", "--workers", "1"])
    server.start()
    yield server
    server.stop()


def _secrets_used(server: OpenKmsServer) -> tuple[list[bytes], str]:
    """Run requests that carry every kind of secret; return them and the last request id."""
    kms = server.client()
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    plaintext = b"the-plaintext-" + bytes(range(32))
    blob = kms.encrypt(KeyId=key_id, Plaintext=plaintext)["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == plaintext
    data_key = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    signing = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    signature = kms.sign(
        KeyId=signing["KeyId"], Message=b"signed message", SigningAlgorithm="ECDSA_SHA_256"
    )["Signature"]
    session = server.client("sts").get_session_token()["Credentials"]
    secrets = [
        plaintext,
        blob,
        data_key["Plaintext"],
        data_key["CiphertextBlob"],
        signature,
        session["SecretAccessKey"].encode(),
        session["SessionToken"].encode(),
        SECRET_ACCESS_KEY.encode(),
    ]
    last = kms.describe_key(KeyId=key_id)["ResponseMetadata"]["RequestId"]
    return secrets, last


def _forms(secret: bytes) -> list[str]:
    forms = [base64.b64encode(secret).decode(), secret.hex()]
    with contextlib.suppress(UnicodeDecodeError):
        forms.append(secret.decode())
    # A fragment is enough to leak: look for a 16-character piece of each form.
    return [form[:16] for form in forms if len(form) >= 16]


def test_json_lines_for_everything_with_request_facts_and_no_secrets(json_server):
    secrets, last_request = _secrets_used(json_server)
    text = json_server.wait_for_log(last_request)
    json_server.stop()
    text = json_server.log()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert all({"time", "level", "pid", "logger", "message"} <= set(line) for line in lines[:3])
    assert any("development root key is in use" in line.get("message", "") for line in lines)
    loggers = {line["logger"] for line in lines}
    assert "openkms.requests" in loggers
    assert any(name.startswith("uvicorn") for name in loggers)  # uvicorn's too, in JSON
    requests = [line for line in lines if line["logger"] == "openkms.requests"]
    encrypt = next(line for line in requests if line["operation"] == "Encrypt")
    assert encrypt["caller"] == f"arn:aws:iam::{ACCOUNT_ID}:root"
    assert re.fullmatch(rf"arn:aws:kms:us-east-1:{ACCOUNT_ID}:key/[0-9a-f-]{{36}}", encrypt["key"])
    assert encrypt["status"] == 200 and encrypt["error_code"] == "OK"
    assert isinstance(encrypt["latency_ms"], float) and encrypt["latency_ms"] >= 0
    assert len(encrypt["request_id"]) == 36
    for secret in secrets:
        for form in _forms(secret):
            assert form not in text, f"a secret reached the log: {form}"


def test_text_request_lines_carry_the_same_facts(tmp_path):
    server = OpenKmsServer(tmp_path / "data", extra_args=["--workers", "1"]).start()
    try:
        kms = server.client()
        with pytest.raises(kms.exceptions.NotFoundException) as refused:
            kms.describe_key(KeyId="alias/missing")
        request_id = refused.value.response["ResponseMetadata"]["RequestId"]
        line = next(
            line for line in server.wait_for_log(request_id).splitlines() if request_id in line
        )
    finally:
        server.stop()
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO \[\d+\] openkms\.requests "
        + re.escape(request_id)
        + rf" caller=arn:aws:iam::{ACCOUNT_ID}:root op=DescribeKey key=- status=400 "
        r"error=NotFoundException latency_ms=\d+(\.\d+)?",
        line,
    ), line
    uvicorn_lines = [ln for ln in server.log().splitlines() if "uvicorn" in ln]
    assert uvicorn_lines and all(re.match(r"\d{4}-\d\d-\d\d \d\d:", ln) for ln in uvicorn_lines)


def test_an_unknown_log_format_is_a_usage_error(tmp_path):
    server = OpenKmsServer(tmp_path / "data", extra_args=["--log-format", "xml"])
    with pytest.raises(RuntimeError, match="Invalid value for '--log-format'"):
        server.start()
