"""The test clock control (OPENKMS_CLOCK_FILE) cannot reach a server off loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from openkms.clock import SystemClock
from openkms.server.config import ServerConfig
from openkms.server.runtime import StartupError, build_runtime


def test_a_clock_file_is_refused_on_a_server_reachable_beyond_loopback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENKMS_CLOCK_FILE", str(tmp_path / "offset"))
    config = ServerConfig(data_dir=tmp_path / "data", host="0.0.0.0")  # noqa: S104
    with pytest.raises(StartupError, match="OPENKMS_CLOCK_FILE is for tests"):
        build_runtime(config)
    # Nothing was set up on the way: no database was made.
    assert not (tmp_path / "data" / "openkms.db").exists()


def test_a_clock_file_moves_a_loopback_server_clock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    offset = tmp_path / "offset"
    offset.write_text("86400")
    monkeypatch.setenv("OPENKMS_CLOCK_FILE", str(offset))
    runtime = build_runtime(ServerConfig(data_dir=tmp_path / "data"))
    try:
        ahead = runtime.services.clock.now() - SystemClock().now()
        assert 86_000 < ahead.total_seconds() < 86_800
    finally:
        runtime.close()
