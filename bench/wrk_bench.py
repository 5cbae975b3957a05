"""wrk benchmark: pre-signed KMS requests replayed by wrk against openkms and moto_server.

Run from the repository root:

    .venv/bin/python bench/wrk_bench.py [--duration S] [--connections 1,16,64] [--quick]

It finds ``wrk`` (as root it installs the Debian package when it is missing), starts openkms as a
user would (``python -m openkms serve --port P --data-dir <tmp>``, default settings, the fixed
test account) and ``moto_server`` on free loopback ports, and for each operation, connection
count and server:

1. builds a pool of distinct requests signed with botocore's ``SigV4Auth`` (the headers boto3
   sends), afresh for each phase so no signature is older than the phase;
2. writes the pool to a file that bench/wrk_replay.lua loads in every wrk thread at init;
3. runs ``wrk -t min(C, 2) -c C -d S --latency -s bench/wrk_replay.lua URL -- POOL ...``;
4. records requests/s, p50/p99/p99.9 latency, non-2xx answers, socket errors, and the server's
   CPU per request (utime + stime of the server process and all its descendants, from /proc).

Then: Encrypt spread over ``--keys`` keys against Encrypt on one key; ``--workers 1`` against
``--workers 2`` and plain HTTP against HTTPS when ``openkms serve`` offers those options. A
phase with any non-2xx answer or socket error is FAILED, and the exit status is then 1.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import functools
import http.client
import json
import os
import platform
import random
import resource
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import boto3
import botocore
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
ACCESS_KEY_ID = "FOOBARKEY"
SECRET_ACCESS_KEY = "FOOBARSECRET"  # the fixed test account, not a secret
BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
LUA_SCRIPT = BENCH_DIR / "wrk_replay.lua"
CONTENT_TYPE = "application/x-amz-json-1.1"
RESULT_MARKER = "WRK_REPLAY_RESULT "
LIFTED_QUOTA = 1_000_000  # requests per second: far above what one machine serves
# The PKCS#11 custom key store part: a SoftHSM2 token made for the run (not a secret).
BENCH_CLUSTER = "cluster-benchbenchbe"
TOKEN_PIN = "bench-token-pin"

OPERATIONS = ("Encrypt 32 B", "Encrypt 4 KB", "Decrypt", "GenerateDataKey", "DescribeKey")
# openkms only (moto's asymmetric and HMAC crypto is not AWS's): the targets are Sign
# with ECC_NIST_P256 at 1,000/s or more (AWS's ECC quota) and GenerateMac as fast as Encrypt.
ASYMMETRIC_OPERATIONS = (
    "Sign ECC_NIST_P256",
    "Verify ECC_NIST_P256",
    "GenerateMac HMAC_256",
    "Sign RSA_2048",
)


def say(text: str = "") -> None:
    print(text, flush=True)


# --------------------------------------------------------------------------------------------
# wrk and the machine


def find_or_install_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    how = "install it with: sudo apt-get install wrk (Debian/Ubuntu), brew install wrk (macOS)"
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        say(f"wrk is not installed; {how}")
        raise SystemExit(2)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    say("wrk not found: installing the Debian package (apt-get install -y wrk) ...")
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    done = subprocess.run(install, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        say("  apt-get install failed; running apt-get update first ...")
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, text=True)
        done = subprocess.run(install, env=env, capture_output=True, text=True)
    found = shutil.which("wrk")
    if found is None:
        say((done.stdout + done.stderr)[-2000:])
        say(f"could not install wrk; {how}")
        raise SystemExit(2)
    say(f"  installed {found}")
    return found


def wrk_version(wrk: str) -> str:
    done = subprocess.run([wrk, "-v"], capture_output=True, text=True)
    text = (done.stdout + done.stderr).strip().splitlines()
    return text[0].split(" Copyright")[0] if text else "unknown"


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def version_of(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def git_state() -> str:
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO_DIR), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(REPO_DIR), "status", "--porcelain", "--", "src"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}" + (" (with uncommitted changes in src/)" if dirty else "")


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def machine_info(wrk: str) -> dict[str, Any]:
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
        "uvicorn": version_of("uvicorn"),
        "moto": version_of("moto"),
        "boto3": version_of("boto3"),
        "botocore": version_of("botocore"),
        "cryptography": version_of("cryptography"),
        "wrk": wrk_version(wrk),
        "git_commit": git_state(),
        "load_average": load_average(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


# --------------------------------------------------------------------------------------------
# Servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def proc_table() -> dict[int, tuple[int, int, int]]:
    """pid -> (ppid, utime + stime + cutime + cstime in clock ticks, start time)."""
    table: dict[int, tuple[int, int, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # fields[0] is field 3 (state)
        table[int(entry)] = (int(fields[1]), sum(int(v) for v in fields[11:15]), int(fields[19]))
    return table


def descendants(root: int, table: dict[int, tuple[int, int, int]]) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            found.append(child)
            todo.append(child)
    return found


def tree_cpu_seconds(root: int) -> float | None:
    """CPU time of a process and all its descendants (cutime/cstime: the reaped ones)."""
    table = proc_table()
    if root not in table:
        return None
    ticks = sum(table[pid][1] for pid in [root, *descendants(root, table)])
    return ticks / os.sysconf("SC_CLK_TCK")


class ManagedServer:
    """A server process this script started (and stops, with its descendants)."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.command = command
        self.log_path = log
        with open(log, "ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)

    def wait_ready(self, probe: Callable[[], bool], timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode} while starting:\n"
                    f"{self.log_tail()}"
                )
            if probe():
                return
            time.sleep(0.2)
        raise RuntimeError(
            f"{self.name} did not become ready in {timeout:.0f} s:\n{self.log_tail()}"
        )

    def cpu_seconds(self) -> float | None:
        return tree_cpu_seconds(self.process.pid)

    def process_count(self) -> int:
        table = proc_table()
        return 1 + len(descendants(self.process.pid, table)) if self.process.pid in table else 0

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        table = proc_table()
        family = {pid: table[pid][2] for pid in descendants(self.process.pid, table)}
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        # Workers that outlived their parent are ours: stop them by pid (the same process,
        # by its start time, not a new one that got the pid).
        time.sleep(0.5)
        table = proc_table()
        for pid, started in family.items():
            if pid in table and table[pid][2] == started:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def log_problems(self) -> list[str]:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return []
        markers = ("Traceback", " ERROR ", " CRITICAL ", "ERROR:")
        return [line for line in text.splitlines() if any(m in line for m in markers)]


def http_status(url: str, context: ssl.SSLContext | None = None) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as answer:  # noqa: S310
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (OSError, http.client.HTTPException):
        return None


