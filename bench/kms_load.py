"""Load benchmark: SigV4-signed Encrypt, Decrypt and GenerateDataKey against openkms and moto.

Run from the repository root:

    .venv/bin/python bench/kms_load.py [--duration S] [--concurrency N]
                                       [--openkms-url URL] [--moto-url URL] [--json FILE]

By default it starts both servers itself on free loopback ports (openkms with a temporary data
directory, ``moto_server`` from ``moto[server]``), creates one symmetric key on each, drives each
operation on each server with N worker threads for a bounded time and request count, prints a
table and stops the servers it started. Every request is signed afresh with
``botocore.auth.SigV4Auth``, as a real client signs it, and sent over a keep-alive connection
(one ``requests.Session`` per worker thread). See bench/README.md.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ipaddress
import json
import os
import platform
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

REGION = "us-east-1"
OPENKMS_ACCOUNT_ID = "123456789012"
OPENKMS_ACCESS_KEY_ID = "FOOBARKEY"
OPENKMS_SECRET_ACCESS_KEY = "FOOBARSECRET"  # noqa: S105 - the fixed test account, not a secret
# moto accepts any credentials; these are its documented test values.
MOTO_ACCESS_KEY_ID = "testing"
MOTO_SECRET_ACCESS_KEY = "testing"  # noqa: S105

OPERATIONS = ("Encrypt", "Decrypt", "GenerateDataKey")
REQUEST_TIMEOUT = 30.0


# --------------------------------------------------------------------------------------------
# Servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_loopback(url: str) -> str:
    """The URL without a trailing slash, if its host is a loopback address; else exit."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise SystemExit(f"not an http(s) URL: {url}")
    if host != "localhost":
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise SystemExit(f"only loopback addresses are benchmarked, not {host} ({url})")
    return url.rstrip("/")


