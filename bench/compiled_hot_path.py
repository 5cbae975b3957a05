"""What compiling the hot path's modules with mypyc would save: instructions per warm Encrypt
(``hot_path_instructions.py``) of the source as it is, and of a copy whose hot modules mypyc
has compiled to C extensions.

An experiment, not how openkms is installed: the copy lives in a temporary directory and the
source tree is never touched (a compiled module beside its ``.py`` would shadow later edits).
Needs valgrind and mypy's ``mypyc`` (the test extras install mypy); compiling takes about a
minute, each count about a minute more.

    .venv/bin/python bench/compiled_hot_path.py [--modules openkms/auth/sigv4.py ...]
    .venv/bin/python bench/compiled_hot_path.py --keep /tmp/compiled   # then, e.g.:
    PYTHONPATH=/tmp/compiled/src .venv/bin/python bench/process_cpu.py -- --workers 2

mypyc compiles the warm path's modules as they are; a module with an interpreted subclass of
one of its classes must be compiled with it (``server/cloudtrail_api.py`` with
``server/endpoints.py``).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from hot_path_instructions import per_request  # noqa: E402 - the counter, beside this file

ROOT = Path(__file__).resolve().parent.parent

# The modules a warm Encrypt runs through (a cProfile of the in-process loop), relative to src/.
HOT_MODULES = (
    "openkms/auth/sigv4.py",
    "openkms/auth/authenticator.py",
    "openkms/ops/dispatcher.py",
    "openkms/ops/resolution.py",
    "openkms/ops/crypto.py",
    "openkms/ops/symmetric.py",
    "openkms/ops/quotas.py",
    "openkms/model/validation.py",
    "openkms/server/app.py",
    "openkms/server/endpoints.py",
    "openkms/server/cloudtrail_api.py",
    "openkms/authz/authorizer.py",
    "openkms/authz/evaluation.py",
    "openkms/authz/policy.py",
    "openkms/timed_lru.py",
    "openkms/token_buckets.py",
    "openkms/clock.py",
    "openkms/keystore/message_keys.py",
    "openkms/keystore/software.py",
    "openkms/keystore/router.py",
    "openkms/crypto/random_pool.py",
    "openkms/protocol/json_protocol.py",
    "openkms/metrics/recorder.py",
    "openkms/audit/events.py",
    "openkms/domain/key_states.py",
)


def compiled_copy(destination: Path, modules: tuple[str, ...]) -> Path:
    src = destination / "src"
    shutil.copytree(ROOT / "src", src, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    mypyc = Path(sys.executable).with_name("mypyc")
    done = subprocess.run(
        [str(mypyc), *modules], cwd=src, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        errors = [line for line in done.stdout.splitlines() if "error" in line]
        raise SystemExit("mypyc failed:\n" + "\n".join(errors[:40] or [done.stderr[-2000:]]))
    return src


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", nargs="+", default=list(HOT_MODULES))
    parser.add_argument("--few", type=int, default=300)
    parser.add_argument("--many", type=int, default=1300)
    parser.add_argument("--keep", type=Path, help="build the copy here and keep it")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    with tempfile.TemporaryDirectory(prefix="openkms-mypyc-") as tmp:
        where = args.keep or Path(tmp)
        if args.keep is not None and where.exists():
            raise SystemExit(f"{where} exists: name a new directory")
        compiled = compiled_copy(where, tuple(args.modules))
        interpreted = per_request(args.few, args.many, ROOT / "src")
        native = per_request(args.few, args.many, compiled)
    print(f"interpreted: {interpreted:,.0f} instructions per warm Encrypt")
    print(f"{len(args.modules)} modules compiled with mypyc: {native:,.0f}")
    print(f"change: {(native - interpreted) / interpreted:+.1%}")


if __name__ == "__main__":
    main()
