"""Reading a server's audit trail as a user would: ``openkms audit …`` beside it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support import OpenKmsServer


def audit_command(
    server: OpenKmsServer, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "openkms", "audit", *args, "--data-dir", str(server.data_dir)]
    if server.database_url:
        command += ["--database-url", server.database_url]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def records(server: OpenKmsServer, *filters: str) -> list[dict[str, Any]]:
    """The trail's CloudTrail records (newest first), through ``openkms audit lookup``."""
    output = audit_command(server, "lookup", "--output", "json", "--limit", "100000", *filters)
    return list(json.loads(output.stdout)["Records"])


def by_request(server: OpenKmsServer) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for record in records(server):
        found.setdefault(record["requestID"], []).append(record)
    return found


def public_key(server: OpenKmsServer, directory: Path) -> Path:
    path = directory / "audit-public.pem"
    path.write_text(audit_command(server, "public-key").stdout)
    return path


def verify(server: OpenKmsServer, key: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return audit_command(server, "verify", "--public-key", str(key), *extra, check=False)


def request_id(response_or_error: Any) -> str:
    """The request id of a boto3 response, or of a ClientError."""
    response = getattr(response_or_error, "response", response_or_error)
    return str(response["ResponseMetadata"]["RequestId"])


def trail_path(server: OpenKmsServer) -> Path:
    return server.data_dir / "openkms-audit.db"
