"""Shamir sealing end to end: ``openkms operator init`` splits the seal key, ``serve`` starts
sealed and answers no API request, M shares unseal (every worker), seal drops everything, and
the root key rotates with every old ciphertext still readable."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from tests.support import (
    ACCESS_KEY_ID,
    ACCOUNT_ID,
    CLIENT_CONFIG,
    REGION,
    SECRET_ACCESS_KEY,
    OpenKmsServer,
)

_FIXED = {
    "OPENKMS_ACCOUNT_ID": ACCOUNT_ID,
    "OPENKMS_ACCESS_KEY_ID": ACCESS_KEY_ID,
    "OPENKMS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
}


def openkms(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "openkms", *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
    )


def init_shamir(
    data_dir: Path, shares: int = 5, threshold: int = 3, extra: tuple[str, ...] = ()
) -> list[str]:
    done = openkms(
        "operator", "init", "--data-dir", str(data_dir), "--seal", "shamir",
        "--shares", str(shares), "--threshold", str(threshold), *extra,
        env=_FIXED,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return re.findall(r"share \d+: (.+)", done.stdout)


def status(server: OpenKmsServer) -> dict[str, Any]:
    answer = requests.get(f"{server.endpoint}/sys/seal-status", timeout=10)
    assert answer.status_code == 200
    return dict(answer.json())


def unseal(server: OpenKmsServer, share: str) -> subprocess.CompletedProcess[str]:
    return openkms("operator", "unseal", "--endpoint", server.endpoint, stdin=share + "\n")


def operator_env(
    access_key: str = ACCESS_KEY_ID, secret: str = SECRET_ACCESS_KEY
) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": access_key,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": REGION,
    }


def fresh_client(server: OpenKmsServer) -> Any:
    # Not the cached client of kms_management: each server here is new.
    return boto3.session.Session().client(
        "kms",
        endpoint_url=server.endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        config=CLIENT_CONFIG,
    )


@pytest.fixture
def sealed(tmp_path: Path):  # noqa: ANN201 - (server, shares)
    shares = init_shamir(tmp_path / "data")
    server = OpenKmsServer(tmp_path / "data", extra_args=["--workers", "2"]).start()
    yield server, shares
    server.stop()


def assert_sealed_answer(kms: Any) -> None:
    with pytest.raises(ClientError) as caught:
        kms.list_keys()
    error = caught.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert error["Error"]["Code"] == "KMSInternalException"
    assert error["Error"]["Message"] == "The service is sealed"


def test_a_shamir_store_starts_sealed_and_answers_only_health_status_and_unseal(sealed):
    server, _ = sealed
    assert requests.get(f"{server.endpoint}/healthz", timeout=5).status_code == 200
    assert status(server) == {
        "sealed": True, "type": "shamir", "threshold": 3, "shares": 5, "progress": 0,
        "generation": None,
    }  # fmt: skip
    kms = fresh_client(server)
    for _ in range(4):  # whichever worker answers
        assert_sealed_answer(kms)
    sts = boto3.client(
        "sts", endpoint_url=server.endpoint, region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY,
        config=CLIENT_CONFIG,
    )  # fmt: skip
    with pytest.raises(ClientError) as caught:
        sts.get_caller_identity()
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503


def test_threshold_minus_one_shares_do_not_unseal_and_bad_shares_count_nothing(sealed, tmp_path):
    server, shares = sealed
    other = init_shamir(tmp_path / "other")
    assert unseal(server, shares[0]).returncode == 0
    assert status(server)["progress"] == 1

    def refused(share: str, why: str) -> None:
        done = unseal(server, share)
        assert done.returncode != 0
        assert why in done.stderr
        assert share not in done.stderr + done.stdout
        assert status(server)["progress"] == 1 and status(server)["sealed"]

    refused(other[1], "another seal")
    refused(shares[0], "already given")
    words = shares[1].split()
    refused(" ".join(words[:-1] + [words[0]]), "malformed")
    refused(" ".join(words[:-3]), "malformed")
    refused("not a share at all", "malformed")

    assert unseal(server, shares[3]).returncode == 0
    assert status(server)["progress"] == 2
    assert_sealed_answer(fresh_client(server))

    done = unseal(server, shares[4])
    assert done.returncode == 0 and "unsealed" in done.stdout
    assert status(server)["sealed"] is False
    kms = fresh_client(server)
    for _ in range(6):  # every worker is unsealed
        kms.list_keys()
    done = unseal(server, shares[1])
    assert done.returncode != 0 and "already unsealed" in done.stderr


def test_a_flood_of_unseal_calls_is_throttled_and_counts_nothing(sealed):
    server, shares = sealed
    url = f"{server.endpoint}/sys/unseal"
    with requests.Session() as session:  # one connection, so one worker's budget
        answers = [
            session.post(url, json={"share": "not a share at all"}, timeout=10) for _ in range(40)
        ]
        throttled = [a for a in answers if a.status_code == 429]
        assert throttled, [a.status_code for a in answers]
        assert throttled[0].json() == {
            "__type": "ThrottlingException",
            "message": "Too many seal API calls from this address. Wait a second and retry.",
        }
        assert {a.status_code for a in answers} == {400, 429}
    assert status(server)["progress"] == 0  # GET /sys/seal-status is not throttled
    # The operator's real share, a moment later, counts.
    for _ in range(50):
        done = unseal(server, shares[0])
        if "Too many seal API calls" not in done.stderr:
            break
    assert done.returncode == 0, done.stderr
    assert status(server)["progress"] == 1


def test_reset_forgets_the_shares_given(sealed):
    server, shares = sealed
    unseal(server, shares[0])
    unseal(server, shares[1])
    assert status(server)["progress"] == 2
    done = openkms("operator", "unseal", "--endpoint", server.endpoint, "--reset")
    assert done.returncode == 0, done.stderr
    assert status(server)["progress"] == 0
    unseal(server, shares[2])
    unseal(server, shares[3])
    assert status(server)["sealed"]
    unseal(server, shares[4])
    assert not status(server)["sealed"]


def test_seal_unseal_and_rotation_keep_every_ciphertext_readable(sealed):
    server, shares = sealed
    for share in shares[:3]:
        unseal(server, share)
    kms = fresh_client(server)
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    blobs = [
        kms.encrypt(KeyId=key_id, Plaintext=b"before %d" % i)["CiphertextBlob"] for i in range(4)
    ]

    done = openkms("operator", "seal", "--endpoint", server.endpoint, env=operator_env())
    assert done.returncode == 0, done.stderr
    assert status(server)["sealed"]
    for _ in range(4):
        assert_sealed_answer(kms)

    for share in shares[2:]:
        unseal(server, share)
    for i, blob in enumerate(blobs * 2):  # both workers
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"before %d" % (i % 4)

    done = openkms("operator", "rotate", "--endpoint", server.endpoint, env=operator_env())
    assert done.returncode == 0, done.stderr
    assert "generation 2" in done.stdout
    assert status(server)["generation"] == 2
    # A key made now has its material wrapped by generation 2, on whichever worker.
    new_keys = [kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(3)]
    for new_key in new_keys:
        blob = kms.encrypt(KeyId=new_key, Plaintext=b"after")["CiphertextBlob"]
        for _ in range(3):
            assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"after"
    for i, blob in enumerate(blobs):
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"before %d" % i

    # After a restart the keyring opens with its new generation from any quorum.
    server.restart()
    for share in shares[1:4]:
        unseal(server, share)
    for new_key in new_keys:
        assert kms.describe_key(KeyId=new_key)["KeyMetadata"]["Enabled"]
    assert kms.decrypt(CiphertextBlob=blobs[0])["Plaintext"] == b"before 0"


def test_sealing_and_rotating_need_the_operator_accounts_root_user(sealed):
    server, shares = sealed
    for share in shares[:3]:
        unseal(server, share)
    unsigned = requests.post(f"{server.endpoint}/sys/seal", data=b"{}", timeout=10)
    assert unsigned.status_code in (400, 403)
    wrong = openkms(
        "operator", "seal", "--endpoint", server.endpoint, env=operator_env(secret="wrong")
    )
    assert wrong.returncode != 0
    iam = boto3.client(
        "iam", endpoint_url=server.endpoint, region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY,
        config=CLIENT_CONFIG,
    )  # fmt: skip
    iam.create_user(UserName="admin")
    iam.put_user_policy(
        UserName="admin", PolicyName="all",
        PolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}',
    )  # fmt: skip
    key = iam.create_access_key(UserName="admin")["AccessKey"]
    done = openkms(
        "operator", "seal", "--endpoint", server.endpoint,
        env=operator_env(key["AccessKeyId"], key["SecretAccessKey"]),
    )  # fmt: skip
    assert done.returncode != 0 and "AccessDenied" in done.stderr
    assert not status(server)["sealed"]


def test_no_share_or_seal_key_reaches_the_log_the_database_or_the_disk(sealed):
    server, shares = sealed
    unseal(server, "not a share")
    for share in shares[:3]:
        unseal(server, share)
    fresh_client(server).create_key()
    words = {w for share in shares for w in share.split()}
    for path in server.data_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for share in shares:
                assert share.encode() not in data, path
                # no run of four of a share's words either
                assert " ".join(share.split()[4:8]).encode() not in data, path
    assert words  # the shares are words; none of the log's lines quote one
    log = server.log()
    for share in shares:
        assert " ".join(share.split()[4:8]) not in log
    with sqlite3.connect(server.data_dir / "openkms.db") as db:
        names = [row[0] for row in db.execute("select name from server_settings")]
    assert "seal-keyring" in names and "root-key-check" not in names


def test_admin_commands_on_a_sealed_store_say_so(tmp_path):
    init_shamir(tmp_path / "data")
    done = openkms("admin", "create-account", "--data-dir", str(tmp_path / "data"))
    assert done.returncode != 0 and "sealed" in done.stderr


def test_init_twice_and_bad_parameters_are_refused(tmp_path):
    init_shamir(tmp_path / "data")
    again = openkms("operator", "init", "--data-dir", str(tmp_path / "data"), "--seal", "shamir")
    assert again.returncode != 0 and "already initialised" in again.stderr
    bad = openkms(
        "operator", "init", "--data-dir", str(tmp_path / "b"), "--seal", "shamir",
        "--shares", "2", "--threshold", "3",
    )  # fmt: skip
    assert bad.returncode != 0 and "threshold" in bad.stderr


def test_shares_can_be_written_to_files(tmp_path):
    init_shamir(tmp_path / "data", extra=("--share-dir", str(tmp_path / "shares")))
    files = sorted((tmp_path / "shares").iterdir())
    assert len(files) == 5
    assert all(oct(f.stat().st_mode & 0o777) == "0o600" for f in files)
    again = openkms(
        "operator", "init", "--data-dir", str(tmp_path / "other"), "--seal", "shamir",
        "--share-dir", str(tmp_path / "shares"),
    )  # fmt: skip
    assert again.returncode != 0 and "empty --share-dir" in again.stderr
    assert not (tmp_path / "other").exists()  # refused before anything was made
    server = OpenKmsServer(tmp_path / "data").start()
    try:
        for path in files[:3]:
            assert unseal(server, path.read_text().strip()).returncode == 0
        assert not status(server)["sealed"]
    finally:
        server.stop()


def test_a_development_store_is_adopted_by_init_and_keeps_its_data(tmp_path):
    server = OpenKmsServer(tmp_path / "data").start()
    kms = fresh_client(server)
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"dev")["CiphertextBlob"]
    server.stop()
    shares = init_shamir(tmp_path / "data")
    server.start()
    try:
        for share in shares[:3]:
            unseal(server, share)
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"dev"
    finally:
        server.stop()


def test_rekey_makes_new_shares_for_the_same_keyring(tmp_path):
    shares = init_shamir(tmp_path / "data")
    server = OpenKmsServer(tmp_path / "data").start()
    try:
        for share in shares[:3]:
            unseal(server, share)
        kms = fresh_client(server)
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        blob = kms.encrypt(KeyId=key_id, Plaintext=b"kept")["CiphertextBlob"]
        server.stop()
        too_few = openkms(
            "operator", "rekey", "--data-dir", str(tmp_path / "data"), stdin="\n".join(shares[:2])
        )
        assert too_few.returncode != 0
        done = openkms(
            "operator", "rekey", "--data-dir", str(tmp_path / "data"),
            "--shares", "3", "--threshold", "2", stdin="\n".join(shares[2:]),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        new = re.findall(r"share \d+: (.+)", done.stdout)
        assert len(new) == 3
        server.start()
        refused = unseal(server, shares[0])
        assert refused.returncode != 0 and "another seal" in refused.stderr
        for share in new[:2]:
            unseal(server, share)
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"kept"
    finally:
        server.stop()


def test_two_nodes_on_postgresql_unseal_separately_and_follow_a_rotation(
    tmp_path, database_url_factory
):
    url = database_url_factory("postgresql")
    shares = init_shamir(tmp_path / "a", extra=("--database-url", url))
    nodes = [OpenKmsServer(tmp_path / name, database_url=url).start() for name in ("a", "b")]
    try:
        a, b = nodes
        for share in shares[:3]:
            unseal(a, share)
        assert status(b)["sealed"]  # each node is unsealed by its operators
        for share in shares[2:]:
            unseal(b, share)
        kms_a, kms_b = fresh_client(a), fresh_client(b)
        done = openkms("operator", "rotate", "--endpoint", a.endpoint, env=operator_env())
        assert done.returncode == 0, done.stderr
        key_id = kms_a.create_key()["KeyMetadata"]["KeyId"]  # material wrapped by generation 2
        blob = kms_a.encrypt(KeyId=key_id, Plaintext=b"rotated")["CiphertextBlob"]
        # Node B learns generation 2 from the keyring's upgrade entry, without the seal.
        assert kms_b.decrypt(CiphertextBlob=blob)["Plaintext"] == b"rotated"
        # Whichever of B's workers answers learns generation 2 the same way, on demand (the
        # status a request reaches may come from a worker that has not needed it yet).
        for _ in range(4):
            assert fresh_client(b).decrypt(CiphertextBlob=blob)["Plaintext"] == b"rotated"
    finally:
        for node in nodes:
            node.stop()
