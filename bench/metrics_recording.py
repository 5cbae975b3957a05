"""Per-request cost of recording metrics (``Metrics.request``), in prometheus-client's
multiprocess mode as ``openkms serve`` runs it: ``python bench/metrics_recording.py``."""

from __future__ import annotations

import datetime as dt
import functools
import tempfile
import timeit
from pathlib import Path

from openkms.audit.events import AuditFacts
from openkms.metrics import directory
from openkms.metrics.recorder import Metrics


def main() -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        directory.enable(directory.prepare(Path(data_dir)))
        metrics = Metrics()
        facts = AuditFacts(
            request_id="r", service="kms", event_time=dt.datetime.now(dt.UTC), operation="Encrypt"
        )
        event = facts.outcome(200, None)

        one_request = functools.partial(metrics.request, event)
        one_request()
        runs = 200_000
        best = min(timeit.repeat(one_request, number=runs, repeat=5)) / runs
        print(f"Metrics.request (multiprocess mode): {best * 1e6:.2f} µs per request")


if __name__ == "__main__":
    main()
