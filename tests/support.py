"""Running real openkms servers for the tests: processes on free ports, boto3 clients."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import boto3
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.config import Config
from botocore.credentials import Credentials

ACCOUNT_ID = "123456789012"
ACCESS_KEY_ID = "FOOBARKEY"
SECRET_ACCESS_KEY = "FOOBARSECRET"
REGION = "us-east-1"
T = TypeVar("T")

# No retries: a test must see the server's first answer, not a retried one.
CLIENT_CONFIG = Config(
    retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=30
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OpenKmsServer:
    """One ``openkms serve`` process, started and stopped as a user would."""

    def __init__(
        self,
        data_dir: Path,
        database_url: str | None = None,
        extra_args: list[str] | None = None,
        env: dict[str, str] | None = None,
        root_key_file: Path | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.database_url = database_url
        self.extra_args = extra_args or []
        self.root_key_file = root_key_file
        # Each server's metrics on a port of its own: tests run servers side by side, and
        # the default (127.0.0.1:9599) would be taken by the first.
        self.metrics_port = free_port()
        self.env = {
            "OPENKMS_ACCOUNT_ID": ACCOUNT_ID,
            "OPENKMS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "OPENKMS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "OPENKMS_METRICS_LISTEN": f"127.0.0.1:{self.metrics_port}",
            **(env or {}),
        }
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / f"server-{self.port}.log"
        self.clock_file = data_dir / "clock-offset"

    # "https" for a server started with --tls-cert-file; health checks then verify against
    # ``health_verify`` (the test's CA file).
    scheme = "http"
    health_verify: str | bool = True

    @property
    def endpoint(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def metrics_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def command(self) -> list[str]:
        command = [
            sys.executable,
            "-m",
            "openkms",
            "serve",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
        ]
        return command + self._storage_args() + self._worker_args() + self.extra_args

    def _worker_args(self) -> list[str]:
        # One worker unless the test asks for more (or its config file says): the default is
        # the CPU count, and every extra worker costs each start a spawned interpreter. The
        # tests of several workers (serving, invalidation, the trail's chains) name theirs.
        if "--workers" in self.extra_args or "--config" in self.extra_args:
            return []
        if "OPENKMS_WORKERS" in self.env:
            return []
        return ["--workers", "1"]

    def _storage_args(self) -> list[str]:
        args = []
        if self.database_url:
            args += ["--database-url", self.database_url]
        if self.root_key_file:
            args += ["--root-key-file", str(self.root_key_file)]
        return args

    def start(self, timeout: float = 30.0) -> OpenKmsServer:
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # as openkms makes it
        env = {**os.environ, **self.env, "OPENKMS_CLOCK_FILE": str(self.clock_file)}
        for name in [n for n in env if n.startswith("AWS_")]:
            env.pop(name)
        # Owner-only, as everything in a data directory must be: a sealed store refuses to
        # start beside a file others can read.
        descriptor = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        log = os.fdopen(descriptor, "ab")  # the process owns it until stop()
        self.process = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, env=env
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"openkms exited with {self.process.returncode}:\n{self.log()}")
            try:
                if (
                    requests.get(
                        f"{self.endpoint}/healthz", timeout=1, verify=self.health_verify
                    ).status_code
                    == 200
                ):
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"openkms did not become healthy:\n{self.log()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """Stop abruptly, as a crash would (the workers follow their parent down)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None
            self._wait_until_port_is_free()

    def _wait_until_port_is_free(self, timeout: float = 30.0) -> None:
        # Workers of the killed parent may still hold the listening socket for a moment; a
        # restart before they are gone would race them for the port.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    pass
            except OSError:
                return
            time.sleep(0.05)
        raise RuntimeError(f"port {self.port} still answers after the server was killed")

    def restart(self) -> OpenKmsServer:
        self.stop()
        return self.start()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, fragment: str, timeout: float = 10.0) -> str:
        """The log once it holds ``fragment`` (request lines are written in batches)."""
        deadline = time.monotonic() + timeout
        while fragment not in (text := self.log()):
            if time.monotonic() > deadline:
                raise AssertionError(f"{fragment!r} never reached the server log")
            time.sleep(0.02)
        return text

    def move_clock(self, seconds: float) -> None:
        """Shift the server's clock (read from OPENKMS_CLOCK_FILE) by ``seconds`` from now.

        The server stats the file on every reading of its clock and re-reads it when the
        modification time differs from the one it last saw, so the new offset holds from the
        next request on, provided that the server never sees a half-written file and that
        the mtime really changes. Writing in place breaks both: the server can read the
        truncated, empty file (offset 0) and keep its mtime, and two writes within one tick
        of the filesystem's timestamps leave the mtime as it was. So the offset is written to
        a temporary file, given an mtime strictly after the current file's (checked by
        reading it back, so coarse timestamps cannot round it away), and renamed over the
        clock file in one step.
        """
        previous = self._clock_file_mtime_ns()
        temporary = self.clock_file.with_name(f"{self.clock_file.name}.{uuid.uuid4().hex}")
        temporary.write_text(repr(float(seconds)))
        try:
            stamp = max(time.time_ns(), (previous or 0) + 1)
            step = 1
            while True:
                os.utime(temporary, ns=(stamp, stamp))
                if previous is None or temporary.stat().st_mtime_ns > previous:
                    break
                if step > 10**12:
                    raise RuntimeError(f"cannot give {temporary} a newer mtime")
                step *= 10  # the filesystem's timestamps are coarser than this: try a bigger step
                stamp += step
            os.replace(temporary, self.clock_file)
        finally:
            temporary.unlink(missing_ok=True)

    def _clock_file_mtime_ns(self) -> int | None:
        try:
            return self.clock_file.stat().st_mtime_ns
        except FileNotFoundError:
            return None

    def client(
        self,
        service: str = "kms",
        region: str = REGION,
        access_key_id: str = ACCESS_KEY_ID,
        secret_access_key: str = SECRET_ACCESS_KEY,
    ) -> Any:
        return boto3.session.Session().client(
            service,
            endpoint_url=self.endpoint,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=CLIENT_CONFIG,
        )

    def create_account(self, account_id: str | None = None) -> dict[str, str]:
        """A further account, made with ``openkms admin create-account`` beside the server."""
        command = [
            sys.executable,
            "-m",
            "openkms",
            "admin",
            "create-account",
            "--data-dir",
            str(self.data_dir),
        ]
        command += self._storage_args()
        if account_id:
            command += ["--account-id", account_id]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        return json.loads(output)

    def admin(self, *args: str) -> str:
        """``openkms admin <args>`` on this server's storage; its standard output."""
        command = [
            sys.executable,
            "-m",
            "openkms",
            "admin",
            *args,
            "--data-dir",
            str(self.data_dir),
        ]
        command += self._storage_args()
        return subprocess.run(command, check=True, capture_output=True, text=True).stdout

    def create_user(self, account_id: str, user_name: str) -> dict[str, str]:
        """An IAM user with an access key, made with ``openkms admin create-user``."""
        output = self.admin("create-user", "--account-id", account_id, "--user-name", user_name)
        return json.loads(output)

    def put_user_policy(self, user: dict[str, str], name: str, document: str) -> None:
        self.admin(
            "put-user-policy", "--account-id", user["AccountId"], "--user-name", user["UserName"],
            "--policy-name", name, "--policy-document", document,
        )  # fmt: skip

    def client_for(
        self, account: dict[str, str], service: str = "kms", region: str = REGION
    ) -> Any:
        return self.client(service, region, account["AccessKeyId"], account["SecretAccessKey"])


