"""What one server process records, and how cheaply.

A request is recorded once, where its log line is made (``request``): a counter by operation
and outcome and a latency histogram by operation. Label children are kept in a dict, so a
warm request pays one dict look-up and three value increments under prometheus-client's own
locks (about 5 µs in multiprocess mode on the development machine, bench/metrics_recording.py),
nothing else: no I/O beyond writes to the memory-mapped files of multiprocess mode.

The rest is sampled by one thread every ``SAMPLE_SECONDS``: the key cache's hits and misses
(plain integers the cache keeps, added as deltas, so a cache hit costs the request an integer
addition), audit queue depth, database pool use, seal state, the background jobs' runs.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from openkms.metrics.labels import LabelVocabulary, vocabulary

if TYPE_CHECKING:
    from openkms.audit.events import AuditEvent

SAMPLE_SECONDS = 1.0
# Seconds; from a warm Encrypt (well under a millisecond) to a request timing out (10 s).
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
AUDIT_WRITE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5)
THROTTLED = "ThrottlingException"


@dataclass
class Sources:
    """Where the sampler reads what it publishes; each returns a number, never raises."""

    audit_queue_depth: Callable[[], int] = lambda: 0
    pool_in_use: Callable[[], int] = lambda: 0
    sealed: Callable[[], bool] = lambda: False
    # (runs, failures, last run time, last failure time) of this process's job runner.
    jobs: Callable[[], tuple[int, int, dt.datetime | None, dt.datetime | None]] = lambda: (
        0,
        0,
        None,
        None,
    )
    # (hits, misses) of the key cache, ever.
    cache: Callable[[], tuple[int, int]] = lambda: (0, 0)


class Metrics:
    """The metrics of one process. In multiprocess mode (``openkms.metrics.directory``) pass
    no registry: values go to the per-process files the node's listener aggregates."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        labels: LabelVocabulary | None = None,
    ) -> None:
        self._labels = labels or vocabulary()
        r: Any = registry
        self.requests = Counter(
            "openkms_requests",
            "API requests answered, by operation and outcome (ok or the AWS error code).",
            ["operation", "outcome"],
            registry=r,
        )
        self.latency = Histogram(
            "openkms_request_duration_seconds",
            "Time from the request's arrival to its answer being ready, by operation.",
            ["operation"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.throttled = Counter(
            "openkms_throttled_requests",
            "Requests refused with ThrottlingException (request quotas, body budget).",
            ["operation"],
            registry=r,
        )
        self.cache_hits = Counter(
            "openkms_key_cache_hits", "Key and alias look-ups answered from the cache.", registry=r
        )
        self.cache_misses = Counter(
            "openkms_key_cache_misses", "Key and alias look-ups that read the database.", registry=r
        )
        self.audit_queue = Gauge(
            "openkms_audit_queue_depth",
            "Audit events waiting for the trail's writer (summed over workers).",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.audit_write = Histogram(
            "openkms_audit_write_seconds",
            "Time to commit one group of audit events to the trail.",
            buckets=AUDIT_WRITE_BUCKETS,
            registry=r,
        )
        self.pool_in_use = Gauge(
            "openkms_db_pool_connections_in_use",
            "Database connections checked out of the pools (summed over workers).",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.job_runs = Counter(
            "openkms_job_runs", "Passes of the background lifecycle jobs.", registry=r
        )
        self.job_failures = Counter(
            "openkms_job_failures", "Passes of the background jobs that failed.", registry=r
        )
        self.job_last_run = Gauge(
            "openkms_job_last_run_timestamp_seconds",
            "When a background job pass last finished (any worker).",
            multiprocess_mode="max",
            registry=r,
        )
        self.job_last_failure = Gauge(
            "openkms_job_last_failure_timestamp_seconds",
            "When a background job pass last failed (any worker).",
            multiprocess_mode="max",
            registry=r,
        )
        self.sealed = Gauge(
            "openkms_sealed",
            "1 while the node is sealed (no key can be used), else 0.",
            multiprocess_mode="livemax",
            registry=r,
        )
        self.workers = Gauge(
            "openkms_worker_processes",
            "Worker processes serving the API now.",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.started = Gauge(
            "openkms_start_time_seconds",
            "When the server started (Unix time, the injected clock).",
            multiprocess_mode="min",
            registry=r,
        )
        self._request_children: dict[tuple[str, str | None], tuple[Any, Any, Any]] = {}
        self._cache_seen = (0, 0)
        self._jobs_seen = (0, 0)
        self._sources = Sources()
        self._stop = threading.Event()
        self._sampling = threading.Lock()
        self._sampler: threading.Thread | None = None

    # -- the request path -----------------------------------------------------------------

    def request(self, event: AuditEvent) -> None:
        """Record one answered request; called once per request, on the event loop."""
        facts = event.facts
        key = (facts.operation, event.error_code)
        children = self._request_children.get(key)
        if children is None:
            children = self._children(*key)
        count, latency, throttled = children
        count.inc()
        latency.observe(perf_counter() - facts.started)
        if throttled is not None:
            throttled.inc()

    def _children(self, operation: str, error_code: str | None) -> tuple[Any, Any, Any]:
        op = self._labels.operation(operation)
        outcome = self._labels.outcome(error_code)
        children = (
            self.requests.labels(op, outcome),
            self.latency.labels(op),
            self.throttled.labels(op) if error_code == THROTTLED else None,
        )
        # Bounded: the vocabulary's operations x outcomes, and raw names that map to them
        # (an unknown raw name is dropped from the dict's growth by not being kept).
        if op != "other" or len(self._request_children) < 10_000:
            self._request_children[(operation, error_code)] = children
        return children

    # -- off the request path -------------------------------------------------------------

    def audit_written(self, seconds: float) -> None:
        """One group commit of the trail (the writer thread)."""
        self.audit_write.observe(seconds)

    def start(self, sources: Sources, started_at: dt.datetime, serving: bool = True) -> None:
        """Begin sampling ``sources``; ``serving``: this process answers API requests."""
        self._sources = sources
        self.mark_started(started_at)
        if serving:
            self.workers.set(1)
        self.sample()
        if self._sampler is None:
            self._stop.clear()
            self._sampler = threading.Thread(target=self._run, name="openkms-metrics", daemon=True)
            self._sampler.start()

    def mark_started(self, started_at: dt.datetime) -> None:
        self.started.set(started_at.timestamp())

    def stop(self) -> None:
        self._stop.set()
        if self._sampler is not None:
            self._sampler.join(timeout=5)
            self._sampler = None
        self.workers.set(0)

    def sample(self) -> None:
        with self._sampling:  # the sampler thread and a status request: deltas added once
            self._sample()

    def _sample(self) -> None:
        sources = self._sources
        hits, misses = sources.cache()
        seen_hits, seen_misses = self._cache_seen
        if hits > seen_hits:
            self.cache_hits.inc(hits - seen_hits)
        if misses > seen_misses:
            self.cache_misses.inc(misses - seen_misses)
        self._cache_seen = (hits, misses)
        self.audit_queue.set(sources.audit_queue_depth())
        self.pool_in_use.set(sources.pool_in_use())
        self.sealed.set(1 if sources.sealed() else 0)
        runs, failures, last_run, last_failure = sources.jobs()
        seen_runs, seen_failures = self._jobs_seen
        if runs > seen_runs:
            self.job_runs.inc(runs - seen_runs)
        if failures > seen_failures:
            self.job_failures.inc(failures - seen_failures)
        self._jobs_seen = (runs, failures)
        if last_run is not None:
            self.job_last_run.set(last_run.timestamp())
        if last_failure is not None:
            self.job_last_failure.set(last_failure.timestamp())

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            try:
                self.sample()
            except Exception:  # noqa: BLE001, S112 - a sample lost is not worth a request
                continue
