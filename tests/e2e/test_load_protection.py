"""Under overload and abuse the server sheds load the AWS way and keeps answering real callers:
request quotas, connections that never finish, unknown credentials in bulk, and a database
that is locked."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
import uuid

import pytest
from botocore.exceptions import ClientError

THROTTLED = (
    "You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls."
)


def _code(call, **kwargs) -> str:  # noqa: ANN001
    try:
        call(**kwargs)
    except ClientError as error:
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] in (400, 503)
        return error.response["Error"]["Code"]
    return "OK"


def test_crossing_a_request_quota_is_throttled_with_awss_message(own_server):
    own_server.extra_args = ["--workers", "1", "--quota", "symmetric=2"]
    own_server.start()
    kms = own_server.client()
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    codes: list[str] = []
    messages: list[str] = []

    def burst() -> None:  # many callers at once: well over 2 a second on any machine
        client = own_server.client()
        for _ in range(6):
            try:
                client.generate_data_key(KeyId=key_id, KeySpec="AES_256")
                codes.append("OK")
            except ClientError as error:
                codes.append(error.response["Error"]["Code"])
                messages.append(error.response["Error"]["Message"])
                assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400

    threads = [threading.Thread(target=burst) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(codes) == 48
    assert "OK" in codes and "ThrottlingException" in codes
    assert set(codes) == {"OK", "ThrottlingException"}
    assert set(messages) == {THROTTLED}
    # Another class is not charged: management calls go on.
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyId"] == key_id
    time.sleep(1.0)  # the quota refills: a second later the caller is served again
    assert _code(kms.encrypt, KeyId=key_id, Plaintext=b"x") == "OK"


def test_a_bad_quota_setting_is_refused(tmp_path):
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "openkms", "serve", "--data-dir", str(tmp_path), "--quota", "x=1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "a quota is CLASS=N" in result.stderr


def _half_open(port: int, count: int) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: TrentSer")
        sockets.append(sock)
    return sockets


def test_connections_that_never_finish_their_headers_cannot_lock_callers_out(own_server):
    own_server.extra_args = ["--workers", "1", "--max-connections", "50"]
    own_server.start()
    kms = own_server.client()
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    log_before = len(own_server.log())
    hogs = _half_open(own_server.port, 120)  # more than the cap, bounded in number
    try:
        for _ in range(10):
            fresh = own_server.client()  # a new connection each time
            assert fresh.encrypt(KeyId=key_id, Plaintext=b"still served")["KeyId"]
    finally:
        for sock in hogs:
            sock.close()
    written = own_server.log()[log_before:]
    assert "Too many open files" not in written
    assert "Traceback" not in written


def test_a_request_that_is_never_finished_is_dropped_after_the_request_timeout(own_server):
    own_server.extra_args = ["--workers", "1", "--request-timeout", "1"]
    own_server.start()
    (sock,) = _half_open(own_server.port, 1)
    sock.settimeout(10)
    started = time.monotonic()
    assert sock.recv(1024) == b"", "the server closes a request it never got whole"
    assert time.monotonic() - started < 9
    sock.close()
    # A slow body is cut off just the same.
    body_sender = socket.create_connection(("127.0.0.1", own_server.port), timeout=10)
    body_sender.sendall(
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n" + b"{" * 10
    )
    assert body_sender.recv(1024) == b""
    body_sender.close()


def test_unknown_access_keys_in_bulk_are_throttled_before_the_database(own_server):
    import requests
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    own_server.extra_args = ["--workers", "1"]
    own_server.start()
    kms = own_server.client()
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    codes = []
    with requests.Session() as session:
        for _ in range(300):
            request = AWSRequest(
                method="POST",
                url=f"{own_server.endpoint}/",
                data=b"{}",
                headers={
                    "Content-Type": "application/x-amz-json-1.1",
                    "X-Amz-Target": "TrentService.ListKeys",
                },
            )
            stranger = Credentials(f"AKIA{uuid.uuid4().hex[:16].upper()}", "secret")
            SigV4Auth(stranger, "kms", "us-east-1").add_auth(request)
            prepared = request.prepare()
            answer = session.post(
                prepared.url, data=prepared.body, headers=dict(prepared.headers), timeout=10
            )
            assert answer.status_code == 400
            codes.append(answer.json()["__type"])
    assert "UnrecognizedClientException" in codes
    assert "ThrottlingException" in codes, "300 unknown keys in a burst, all looked up"
    assert set(codes) == {"UnrecognizedClientException", "ThrottlingException"}
    # A known caller, already cached, is not crowded out.
    assert kms.encrypt(KeyId=key_id, Plaintext=b"x")["KeyId"]


def test_a_locked_database_fails_writes_retryably_and_warm_crypto_goes_on(own_server, backend):
    if backend != "sqlite":
        pytest.skip("holds SQLite's write lock, as a backup of the data directory would")
    own_server.extra_args = ["--workers", "1"]
    own_server.start()
    kms = own_server.client()
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.encrypt(KeyId=key_id, Plaintext=b"warm")

    locked = threading.Event()
    release = threading.Event()

    def hold_the_write_lock() -> None:  # as a backup tool would
        connection = sqlite3.connect(own_server.data_dir / "openkms.db", isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        locked.set()
        release.wait(60)
        connection.execute("ROLLBACK")
        connection.close()

    holder = threading.Thread(target=hold_the_write_lock)
    holder.start()
    try:
        assert locked.wait(10)
        result: dict[str, object] = {}

        def write() -> None:
            try:
                kms.create_key(Description="while locked")
                result["write"] = "OK"
            except ClientError as error:
                result["write"] = error.response

        writer = threading.Thread(target=write)
        writer.start()
        served = 0
        while writer.is_alive() and served < 2000:
            kms.encrypt(KeyId=key_id, Plaintext=b"during the lock")
            served += 1
        writer.join(timeout=30)
        assert served > 0, "warm Encrypts were answered while the write waited"
        assert not release.is_set(), "the lock was still held throughout"
        response = result["write"]
        assert isinstance(response, dict), response
        assert response["Error"]["Code"] == "DependencyTimeoutException"
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 503
    finally:
        release.set()
        holder.join(timeout=30)
    assert kms.create_key(Description="after the lock")["KeyMetadata"]["KeyId"]
    names = [k["KeyId"] for k in kms.list_keys()["Keys"]]
    assert len(names) == 2, "the refused write left nothing behind"
