"""A pool of logged-in sessions on one PKCS#11 token, safe under concurrent requests.

PKCS#11 logs in an application, not a session: one session (the anchor) logs in with the
PIN and stays open for the pool's life, and every other session opened while it is open is
logged in too. python-pkcs11 logs out when a session opened with a PIN closes, so the anchor
closes last. Each session is lent to one thread at a time, with the key objects it has
already found (finding an object costs the token more than using it). The calls themselves
are made one at a time in a process (``token_login.TOKEN_CALLS``: python-pkcs11 does not ask
the library for thread safety).

Worker processes are spawned, never forked, so a pool is never inherited half-open; each
process makes its own when it first needs the token.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

from pkcs11.exceptions import PKCS11Error

from openkms.keystore.clusters import TokenLocation
from openkms.keystore.token_login import TOKEN_CALLS, LoginFailed, open_session

_FOUND_KEYS_MAX = 4096


class TokenUnreachable(Exception):
    """The token cannot be used now (it is gone, refuses the PIN, or failed); never carries
    the PIN. ``code`` is AWS's ConnectionErrorCode for why, when there is one."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class PooledSession:
    """One session and the key objects found through it (a found object belongs to the
    session that found it)."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self._found: dict[str, Any] = {}

    def key(self, label: str, find: Callable[[Any, str], Any]) -> Any:
        found = self._found.get(label)
        if found is None:
            if len(self._found) >= _FOUND_KEYS_MAX:
                self._found.clear()
            found = self._found[label] = find(self.session, label)
        return found

    def forget(self, label: str) -> None:
        self._found.pop(label, None)

    def close(self) -> None:
        with TOKEN_CALLS, contextlib.suppress(PKCS11Error):
            self.session.close()


class TokenSessionPool:
    def __init__(self, location: TokenLocation, pin: str, size: int = 8) -> None:
        self._location = location
        self._pin = pin
        self._lock = threading.Lock()
        self._opening = threading.Lock()  # the first session opened logs in; one at a time
        self._slots = threading.BoundedSemaphore(size)
        self._anchor: PooledSession | None = None
        self._idle: list[PooledSession] = []
        self._lent: set[PooledSession] = set()
        self._closed = False

    def __repr__(self) -> str:
        return f"TokenSessionPool({self._location.token_label!r})"

    @contextlib.contextmanager
    def session(self) -> Iterator[PooledSession]:
        """A logged-in session for this thread alone. A token error retires the session (and,
        if it was the anchor, the whole pool, which logs in afresh on next use)."""
        self._slots.acquire()
        try:
            lent = self._borrow()
            try:
                with TOKEN_CALLS:
                    yield lent
            except PKCS11Error:
                self._retire(lent)
                raise
            else:
                self._give_back(lent)
        finally:
            self._slots.release()

    def close(self) -> None:
        """Close every session, the anchor last (its close logs out). Sessions lent out now
        are closed when they come back."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            anchor = self._anchor if not self._lent else None
            if anchor is not None:
                self._anchor = None
        for pooled in idle:
            if pooled is not anchor:
                pooled.close()
        if anchor is not None:
            anchor.close()

    # -- internals ---------------------------------------------------------------------

    def _borrow(self) -> PooledSession:
        with self._lock:
            if self._closed:
                raise TokenUnreachable("DISCONNECTED")
            if self._idle:
                pooled = self._idle.pop()
                self._lent.add(pooled)
                return pooled
        # Opening a session talks to the token: not under the pool's lock, but one opening at
        # a time, so that exactly one of them logs in.
        with self._opening:
            with self._lock:
                login = self._anchor is None
            try:
                session = open_session(self._location, self._pin if login else None)
            except LoginFailed as failure:
                raise TokenUnreachable(failure.code) from None
            pooled = PooledSession(session)
            with self._lock:
                if login:
                    self._anchor = pooled
                self._lent.add(pooled)
        return pooled

    def _give_back(self, pooled: PooledSession) -> None:
        with self._lock:
            self._lent.discard(pooled)
            if not self._closed:
                self._idle.append(pooled)
                return
            last = not self._lent
            anchor = self._anchor
            if last:
                self._anchor = None
        if pooled is not anchor:
            pooled.close()
        if last and anchor is not None:
            anchor.close()

    def _retire(self, pooled: PooledSession) -> None:
        with self._lock:
            self._lent.discard(pooled)
            if pooled is not self._anchor:
                retire_all = False
            else:
                # The anchor's failure may be the login's: start again from nothing.
                retire_all = True
                self._anchor = None
                others, self._idle = self._idle, []
        pooled.close()
        if retire_all:
            for other in others:
                other.close()
