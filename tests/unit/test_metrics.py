"""The pure parts of the metrics and status: label vocabulary, the listen address, what one
request records, the sampler's deltas, the per-start directory, the status table."""

from __future__ import annotations

import datetime as dt
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from openkms.audit.events import AuditFacts
from openkms.metrics import directory
from openkms.metrics.labels import OTHER, LabelVocabulary, vocabulary
from openkms.metrics.listener import parse_listen
from openkms.metrics.recorder import Metrics, Sources
from openkms.status_table import status_table

NOW = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)


def _event(operation: str, error_code: str | None, seconds_ago: float = 0.002):
    facts = AuditFacts(request_id="r", service="kms", event_time=NOW, operation=operation)
    facts.started = time.perf_counter() - seconds_ago
    return facts.outcome(200 if error_code is None else 400, error_code)


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    found = registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


def test_the_vocabulary_is_the_served_models_operations_and_known_error_codes() -> None:
    labels = vocabulary()
    for name in ("Encrypt", "GenerateDataKey", "iam:CreateUser", "sts:AssumeRole"):
        assert labels.operation(name) == name
    assert labels.operation("cloudtrail:LookupEvents") == "cloudtrail:LookupEvents"
    assert labels.operation("MadeUpOperation") == OTHER
    assert labels.operation("arn:aws:kms:us-east-1:123456789012:key/x") == OTHER
    assert labels.outcome(None) == "ok"
    for code in ("NotFoundException", "ThrottlingException", "NoSuchEntity", "InternalFailure"):
        assert labels.outcome(code) == code
    assert labels.outcome("SomethingNobodyRaises") == OTHER
    assert len(labels.operations) < 500 and len(labels.error_codes) < 500


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9599", ("127.0.0.1", 9599)),
        ("0.0.0.0:9100", ("0.0.0.0", 9100)),
        ("[::1]:9599", ("::1", 9599)),
        ("localhost:1", ("localhost", 1)),
        ("off", None),
        ("OFF", None),
    ],
)
def test_a_listen_address_is_host_port_or_off(text: str, expected: object) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["9599", ":9599", "host:", "host:0", "host:65536", "h:x", "on"])
def test_a_bad_listen_address_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_listen(text)


def test_a_request_is_counted_by_operation_and_outcome_with_its_latency() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry, LabelVocabulary(frozenset({"Encrypt"}), frozenset({"X"})))
    metrics.request(_event("Encrypt", None, 0.002))
    metrics.request(_event("Encrypt", None, 0.002))
    metrics.request(_event("Encrypt", "ThrottlingException", 0.0001))
    metrics.request(_event("Invented", "X"))
    ok = {"operation": "Encrypt", "outcome": "ok"}
    assert _value(registry, "openkms_requests_total", **ok) == 2
    # An error code outside the vocabulary is "other"; so is an operation.
    assert _value(registry, "openkms_requests_total", operation="Encrypt", outcome=OTHER) == 1
    assert _value(registry, "openkms_requests_total", operation=OTHER, outcome="X") == 1
    assert _value(registry, "openkms_throttled_requests_total", operation="Encrypt") == 1
    assert _value(registry, "openkms_request_duration_seconds_count", operation="Encrypt") == 3
    assert (
        _value(registry, "openkms_request_duration_seconds_bucket", operation="Encrypt", le="0.001")
        == 1
    )
    assert (
        _value(
            registry, "openkms_request_duration_seconds_bucket", operation="Encrypt", le="0.0025"
        )
        == 3
    )
    assert b"Invented" not in generate_latest(registry)


def test_cache_hits_and_misses_are_added_as_deltas_at_each_sample() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry, LabelVocabulary(frozenset({"Encrypt"}), frozenset()))
    cache = [0, 0]
    metrics._sources = Sources(cache=lambda: (cache[0], cache[1]))
    cache[:] = [1, 2]
    metrics.sample()
    cache[:] = [5, 2]
    metrics.sample()
    metrics.sample()  # nothing new
    assert _value(registry, "openkms_key_cache_hits_total") == 5
    assert _value(registry, "openkms_key_cache_misses_total") == 2