@functools.lru_cache(maxsize=1)
def openkms_serve_help() -> str:
    done = subprocess.run(
        [sys.executable, "-m", "openkms", "serve", "--help"],
        capture_output=True, text=True, cwd=REPO_DIR,
    )  # fmt: skip
    return done.stdout + done.stderr


@dataclass
class Target:
    """A server under test and what the benchmark made on it."""

    label: str
    url: str
    credentials: Credentials
    server: ManagedServer | None = None
    ssl_context: ssl.SSLContext | None = None
    ca_file: str | None = None
    key_id: str = ""
    # KeySpec -> key id, for the asymmetric and HMAC phases (openkms only).
    spec_keys: dict[str, str] = field(default_factory=dict)
    ciphertexts: list[tuple[str, bytes]] = field(default_factory=list)  # (blob b64, plaintext)
    spread_keys: list[str] = field(default_factory=list)
    data_dir: Path | None = None  # openkms: where its storage is, for `openkms admin`
    grantee: Credentials | None = None  # an IAM user whose Encrypt a grant allows

    @property
    def host_header(self) -> str:
        return self.url.split("://", 1)[1].rstrip("/")


def start_openkms(
    workdir: Path,
    label: str,
    extra_args: list[str],
    tls: tuple[Path, Path, Path] | None = None,
    extra_env: dict[str, str] | None = None,
) -> Target:
    """``python -m openkms serve --port P --data-dir D`` with the fixed test account."""
    port = free_port()
    slug = label.replace(" ", "_").replace("-", "")
    data_dir = workdir / f"data-{slug}"
    data_dir.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AWS_")
        and k not in ("OPENKMS_DATABASE_URL", "OPENKMS_DATA_DIR", "OPENKMS_ROOT_KEY_FILE")
    }
    env.update(
        OPENKMS_ACCOUNT_ID=ACCOUNT_ID,
        OPENKMS_ACCESS_KEY_ID=ACCESS_KEY_ID,
        OPENKMS_SECRET_ACCESS_KEY=SECRET_ACCESS_KEY,
    )
    env.update(extra_env or {})
    command = [
        sys.executable, "-m", "openkms", "serve",
        "--port", str(port), "--data-dir", str(data_dir), *extra_args,
    ]  # fmt: skip
    if "--metrics-listen" in openkms_serve_help():
        # Several servers run at once here: each its own metrics port (scraped by nobody,
        # recorded all the same).
        command += ["--metrics-listen", f"127.0.0.1:{free_port()}"]
    context = None
    scheme = "http"
    ca_file = None
    if tls is not None:
        ca, cert, key = tls
        command += ["--tls-cert-file", str(cert), "--tls-key-file", str(key)]
        context = ssl.create_default_context(cafile=str(ca))
        scheme = "https"
        ca_file = str(ca)
    url = f"{scheme}://127.0.0.1:{port}"
    say(f"starting {label}: {shlex.join(command[1:])}")
    server = ManagedServer(label, command, env, workdir / f"{slug}.log")
    server.wait_ready(lambda: http_status(f"{url}/healthz", context) == 200)
    return Target(
        label,
        url,
        Credentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY),
        server,
        context,
        ca_file,
        data_dir=data_dir,
    )


def start_moto(workdir: Path) -> Target:
    beside = Path(sys.executable).parent / "moto_server"
    executable = str(beside) if beside.exists() else shutil.which("moto_server")
    if executable is None:
        raise SystemExit('moto_server not found: pip install -e ".[bench]" (moto[server])')
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    command = [executable, "-H", "127.0.0.1", "-p", str(port)]
    say(f"starting moto_server: moto_server -H 127.0.0.1 -p {port}")
    server = ManagedServer("moto", command, env, workdir / "moto.log")
    url = f"http://127.0.0.1:{port}"
    server.wait_ready(lambda: http_status(f"{url}/moto-api/") is not None)
    # moto does not check signatures; it is signed the same way all the same.
    return Target("moto", url, Credentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY), server)


def boto3_client(target: Target) -> Any:
    return boto3.session.Session().client(
        "kms",
        endpoint_url=target.url,
        region_name=REGION,
        aws_access_key_id=target.credentials.access_key,
        aws_secret_access_key=target.credentials.secret_key,
        verify=target.ca_file if target.ca_file else None,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def prepare(target: Target, ciphertexts: int) -> None:
    """One key, and ``ciphertexts`` ciphertexts of distinct 32-byte plaintexts (boto3)."""
    client = boto3_client(target)
    target.key_id = client.create_key(Description=f"wrk_bench key ({target.label})")["KeyMetadata"][
        "KeyId"
    ]
    plaintexts = [os.urandom(32) for _ in range(ciphertexts)]

    def encrypt(plaintext: bytes) -> tuple[str, bytes]:
        blob = client.encrypt(KeyId=target.key_id, Plaintext=plaintext)["CiphertextBlob"]
        return base64.b64encode(blob).decode(), plaintext

    with ThreadPoolExecutor(4) as pool:
        target.ciphertexts = list(pool.map(encrypt, plaintexts))


def softhsm_cluster(workdir: Path) -> dict[str, str]:
    """A fresh SoftHSM2 token standing in for a CloudHSM cluster: the server's environment."""
    library = "/usr/lib/softhsm/libsofthsm2.so"
    if not Path(library).exists() or shutil.which("softhsm2-util") is None:
        raise SystemExit("--custom-key-store needs SoftHSM2 (Debian: apt-get install softhsm2)")
    tokens = workdir / "softhsm-tokens"
    tokens.mkdir()
    conf = workdir / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n")
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", "bench", "--pin", TOKEN_PIN,
         "--so-pin", TOKEN_PIN + "-so"],
        check=True, capture_output=True, env={**os.environ, "SOFTHSM2_CONF": str(conf)},
    )  # fmt: skip
    return {
        "SOFTHSM2_CONF": str(conf),
        "OPENKMS_CLOUDHSM_CLUSTERS": f"{BENCH_CLUSTER}={library}:bench",
    }


