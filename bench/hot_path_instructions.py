"""Instructions per warm Encrypt, counted by valgrind's callgrind: a figure that does not move
with the machine's load, for comparing two versions of the hot path.

The ASGI app is called in-process as ``audit_inprocess.py`` calls it (one caller, trail off,
no sockets). The script runs itself under callgrind twice, measuring ``--few`` and then
``--many`` requests after the same warm-up, and divides the difference in instructions by the
difference in requests, so start-up, imports and the warm-up cancel out. Needs ``valgrind``
(Debian package); takes about a minute per run.

    PYTHONPATH=src .venv/bin/python bench/hot_path_instructions.py [--few 300] [--many 1300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from openkms.server.app import create_app
from openkms.server.config import ServerConfig
from openkms.server.runtime import build_runtime

sys.path.insert(0, str(Path(__file__).parent))
import audit_inprocess as harness  # noqa: E402 - the in-process caller, beside this file

WARM_UP = 300


async def encrypts(count: int, directory: Path) -> None:
    config = ServerConfig(
        data_dir=directory,
        account_id=harness.ACCOUNT_ID,
        access_key_id=harness.ACCESS_KEY_ID,
        secret_access_key=harness.SECRET,
        audit_trail=False,
        quotas={"symmetric": 1e9, "management": 1e9, "rsa": 1e9, "ecc": 1e9},
    )
    runtime = build_runtime(config)
    app = create_app(runtime)
    _, body = await harness.call(app, *harness.signed("TrentService.CreateKey", {}))
    key_id = json.loads(body)["KeyMetadata"]["KeyId"]
    request = harness.signed("TrentService.Encrypt", {"KeyId": key_id, "Plaintext": "aGVsbG8="})
    for _ in range(WARM_UP + count):
        status, _ = await harness.call(app, *request)
        assert status == 200, status
    runtime.close()


def counted(count: int, pythonpath: Path | None = None) -> int:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    with tempfile.TemporaryDirectory(prefix="openkms-callgrind-") as tmp:
        done = subprocess.run(
            [
                "valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/out",
                sys.executable, __file__, "--child", str(count),
            ],
            capture_output=True, text=True, check=True,
            # One hash seed for every run: dictionaries and sets probe alike in each.
            env=env,
        )  # fmt: skip
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise SystemExit(f"callgrind printed no count:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def per_request(few: int, many: int, pythonpath: Path | None = None) -> float:
    """Instructions per warm Encrypt of the openkms found on ``pythonpath`` (else the
    environment's): start-up, imports and the warm-up cancel out in the difference."""
    return (counted(many, pythonpath) - counted(few, pythonpath)) / (many - few)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--few", type=int, default=300)
    parser.add_argument("--many", type=int, default=1300)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        with tempfile.TemporaryDirectory(prefix="openkms-hot-path-") as tmp:
            asyncio.run(encrypts(args.child, Path(tmp)))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    count = per_request(args.few, args.many)
    print(f"warm Encrypt in process: {count:,.0f} instructions per request")


if __name__ == "__main__":
    main()
