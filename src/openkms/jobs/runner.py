"""Runs the lifecycle jobs on a thread of each server process, every ``interval`` seconds.

A thread, not the event loop: the jobs write to the database, and the event loop must never
wait for it. A failed pass (the database away, a lock timeout) is logged and tried again on
the next tick; nothing it did is half-done, since each step is one transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable

from openkms.jobs.lifecycle import JobReport, LifecycleJobs
from openkms.storage import StorageError

log = logging.getLogger(__name__)


class JobRunner:
    def __init__(
        self,
        jobs: LifecycleJobs,
        interval: float = 1.0,
        paused: Callable[[], bool] = lambda: False,
        now: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.jobs = jobs
        # What the metrics and `openkms status` report: passes of this process's loop (only
        # its thread writes them), timed by the injected clock.
        self.runs = 0
        self.failures = 0
        self.last_run: dt.datetime | None = None
        self.last_failure: dt.datetime | None = None
        self._now = now or (lambda: dt.datetime.now(dt.UTC))
        # True while the service is sealed: no job can wrap or unwrap then.
        self._paused = paused
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None or self._interval <= 0:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="openkms-jobs", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def run_once(self) -> JobReport:
        return self.jobs.run_once()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            if self._paused():
                continue
            try:
                self.jobs.run_once()
            except StorageError as error:
                self._failed()
                # The type only: a driver's message can quote the statement's parameters.
                log.warning(
                    "lifecycle jobs: the database failed (%s); retrying", type(error).__name__
                )
            except Exception:
                self._failed()
                log.exception("lifecycle jobs: a pass failed; retrying")
            self.runs += 1
            self.last_run = self._now()

    def stats(self) -> tuple[int, int, dt.datetime | None, dt.datetime | None]:
        return self.runs, self.failures, self.last_run, self.last_failure

    def _failed(self) -> None:
        self.failures += 1
        self.last_failure = self._now()
