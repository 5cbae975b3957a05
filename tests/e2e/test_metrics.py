"""``GET /metrics`` of a real server, scraped and parsed with prometheus-client's own parser:
counts summed over worker processes, bounded labels with no key or account ids, its own
listener (``--metrics-listen``, ``off``), and a taken metrics port refused at start-up."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest
import requests
from botocore.config import Config
from prometheus_client.parser import text_string_to_metric_families

from tests.support import (
    ACCESS_KEY_ID,
    ACCOUNT_ID,
    REGION,
    SECRET_ACCESS_KEY,
    OpenKmsServer,
    eventually,
    free_port,
)


def scrape(
    server: OpenKmsServer,
) -> tuple[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    """The exposition text and its samples by (name, sorted labels)."""
    response = requests.get(server.metrics_endpoint, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return response.text, samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _code(call: Any) -> str:
    try:
        call()
    except botocore.exceptions.ClientError as error:
        return str(error.response["Error"]["Code"])
    return "OK"


def _worker_pids(log: str) -> set[str]:
    """The processes that wrote a request line for an Encrypt."""
    return set(re.findall(r"INFO \[(\d+)\] openkms\.requests \S+ \S+ op=Encrypt ", log))


@pytest.fixture
def two_workers(tmp_path: Path) -> Any:
    server = OpenKmsServer(tmp_path / "data", extra_args=["--workers", "2"]).start()
    yield server
    server.stop()


def test_a_scrape_sums_every_workers_requests_by_operation_and_outcome(two_workers):
    server = two_workers
    key_id = server.client().create_key()["KeyMetadata"]["KeyId"]
    disabled = server.client().create_key()["KeyMetadata"]["KeyId"]
    server.client().disable_key(KeyId=disabled)

    # A new client (and connection) per call, from several threads, until both workers have
    # served Encrypts: the scrape must add up what two processes counted.
    sent = [0]
    lock = threading.Lock()

    def encrypt_some() -> None:
        for _ in range(5):
            server.client().encrypt(KeyId=key_id, Plaintext=b"secret words")
            with lock:
                sent[0] += 1

    def both_workers_served() -> bool:
        threads = [threading.Thread(target=encrypt_some) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return len(_worker_pids(server.wait_for_log("op=Encrypt"))) >= 2

    eventually(both_workers_served, timeout=60, interval=0)
    missing = [
        _code(lambda: server.client().describe_key(KeyId=f"alias/none-{i}")) for i in range(3)
    ]
    assert missing == ["NotFoundException"] * 3
    refused = _code(lambda: server.client().encrypt(KeyId=disabled, Plaintext=b"x"))
    assert refused == "DisabledException"
    # An operation the model does not have: counted, under "other", not under its name.
    made_up = requests.post(
        server.endpoint,
        data=b"{}",
        headers={
            "X-Amz-Target": "TrentService.MadeUpOperation",
            "Content-Type": "application/x-amz-json-1.1",
        },
        timeout=10,
    )
    assert made_up.status_code == 400

    def counted() -> tuple[str, dict[Any, float]]:
        text, samples = scrape(server)
        assert (
            value(samples, "openkms_requests_total", operation="Encrypt", outcome="ok") == sent[0]
        )
        return text, samples

    text, samples = eventually(counted)
    assert value(samples, "openkms_requests_total", operation="CreateKey", outcome="ok") == 2
    assert value(samples, "openkms_requests_total", operation="DisableKey", outcome="ok") == 1
    assert (
        value(
            samples, "openkms_requests_total", operation="DescribeKey", outcome="NotFoundException"
        )
        == 3
    )
    assert (
        value(samples, "openkms_requests_total", operation="Encrypt", outcome="DisabledException")
        == 1
    )
    other = [
        labels
        for (name, labels), count in samples.items()
        if name == "openkms_requests_total" and dict(labels)["operation"] == "other" and count
    ]
    assert other, "the made-up operation is counted under 'other'"
    assert "MadeUpOperation" not in text
    # The latency histogram counts every Encrypt (both outcomes) and has its buckets.
    assert value(samples, "openkms_request_duration_seconds_count", operation="Encrypt") == (
        sent[0] + 1
    )
    assert value(
        samples, "openkms_request_duration_seconds_bucket", operation="Encrypt", le="+Inf"
    ) == (sent[0] + 1)
    assert value(samples, "openkms_audit_write_seconds_count") > 0
    assert value(samples, "openkms_sealed") == 0

    def sampled() -> None:
        _, later = scrape(server)
        # Each Encrypt looked its key up: warm ones in their worker's cache, the first ones
        # (several at once, in each worker) and the unknown aliases in the database.
        hits = value(later, "openkms_key_cache_hits_total")
        misses = value(later, "openkms_key_cache_misses_total")
        assert hits > 0 and misses >= 2 + 3
        assert hits + misses >= sent[0] + 3
        assert value(later, "openkms_worker_processes") == 2
        assert value(later, "openkms_job_runs_total") > 0
        assert ("openkms_db_pool_connections_in_use", ()) in later
        assert ("openkms_audit_queue_depth", ()) in later

    eventually(sampled)
    # Counts only: no key id, key ARN, account id or plaintext anywhere in the output.
    for secret_or_id in (key_id, disabled, ACCOUNT_ID, "secret words", "FOOBAR"):
        assert secret_or_id not in text


def test_throttled_requests_are_counted_as_the_client_saw_them(tmp_path):
    server = OpenKmsServer(
        tmp_path / "data", extra_args=["--workers", "1", "--quota", "symmetric=2"]
    ).start()
    try:
        # One attempt per call: botocore's retries={"max_attempts": 1} still retries once.
        client = boto3.client(
            "kms",
            endpoint_url=server.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
            config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
        )
        key_id = client.create_key()["KeyMetadata"]["KeyId"]
        codes = [_code(lambda: client.encrypt(KeyId=key_id, Plaintext=b"x")) for _ in range(12)]
        assert "ThrottlingException" in codes
        throttled = codes.count("ThrottlingException")

        def counted() -> None:
            _, samples = scrape(server)
            assert value(samples, "openkms_throttled_requests_total", operation="Encrypt") == (
                throttled
            )
            assert (
                value(
                    samples,
                    "openkms_requests_total",
                    operation="Encrypt",
                    outcome="ThrottlingException",
                )
                == throttled
            )
            assert value(samples, "openkms_requests_total", operation="Encrypt", outcome="ok") == (
                codes.count("OK")
            )

        eventually(counted)
    finally:
        server.stop()


def test_metrics_listen_off_opens_no_listener(tmp_path):
    server = OpenKmsServer(tmp_path / "data", env={"OPENKMS_METRICS_LISTEN": "off"}).start()
    try:
        server.client().list_keys()
        with pytest.raises(requests.ConnectionError):
            requests.get(server.metrics_endpoint, timeout=5)
        assert "metrics on" not in server.log()
    finally:
        server.stop()


def test_the_metrics_listener_serves_only_metrics(two_workers):
    response = requests.get(two_workers.metrics_endpoint.replace("/metrics", "/keys"), timeout=5)
    assert response.status_code == 404


def test_a_taken_metrics_port_is_one_line_before_anything_claims_to_listen(tmp_path):
    api_port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "openkms",
                "serve",
                "--data-dir",
                str(tmp_path / "d"),
                "--port",
                str(api_port),
                "--metrics-listen",
                f"127.0.0.1:{port}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env={k: v for k, v in os.environ.items() if not k.startswith("OPENKMS_")},
        )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"Error: cannot listen on 127.0.0.1:{port}: address already in use (--metrics-listen)"
    )
    assert "listening" not in result.stdout + result.stderr
    assert "secret access key" not in result.stdout  # no account was made on a failed start
    with socket.socket() as probe:  # the API port was let go
        probe.bind(("127.0.0.1", api_port))


@pytest.mark.parametrize("bad", ["9599", "nohost:", "host:99999", "on"])
def test_a_bad_metrics_address_is_refused_with_the_options_name(tmp_path, bad):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "openkms",
            "serve",
            "--data-dir",
            str(tmp_path / "d"),
            "--metrics-listen",
            bad,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--metrics-listen" in result.stderr and "HOST:PORT" in result.stderr
    assert "Traceback" not in result.stderr


def test_config_show_lists_metrics_listen_from_file_environment_or_default(tmp_path):
    def show(env: dict[str, str], *args: str) -> str:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("OPENKMS_")}
        result = subprocess.run(
            [sys.executable, "-m", "openkms", "config", "show", *args],
            capture_output=True,
            text=True,
            timeout=60,
            env={**clean, **env},
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert 'metrics-listen = "127.0.0.1:9599"  # default' in show({}).splitlines()
    config = tmp_path / "openkms.toml"
    config.write_text('metrics-listen = "off"\n')
    assert 'metrics-listen = "off"  # file' in show({}, "--config", str(config)).splitlines()
    shown = show({"OPENKMS_METRICS_LISTEN": "0.0.0.0:9100"}, "--config", str(config))
    assert 'metrics-listen = "0.0.0.0:9100"  # environment' in shown.splitlines()
