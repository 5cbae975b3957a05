"""A real browser for the console's tests: Playwright driving the machine's Chromium (Debian's
``chromium`` package; nothing is downloaded). Tests skip, saying why, where either is missing."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.support import ACCESS_KEY_ID, SECRET_ACCESS_KEY, OpenKmsServer

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium_path() -> str | None:
    """OPENKMS_TEST_CHROMIUM, else the first Chromium on PATH."""
    configured = os.environ.get("OPENKMS_TEST_CHROMIUM")
    if configured:
        return configured if os.path.exists(configured) else shutil.which(configured)
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium, or skip the calling tests saying what to install."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright is not installed (pip install playwright)"
    )
    path = chromium_path()
    if path is None:
        pytest.skip(
            "console browser tests skipped: no Chromium found (Debian: apt-get install "
            "chromium, or set OPENKMS_TEST_CHROMIUM to its executable)"
        )
    with sync_api.sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
        browser = playwright.chromium.launch(executable_path=path, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def sign_in(
    page: Any,
    server: OpenKmsServer,
    access_key_id: str = ACCESS_KEY_ID,
    secret_access_key: str = SECRET_ACCESS_KEY,
) -> None:
    page.goto(f"{server.endpoint}/console")
    page.fill("#AccessKeyId", access_key_id)
    page.fill("#SecretAccessKey", secret_access_key)
    page.click("#sign-in")


def csrf_token(page: Any) -> str:
    return str(page.locator("input[name=csrf]").first.input_value())
