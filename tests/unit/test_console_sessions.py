"""Console session cookies: sealed by the root key, unforgeable, expiring by the clock."""

from __future__ import annotations

import base64
import os

from openkms.clock import ManualClock
from openkms.console.sessions import ConsoleSessions
from openkms.seal import AesGcmRootKey


def sessions(clock: ManualClock, root: AesGcmRootKey | None = None) -> ConsoleSessions:
    return ConsoleSessions(root or AesGcmRootKey({1: os.urandom(32)}), clock, 900)


def test_a_cookie_opens_to_its_session_until_it_expires():
    clock = ManualClock()
    made = sessions(clock)
    cookie, session = made.issue("AKIAEXAMPLE000000000", "eu-west-1")
    opened = made.open(cookie)
    assert opened == session
    assert opened.access_key_id == "AKIAEXAMPLE000000000" and opened.region == "eu-west-1"
    assert "AKIAEXAMPLE" not in cookie  # opaque: nothing readable in it
    clock.advance(899)
    assert made.open(cookie) == session
    clock.advance(1)
    assert made.open(cookie) is None  # expiry is the server's clock's, not the browser's


def test_an_altered_forged_or_foreign_cookie_opens_to_nothing():
    clock = ManualClock()
    made = sessions(clock)
    cookie, _ = made.issue("AKIAEXAMPLE000000000", "us-east-1")
    raw = bytearray(base64.urlsafe_b64decode(cookie + "=" * (-len(cookie) % 4)))
    for position in (0, 6, len(raw) // 2, len(raw) - 1):
        altered = bytearray(raw)
        altered[position] ^= 1
        text = base64.urlsafe_b64encode(bytes(altered)).decode().rstrip("=")
        assert made.open(text) is None
    assert sessions(clock).open(cookie) is None  # another root key
    for junk in (None, "", "x", "!!!!", "A" * 5000):
        assert made.open(junk) is None


def test_each_session_has_its_own_csrf_token_compared_exactly():
    made = sessions(ManualClock())
    _, first = made.issue("AKIAEXAMPLE000000000", "us-east-1")
    _, second = made.issue("AKIAEXAMPLE000000000", "us-east-1")
    assert first.csrf_token != second.csrf_token and len(first.csrf_token) >= 40
    assert first.csrf_matches(first.csrf_token)
    assert not first.csrf_matches(second.csrf_token)
    assert not first.csrf_matches("")
    assert not first.csrf_matches(None)
    assert not first.csrf_matches(first.csrf_token[:-1])