class ManagedServer:
    """A server process this script started (and must stop)."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.command = command
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command, stdout=log, stderr=subprocess.STDOUT, env=self.env
            )

    def wait_ready(self, url: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                requests.get(url, timeout=1)
                return
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError(
            f"{self.name} did not become ready in {timeout:.0f} s:\n{self.log_tail()}"
        )

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of the process so far (Linux /proc), or None."""
        if self.process is None:
            return None
        try:
            stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        except OSError:
            return None
        fields = stat.rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def log_problems(self) -> list[str]:
        """Log lines that report server-side errors (tracebacks, ERROR/CRITICAL records)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return []
        markers = ("Traceback", " ERROR ", " CRITICAL ", "ERROR:")
        return [line for line in text.splitlines() if any(m in line for m in markers)]


def start_openkms(workdir: Path, extra_args: list[str]) -> tuple[ManagedServer, str]:
    port = free_port()
    data_dir = workdir / "openkms-data"
    data_dir.mkdir()
    env = {
        **os.environ,
        "OPENKMS_ACCOUNT_ID": OPENKMS_ACCOUNT_ID,
        "OPENKMS_ACCESS_KEY_ID": OPENKMS_ACCESS_KEY_ID,
        "OPENKMS_SECRET_ACCESS_KEY": OPENKMS_SECRET_ACCESS_KEY,
    }
    for name in [n for n in env if n.startswith("AWS_") or n == "OPENKMS_DATABASE_URL"]:
        env.pop(name)
    command = [
        sys.executable, "-m", "openkms", "serve",
        "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir),
        *extra_args,
    ]  # fmt: skip
    server = ManagedServer("openkms", command, env, workdir / "openkms.log")
    server.start()
    url = f"http://127.0.0.1:{port}"
    server.wait_ready(f"{url}/healthz")
    deadline = time.monotonic() + 30
    while requests.get(f"{url}/healthz", timeout=2).status_code != 200:
        if time.monotonic() > deadline:
            raise RuntimeError(f"openkms /healthz never answered 200:\n{server.log_tail()}")
        time.sleep(0.1)
    return server, url


def moto_server_executable() -> str:
    beside = Path(sys.executable).parent / "moto_server"
    if beside.exists():
        return str(beside)
    found = shutil.which("moto_server")
    if found is None:
        raise SystemExit('moto_server not found: pip install "moto[server]" (or pass --moto-url)')
    return found


def start_moto(workdir: Path) -> tuple[ManagedServer, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    command = [moto_server_executable(), "-H", "127.0.0.1", "-p", str(port)]
    server = ManagedServer("moto", command, env, workdir / "moto.log")
    server.start()
    url = f"http://127.0.0.1:{port}"
    server.wait_ready(f"{url}/moto-api/")  # any HTTP answer means it is listening
    return server, url


# --------------------------------------------------------------------------------------------
# Requests


@dataclass
class Target:
    name: str
    url: str
    credentials: Credentials
    key_id: str = ""
    ciphertext_b64: str = ""


class SignedKmsClient:
    """Signs each request afresh with SigV4 and sends it on one keep-alive session."""

    def __init__(self, target: Target, region: str) -> None:
        self.url = target.url + "/"
        self.signer = SigV4Auth(target.credentials, "kms", region)
        self.session = requests.Session()

    def send(self, operation: str, body: bytes) -> requests.Response:
        request = AWSRequest(
            method="POST",
            url=self.url,
            data=body,
            headers={
                "X-Amz-Target": f"TrentService.{operation}",
                "Content-Type": "application/x-amz-json-1.1",
            },
        )
        self.signer.add_auth(request)
        return self.session.post(
            self.url, data=body, headers=dict(request.headers.items()), timeout=REQUEST_TIMEOUT
        )

    def close(self) -> None:
        self.session.close()


def request_body(operation: str, target: Target, plaintext_b64: str) -> bytes:
    if operation == "Encrypt":
        payload = {"KeyId": target.key_id, "Plaintext": plaintext_b64}
    elif operation == "Decrypt":
        payload = {"KeyId": target.key_id, "CiphertextBlob": target.ciphertext_b64}
    elif operation == "GenerateDataKey":
        payload = {"KeyId": target.key_id, "KeySpec": "AES_256"}
    else:
        raise ValueError(operation)
    return json.dumps(payload).encode()


def prepare(target: Target, region: str, plaintext: bytes) -> None:
    """Create a key (boto3) and the ciphertext Decrypt will use; check one signed call per op."""
    client = boto3.session.Session().client(
        "kms",
        endpoint_url=target.url,
        region_name=region,
        aws_access_key_id=target.credentials.access_key,
        aws_secret_access_key=target.credentials.secret_key,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )
    key = client.create_key(Description=f"kms_load benchmark key ({target.name})")
    target.key_id = key["KeyMetadata"]["KeyId"]
    blob = client.encrypt(KeyId=target.key_id, Plaintext=plaintext)["CiphertextBlob"]
    target.ciphertext_b64 = base64.b64encode(blob).decode()
    # The benchmark's own signing path must work before it is timed.
    signed = SignedKmsClient(target, region)
    plaintext_b64 = base64.b64encode(plaintext).decode()
    try:
        for operation in OPERATIONS:
            answer = signed.send(operation, request_body(operation, target, plaintext_b64))
            if answer.status_code != 200:
                raise RuntimeError(
                    f"{target.name} {operation}: HTTP {answer.status_code} {answer.text[:300]}"
                )
            if operation == "Decrypt" and base64.b64decode(answer.json()["Plaintext"]) != plaintext:
                raise RuntimeError(f"{target.name} Decrypt returned a different plaintext")
    finally:
        signed.close()


# --------------------------------------------------------------------------------------------
# Load


@dataclass
class Result:
    server: str
    operation: str
    concurrency: int
    requests: int = 0
    non_2xx: int = 0
    transport_errors: int = 0
    wall_seconds: float = 0.0
    requests_per_second: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)
    server_cpu_seconds: float | None = None
    client_cpu_seconds: float = 0.0


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, int(-(-fraction * len(sorted_values) // 1)))  # ceil
    return sorted_values[min(rank, len(sorted_values)) - 1]


class Budget:
    """At most ``limit`` requests in total across the worker threads."""

    def __init__(self, limit: int) -> None:
        self._left = limit
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self._left <= 0:
                return False
            self._left -= 1
            return True


def run_phase(
    target: Target,
    operation: str,
    region: str,
    plaintext_b64: str,
    concurrency: int,
    duration: float,
    max_requests: int,
) -> tuple[list[float], Counter[str], int, list[str], float]:
    """Drive one operation; return latencies (s), status counts, transport errors, samples, wall."""
    body = request_body(operation, target, plaintext_b64)
    budget = Budget(max_requests)
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    statuses: list[Counter[str]] = [Counter() for _ in range(concurrency)]
    transport = [0] * concurrency
    samples: list[str] = []
    samples_lock = threading.Lock()
    start_gate = threading.Barrier(concurrency + 1)
    stop_at = [0.0]

    def worker(index: int) -> None:
        client = SignedKmsClient(target, region)
        mine = latencies[index]
        counts = statuses[index]
        try:
            start_gate.wait()
            while time.monotonic() < stop_at[0] and budget.take():
                began = time.perf_counter()
                try:
                    answer = client.send(operation, body)
                    answer.content  # noqa: B018 - read the whole body before stopping the clock
                except requests.RequestException as error:
                    transport[index] += 1
                    with samples_lock:
                        if len(samples) < 5:
                            samples.append(f"transport: {type(error).__name__}: {error}")
                    continue
                elapsed = time.perf_counter() - began
                mine.append(elapsed)
                counts[str(answer.status_code)] += 1
                if not 200 <= answer.status_code < 300:
                    with samples_lock:
                        if len(samples) < 5:
                            samples.append(f"HTTP {answer.status_code}: {answer.text[:200]}")
        finally:
            client.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    began = time.monotonic()
    stop_at[0] = began + duration
    start_gate.wait()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - began
    merged = sorted(value for per_worker in latencies for value in per_worker)
    total: Counter[str] = Counter()
    for counts in statuses:
        total.update(counts)
    return merged, total, sum(transport), samples, wall


def measure(
    target: Target,
    server: ManagedServer | None,
    operation: str,
    args: argparse.Namespace,
    plaintext_b64: str,
) -> Result:
    if args.warmup > 0:
        run_phase(
            target, operation, args.region, plaintext_b64,
            args.concurrency, args.warmup, args.max_requests,
        )  # fmt: skip
    server_cpu_before = server.cpu_seconds() if server else None
    client_cpu_before = time.process_time()
    latencies, statuses, transport, samples, wall = run_phase(
        target, operation, args.region, plaintext_b64,
        args.concurrency, args.duration, args.max_requests,
    )  # fmt: skip
    client_cpu = time.process_time() - client_cpu_before
    server_cpu_after = server.cpu_seconds() if server else None
    answered = len(latencies)
    ok = sum(n for status, n in statuses.items() if status.startswith("2"))
    return Result(
        server=target.name,
        operation=operation,
        concurrency=args.concurrency,
        requests=answered + transport,
        non_2xx=answered - ok,
        transport_errors=transport,
        wall_seconds=round(wall, 3),
        requests_per_second=round(answered / wall, 1) if wall > 0 else 0.0,
        p50_ms=round(percentile(latencies, 0.50) * 1000, 2),
        p99_ms=round(percentile(latencies, 0.99) * 1000, 2),
        max_ms=round((latencies[-1] if latencies else 0.0) * 1000, 2),
        statuses=dict(sorted(statuses.items())),
        error_samples=samples,
        server_cpu_seconds=(
            round(server_cpu_after - server_cpu_before, 2)
            if server_cpu_before is not None and server_cpu_after is not None
            else None
        ),
        client_cpu_seconds=round(client_cpu, 2),
    )


# --------------------------------------------------------------------------------------------
# Report


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def version_of(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_info() -> dict[str, Any]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    try:
        memory_kib = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        memory_kib = 0
    return {
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "openkms": version_of("openkms"),
        "moto": version_of("moto"),
        "boto3": version_of("boto3"),
        "botocore": version_of("botocore"),
        "requests": version_of("requests"),
    }


def print_report(machine: dict[str, Any], settings: dict[str, Any], results: list[Result]) -> None:
    print()
    print("Machine")
    for name, value in machine.items():
        print(f"  {name:<13} {value}")
    print("Run")
    for name, value in settings.items():
        print(f"  {name:<13} {value}")
    print()
    header = (
        f"{'server':<8} {'operation':<16} {'requests':>9} {'non-2xx':>8} {'errors':>7} "
        f"{'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'srv CPU':>8} {'cli CPU':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        server_cpu = "-" if r.server_cpu_seconds is None else f"{r.server_cpu_seconds:.1f}s"
        print(
            f"{r.server:<8} {r.operation:<16} {r.requests:>9} {r.non_2xx:>8} "
            f"{r.transport_errors:>7} {r.requests_per_second:>9.1f} {r.p50_ms:>8.2f} "
            f"{r.p99_ms:>8.2f} {r.max_ms:>8.2f} {server_cpu:>8} {r.client_cpu_seconds:>7.1f}s"
        )
    print()
    print(
        "requests: answered + transport errors; non-2xx: answered with another status; "
        "errors: no HTTP answer;\nsrv/cli CPU: CPU seconds used by the server process (when "
        "started here) / this load generator during the timed phase."
    )
    for r in results:
        for sample in r.error_samples:
            print(f"  {r.server} {r.operation}: {sample}")


# --------------------------------------------------------------------------------------------
# Main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "SigV4-signed Encrypt/Decrypt/GenerateDataKey load against openkms and moto_server. "
            "Without URLs it starts both servers on free loopback ports and stops them after."
        )
    )
    parser.add_argument(
        "--duration", type=float, default=10.0, help="seconds per operation per server (10)"
    )
    parser.add_argument("--concurrency", type=int, default=8, help="worker threads (8)")
    parser.add_argument(
        "--max-requests",
        type=int,
        default=200_000,
        help="request cap per operation per server, whichever of time or count ends first",
    )
    parser.add_argument(
        "--warmup", type=float, default=1.0, help="untimed seconds before each phase (1)"
    )
    parser.add_argument(
        "--openkms-url",
        help="use this running openkms (loopback) instead of starting one; credentials from "
        "OPENKMS_ACCESS_KEY_ID / OPENKMS_SECRET_ACCESS_KEY (default FOOBARKEY/FOOBARSECRET)",
    )
    parser.add_argument(
        "--openkms-args",
        default="",
        help="extra arguments for the openkms it starts, e.g. "
        '"--log-level warning" or "--database-url postgresql://..."',
    )
    parser.add_argument(
        "--moto-url", help="use this running moto_server (loopback) instead of starting one"
    )
    parser.add_argument(
        "--servers",
        default="openkms,moto",
        help="comma-separated subset of openkms,moto to benchmark (both)",
    )
    parser.add_argument(
        "--plaintext-bytes", type=int, default=32, help="Encrypt plaintext size (32)"
    )
    parser.add_argument("--region", default=REGION, help=f"signing region ({REGION})")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.concurrency < 1 or args.max_requests < 1:
        parser.error("--duration, --concurrency and --max-requests must be positive")
    if not 1 <= args.plaintext_bytes <= 4096:
        parser.error("--plaintext-bytes must be between 1 and 4096")
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    if not args.servers or set(args.servers) - {"openkms", "moto"}:
        parser.error("--servers takes openkms, moto or both")
    return args


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds main(), which stops the servers it started


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, _exit_on_signal)
    plaintext = os.urandom(args.plaintext_bytes)
    plaintext_b64 = base64.b64encode(plaintext).decode()
    started: dict[str, ManagedServer] = {}
    targets: list[Target] = []
    results: list[Result] = []
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kms-load-")))
        stack.callback(lambda: [server.stop() for server in started.values()])
        if "openkms" in args.servers:
            if args.openkms_url:
                url = require_loopback(args.openkms_url)
            else:
                print("starting openkms ...", flush=True)
                started["openkms"], url = start_openkms(workdir, shlex.split(args.openkms_args))
            credentials = Credentials(
                os.environ.get("OPENKMS_ACCESS_KEY_ID", OPENKMS_ACCESS_KEY_ID),
                os.environ.get("OPENKMS_SECRET_ACCESS_KEY", OPENKMS_SECRET_ACCESS_KEY),
            )
            targets.append(Target("openkms", url, credentials))
        if "moto" in args.servers:
            if args.moto_url:
                url = require_loopback(args.moto_url)
            else:
                print("starting moto_server ...", flush=True)
                started["moto"], url = start_moto(workdir)
            targets.append(
                Target("moto", url, Credentials(MOTO_ACCESS_KEY_ID, MOTO_SECRET_ACCESS_KEY))
            )
        for target in targets:
            prepare(target, args.region, plaintext)
            print(f"{target.name} at {target.url}: key {target.key_id}", flush=True)
        for target in targets:
            for operation in OPERATIONS:
                print(
                    f"  {target.name} {operation}: {args.duration:g} s x "
                    f"{args.concurrency} threads ...",
                    flush=True,
                )
                results.append(
                    measure(target, started.get(target.name), operation, args, plaintext_b64)
                )
        log_problems = {name: server.log_problems() for name, server in started.items()}
    machine = machine_info()
    settings = {
        "command": " ".join(["bench/kms_load.py", *(argv if argv is not None else sys.argv[1:])]),
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "concurrency": args.concurrency,
        "max_requests": args.max_requests,
        "plaintext": f"{args.plaintext_bytes} bytes",
        "openkms_args": args.openkms_args or "(none)",
        "servers": ", ".join(
            f"{t.name} {t.url} ({'started here' if t.name in started else 'external'})"
            for t in targets
        ),
    }
    print_report(machine, settings, results)
    for name, lines in log_problems.items():
        if lines:
            print(f"\n{name} log: {len(lines)} error line(s), first ones:")
            for line in lines[:5]:
                print(f"  {line}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": machine,
                    "settings": settings,
                    "results": [asdict(r) for r in results],
                    "server_log_errors": {k: len(v) for k, v in log_problems.items()},
                },
                indent=2,
            )
            + "\n"
        )
        print(f"\nwrote {args.json}")
    failed = any(r.non_2xx or r.transport_errors for r in results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