def prepare_token_key(target: Target, ciphertexts: int) -> None:
    """A connected custom key store on the token and a key in it; ciphertexts under it."""
    client = boto3_client(target)
    store_id = client.create_custom_key_store(
        CustomKeyStoreName="wrk_bench",
        CloudHsmClusterId=BENCH_CLUSTER,
        TrustAnchorCertificate="-----BEGIN CERTIFICATE-----\nbench\n-----END CERTIFICATE-----",
        KeyStorePassword=TOKEN_PIN,
    )["CustomKeyStoreId"]
    client.connect_custom_key_store(CustomKeyStoreId=store_id)
    state = client.describe_custom_key_stores(CustomKeyStoreId=store_id)["CustomKeyStores"][0]
    if state["ConnectionState"] != "CONNECTED":
        raise SystemExit(f"the bench token did not connect: {state}")
    target.key_id = client.create_key(CustomKeyStoreId=store_id, Origin="AWS_CLOUDHSM")[
        "KeyMetadata"
    ]["KeyId"]
    target.ciphertexts = []
    for _ in range(ciphertexts):
        plaintext = os.urandom(32)
        blob = client.encrypt(KeyId=target.key_id, Plaintext=plaintext)["CiphertextBlob"]
        target.ciphertexts.append((base64.b64encode(blob).decode(), plaintext))


def prepare_asymmetric(target: Target) -> None:
    """A P-256 signing key, an RSA_2048 signing key and an HMAC_256 key (boto3)."""
    client = boto3_client(target)
    for spec, usage in (
        ("ECC_NIST_P256", "SIGN_VERIFY"),
        ("RSA_2048", "SIGN_VERIFY"),
        ("HMAC_256", "GENERATE_VERIFY_MAC"),
    ):
        metadata = client.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]
        target.spec_keys[spec] = metadata["KeyId"]
    message = base64.b64decode(random_b64(32))
    target.spec_keys["p256-signature"] = base64.b64encode(
        client.sign(
            KeyId=target.spec_keys["ECC_NIST_P256"],
            Message=message,
            SigningAlgorithm="ECDSA_SHA_256",
        )["Signature"]
    ).decode()
    target.spec_keys["p256-message"] = base64.b64encode(message).decode()


# A typical key policy: the account's delegation statement, a use statement with a condition
# on the encryption context, and a Deny of deletion (the evaluator reads all three).
TYPICAL_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::{account}:root"},
            "Action": [
                "kms:Describe*",
                "kms:Get*",
                "kms:List*",
                "kms:PutKeyPolicy",
                "kms:CreateGrant",
            ],
            "Resource": "*",
        },
        {
            "Sid": "Allow use for the app's context",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::{account}:root"},
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*"],
            "Resource": "*",
            "Condition": {
                "StringEquals": {"kms:EncryptionContext:app": "bench"},
                "Bool": {"aws:SecureTransport": "false"},
            },
        },
        {
            "Sid": "Never delete",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "kms:ScheduleKeyDeletion",
            "Resource": "*",
        },
    ],
}
BENCH_CONTEXT = {"app": "bench"}
POLICY_OPERATIONS = ("Encrypt 32 B, context", "Encrypt 32 B, key policy", "Encrypt 32 B, grant")


def prepare_policy(target: Target) -> None:
    """A key under TYPICAL_POLICY, for Encrypt with the policy in force (boto3)."""
    client = boto3_client(target)
    account = client.describe_key(KeyId=target.key_id)["KeyMetadata"]["AWSAccountId"]
    text = json.dumps(TYPICAL_POLICY).replace("{account}", account)
    metadata = client.create_key(Policy=text, Description="wrk_bench key under a key policy")
    target.spec_keys["policy"] = metadata["KeyMetadata"]["KeyId"]


# The grantee's own identity policy: in force (read on every request) but not allowing this
# Encrypt, so that the grant is what does.
GRANTEE_IDENTITY_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["kms:DescribeKey", "kms:List*"], "Resource": "*"},
        {"Effect": "Deny", "Action": "kms:ScheduleKeyDeletion", "Resource": "*"},
    ],
}


