"""Start-up as an operator meets it: owner-only data, loud warnings, one-line refusals before
anything claims to listen, and a configuration file."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.test_sealing import init_shamir
from tests.support import OpenKmsServer, free_port


def _serve(args: list[str], tmp_path: Path, env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, "-m", "openkms", "serve", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        cwd=tmp_path,
    )


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_data_directory_and_every_file_in_it_are_owner_only(tmp_path):
    data_dir = tmp_path / "fresh" / "data"
    # openkms makes the directory (OpenKmsServer.start would otherwise make it, 0755).
    made = subprocess.run(
        [sys.executable, "-m", "openkms", "admin", "create-account", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    server = OpenKmsServer(data_dir)
    server.log_path = tmp_path / "server.log"  # not in the directory under test
    server.start()
    try:
        client = server.client()
        key_id = client.create_key()["KeyMetadata"]["KeyId"]
        client.encrypt(KeyId=key_id, Plaintext=b"x")
    finally:
        server.stop()
    assert _mode(data_dir) == 0o700
    files = sorted(p.name for p in data_dir.iterdir())
    assert {"openkms.db", "openkms-audit.db", "root.key", "changes.seq"} <= set(files)
    for path in data_dir.iterdir():
        assert _mode(path) & 0o077 == 0, f"{path.name} is {_mode(path):04o}"


def test_a_directory_others_can_read_is_a_loud_warning_with_the_development_key(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    server = OpenKmsServer(data_dir)
    server.log_path = tmp_path / "server.log"
    server.start()
    server.stop()
    log = server.log()
    assert f"WARNING: the data directory {data_dir} is 0755" in log
    assert "WARNING! The development root key is in use" in log
    assert log.index("WARNING!") < log.index("listening on")


def test_a_sealed_store_in_a_directory_others_can_read_is_refused(tmp_path):
    data_dir = tmp_path / "data"
    init_shamir(data_dir, shares=1, threshold=1)
    data_dir.chmod(0o750)
    result = _serve(["--data-dir", str(data_dir), "--port", str(free_port())], tmp_path)
    assert result.returncode == 1
    assert "refusing to start" in result.stderr and "0750" in result.stderr
    assert "listening" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_a_taken_port_is_one_line_before_anything_claims_to_listen(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _serve(["--data-dir", str(tmp_path / "d"), "--port", str(port)], tmp_path)
    assert result.returncode == 1
    assert (
        result.stderr.strip() == f"Error: cannot listen on 127.0.0.1:{port}: address already in use"
    )
    assert "listening" not in result.stdout
    assert "secret access key" not in result.stdout  # no account was made on a failed start


def test_an_unusable_data_directory_is_one_line(tmp_path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    result = _serve(["--data-dir", str(not_a_dir / "data"), "--port", "0"], tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: cannot make the data directory")
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any directory")
def test_an_unreadable_data_directory_is_one_line(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o000)
    result = _serve(["--data-dir", str(data_dir), "--port", "0"], tmp_path)
    assert result.returncode == 1
    assert "not readable and writable" in result.stderr


def test_an_unknown_log_level_is_a_usage_error(tmp_path):
    result = _serve(["--data-dir", str(tmp_path / "d"), "--log-level", "loud"], tmp_path)
    assert result.returncode == 2
    assert "Invalid value for '--log-level': 'loud' is not one of" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "d").exists()


def test_a_config_file_sets_options_and_flags_and_environment_win(tmp_path):
    data_dir = tmp_path / "data"
    config = tmp_path / "openkms.toml"
    port = free_port()
    config.write_text(
        f'port = {port}\nworkers = 1\nregion = ["eu-west-1"]\ndata-dir = "{tmp_path / "other"}"\n'
    )
    # The environment's data directory beats the file's; the file's port and region hold.
    server = OpenKmsServer(data_dir, env={"OPENKMS_CONFIG": str(config)})
    server.port = port
    server.command = lambda: [sys.executable, "-m", "openkms", "serve"]  # type: ignore[method-assign]
    server.env["OPENKMS_DATA_DIR"] = str(data_dir)
    server.start()
    try:
        assert server.client(region="eu-west-1").list_keys()["Keys"] == []
        with pytest.raises(Exception, match="UnrecognizedClientException|not served|region"):
            server.client(region="us-east-1").list_keys()
    finally:
        server.stop()
    assert (data_dir / "openkms.db").exists() and not (tmp_path / "other").exists()
    # A flag beats the file.
    other_port = free_port()
    flagged = OpenKmsServer(tmp_path / "data2", extra_args=["--config", str(config)])
    flagged.port = other_port
    flagged.start()
    flagged.stop()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("prot = 1\n", "unknown key 'prot'"),
        ('port = "abc"\n', "Invalid value for '--port': 'abc' is not a valid integer"),
        ("workers = 0\n", "Invalid value for '--workers'"),
        ('log-level = "loud"\n', "'loud' is not one of 'critical', 'error'"),
        ("insecure-http = 1\n", "must be true or false"),
        ("port = [1, 2]\n", "takes one value, not a list"),
        ("port = \n", "is not TOML"),
        ('cloudhsm-clusters = "nonsense"\n', "Invalid value for '--cloudhsm-clusters'"),
    ],
)
def test_a_bad_config_file_is_refused_with_the_options_name(tmp_path, text, message):
    config = tmp_path / "openkms.toml"
    config.write_text(text)
    result = _serve(["--config", str(config), "--data-dir", str(tmp_path / "d")], tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "d").exists()


def _config_show(args: list[str], tmp_path: Path, env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, "-m", "openkms", "config", "show", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        cwd=tmp_path,
    )


def test_config_show_prints_the_effective_configuration_with_its_sources_redacted(tmp_path):
    config = tmp_path / "openkms.toml"
    config.write_text(
        'port = 5000\nworkers = 2\ndatabase-url = "postgresql://kms:hunter2@db.internal/kms"\n'
    )
    shown = _config_show(
        ["--config", str(config), "--workers", "3"],
        tmp_path,
        {"OPENKMS_DATA_DIR": str(tmp_path / "env-data")},
    )
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert "port = 5000  # file" in lines
    assert "workers = 3  # flag" in lines
    assert f'data-dir = "{tmp_path / "env-data"}"  # environment' in lines
    assert 'host = "127.0.0.1"  # default' in lines
    assert 'database-url = "postgresql://kms:<redacted>@db.internal/kms"  # file' in lines
    assert "hunter2" not in shown.stdout + shown.stderr
    # What it prints is itself a configuration file serve accepts.
    again = tmp_path / "again.toml"
    again.write_text(shown.stdout.replace("<redacted>", "pw"))
    assert _config_show(["--config", str(again)], tmp_path).stdout.count("# file") >= 15


def test_config_show_refuses_what_serve_refuses(tmp_path):
    config = tmp_path / "openkms.toml"
    config.write_text("colour = 'blue'\n")
    shown = _config_show(["--config", str(config)], tmp_path)
    assert shown.returncode == 2
    assert "unknown key 'colour'" in shown.stderr
