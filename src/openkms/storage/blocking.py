"""Keeping the event loop free of database I/O.

The warm hot path runs on the event loop with database access forbidden: if it needs the
database after all (a cache miss, a write), the first attempt to open a transaction raises
``WouldBlock`` before anything was read or written, and the request runs again on a worker
thread, where blocking is fine. So a slow database can delay only the requests that need it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_ON_EVENT_LOOP: ContextVar[bool] = ContextVar("openkms_on_event_loop", default=False)


class WouldBlock(Exception):
    """The request needs the database; run it where blocking is allowed."""


@contextmanager
def forbid_blocking() -> Iterator[None]:
    token = _ON_EVENT_LOOP.set(True)
    try:
        yield
    finally:
        _ON_EVENT_LOOP.reset(token)


def check_may_block() -> None:
    if _ON_EVENT_LOOP.get():
        raise WouldBlock()