def prepare_grant(target: Target) -> None:
    """An IAM user (``openkms admin``) with an identity policy, allowed Encrypt on the policy
    key only by a grant with an encryption-context constraint: the slowest allowed path (the
    identity policy, the key policy and the grant are all evaluated)."""
    assert target.data_dir is not None
    admin = [sys.executable, "-m", "openkms", "admin"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENKMS_")}
    storage = ["--account-id", ACCOUNT_ID, "--data-dir", str(target.data_dir)]
    made = subprocess.run(
        [*admin, "create-user", *storage, "--user-name", "bench-grantee"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    user = json.loads(made.stdout)
    subprocess.run(
        [*admin, "put-user-policy", *storage, "--user-name", "bench-grantee",
         "--policy-name", "bench", "--policy-document", json.dumps(GRANTEE_IDENTITY_POLICY)],
        check=True,
        capture_output=True,
        env=env,
    )  # fmt: skip
    boto3_client(target).create_grant(
        KeyId=target.spec_keys["policy"],
        GranteePrincipal=user["Arn"],
        Operations=["Encrypt", "Decrypt"],
        Constraints={"EncryptionContextSubset": BENCH_CONTEXT},
    )
    target.grantee = Credentials(user["AccessKeyId"], user["SecretAccessKey"])


def create_keys(target: Target, count: int, threads: int) -> float:
    """Create ``count`` keys through the server with boto3 clients in threads; seconds taken."""
    local = threading.local()
    made: list[str] = []
    lock = threading.Lock()
    began = time.monotonic()
    step = max(1, count // 10)

    def create(_: int) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = boto3_client(target)
        key_id = client.create_key()["KeyMetadata"]["KeyId"]
        with lock:
            made.append(key_id)
            if len(made) % step == 0:
                elapsed = time.monotonic() - began
                say(f"    {len(made):>7} keys, {elapsed:6.1f} s, {len(made) / elapsed:6.0f}/s")

    with ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(create, range(count)):
            pass
    target.spread_keys = made
    return time.monotonic() - began


# --------------------------------------------------------------------------------------------
# Request pools


@dataclass
class Pooled:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes


def user_agent() -> str:
    return (
        f"Boto3/{boto3.__version__} md/Botocore#{botocore.__version__} ua/2.1 os/linux "
        f"lang/python#{platform.python_version()} wrk_bench"
    )


def sign_pool(
    target: Target,
    operation: str,
    bodies: list[dict[str, Any]],
    credentials: Credentials | None = None,
) -> list[Pooled]:
    """Each body as boto3 sends it, signed now with SigV4 (service kms, us-east-1).

    boto3 adds ``amz-sdk-invocation-id`` (a UUID per call) and ``amz-sdk-request`` after
    signing; here they are signed too, as the AWS SDK for JavaScript v3 signs them, so that
    every pooled request is distinct even where bodies are equal (DescribeKey).
    """
    signer = SigV4Auth(credentials or target.credentials, "kms", REGION)
    url = target.url + "/"
    agent = user_agent()
    pool = []
    for payload in bodies:
        data = json.dumps(payload).encode()
        request = AWSRequest(
            method="POST",
            url=url,
            data=data,
            headers={
                "X-Amz-Target": f"TrentService.{operation}",
                "Content-Type": CONTENT_TYPE,
                "amz-sdk-invocation-id": str(uuid.uuid4()),
                "amz-sdk-request": "attempt=1; max=1",
            },
        )
        signer.add_auth(request)
        headers = [("Host", target.host_header), ("User-Agent", agent)]
        headers += [
            (k, v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()
        ]
        pool.append(Pooled("POST", "/", headers, data))
    return pool


def write_pool(path: Path, pool: list[Pooled]) -> None:
    """One request a line, TAB-separated, for wrk_replay.lua."""
    with open(path, "w", encoding="ascii") as out:
        for item in pool:
            fields = [item.method, item.path, str(len(item.headers))]
            for name, value in item.headers:
                fields += [name, value]
            fields.append(item.body.decode("ascii"))
            line = "\t".join(fields)
            if "\n" in line or line.count("\t") != len(fields) - 1:
                raise ValueError("a pooled request holds a TAB or a newline")
            out.write(line + "\n")


def send_pooled(target: Target, item: Pooled) -> tuple[int, bytes]:
    host, port = target.host_header.rsplit(":", 1)
    connection: http.client.HTTPConnection
    if target.ssl_context is not None:
        connection = http.client.HTTPSConnection(
            host, int(port), timeout=30, context=target.ssl_context
        )
    else:
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.putrequest(item.method, item.path, skip_host=True, skip_accept_encoding=True)
        for name, value in item.headers:
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(item.body)))
        connection.endheaders(item.body)
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


@dataclass
class Workload:
    operation: str  # the KMS operation name
    bodies: list[dict[str, Any]]
    check: Callable[[dict[str, Any]], str | None]  # None when the answer to bodies[0] is right
    mode: str = "roundrobin"
    credentials: Credentials | None = None  # signed as another principal than the target's


def random_b64(size: int) -> str:
    return base64.b64encode(os.urandom(size)).decode()


def workload(name: str, target: Target, pool_size: int, mode: str) -> Workload:
    key = target.key_id

    def has(field_name: str) -> Callable[[dict[str, Any]], str | None]:
        return lambda answer: None if answer.get(field_name) else f"no {field_name} in answer"

    if name == "Encrypt 32 B":
        bodies = [{"KeyId": key, "Plaintext": random_b64(32)} for _ in range(pool_size)]
        return Workload("Encrypt", bodies, has("CiphertextBlob"), mode)
    if name == "Encrypt 4 KB":
        bodies = [{"KeyId": key, "Plaintext": random_b64(4096)} for _ in range(pool_size)]
        return Workload("Encrypt", bodies, has("CiphertextBlob"), mode)
    if name == "Decrypt":
        chosen = [target.ciphertexts[i % len(target.ciphertexts)] for i in range(pool_size)]
        bodies = [{"KeyId": key, "CiphertextBlob": blob} for blob, _ in chosen]
        expected = base64.b64encode(chosen[0][1]).decode()

        def check(answer: dict[str, Any]) -> str | None:
            return None if answer.get("Plaintext") == expected else "wrong plaintext"

        return Workload("Decrypt", bodies, check, mode)
    if name == "GenerateDataKey":
        bodies = [{"KeyId": key, "KeySpec": "AES_256"} for _ in range(pool_size)]
        return Workload("GenerateDataKey", bodies, has("Plaintext"), mode)
    if name == "DescribeKey":
        bodies = [{"KeyId": key} for _ in range(pool_size)]
        return Workload("DescribeKey", bodies, has("KeyMetadata"), mode)
    if name.startswith("Sign "):
        spec = name.split()[1]
        algorithm = "ECDSA_SHA_256" if spec.startswith("ECC") else "RSASSA_PSS_SHA_256"
        bodies = [
            {
                "KeyId": target.spec_keys[spec],
                "Message": random_b64(32),
                "SigningAlgorithm": algorithm,
            }
            for _ in range(pool_size)
        ]
        return Workload("Sign", bodies, has("Signature"), mode)
    if name == "Verify ECC_NIST_P256":
        body = {
            "KeyId": target.spec_keys["ECC_NIST_P256"],
            "Message": target.spec_keys["p256-message"],
            "Signature": target.spec_keys["p256-signature"],
            "SigningAlgorithm": "ECDSA_SHA_256",
        }
        return Workload(
            "Verify", [dict(body) for _ in range(pool_size)], has("SignatureValid"), mode
        )
    if name == "GenerateMac HMAC_256":
        bodies = [
            {
                "KeyId": target.spec_keys["HMAC_256"],
                "Message": random_b64(32),
                "MacAlgorithm": "HMAC_SHA_256",
            }
            for _ in range(pool_size)
        ]
        return Workload("GenerateMac", bodies, has("Mac"), mode)
    if name in ("Encrypt 32 B, context", "Encrypt 32 B, key policy"):
        policy_key = target.spec_keys["policy"] if name.endswith("policy") else key
        bodies = [
            {"KeyId": policy_key, "Plaintext": random_b64(32), "EncryptionContext": BENCH_CONTEXT}
            for _ in range(pool_size)
        ]
        return Workload("Encrypt", bodies, has("CiphertextBlob"), mode)
    if name == "Encrypt 32 B, grant":
        bodies = [
            {
                "KeyId": target.spec_keys["policy"],
                "Plaintext": random_b64(32),
                "EncryptionContext": BENCH_CONTEXT,
            }
            for _ in range(pool_size)
        ]
        return Workload("Encrypt", bodies, has("CiphertextBlob"), mode, target.grantee)
    if name == "Encrypt 32 B, spread keys":
        keys = list(target.spread_keys)
        random.shuffle(keys)
        bodies = [{"KeyId": k, "Plaintext": random_b64(32)} for k in keys]
        return Workload("Encrypt", bodies, has("CiphertextBlob"), "random")
    raise ValueError(name)


# --------------------------------------------------------------------------------------------
# Phases


@dataclass
class Phase:
    part: str
    server: str
    operation: str
    connections: int
    threads: int
    duration_s: int
    pool_size: int = 0
    mode: str = "roundrobin"
    response_hook: bool = True
    sign_seconds: float = 0.0
    requests: int = 0
    seconds: float = 0.0
    requests_per_second: float = 0.0
    p50_ms: float = 0.0
    p75_ms: float = 0.0
    p90_ms: float = 0.0
    p99_ms: float = 0.0
    p99_9_ms: float = 0.0
    max_ms: float = 0.0
    non_2xx: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    socket_errors: dict[str, int] = field(default_factory=dict)
    server_cpu_us_per_request: float | None = None
    server_processes: int = 0
    wrk_cpu_us_per_request: float | None = None
    error: str = ""
    error_sample: str = ""
    wrk_summary_text: str = ""

    @property
    def socket_error_count(self) -> int:
        return sum(self.socket_errors.values())

    @property
    def failed(self) -> bool:
        return bool(self.error or self.non_2xx or self.socket_error_count)

    def problem(self) -> str:
        parts = []
        if self.error:
            parts.append(self.error)
        if self.non_2xx:
            split = ", ".join(f"{k} {v}" for k, v in self.statuses.items() if k != "2xx" and v)
            parts.append(f"{self.non_2xx} non-2xx answers" + (f" ({split})" if split else ""))
        if self.socket_error_count:
            split = ", ".join(f"{k} {v}" for k, v in self.socket_errors.items())
            parts.append(f"{self.socket_error_count} socket errors ({split})")
        if self.error_sample:
            parts.append(f"sample: {self.error_sample[:200]}")
        if "ThrottlingException" in self.error_sample:
            parts.append("(openkms's request quota: see --keep-quotas and --quota)")
        return "; ".join(parts)


class Runner:
    def __init__(self, wrk: str, workdir: Path, args: argparse.Namespace) -> None:
        self.wrk = wrk
        self.workdir = workdir
        self.args = args
        self.phases: list[Phase] = []
        self._count = 0

    def run(
        self,
        part: str,
        target: Target,
        name: str,
        connections: int,
        duration: int,
        *,
        record: bool = True,
        hook: bool | None = None,
        pool_size: int | None = None,
        mode: str = "roundrobin",
        label: str | None = None,
    ) -> Phase:
        hook = self.args.response_hook == "on" if hook is None else hook
        threads = min(connections, 2)
        phase = Phase(part, target.label, label or name, connections, threads, duration, mode=mode)
        phase.response_hook = hook
        self._count += 1
        signing_began = time.monotonic()
        load = workload(name, target, pool_size or self.args.pool, mode)
        pool = sign_pool(target, load.operation, load.bodies, load.credentials)
        pool_file = self.workdir / f"pool-{self._count}.tsv"
        write_pool(pool_file, pool)
        phase.sign_seconds = round(time.monotonic() - signing_began, 2)
        phase.pool_size = len(pool)
        phase.mode = load.mode
        # The pool must work before it is timed: one request through Python's http.client.
        try:
            status, body = send_pooled(target, pool[0])
            answer = json.loads(body) if status == 200 else {}
            problem = None if status == 200 else f"HTTP {status}: {body[:300]!r}"
            problem = problem or load.check(answer)
        except (OSError, ValueError, http.client.HTTPException) as error:
            problem = f"{type(error).__name__}: {error}"
        if problem:
            phase.error = f"check request failed: {problem}"
        else:
            self._wrk(target, phase, pool_file, hook)
        pool_file.unlink(missing_ok=True)
        if record:
            self.phases.append(phase)
            say(phase_line(phase))
        return phase

    def _wrk(self, target: Target, phase: Phase, pool_file: Path, hook: bool) -> None:
        command = [
            self.wrk, "-t", str(phase.threads), "-c", str(phase.connections),
            "-d", f"{phase.duration_s}s", "--timeout", f"{self.args.timeout}s",
            "--latency", "-s", str(LUA_SCRIPT),
            target.url + "/", "--", str(pool_file), phase.mode, "on" if hook else "off",
        ]  # fmt: skip
        server = target.server
        cpu_before = server.cpu_seconds() if server else None
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=phase.duration_s + 120
            )
        except subprocess.TimeoutExpired:
            phase.error = "wrk did not finish in time"
            return
        children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_after = server.cpu_seconds() if server else None
        phase.server_processes = server.process_count() if server else 0
        result = None
        for line in done.stdout.splitlines():
            if line.startswith(RESULT_MARKER):
                result = json.loads(line[len(RESULT_MARKER) :])
        phase.wrk_summary_text = "\n".join(
            line for line in done.stdout.splitlines() if not line.startswith(RESULT_MARKER)
        )
        if done.returncode != 0 or result is None:
            phase.error = (
                f"wrk exited with {done.returncode}: {(done.stderr or done.stdout)[-500:]}"
            )
            return
        requests = int(result["requests"])
        seconds = result["duration_us"] / 1e6
        latency = result["latency_us"]
        errors = result["errors"]
        statuses = result["statuses"]
        phase.requests = requests
        phase.seconds = round(seconds, 3)
        phase.requests_per_second = round(requests / seconds, 1) if seconds else 0.0
        for name in ("p50", "p75", "p90", "p99", "p99_9"):
            setattr(phase, f"{name}_ms", round(latency[name] / 1000, 2))
        phase.max_ms = round(latency["max"] / 1000, 2)
        phase.socket_errors = {k: int(errors[k]) for k in ("connect", "read", "write", "timeout")}
        if result["hook"]:
            phase.statuses = {k: int(v) for k, v in statuses.items()}
            phase.non_2xx = max(int(errors["status"]), requests - phase.statuses["2xx"])
        else:
            phase.non_2xx = int(errors["status"])  # wrk's "Non-2xx or 3xx responses"
        phase.error_sample = result["error_sample"]
        # Cross-check with wrk's own text summary.
        for line in phase.wrk_summary_text.splitlines():
            line = line.strip()
            if line.startswith("Non-2xx or 3xx responses:"):
                phase.non_2xx = max(phase.non_2xx, int(line.split(":")[1]))
        if requests:
            wrk_cpu = (children_after.ru_utime + children_after.ru_stime) - (
                children_before.ru_utime + children_before.ru_stime
            )
            phase.wrk_cpu_us_per_request = round(wrk_cpu / requests * 1e6, 1)
            if cpu_before is not None and cpu_after is not None:
                phase.server_cpu_us_per_request = round(
                    (cpu_after - cpu_before) / requests * 1e6, 1
                )


def phase_line(p: Phase) -> str:
    head = f"  {p.server:<20} {p.operation:<26} c={p.connections:<3}"
    if p.error and not p.requests:
        return f"{head} !! FAILED: {p.problem()}"
    cpu = "-" if p.server_cpu_us_per_request is None else f"{p.server_cpu_us_per_request:.0f}"
    line = (
        f"{head} {p.requests_per_second:>8.1f} req/s  p50 {p.p50_ms:.2f}  p99 {p.p99_ms:.2f}  "
        f"p99.9 {p.p99_9_ms:.2f} ms  srv CPU {cpu} us/req  "
        f"non-2xx {p.non_2xx}  socket errors {p.socket_error_count}"
    )
    if p.failed:
        line += f"\n  !! FAILED: {p.problem()}"
    return line


# --------------------------------------------------------------------------------------------
# Report


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(headers: list[str], rows: list[list[str]], left: int = 2) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]

    def line(cells: list[str]) -> str:
        return (
            "| "
            + " | ".join(
                c.ljust(w) if i < left else c.rjust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            )
            + " |"
        )

    rule = ["-" * (w + 2) if i < left else "-" * (w + 1) + ":" for i, w in enumerate(widths)]
    out = [line(headers), "|" + "|".join(rule) + "|"]
    out += [line(r) for r in rows]
    return "\n".join(out)


PHASE_HEADERS = [
    "part", "server", "operation", "conns", "requests", "req/s", "p50 ms", "p99 ms", "p99.9 ms",
    "non-2xx", "sock err", "srv CPU us/req", "wrk CPU us/req", "",
]  # fmt: skip


def phase_row(p: Phase) -> list[str]:
    part = p.part if p.response_hook else f"{p.part} (hook off)"
    return [
        part, p.server, p.operation, str(p.connections), str(p.requests),
        fmt(p.requests_per_second), fmt(p.p50_ms, 2), fmt(p.p99_ms, 2), fmt(p.p99_9_ms, 2),
        str(p.non_2xx), str(p.socket_error_count), fmt(p.server_cpu_us_per_request, 0),
        fmt(p.wrk_cpu_us_per_request, 0), "FAILED" if p.failed else "ok",
    ]  # fmt: skip


def find(phases: list[Phase], part: str, server: str, operation: str, conns: int) -> Phase | None:
    for p in phases:
        if (p.part, p.server, p.operation, p.connections) == (part, server, operation, conns):
            return p
    return None


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def comparison(
    phases: list[Phase],
    rows_spec: list[tuple[str, int, Phase | None, Phase | None]],
    names: tuple[str, str],
) -> tuple[str, list[dict[str, Any]]]:
    """A table of A against B: req/s, p99 and CPU per request, and the A/B req/s ratio."""
    rows, data = [], []
    for operation, conns, a, b in rows_spec:
        ra = a.requests_per_second if a and not a.failed else None
        rb = b.requests_per_second if b and not b.failed else None
        r = ratio(ra, rb)
        rows.append([
            operation, str(conns),
            fmt(ra), fmt(rb), fmt(r, 2),
            fmt(a.p99_ms if a else None, 2), fmt(b.p99_ms if b else None, 2),
            fmt(a.server_cpu_us_per_request if a else None, 0),
            fmt(b.server_cpu_us_per_request if b else None, 0),
        ])  # fmt: skip
        data.append({
            "operation": operation, "connections": conns,
            f"{names[0]}_rps": ra, f"{names[1]}_rps": rb, "ratio": r,
        })  # fmt: skip
    headers = [
        "operation", "conns", f"{names[0]} req/s", f"{names[1]} req/s", "ratio",
        f"{names[0]} p99 ms", f"{names[1]} p99 ms",
        f"{names[0]} CPU us/req", f"{names[1]} CPU us/req",
    ]  # fmt: skip
    return table(headers, rows), data


# --------------------------------------------------------------------------------------------
# TLS material


def make_tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1/localhost signed by it."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wrk_bench throwaway CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(exist_ok=True)
    ca_path, cert_path, key_path = (
        directory / "ca.pem",
        directory / "server.pem",
        directory / "server.key",
    )
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return ca_path, cert_path, key_path


# --------------------------------------------------------------------------------------------
# Main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="wrk replaying pre-signed KMS requests against openkms and moto_server "
        "(both started here on free loopback ports). See bench/README.md."
    )
    parser.add_argument("--duration", type=int, help="seconds per phase (5; --quick: 2)")
    parser.add_argument(
        "--connections", default="1,16,64", help="comma-separated connection counts (1,16,64)"
    )
    parser.add_argument(
        "--servers", default="openkms,moto", help="openkms, moto or both (openkms,moto)"
    )
    parser.add_argument(
        "--openkms-args",
        default="",
        help='extra "openkms serve" arguments for every openkms started, written with "=", '
        'e.g. --openkms-args="--log-level warning"',
    )
    parser.add_argument(
        "--keys", type=int, help="keys for the spread-keys Encrypt (100000; --quick: 5000)"
    )
    parser.add_argument(
        "--skip-100k", action="store_true", help="skip the spread-keys part (creating the keys)"
    )
    parser.add_argument(
        "--skip-asymmetric",
        action="store_true",
        help="skip the Sign/Verify/GenerateMac and key-policy parts (for openkms builds "
        "without asymmetric keys or policy enforcement)",
    )
    parser.add_argument(
        "--pool", type=int, help="distinct signed requests per phase (500; --quick: 200)"
    )
    parser.add_argument(
        "--custom-key-store",
        action="store_true",
        help="also run Encrypt and Decrypt with a key inside a SoftHSM2 token (a PKCS#11 "
        "custom key store; needs the softhsm2 package)",
    )
    parser.add_argument(
        "--warmup", type=int, help="untimed seconds per server and operation (1; --quick: 0)"
    )
    parser.add_argument(
        "--response-hook",
        choices=("on", "off"),
        default="on",
        help="count 4xx/5xx in a Lua response() hook (on); wrk counts >= 400 either way",
    )
    parser.add_argument(
        "--create-threads", type=int, default=4, help="boto3 threads creating the keys (4)"
    )
    parser.add_argument(
        "--timeout",
        type=int,
        default=10,
        help="wrk's request timeout in seconds; a slower answer counts as a socket error (10)",
    )
    parser.add_argument(
        "--keep-quotas",
        action="store_true",
        help="run openkms with its default request quotas (AWS's); by default they are lifted "
        "so that req/s measures the server, not its quota",
    )
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a short run: 2 s phases, no warm-up, 200-request pools, 5000 spread keys",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {"duration": (5, 2), "keys": (100_000, 5_000), "pool": (500, 200), "warmup": (1, 0)}
    for name, (normal, short) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, short if quick else normal)
    try:
        args.connections = [int(c) for c in args.connections.split(",") if c.strip()]
    except ValueError:
        parser.error("--connections takes a comma-separated list of integers")
    if not args.connections or min(args.connections) < 1:
        parser.error("--connections must be positive")
    if args.duration < 1 or args.pool < 1 or args.keys < 1 or args.warmup < 0 or args.timeout < 1:
        parser.error("--duration, --pool, --keys and --timeout must be positive")
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    if not args.servers or set(args.servers) - {"openkms", "moto"}:
        parser.error("--servers takes openkms, moto or both")
    return args


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds main(), which stops the servers it started


