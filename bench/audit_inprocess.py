"""What the durable audit trail costs a warm Encrypt, measured in one process without HTTP.

The ASGI app is called directly (no sockets, no HTTP parsing) by ``--concurrency`` coroutines
on one event loop, each replaying a pre-signed Encrypt, first with the trail on, then with
``--no-audit-trail``'s setting, each on a fresh SQLite data directory. So the figures are
the envelope, SigV4, the dispatcher, AES-GCM and (with the trail) the writer thread's group
commit, sharing this process's GIL as they do in a server worker.

    PYTHONPATH=src .venv/bin/python bench/audit_inprocess.py [--seconds 5] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from openkms.server.app import create_app
from openkms.server.config import ServerConfig
from openkms.server.runtime import build_runtime

ACCOUNT_ID, ACCESS_KEY_ID, SECRET = "123456789012", "FOOBARKEY", "FOOBARSECRET"
REGION = "us-east-1"


def signed(target: str, body: dict[str, Any]) -> tuple[list[tuple[bytes, bytes]], bytes]:
    data = json.dumps(body).encode()
    request = AWSRequest(
        method="POST",
        url="http://127.0.0.1:4599/",
        data=data,
        headers={"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"},
    )
    SigV4Auth(Credentials(ACCESS_KEY_ID, SECRET), "kms", REGION).add_auth(request)
    headers = [(k.lower().encode(), v.encode()) for k, v in request.headers.items()]
    headers.append((b"host", b"127.0.0.1:4599"))
    return headers, data


async def call(app: Any, headers: list[tuple[bytes, bytes]], body: bytes) -> tuple[int, bytes]:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
    }
    sent = False
    status, chunks = 0, []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        else:
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def measure(audit: bool, seconds: float, concurrency: int, directory: Path) -> dict[str, Any]:
    config = ServerConfig(
        data_dir=directory,
        account_id=ACCOUNT_ID,
        access_key_id=ACCESS_KEY_ID,
        secret_access_key=SECRET,
        audit_trail=audit,
        quotas={"symmetric": 1e9, "management": 1e9, "rsa": 1e9, "ecc": 1e9},
    )
    runtime = build_runtime(config)
    app = create_app(runtime)
    status, body = await call(app, *signed("TrentService.CreateKey", {}))
    key_id = json.loads(body)["KeyMetadata"]["KeyId"]
    request = signed("TrentService.Encrypt", {"KeyId": key_id, "Plaintext": "aGVsbG8="})
    assert (await call(app, *request))[0] == 200
    done = 0
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            code, _ = await call(app, *request)
            assert code == 200, code
            latencies.append(time.perf_counter() - started)
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    runtime.close()
    latencies.sort()
    events = None
    trail = directory / "openkms-audit.db"
    if trail.exists():
        with sqlite3.connect(trail) as connection:
            (events,) = connection.execute("SELECT count(*) FROM audit_events").fetchone()
    return {
        "audit": audit,
        "requests_per_s": round(done / elapsed),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
        "events_stored": events,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="alternate off/on this many times")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="audit-bench-") as tmp:
        for round_ in range(args.rounds):
            for audit in (False, True):
                directory = Path(tmp) / f"{round_}-{audit}"
                result = asyncio.run(measure(audit, args.seconds, args.concurrency, directory))
                results.append(result)
                print(json.dumps(result), flush=True)
    off = [r["requests_per_s"] for r in results if not r["audit"]]
    on = [r["requests_per_s"] for r in results if r["audit"]]
    print(
        f"Encrypt in process, {args.concurrency} concurrent: trail off {max(off)}/s, "
        f"on {max(on)}/s: {100 * max(on) / max(off):.0f}% (best of {args.rounds} each)"
    )


if __name__ == "__main__":
    main()
