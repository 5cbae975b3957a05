"""Fail closed: while the trail cannot be written nothing is answered (a 500, and operations
are not run), and the trail takes up again by itself once it can be written. Each failure is
real: an immutable file, a replaced file, a PostgreSQL table taken away."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.audit_support import public_key, records, request_id, trail_path, verify
from tests.support import OpenKmsServer, eventually

AUDIT_DOWN = "the audit trail is unavailable"


def _refused(call: Callable[..., Any], **params: Any) -> ClientError:
    with pytest.raises(ClientError) as info:
        call(**params)
    error = info.value
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    return error


def _assert_down(server: OpenKmsServer, key_id: str) -> None:
    kms = server.client()
    error = _refused(kms.encrypt, KeyId=key_id, Plaintext=b"unaudited?")
    assert error.response["Error"]["Code"] == "KMSInternalException"
    assert AUDIT_DOWN in error.response["Error"]["Message"]
    # A write refused while the trail is down is not done at all.
    _refused(kms.create_key, Description="must not exist")
    sts = _refused(server.client("sts").get_caller_identity)
    assert sts.response["Error"]["Code"] == "InternalFailure"


def _assert_recovers(server: OpenKmsServer, key_id: str) -> str:
    kms = server.client()

    def works() -> str:
        try:
            return request_id(kms.encrypt(KeyId=key_id, Plaintext=b"audited again"))
        except ClientError as error:
            raise AssertionError(str(error)) from None

    answered = eventually(works, timeout=20)
    descriptions = [
        kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"].get("Description")
        for k in kms.list_keys()["Keys"]
    ]
    assert "must not exist" not in descriptions
    return answered


def _check_trail(server: OpenKmsServer, tmp_path: Path, answered: str) -> None:
    server.stop()
    found = records(server)
    assert any(r["requestID"] == answered for r in found)
    # The refusals were recorded too, once the trail was back, saying what was answered.
    refusals = [r for r in found if r.get("errorCode") == "KMSInternalException"]
    assert refusals and all(AUDIT_DOWN in r.get("errorMessage", "") for r in refusals)
    report = json.loads(verify(server, public_key(server, tmp_path), "--json").stdout)
    assert report["ok"], report


# One worker writes its own trail; two send their records to the node's one writer, which
# tells both when the trail goes down or comes back.
WORKERS = ["1", "2"]


@pytest.fixture(params=WORKERS)
def sqlite_server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[OpenKmsServer]:
    server = OpenKmsServer(tmp_path / "data", extra_args=["--workers", request.param])
    yield server
    for path in server.data_dir.glob("openkms-audit.db*"):
        subprocess.run(["chattr", "-i", str(path)], check=False, capture_output=True)
    server.stop()


def _chattr(flag: str, server: OpenKmsServer) -> None:
    # The database and its write-ahead log, not the -shm index: SQLite maps that into memory,
    # and a store to a mapped page of an immutable file is a SIGBUS, not an error to handle.
    for name in ("openkms-audit.db", "openkms-audit.db-wal"):
        path = server.data_dir / name
        if path.exists():
            subprocess.run(["chattr", flag, str(path)], check=True)


def test_an_unwritable_trail_file_fails_closed_and_recovers(sqlite_server, tmp_path):
    probe = tmp_path / "probe"
    probe.write_bytes(b"")
    if subprocess.run(["chattr", "+i", str(probe)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not permitted here (needs CAP_LINUX_IMMUTABLE)")
    subprocess.run(["chattr", "-i", str(probe)], check=True)
    server = sqlite_server.start()
    key_id = server.client().create_key()["KeyMetadata"]["KeyId"]
    _chattr("+i", server)  # writes to the open trail file now fail (EPERM), as on a full disk
    try:
        _assert_down(server, key_id)
    finally:
        _chattr("-i", server)
    answered = _assert_recovers(server, key_id)
    _check_trail(server, tmp_path, answered)


def test_a_replaced_or_removed_trail_file_fails_closed_and_recovers(sqlite_server, tmp_path):
    server = sqlite_server.start()
    key_id = server.client().create_key()["KeyMetadata"]["KeyId"]
    trail = trail_path(server)
    away = tmp_path / "away"
    away.mkdir()
    moved = []
    for path in server.data_dir.glob("openkms-audit.db*"):
        os.rename(path, away / path.name)
        moved.append(path.name)
    _assert_down(server, key_id)  # removed: never silently started afresh
    trail.write_bytes(b"this is not a database" * 100)
    _assert_down(server, key_id)  # replaced by something else
    trail.unlink()
    for name in moved:
        os.rename(away / name, server.data_dir / name)
    answered = _assert_recovers(server, key_id)
    _check_trail(server, tmp_path, answered)


def _psql(url: str, statement: str) -> None:
    import psycopg

    base, _, query = url.partition("?")
    schema = query.rsplit("%3D", 1)[-1]
    with psycopg.connect(base, options=f"-csearch_path={schema}", autocommit=True) as connection:
        connection.execute(statement)


@pytest.mark.parametrize("workers", WORKERS)
def test_a_postgresql_trail_taken_away_fails_closed_and_recovers(
    tmp_path, database_url_factory, workers
):
    url = database_url_factory("postgresql")  # skips without PostgreSQL
    server = OpenKmsServer(tmp_path / "data", url, ["--workers", workers]).start()
    try:
        key_id = server.client().create_key()["KeyMetadata"]["KeyId"]
        _psql(url, "ALTER TABLE audit_events RENAME TO audit_events_away")
        try:
            _assert_down(server, key_id)
        finally:
            _psql(url, "ALTER TABLE audit_events_away RENAME TO audit_events")
        answered = _assert_recovers(server, key_id)
        _check_trail(server, tmp_path, answered)
    finally:
        server.stop()
