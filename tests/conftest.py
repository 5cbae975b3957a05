"""Fixtures: real servers on SQLite (always) and PostgreSQL (when one is reachable)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import (
    OpenKmsServer,
    drop_postgres_schema,
    postgres_schema_url,
    postgres_url_or_skip,
)

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url_factory(tmp_path: Path) -> Iterator[object]:
    """Makes an empty database for the backend named: None (SQLite in the data dir) or a
    fresh PostgreSQL schema, dropped afterwards."""
    made: list[str] = []

    def make(backend: str) -> str | None:
        if backend == "sqlite":
            return None
        url = postgres_schema_url(postgres_url_or_skip())
        made.append(url)
        return url

    yield make
    for url in made:
        drop_postgres_schema(url)


@pytest.fixture(scope="session", params=BACKENDS)
def shared_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OpenKmsServer]:
    """One server per backend for the whole session; tests make their own keys in it."""
    url = None
    if request.param == "postgresql":
        url = postgres_schema_url(postgres_url_or_skip())
    server = OpenKmsServer(tmp_path_factory.mktemp(f"shared-{request.param}"), url).start()
    yield server
    server.stop()
    if url:
        drop_postgres_schema(url)


@pytest.fixture
def server(shared_server: OpenKmsServer) -> OpenKmsServer:
    shared_server.move_clock(0)
    return shared_server


@pytest.fixture
def kms(server: OpenKmsServer):  # noqa: ANN201 - a boto3 client
    return server.client()


@pytest.fixture
def own_server(tmp_path: Path, backend: str, database_url_factory) -> Iterator[OpenKmsServer]:  # noqa: ANN001
    """A server of this test's own (to restart, kill, or inspect the files of)."""
    server = OpenKmsServer(tmp_path / "data", database_url_factory(backend))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def other_account(shared_server: OpenKmsServer) -> dict[str, str]:
    """A second account on the shared server, for cross-account authorisation tests."""
    return shared_server.create_account()
