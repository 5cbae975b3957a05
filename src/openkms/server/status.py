"""What ``openkms status`` and the operator's ``/healthz`` report about a running node.

Counts and states only: no key id, no account id, no secret. Each part is read on its own,
so a database that cannot be reached is reported as such rather than failing the report."""

from __future__ import annotations

import datetime as dt
import logging
import os
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from openkms.metrics import directory as metrics_directory
from openkms.metrics.listener import aggregate_samples

if TYPE_CHECKING:
    from openkms.server.runtime import Runtime

log = logging.getLogger(__name__)
DEV_KEY_FILE = "dev-key-file"


def node_status(runtime: Runtime) -> dict[str, Any]:
    """Run on a worker thread: it reads the database and the trail."""
    now = runtime.services.clock.now()
    totals = _metric_totals(runtime)
    started = totals.get("openkms_start_time_seconds")
    started_at = (
        dt.datetime.fromtimestamp(started, dt.UTC) if started is not None else runtime.started_at
    )
    database, keys = _database(runtime)
    return {
        "version": _version(),
        "started_at": _iso(started_at),
        "uptime_seconds": round(max(0.0, (now - started_at).total_seconds()), 3),
        "root_of_trust": _root_of_trust(runtime),
        "database": database,
        "keys_by_state": keys,
        "workers": {
            "configured": runtime.config.workers,
            "serving": int(totals.get("openkms_worker_processes", 1)),
            "answered_by_pid": os.getpid(),
        },
        "audit_trail": _audit(runtime),
        "jobs": _jobs(runtime, totals),
    }


def _version() -> str:
    try:
        return version("openkms")
    except PackageNotFoundError:
        return "unknown"


def _root_of_trust(runtime: Runtime) -> dict[str, Any]:
    seal = runtime.seal
    if seal is None:
        return {"type": DEV_KEY_FILE, "sealed": False}
    # Type, threshold, share count, shares given, root-key generation: no share, no key.
    return dict(seal.status())


def _database(runtime: Runtime) -> tuple[dict[str, Any], dict[str, int] | None]:
    """The database's kind and whether it answers; the keys of every account by state."""
    db = runtime.services.db
    report: dict[str, Any] = {"kind": db.dialect, "reachable": False}
    keys = None
    try:
        with db.transaction(readonly=True) as tx:
            keys = dict(sorted(tx.count_keys_by_state().items()))
        report["reachable"] = True
    except Exception as error:  # noqa: BLE001 - reported, with its type only (no values)
        report["error"] = type(error).__name__
    return report, keys


def _audit(runtime: Runtime) -> dict[str, Any]:
    if runtime.trail_api is None:
        return {"enabled": False}
    report: dict[str, Any] = {
        "enabled": True,
        "available": runtime.audit.available,
        "queue_depth": int(getattr(runtime.audit, "queue_depth", 0)),
    }
    try:
        report.update(runtime.trail_api.store.head())
    except Exception as error:  # noqa: BLE001 - reported, with its type only
        report["error"] = type(error).__name__
    return report


def _jobs(runtime: Runtime, totals: dict[str, float]) -> dict[str, Any]:
    runs, failures, last_run, last_failure = runtime.jobs.stats()
    if totals:
        # Every worker's passes, not only this one's.
        runs = int(totals.get("openkms_job_runs_total", runs))
        failures = int(totals.get("openkms_job_failures_total", failures))
        last_run = _from_timestamp(totals.get("openkms_job_last_run_timestamp_seconds"))
        last_failure = _from_timestamp(totals.get("openkms_job_last_failure_timestamp_seconds"))
    return {
        "interval_seconds": runtime.config.job_interval_seconds,
        "runs": runs,
        "failures": failures,
        "last_run": _iso(last_run),
        "last_failure": _iso(last_failure),
    }


def _metric_totals(runtime: Runtime) -> dict[str, float]:
    path = metrics_directory.current()
    if path is None or runtime.metrics is None:
        return {}
    try:
        runtime.metrics.sample()  # this process's share as of now
        return aggregate_samples(path)
    except Exception as error:  # noqa: BLE001 - the report goes on without the aggregate
        log.warning("status: cannot read the metrics (%s)", type(error).__name__)
        return {}


def _from_timestamp(value: float | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(value, dt.UTC) if value else None


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