@contextlib.contextmanager
def servers_stopped(started: list[Target]) -> Iterator[None]:
    try:
        yield
    finally:
        for target in started:
            if target.server:
                target.server.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    wrk = find_or_install_wrk()
    machine = machine_info(wrk)
    serve_help = openkms_serve_help()
    has_workers = "--workers" in serve_help
    has_tls = "--tls-cert-file" in serve_help and "--tls-key-file" in serve_help
    # openkms throttles each account like AWS KMS does (ThrottlingException beyond the
    # quota). At the default quotas (management operations 1000/s) DescribeKey would measure
    # the quota, so the benchmark lifts them unless --keep-quotas; --openkms-args come after
    # and win.
    lift_quotas = "--quota" in serve_help and not args.keep_quotas
    quota_args = (
        [
            *("--quota", f"symmetric={LIFTED_QUOTA}", "--quota", f"management={LIFTED_QUOTA}"),
            *("--quota", f"ecc={LIFTED_QUOTA}", "--quota", f"rsa={LIFTED_QUOTA}"),
        ]
        if lift_quotas
        else []
    )
    settings = {
        "command": shlex.join(["bench/wrk_bench.py", *(sys.argv[1:] if argv is None else argv)]),
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "connections": args.connections,
        "wrk_threads": "min(connections, 2)",
        "pool": f"{args.pool} distinct requests, signed afresh for each phase",
        "response_hook": args.response_hook,
        "servers": ",".join(args.servers),
        "openkms_args": args.openkms_args or "(none)",
        "openkms_quotas": (
            f"lifted ({shlex.join(quota_args)})"
            if lift_quotas
            else "the defaults"
            if "--quota" in serve_help
            else "(no --quota in this build)"
        ),
        "wrk_timeout_s": args.timeout,
        "spread_keys": "skipped" if args.skip_100k else args.keys,
    }
    say("Machine")
    for name, value in machine.items():
        say(f"  {name:<14} {value}")
    say("Run")
    for name, value in settings.items():
        say(f"  {name:<14} {value}")
    say()
    extra = [*quota_args, *shlex.split(args.openkms_args)]
    notes: dict[str, str] = {}
    key_creation: dict[str, Any] = {}
    started: list[Target] = []
    log_problems: dict[str, list[str]] = {}
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="wrk-bench-")))
        stack.enter_context(servers_stopped(started))
        runner = Runner(wrk, workdir, args)
        targets: dict[str, Target] = {}
        if "openkms" in args.servers:
            targets["openkms"] = start_openkms(workdir, "openkms", extra)
            started.append(targets["openkms"])
        if "moto" in args.servers:
            targets["moto"] = start_moto(workdir)
            started.append(targets["moto"])
        for target in targets.values():
            prepare(target, ciphertexts=args.pool)
            assert target.server is not None
            say(
                f"  {target.label} at {target.url}: key {target.key_id}, "
                f"{target.server.process_count()} process(es) (the server and its descendants)"
            )

        # 1. Every operation at every connection count, the servers interleaved so that the
        #    openkms/moto ratio compares neighbouring measurements.
        say(f"\n== Operations ({args.duration} s per phase) ==")
        for name in OPERATIONS:
            for target in targets.values():
                if args.warmup:
                    runner.run(
                        "warmup", target, name, max(args.connections), args.warmup, record=False
                    )
            for conns in args.connections:
                for target in targets.values():
                    runner.run("operations", target, name, conns, args.duration)

        # 1b. Asymmetric and HMAC operations (openkms only), next to Encrypt.
        if "openkms" in targets and not args.skip_asymmetric:
            say("\n== Sign, Verify and GenerateMac (openkms) ==")
            target = targets["openkms"]
            prepare_asymmetric(target)
            for name in ASYMMETRIC_OPERATIONS:
                if args.warmup:
                    runner.run(
                        "warmup", target, name, max(args.connections), args.warmup, record=False
                    )
                for conns in args.connections:
                    runner.run("asymmetric", target, name, conns, args.duration)

        # 1c. Encrypt under a typical key policy against the default policy, same request.
        if "openkms" in targets and not args.skip_asymmetric:
            say("\n== Encrypt under a key policy with conditions (openkms) ==")
            target = targets["openkms"]
            prepare_policy(target)
            prepare_grant(target)
            for conns in args.connections:
                for name in POLICY_OPERATIONS:
                    runner.run("policy", target, name, conns, args.duration)

        # 1d. Encrypt and Decrypt with a key inside a PKCS#11 token (a custom key store).
        if args.custom_key_store and "openkms" in targets:
            say("\n== Encrypt and Decrypt with a key in a PKCS#11 custom key store ==")
            target = start_openkms(
                workdir, "openkms cks", extra, extra_env=softhsm_cluster(workdir)
            )
            started.append(target)
            prepare_token_key(target, ciphertexts=args.pool)
            for name in ("Encrypt 32 B", "Decrypt"):
                if args.warmup:
                    runner.run(
                        "warmup", target, name, max(args.connections), args.warmup, record=False
                    )
                for conns in args.connections:
                    runner.run("custom key store", target, name, conns, args.duration)
            assert target.server is not None
            log_problems[target.label] = target.server.log_problems()
            target.server.stop()

        # 2. What the response() hook costs wrk (and the throughput), next to each other.
        if "openkms" in targets:
            say("\n== The Lua response() hook, on and off ==")
            conns = max(args.connections)
            for hook in (True, False):
                runner.run(
                    "hook", targets["openkms"], "Encrypt 32 B", conns, args.duration, hook=hook
                )

        # 3. Encrypt spread over many keys against Encrypt on one key.
        if args.skip_100k:
            notes["spread"] = "skipped (--skip-100k)"
        elif "openkms" not in targets:
            notes["spread"] = "skipped (openkms not among --servers)"
        else:
            target = targets["openkms"]
            spread_label = f"Encrypt 32 B, {args.keys} keys"
            say(f"\n== Encrypt over {args.keys} keys against one key ==")
            say(f"  creating {args.keys} keys with {args.create_threads} boto3 threads ...")
            seconds = create_keys(target, args.keys, args.create_threads)
            key_creation = {
                "keys": args.keys,
                "threads": args.create_threads,
                "seconds": round(seconds, 1),
                "keys_per_second": round(args.keys / seconds, 1),
            }
            say(f"  created {args.keys} keys in {seconds:.1f} s ({args.keys / seconds:.0f}/s)")
            for conns in args.connections:
                runner.run("spread", target, "Encrypt 32 B", conns, args.duration, mode="random")
                runner.run(
                    "spread", target, "Encrypt 32 B, spread keys", conns, args.duration,
                    pool_size=args.keys, mode="random", label=spread_label,
                )  # fmt: skip

        # 4. One worker process against two.
        if not has_workers:
            notes["workers"] = (
                "skipped: `openkms serve --help` does not list --workers (not in this build yet)"
            )
        elif "openkms" not in targets:
            notes["workers"] = "skipped (openkms not among --servers)"
        else:
            say("\n== openkms --workers 1 against --workers 2 ==")
            for workers in (1, 2):
                target = start_openkms(
                    workdir, f"openkms --workers {workers}", [*extra, "--workers", str(workers)]
                )
                started.append(target)
                prepare(target, ciphertexts=1)
                if args.warmup:
                    runner.run(
                        "warmup", target, "Encrypt 32 B", max(args.connections), args.warmup,
                        record=False,
                    )  # fmt: skip
                for conns in args.connections:
                    runner.run("workers", target, "Encrypt 32 B", conns, args.duration)
                assert target.server is not None
                log_problems[target.label] = target.server.log_problems()
                target.server.stop()

        # 5. Plain HTTP against HTTPS.
        if not has_tls:
            notes["tls"] = (
                "skipped: `openkms serve --help` does not list --tls-cert-file/--tls-key-file "
                "(not in this build yet)"
            )
        elif "openkms" not in targets:
            notes["tls"] = "skipped (openkms not among --servers)"
        else:
            say("\n== Encrypt 32 B over plain HTTP and over HTTPS ==")
            tls_files = make_tls_files(workdir / "tls")
            target = start_openkms(workdir, "openkms https", extra, tls=tls_files)
            started.append(target)
            prepare(target, ciphertexts=1)
            if args.warmup:
                runner.run(
                    "warmup", target, "Encrypt 32 B", max(args.connections), args.warmup,
                    record=False,
                )  # fmt: skip
            for conns in args.connections:
                runner.run("tls", targets["openkms"], "Encrypt 32 B", conns, args.duration)
                runner.run("tls", target, "Encrypt 32 B", conns, args.duration)

        for note in notes.values():
            say(f"\n  {note}")
        for target in started:
            if target.server and target.label not in log_problems:
                log_problems[target.label] = target.server.log_problems()
        machine["load_average_after"] = load_average()

    phases = runner.phases
    say("\n== Results ==  (latency in ms; CPU in microseconds per request served)")
    say(table(PHASE_HEADERS, [phase_row(p) for p in phases], left=3))
    comparisons: dict[str, Any] = {}
    if "openkms" in args.servers and "moto" in args.servers:
        spec = [
            (name, c, find(phases, "operations", "openkms", name, c),
             find(phases, "operations", "moto", name, c))
            for name in OPERATIONS for c in args.connections
        ]  # fmt: skip
        text, comparisons["openkms_vs_moto"] = comparison(phases, spec, ("openkms", "moto"))
        say("\n== openkms / moto_server (req/s ratio, same operation and connections) ==")
        say(text)
    if key_creation:
        spec = [
            (f"Encrypt 32 B, {args.keys} keys vs 1", c,
             find(phases, "spread", "openkms", f"Encrypt 32 B, {args.keys} keys", c),
             find(phases, "spread", "openkms", "Encrypt 32 B", c))
            for c in args.connections
        ]  # fmt: skip
        text, comparisons["spread_vs_one_key"] = comparison(phases, spec, ("spread", "one key"))
        say(f"\n== Encrypt over {args.keys} keys / over one key ==")
        say(
            f"keys created in {key_creation['seconds']} s "
            f"({key_creation['keys_per_second']}/s, {args.create_threads} boto3 threads)"
        )
        say(text)
    if has_workers and "openkms" in args.servers:
        spec = [
            ("Encrypt 32 B", c,
             find(phases, "workers", "openkms --workers 2", "Encrypt 32 B", c),
             find(phases, "workers", "openkms --workers 1", "Encrypt 32 B", c))
            for c in args.connections
        ]  # fmt: skip
        text, comparisons["workers_2_vs_1"] = comparison(phases, spec, ("2 workers", "1 worker"))
        say("\n== openkms --workers 2 / --workers 1 ==")
        say(text)
    if has_tls and "openkms" in args.servers:
        spec = [
            ("Encrypt 32 B", c,
             find(phases, "tls", "openkms https", "Encrypt 32 B", c),
             find(phases, "tls", "openkms", "Encrypt 32 B", c))
            for c in args.connections
        ]  # fmt: skip
        text, comparisons["https_vs_http"] = comparison(phases, spec, ("https", "http"))
        say("\n== openkms HTTPS / plain HTTP ==")
        say(text)
    hook_on = find(phases, "hook", "openkms", "Encrypt 32 B", max(args.connections))
    if hook_on:
        pair = [p for p in phases if p.part == "hook"]
        say("\n== response() hook on / off (openkms Encrypt 32 B) ==")
        for p in pair:
            say(
                f"  hook {'on ' if p.response_hook else 'off'}: "
                f"{fmt(p.requests_per_second)} req/s, "
                f"p99 {fmt(p.p99_ms, 2)} ms, wrk CPU {fmt(p.wrk_cpu_us_per_request, 1)} us/req"
            )
    for name, lines in log_problems.items():
        if lines:
            say(f"\n{name} log: {len(lines)} error line(s), first ones:")
            for line in lines[:5]:
                say(f"  {line}")
    failed = [p for p in phases if p.failed]
    if args.json:
        document = {
            "machine": machine,
            "settings": settings,
            "phases": [asdict(p) | {"failed": p.failed} for p in phases],
            "comparisons": comparisons,
            "key_creation": key_creation,
            "notes": notes,
            "server_log_errors": {k: len(v) for k, v in log_problems.items()},
            "failed_phases": len(failed),
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
        say(f"\nwrote {args.json}")
    if failed:
        say("\n" + "!" * 78)
        say(f"!! FAILED: {len(failed)} phase(s) had non-2xx answers, socket errors or errors:")
        for p in failed:
            say(f"!!   {p.server} {p.operation} c={p.connections}: {p.problem()}")
        say("!! Their req/s are not throughput figures.")
        say("!" * 78)
        return 1
    say("\nAll phases: 0 non-2xx answers, 0 socket errors.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
