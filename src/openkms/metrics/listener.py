"""The metrics listener: ``GET /metrics`` on its own address (``--metrics-listen``), so that it
can stay on a private network while the API is public. It runs as a thread of the process
that supervises the workers (or of the one serving process) and answers the aggregate of
every process's values, read from the multiprocess directory at each scrape."""

from __future__ import annotations

import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from openkms.metrics.directory import enable, forget_dead, prepare
from openkms.server.listener import ListenError, bind_listener

log = logging.getLogger(__name__)
DEFAULT_METRICS_LISTEN = "127.0.0.1:9599"
OFF = "off"


def parse_listen(value: str) -> tuple[str, int] | None:
    """``HOST:PORT`` (``[::1]:9599`` for IPv6) or ``off``; ValueError names what is wrong."""
    text = value.strip()
    if text.lower() == OFF:
        return None
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} is not HOST:PORT (e.g. 127.0.0.1:9599) or 'off'")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def aggregate(path: Path) -> bytes:
    """Every process's values, summed (or as each gauge's multiprocess mode says)."""
    return generate_latest(_registry(path))


def aggregate_samples(path: Path) -> dict[str, float]:
    """The aggregate's unlabelled samples by name (what ``openkms status`` reads)."""
    found: dict[str, float] = {}
    for family in _registry(path).collect():
        for sample in family.samples:
            if not sample.labels:
                found[sample.name] = sample.value
    return found


def _registry(path: Path) -> CollectorRegistry:
    forget_dead(path)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(path))
    return registry


def open_metrics(listen: str, data_dir: Path) -> MetricsListener | None:
    """Bind ``--metrics-listen`` (a taken port is a ``ListenError`` naming the option, before
    anything claims to be listening) and switch this process and its future workers to
    multiprocess mode in a fresh directory. With ``off`` nothing listens, but the values are
    still kept there: ``openkms status`` reads every worker's job runs from them."""
    address = parse_listen(listen)
    sock = None
    if address is not None:
        try:
            sock = bind_listener(*address, backlog=64)
        except ListenError as error:
            raise ListenError(f"{error} (--metrics-listen)") from None
        sock.set_inheritable(False)  # the workers serve the API, not this
    path = prepare(data_dir)
    enable(path)
    return MetricsListener(sock, path) if sock is not None else None


class MetricsListener:
    def __init__(self, sock: socket.socket, path: Path) -> None:
        self._path = path
        server = _Server(sock.getsockname()[:2], _Handler, bind_and_activate=False)
        # The socket is the one bound before start-up, not the server's own.
        server.socket.close()
        server.socket = sock
        server.metrics_path = path
        self._server = server
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="openkms-metrics-http", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread = None
        self._server.server_close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    metrics_path: Path


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "openkms"
    sys_version = ""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path.split("?", 1)[0] != "/metrics":
            self._reply(404, b"only /metrics is served here\n", "text/plain; charset=utf-8")
            return
        try:
            body = aggregate(self.server.metrics_path)
        except Exception as error:  # noqa: BLE001 - a broken scrape must not end the thread
            log.warning("metrics: cannot aggregate (%s)", type(error).__name__)
            self._reply(500, b"cannot read the metrics\n", "text/plain; charset=utf-8")
            return
        self._reply(200, body, CONTENT_TYPE_LATEST)

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # scrapes every few seconds would drown the request log