def test_the_sampler_publishes_gauges_and_job_deltas() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry, LabelVocabulary(frozenset(), frozenset()))
    jobs = [(3, 1, NOW, NOW - dt.timedelta(seconds=5))]
    sources = Sources(
        audit_queue_depth=lambda: 7,
        pool_in_use=lambda: 2,
        sealed=lambda: True,
        jobs=lambda: jobs[0],
    )
    metrics.start(sources, NOW - dt.timedelta(hours=1))
    try:
        jobs[0] = (5, 1, NOW, NOW - dt.timedelta(seconds=5))
        metrics.sample()
        assert _value(registry, "openkms_audit_queue_depth") == 7
        assert _value(registry, "openkms_db_pool_connections_in_use") == 2
        assert _value(registry, "openkms_sealed") == 1
        assert _value(registry, "openkms_job_runs_total") == 5
        assert _value(registry, "openkms_job_failures_total") == 1
        assert _value(registry, "openkms_job_last_run_timestamp_seconds") == NOW.timestamp()
        assert _value(registry, "openkms_worker_processes") == 1
        assert _value(registry, "openkms_start_time_seconds") == NOW.timestamp() - 3600
    finally:
        metrics.stop()
    assert _value(registry, "openkms_worker_processes") == 0


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_the_start_directory_is_owner_only_fresh_and_old_starts_are_removed(tmp_path: Path) -> None:
    dead, alive = _dead_pid(), os.getppid()
    for pid in (dead, alive):
        (tmp_path / "metrics" / str(pid)).mkdir(parents=True)
    stale = tmp_path / "metrics" / str(os.getpid())
    stale.mkdir()
    (stale / "counter_1.db").write_bytes(b"old")
    path = directory.prepare(tmp_path)
    assert path == stale and list(path.iterdir()) == []
    assert stat.S_IMODE(path.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert not (tmp_path / "metrics" / str(dead)).exists()
    assert (tmp_path / "metrics" / str(alive)).exists()


def test_live_gauges_of_dead_processes_are_forgotten(tmp_path: Path) -> None:
    dead = _dead_pid()
    for name in (
        f"gauge_livesum_{dead}.db",
        f"gauge_livesum_{os.getpid()}.db",
        f"counter_{dead}.db",
    ):
        (tmp_path / name).write_bytes(b"")
    directory.forget_dead(tmp_path)
    # Counters of a dead worker stay (its requests happened); its live gauges go.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"gauge_livesum_{os.getpid()}.db", f"counter_{dead}.db"]
    )


def test_the_status_table_reads_as_one_line_per_part() -> None:
    status = {
        "version": "0.1.0",
        "started_at": "2026-12-03T10:00:00+00:00",
        "uptime_seconds": 93784.2,
        "root_of_trust": {"type": "shamir", "sealed": True, "threshold": 3, "progress": 1},
        "database": {"kind": "postgresql", "reachable": False, "error": "StorageError"},
        "keys_by_state": None,
        "workers": {"configured": 4, "serving": 3},
        "audit_trail": {
            "enabled": True,
            "available": True,
            "writers": 2,
            "queue_depth": 0,
            "newest_event": {
                "writer_id": "0123456789abcdef",
                "seq": 12,
                "hash": "ab" * 32,
                "event_time": "2026-12-03T11:00:00+00:00",
            },
        },
        "jobs": {"runs": 10, "failures": 1, "last_run": "t1", "last_failure": None},
    }
    lines = status_table(status).splitlines()
    assert lines[1].endswith("(up 1d 02:03:04)")
    assert lines[2].endswith("shamir: sealed (1 of 3 shares given)")
    assert lines[3].endswith("postgresql, UNREACHABLE (StorageError)")
    assert lines[4].endswith("3 serving of 4")
    assert lines[5].endswith("unknown (database unreachable)")
    assert "head abababababababab… (writer 01234567, seq 12" in lines[6]
    assert lines[7].endswith("10 runs, 1 failed; last run t1, last failure never")
