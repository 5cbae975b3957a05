"""Where a server's CPU goes per request: each process and thread of ``openkms serve``.

Starts openkms as ``wrk_bench.py`` does, replays pre-signed Encrypt 32 B requests with wrk
for ``--seconds``, and prints the requests per second, the trail's events per group commit
(from ``openkms_audit_write_seconds_count``) and, from ``/proc``, the CPU of every thread of
the supervisor and the workers per request. A process's main thread is its event loop (a
worker) or uvicorn's supervisor; the others are the trail's writer (the supervisor's, with
several workers on SQLite), the request log's flusher, the jobs, the change feed and the
metrics sampler.

    .venv/bin/python bench/process_cpu.py [--seconds 8] [--connections 16] -- --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).parent))
import wrk_bench  # noqa: E402 - the benchmark's own helpers, beside this file


def thread_ticks(pids: list[int]) -> dict[tuple[int, int], int]:
    ticks = {}
    for pid in pids:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            ticks[(pid, int(tid))] = int(fields[11]) + int(fields[12])
    return ticks


def commits(metrics_url: str) -> tuple[float, float]:
    """The trail's group commits so far, and the seconds they took in all."""
    text = requests.get(metrics_url, timeout=5).text
    counts = re.findall(r"^openkms_audit_write_seconds_count\S* (\S+)", text, re.M)
    sums = re.findall(r"^openkms_audit_write_seconds_sum\S* (\S+)", text, re.M)
    return sum(float(count) for count in counts), sum(float(total) for total in sums)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("openkms_args", nargs="*", help="after --: openkms serve's own")
    args = parser.parse_args()
    wrk = wrk_bench.find_or_install_wrk()
    work = Path(tempfile.mkdtemp(prefix="openkms-cpu-"))
    target = wrk_bench.start_openkms(work, "openkms", args.openkms_args)
    assert target.server is not None
    try:
        wrk_bench.prepare(target, 10)
        load = wrk_bench.workload("Encrypt 32 B", target, 2000, "roundrobin")
        pool_file = work / "pool.tsv"
        wrk_bench.write_pool(pool_file, wrk_bench.sign_pool(target, load.operation, load.bodies))
        metrics = next(a for a in target.server.command if a.startswith("127.0.0.1:"))
        metrics_url = f"http://{metrics}/metrics"
        root = target.server.process.pid
        pids = [root, *wrk_bench.descendants(root, wrk_bench.proc_table())]
        commits_before, before = commits(metrics_url), thread_ticks(pids)
        command = [
            wrk, "-t", "2", "-c", str(args.connections), "-d", f"{args.seconds}s",
            "-s", str(wrk_bench.LUA_SCRIPT), target.url + "/", "--", str(pool_file),
            "roundrobin", "on",
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        after, commits_after = thread_ticks(pids), commits(metrics_url)
    finally:
        target.server.stop()
    result = next(
        json.loads(line[len(wrk_bench.RESULT_MARKER) :])
        for line in done.stdout.splitlines()
        if line.startswith(wrk_bench.RESULT_MARKER)
    )
    count = int(result["requests"])
    rate = count / (result["duration_us"] / 1e6)
    print(f"{rate:.0f} req/s, {result['errors']['status']} non-2xx")
    group_commits = commits_after[0] - commits_before[0]
    if group_commits:
        took = (commits_after[1] - commits_before[1]) / group_commits * 1e6
        print(
            f"{group_commits:.0f} group commits, {count / group_commits:.2f} events each, "
            f"{took:.0f} µs each"
        )
    per_tick = 1e6 / os.sysconf("SC_CLK_TCK") / count
    total = 0.0
    for (pid, tid), ticks in sorted(after.items()):
        used = (ticks - before.get((pid, tid), 0)) * per_tick
        total += used
        if used >= 1:
            role = "supervisor" if pid == root else f"worker {pid}"
            thread = "main thread" if tid == pid else f"thread {tid}"
            print(f"  {role:14} {thread:14} {used:6.0f} µs/request")
    print(f"  all processes {total:.0f} µs/request")


if __name__ == "__main__":
    main()
