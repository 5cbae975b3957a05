"""Server configuration, from the command line and the environment."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from openkms.ops.quotas import DEFAULT_QUOTAS

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4599


@dataclass(frozen=True)
class ServerConfig:
    data_dir: Path
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    database_url: str | None = None
    root_key_file: Path | None = None
    regions: frozenset[str] = field(default_factory=frozenset)  # empty: every region
    cache_seconds: float = 60.0
    account_id: str | None = None
    access_key_id: str | None = None
    # Never printed: repr leaves it out.
    secret_access_key: str | None = field(default=None, repr=False)
    max_body_bytes: int = 1024 * 1024
    workers: int = 1
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    insecure_http: bool = False
    # Seconds an idle keep-alive connection is kept open.
    keep_alive_seconds: float = 5.0
    # Open connections per worker process (see openkms.server.protocol).
    max_connections: int = 4096
    # Seconds a client has to send a whole request, headers and body.
    request_timeout_seconds: float = 10.0
    # Requests per second per account and Region, by class (openkms.ops.quotas).
    quotas: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_QUOTAS))
    # Seconds between passes of the lifecycle jobs (rotation, deletion, material expiry).
    job_interval_seconds: float = 1.0
    # The durable audit trail (openkms.audit.writer); off only to measure what it costs.
    audit_trail: bool = True
    # Seconds (of the injected clock) between a writer's signed digests.
    audit_digest_seconds: float = 60.0
    # "text" or "json" (openkms.server.log_format), for every line the server writes.
    log_format: str = "text"
    # The web console at /console (openkms.console), and how long its sessions last.
    console: bool = True
    console_session_seconds: float = 900.0

    @property
    def tls(self) -> bool:
        return self.tls_cert_file is not None

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'openkms.db'}"

    @property
    def effective_root_key_file(self) -> Path:
        return self.root_key_file or self.data_dir / "root.key"

    def region_allowed(self, region: str) -> bool:
        return not self.regions or region in self.regions


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
