"""The per-start directory of prometheus-client's multiprocess mode.

Every process of a start (the supervisor and its spawned workers) writes its values to
memory-mapped files in ``<data dir>/metrics/<supervisor pid>``; the node's listener reads
them all, so one scrape sees every worker. The directory is owner-only (its files hold only
counts, but the data directory's rule is owner-only for everything) and emptied at start:
counts begin at zero with each start. Directories left by earlier starts whose supervisor is
gone are removed.

The mode is chosen by prometheus-client from ``PROMETHEUS_MULTIPROC_DIR`` when a value is
made, so ``enable`` runs before any ``Metrics`` exists; spawned workers inherit the variable.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from prometheus_client import values
from prometheus_client.multiprocess import mark_process_dead

from openkms.processes import process_alive

ENV = "PROMETHEUS_MULTIPROC_DIR"
_PID_FILE = re.compile(r"^gauge_live\w+?_(\d+)\.db$")


def prepare(data_dir: Path, pid: int | None = None) -> Path:
    """Make (or empty) this start's directory and remove those of dead earlier starts."""
    pid = os.getpid() if pid is None else pid
    parent = data_dir / "metrics"
    parent.mkdir(mode=0o700, exist_ok=True)
    os.chmod(parent, 0o700)
    for entry in parent.iterdir():
        if entry.name.isdigit() and int(entry.name) != pid and not process_alive(int(entry.name)):
            shutil.rmtree(entry, ignore_errors=True)
    path = parent / str(pid)
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(mode=0o700)
    return path


def enable(path: Path) -> None:
    """Multiprocess mode for this process and the workers it will spawn."""
    os.environ[ENV] = str(path)
    values.ValueClass = values.get_value_class()


def current() -> Path | None:
    value = os.environ.get(ENV)
    return Path(value) if value else None


def forget_dead(path: Path) -> None:
    """Drop the live gauges of processes that are gone (a worker uvicorn replaced), so that
    "live" gauges (queue depth, pool use, workers) count only processes that exist."""
    try:
        names = os.listdir(path)
    except OSError:
        return
    for name in names:
        match = _PID_FILE.match(name)
        if match and not process_alive(int(match.group(1))):
            mark_process_dead(int(match.group(1)), str(path))
