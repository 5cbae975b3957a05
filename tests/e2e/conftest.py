"""Fixtures for the end-to-end tests: boto3 clients for the shared server."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.kms_management import client
from tests.support import OpenKmsServer


@pytest.fixture
def kms(server: OpenKmsServer) -> Any:
    return client(server)


@pytest.fixture
def fresh(server: OpenKmsServer) -> tuple[dict[str, str], Any]:
    """A new account with nothing in it, and a client for it."""
    account = server.create_account()
    return account, client(server, account)