def postgres_schema_url(base_url: str) -> str:
    """A fresh schema in the test database, so each server set starts empty."""
    import psycopg

    schema = f"openkms_test_{uuid.uuid4().hex[:12]}"
    plain = base_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in plain else "?"
    return f"{plain}{separator}options=-csearch_path%3D{schema}"


def drop_postgres_schema(url: str) -> None:
    import psycopg

    base, _, query = url.partition("?")
    schema = query.rsplit("%3D", 1)[-1]
    with psycopg.connect(base, autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def postgres_reachable(url: str) -> str | None:
    """None when reachable, else why not."""
    try:
        import psycopg

        with psycopg.connect(
            url.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=3
        ):
            return None
    except Exception as error:  # noqa: BLE001 - any failure means "not reachable"
        return f"{type(error).__name__}: {error}"


class SigV4AuthAt(SigV4Auth):
    """botocore's SigV4 signer with its clock set to ``at``: a client whose clock is off."""

    def __init__(self, credentials: Credentials, service: str, region: str, at: dt.datetime):
        super().__init__(credentials, service, region)
        self._at = at.astimezone(dt.UTC)

    def add_auth(self, request: Any) -> None:
        request.context["timestamp"] = self._at.strftime("%Y%m%dT%H%M%SZ")
        self._modify_request_before_signing(request)
        canonical_request = self.canonical_request(request)
        string_to_sign = self.string_to_sign(request, canonical_request)
        signature = self.signature(string_to_sign, request)
        self._inject_signature_to_request(request, signature)


def postgres_url_or_skip() -> str:
    """The PostgreSQL URL the tests may use, or skip the test saying why."""
    url = os.environ.get("OPENKMS_TEST_DATABASE_URL")
    if not url:
        pytest.skip(
            "PostgreSQL tests skipped: OPENKMS_TEST_DATABASE_URL is not set "
            "(e.g. postgresql://postgres@127.0.0.1:5432/test)"
        )
    problem = postgres_reachable(url)
    if problem:
        pytest.skip(f"PostgreSQL tests skipped: {url} is not reachable ({problem})")
    return url


@contextmanager
def time_travel(seconds: float, *servers: OpenKmsServer) -> Iterator[None]:
    """Move these servers' clocks ``seconds`` ahead until the block ends, and this process's
    SigV4 signing clock with them: a client whose clock agrees with the server's, so
    requests signed in the future are not refused as skewed."""
    import botocore.auth

    real = botocore.auth.get_current_datetime

    def shifted(remove_tzinfo: bool = True) -> dt.datetime:
        return real(remove_tzinfo) + dt.timedelta(seconds=seconds)

    for server in servers:
        server.move_clock(seconds)
    botocore.auth.get_current_datetime = shifted  # type: ignore[assignment]
    try:
        yield
    finally:
        botocore.auth.get_current_datetime = real  # type: ignore[assignment]
        for server in servers:
            server.move_clock(0)


def eventually(check: Callable[[], T], timeout: float = 15.0, interval: float = 0.1) -> T:
    """``check()``'s first result that fails no assertion (nor ``pytest.raises``), polling
    until ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except (AssertionError, pytest.fail.Exception):
            if time.monotonic() > deadline:
                raise
        time.sleep(interval)


SOFTHSM_LIBRARY = "/usr/lib/softhsm/libsofthsm2.so"


def softhsm_tokens(base: Path, pin: str, so_pin: str, *labels: str) -> Path:
    """Fresh SoftHSM2 tokens named ``labels`` under ``base``; the SOFTHSM2_CONF that finds
    them. Skips the calling test where SoftHSM2 or python-pkcs11 is missing."""
    if not Path(SOFTHSM_LIBRARY).exists() or shutil.which("softhsm2-util") is None:
        pytest.skip("SoftHSM2 is not installed (Debian: apt-get install softhsm2)")
    pytest.importorskip("pkcs11", reason="python-pkcs11 is not installed")
    (base / "tokens").mkdir()
    conf = base / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {base / 'tokens'}\nobjectstore.backend = file\n")
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    for label in labels:
        subprocess.run(
            ["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", pin,
             "--so-pin", so_pin],
            check=True, capture_output=True, env=env,
        )  # fmt: skip
    return conf
