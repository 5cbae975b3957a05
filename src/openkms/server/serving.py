"""Running the server: uvicorn on uvloop and httptools, one process or N worker processes on
one port, HTTPS with TLS 1.2+ and forward-secret ciphers, graceful shutdown."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

from openkms.audit.node_protocol import SOCKET_ENV
from openkms.audit.node_writer import NodeTrailServer
from openkms.audit.writer import DurableAuditSink
from openkms.server.app import create_app
from openkms.server.balanced_accept import LOOP_SETTING, SHARES_ENV, ConnectionShares
from openkms.server.config import ServerConfig
from openkms.server.protocol import GuardedHttpToolsProtocol
from openkms.server.runtime import Runtime
from openkms.server.worker import WORKER_CONFIG_ENV, worker_environment

# TLS 1.2 suites with ECDHE key exchange and AEAD only; TLS 1.3 suites are all forward-secret.
FORWARD_SECRET_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"  # noqa: S105 - not a password
# In-flight requests get this long to finish after SIGTERM.
GRACEFUL_SHUTDOWN_SECONDS = 30


class OpenKmsUvicornConfig(uvicorn.Config):
    def load(self) -> None:
        super().load()
        if self.ssl is not None:
            tighten_tls(self.ssl)


def tighten_tls(context: ssl.SSLContext) -> None:
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(FORWARD_SECRET_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE


class GracefulServer(uvicorn.Server):
    """uvicorn's server, except that SIGTERM ends it with exit status 0: it stops accepting,
    lets the requests in flight finish, and returns (uvicorn re-raises the signal instead)."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def serve(config: ServerConfig, runtime: Runtime, log_level: str, listener: socket.socket) -> None:
    """Serve on ``listener``, bound by the caller before start-up so that a taken port fails
    before anything says it is listening."""
    GuardedHttpToolsProtocol.configure(config.max_connections, config.request_timeout_seconds)
    options: dict[str, Any] = {
        "host": config.host,
        "port": config.port,
        "loop": "uvloop",
        "http": GuardedHttpToolsProtocol,
        "lifespan": "on",
        "log_level": log_level.lower(),
        "access_log": False,
        # uvicorn's loggers propagate to the root logger's one format (log_format).
        "log_config": None,
        "server_header": False,
        # The peer's address is the caller's (aws:SourceIp, the trail's sourceIPAddress):
        # uvicorn would otherwise take X-Forwarded-For from any local process.
        "proxy_headers": False,
        "timeout_keep_alive": config.keep_alive_seconds,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
        "backlog": 2048,
    }
    if config.tls:
        options["ssl_certfile"] = str(config.tls_cert_file)
        options["ssl_keyfile"] = str(config.tls_key_file)
        options["ssl_ciphers"] = FORWARD_SECRET_CIPHERS
    if config.workers <= 1:
        GracefulServer(OpenKmsUvicornConfig(create_app(runtime), **options)).run(sockets=[listener])
        return
    # The parent did the start-up work; each worker opens its own connections.
    runtime.services.db.dispose()
    os.environ[WORKER_CONFIG_ENV] = worker_environment(config, log_level)
    trail = None
    if isinstance(runtime.audit, DurableAuditSink) and runtime.audit.dialect == "sqlite":
        # The node's one trail writer is this process's; the workers send it their records.
        # SQLite's writers queue on the file's one lock, each with its own fsync: one writer
        # commits for all. PostgreSQL commits the workers' writers side by side (and shares
        # their WAL flushes itself): there each worker keeps its own (docs/performance.md).
        trail = NodeTrailServer(runtime.audit)
        os.environ[SOCKET_ENV] = trail.path
    # The workers take new connections in turn (balanced_accept), not whoever wakes first.
    options["loop"] = LOOP_SETTING
    shares = ConnectionShares.create(2 * config.workers)  # room for workers added by SIGTTIN
    os.environ[SHARES_ENV] = str(shares.path)
    uvicorn_config = OpenKmsUvicornConfig(
        "openkms.server.worker:create_worker_app",
        factory=True,
        workers=config.workers,
        **options,
    )
    # uvicorn's supervisor: it restarts a worker that dies, and on SIGTERM stops every worker
    # (each finishes its requests in flight) before it returns.
    try:
        Multiprocess(uvicorn_config, sockets=[listener]).run()
    finally:
        # The workers are gone: the writer reads what they sent, writes it and the final
        # digest; then the socket goes.
        runtime.audit.close()
        if trail is not None:
            trail.close()
        shares.remove()
