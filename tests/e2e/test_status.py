"""``openkms status`` and the operator's ``GET /healthz`` against a running server: the plain
answer for anyone, the details for the operator's root user only, no secrets in them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.e2e.test_metrics import scrape, value
from tests.e2e.test_sealing import init_shamir, unseal
from tests.support import (
    ACCESS_KEY_ID,
    ACCOUNT_ID,
    REGION,
    SECRET_ACCESS_KEY,
    OpenKmsServer,
    eventually,
)


def _signed_healthz(server: OpenKmsServer, access_key_id: str, secret: str) -> requests.Response:
    url = f"{server.endpoint}/healthz"
    request = AWSRequest(method="GET", url=url)
    SigV4Auth(Credentials(access_key_id, secret), "kms", REGION).add_auth(request)
    return requests.get(url, headers=dict(request.headers.items()), timeout=30)


def _status(server: OpenKmsServer, *args: str, secret: str = SECRET_ACCESS_KEY) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OPENKMS_"))}
    env.update(
        AWS_ACCESS_KEY_ID=ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY=secret,
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    return subprocess.run(
        [sys.executable, "-m", "openkms", "status", "--endpoint", server.endpoint, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_unauthenticated_healthz_stays_plain(server):
    response = requests.get(f"{server.endpoint}/healthz", timeout=5)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_the_operator_gets_the_nodes_status_as_json(server):
    server.client().create_key()
    key_id = server.client().create_key()["KeyMetadata"]["KeyId"]
    server.client().disable_key(KeyId=key_id)
    backend = "postgresql" if server.database_url else "sqlite"
    result = _status(server, "--format", "json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["status"] == "ok"
    assert status["version"]
    assert status["uptime_seconds"] >= 0
    assert status["root_of_trust"] == {"type": "dev-key-file", "sealed": False}
    assert status["database"] == {"kind": backend, "reachable": True}
    assert status["keys_by_state"]["Enabled"] >= 1
    assert status["keys_by_state"]["Disabled"] >= 1
    assert status["workers"]["configured"] >= 1
    assert status["workers"]["serving"] >= 1
    audit = status["audit_trail"]
    assert audit["enabled"] and audit["available"] and audit["writers"] >= 1
    head = audit["newest_event"]
    assert len(head["hash"]) == 64 and head["seq"] >= 1
    assert status["jobs"]["runs"] >= 1 and status["jobs"]["last_run"]
    # Counts and states only: no key id, no account id, no secret.
    for revealing in (key_id, ACCOUNT_ID, SECRET_ACCESS_KEY):
        assert revealing not in result.stdout


def test_openkms_status_prints_a_readable_table(server):
    result = _status(server)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    names = [line.split("  ")[0] for line in lines]
    assert names == [
        "version",
        "started",
        "root of trust",
        "database",
        "workers",
        "keys",
        "audit trail",
        "background jobs",
    ]
    assert "dev-key-file: unsealed" in result.stdout
    assert "reachable" in result.stdout
    assert SECRET_ACCESS_KEY not in result.stdout and ACCOUNT_ID not in result.stdout


def test_a_wrong_secret_gets_the_signature_error_and_no_details(server):
    result = _status(server, secret="not-the-secret")
    assert result.returncode == 1
    assert "InvalidSignatureException" in result.stderr
    assert "keys" not in result.stdout


def test_a_caller_who_is_not_the_operator_gets_no_details(server, other_account):
    # The root user of another account, and an IAM user of the operator's own account.
    user = server.create_user(ACCOUNT_ID, f"status-{os.urandom(4).hex()}")
    for access_key_id, secret in (
        (other_account["AccessKeyId"], other_account["SecretAccessKey"]),
        (user["AccessKeyId"], user["SecretAccessKey"]),
    ):
        response = _signed_healthz(server, access_key_id, secret)
        assert response.status_code == 400
        reply = response.json()
        assert reply["__type"] == "AccessDeniedException"
        assert set(reply) == {"__type", "message"}
    # The operator itself, signing the same way, gets the details.
    response = _signed_healthz(server, ACCESS_KEY_ID, SECRET_ACCESS_KEY)
    assert response.status_code == 200
    assert "keys_by_state" in response.json()


@pytest.fixture
def sealed(tmp_path: Path) -> Iterator[tuple[OpenKmsServer, list[str]]]:
    shares = init_shamir(tmp_path / "data")
    server = OpenKmsServer(tmp_path / "data", extra_args=["--workers", "2"]).start()
    yield server, shares
    server.stop()


def test_a_sealed_node_reports_its_seal_in_metrics_and_status_once_unsealed(sealed):
    server, shares = sealed
    _, samples = scrape(server)
    assert value(samples, "openkms_sealed") == 1
    # Sealed, the node cannot check a signature (the secrets are under the seal): no details.
    refused = _status(server)
    assert refused.returncode == 1 and "sealed" in refused.stderr.lower()
    assert requests.get(f"{server.endpoint}/healthz", timeout=5).json() == {"status": "ok"}
    for share in shares[:3]:
        assert unseal(server, share).returncode == 0

    def unsealed_everywhere() -> None:
        _, later = scrape(server)
        assert value(later, "openkms_sealed") == 0

    eventually(unsealed_everywhere)
    result = _status(server, "--format", "json")
    assert result.returncode == 0, result.stderr
    root = json.loads(result.stdout)["root_of_trust"]
    assert root["type"] == "shamir" and root["sealed"] is False and root["generation"] >= 1
    assert all(share not in result.stdout for share in shares)
