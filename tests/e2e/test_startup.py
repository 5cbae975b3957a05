"""First start, later starts, and the start-up refusals."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.support import OpenKmsServer


def _unfixed(server: OpenKmsServer) -> OpenKmsServer:
    for name in ("OPENKMS_ACCOUNT_ID", "OPENKMS_ACCESS_KEY_ID", "OPENKMS_SECRET_ACCESS_KEY"):
        server.env.pop(name)
    return server


def test_first_start_creates_an_account_and_prints_its_credentials_once(tmp_path):
    server = _unfixed(OpenKmsServer(tmp_path / "data")).start()
    try:
        first = server.log()
        account = re.search(r"account id:\s+(\d{12})", first).group(1)
        access_key = re.search(r"access key id:\s+(\S+)", first).group(1)
        secret = re.search(r"secret access key:\s+(\S+)", first).group(1)
        assert f"aws --endpoint-url {server.endpoint} kms create-key" in first
        assert "boto3.client('kms'" in first
        identity = server.client("sts", access_key_id=access_key, secret_access_key=secret)
        assert identity.get_caller_identity()["Account"] == account
        key = server.client(access_key_id=access_key, secret_access_key=secret).create_key()
        assert key["KeyMetadata"]["AWSAccountId"] == account

        server.restart()
        later = server.log()[len(first) :]
        assert secret not in later
        assert "created the first account" not in later
        kms = server.client(access_key_id=access_key, secret_access_key=secret)
        assert kms.describe_key(KeyId=key["KeyMetadata"]["KeyId"])["KeyMetadata"]["Enabled"]
    finally:
        server.stop()


def test_credentials_fixed_by_the_environment_are_not_printed(tmp_path):
    server = OpenKmsServer(tmp_path / "data").start()
    try:
        assert "FOOBARSECRET" not in server.log()
        assert "FOOBARKEY" in server.log()
        assert server.client("sts").get_caller_identity()["Account"] == "123456789012"
    finally:
        server.stop()


def _serve_fails(args: list[str], env: dict[str, str], tmp_path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "openkms", "serve", "--data-dir", str(tmp_path / "data"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )
    assert result.returncode != 0
    return result.stderr


def test_a_changed_secret_for_an_existing_access_key_is_refused(tmp_path):
    server = OpenKmsServer(tmp_path / "data").start()
    server.stop()
    env = {
        "OPENKMS_ACCOUNT_ID": "123456789012",
        "OPENKMS_ACCESS_KEY_ID": "FOOBARKEY",
        "OPENKMS_SECRET_ACCESS_KEY": "ANOTHERSECRET",
    }
    message = _serve_fails(["--port", "0"], env, tmp_path)
    assert "exists with a different secret" in message
    assert "ANOTHERSECRET" not in message and "FOOBARSECRET" not in message


@pytest.mark.parametrize("account_id", ["12345", "abcdefghijkl", "1234567890123"])
def test_an_account_id_that_is_not_12_digits_is_refused(tmp_path, account_id):
    env = {
        "OPENKMS_ACCOUNT_ID": account_id,
        "OPENKMS_ACCESS_KEY_ID": "FOOBARKEY",
        "OPENKMS_SECRET_ACCESS_KEY": "FOOBARSECRET",
    }
    assert "12 digits" in _serve_fails(["--port", "0"], env, tmp_path)


def test_an_access_key_without_its_secret_is_refused(tmp_path):
    env = {"OPENKMS_ACCESS_KEY_ID": "FOOBARKEY"}
    message = _serve_fails(["--port", "0"], env, tmp_path)
    assert "must be set together" in message


def test_the_development_root_key_listens_on_loopback_only(tmp_path):
    message = _serve_fails(["--host", "0.0.0.0"], {}, tmp_path)  # noqa: S104
    assert "loopback only" in message
    assert not (tmp_path / "data").exists()


def test_a_root_key_that_does_not_match_the_database_is_refused(tmp_path):
    server = OpenKmsServer(tmp_path / "data").start()
    server.stop()
    (tmp_path / "data" / "root.key").write_bytes(os.urandom(32))
    message = _serve_fails(["--port", "0"], {}, tmp_path)
    assert "root key does not match this database" in message


def test_unreachable_database_is_a_clear_startup_error(tmp_path):
    message = _serve_fails(
        ["--port", "0", "--database-url", "postgresql://nobody@127.0.0.1:1/none"], {}, tmp_path
    )
    assert "cannot open the database" in message
    assert "Traceback" not in message
