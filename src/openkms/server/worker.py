"""Worker processes of ``openkms serve --workers N``.

The parent does the once-per-start work (migrations, the first account) and then starts the
workers; each worker imports ``create_worker_app`` afresh (processes are spawned, never forked
from a process holding database connections or threads) and builds its own runtime from the
configuration the parent put in its environment: no access-key secret is in it (a worker
needs none), though the database URL is, password included, as the parent was given it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import signal
from pathlib import Path

from openkms.server.app import OpenKmsApp, create_app
from openkms.server.config import ServerConfig
from openkms.server.log_format import configure_logging
from openkms.server.protocol import GuardedHttpToolsProtocol
from openkms.server.runtime import build_runtime

WORKER_CONFIG_ENV = "OPENKMS_WORKER_CONFIG"
_PR_SET_PDEATHSIG = 1


def worker_environment(config: ServerConfig, log_level: str) -> str:
    return json.dumps(
        {
            "data_dir": str(config.data_dir),
            "host": config.host,
            "port": config.port,
            "database_url": config.database_url,
            "root_key_file": str(config.root_key_file) if config.root_key_file else None,
            "regions": sorted(config.regions),
            "cache_seconds": config.cache_seconds,
            "max_body_bytes": config.max_body_bytes,
            "workers": config.workers,
            "max_connections": config.max_connections,
            "request_timeout_seconds": config.request_timeout_seconds,
            "quotas": config.quotas,
            "job_interval_seconds": config.job_interval_seconds,
            "audit_trail": config.audit_trail,
            "audit_digest_seconds": config.audit_digest_seconds,
            "log_level": log_level,
            "log_format": config.log_format,
            "console": config.console,
            "console_session_seconds": config.console_session_seconds,
        }
    )


def exit_with_parent() -> None:
    """Ask the kernel to SIGTERM this worker when its parent dies, even by SIGKILL: an
    orphaned worker would go on accepting connections on the old listening socket."""
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return  # not Linux: the supervisor's own health checks remain
    if os.getppid() != parent or parent == 1:
        os.kill(os.getpid(), signal.SIGTERM)  # the parent died before we asked


def create_worker_app() -> OpenKmsApp:
    exit_with_parent()
    values = json.loads(os.environ[WORKER_CONFIG_ENV])
    configure_logging(values.pop("log_level"), values["log_format"])

    config = ServerConfig(
        data_dir=Path(values["data_dir"]),
        host=values["host"],
        port=values["port"],
        database_url=values["database_url"],
        root_key_file=Path(values["root_key_file"]) if values["root_key_file"] else None,
        regions=frozenset(values["regions"]),
        cache_seconds=values["cache_seconds"],
        max_body_bytes=values["max_body_bytes"],
        workers=values["workers"],
        quotas=values["quotas"],
        max_connections=values["max_connections"],
        request_timeout_seconds=values["request_timeout_seconds"],
        job_interval_seconds=values["job_interval_seconds"],
        audit_trail=values["audit_trail"],
        audit_digest_seconds=values["audit_digest_seconds"],
        log_format=values["log_format"],
        console=values["console"],
        console_session_seconds=values["console_session_seconds"],
    )
    GuardedHttpToolsProtocol.configure(config.max_connections, config.request_timeout_seconds)
    return create_app(build_runtime(config, first_start=False))


__all__ = ["configure_logging", "create_worker_app", "worker_environment"]
