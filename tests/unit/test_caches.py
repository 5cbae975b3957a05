"""The caches behind the hot path: bounded, expiring, and never stale after a local write."""

from __future__ import annotations

import datetime as dt
import threading

from openkms.storage import DuplicateEntry, open_database
from openkms.timed_lru import TimedLru


def test_entries_expire_and_the_least_recently_used_goes_first():
    cache: TimedLru[str, int] = TimedLru(2)
    cache.put("a", 1, 60, cache.epoch())
    cache.put("b", 2, 60, cache.epoch())
    assert cache.get("a") == (True, 1)  # "a" is now the most recently used
    cache.put("c", 3, 60, cache.epoch())
    assert cache.get("b") == (False, None)
    assert cache.get("a") == (True, 1)
    cache.put("d", 4, 0.0, cache.epoch())
    assert cache.get("d") == (False, None)


def test_a_value_read_before_an_invalidation_is_not_stored_after_it():
    cache: TimedLru[str, str] = TimedLru(10)
    epoch = cache.epoch()  # a reader starts reading "Enabled" from the database ...
    cache.invalidate("key")  # ... a writer commits "Disabled" and invalidates ...
    cache.put("key", "Enabled", 60, epoch)  # ... the reader's stale value is dropped
    assert cache.get("key") == (False, None)
    cache.put("key", "Disabled", 60, cache.epoch())
    assert cache.get("key") == (True, "Disabled")


def test_sqlite_readers_do_not_wait_for_a_writer(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'r.db'}")
    db.migrate()
    holding = threading.Event()
    release = threading.Event()

    def writer() -> None:
        with db.transaction() as tx:
            tx.insert_account("123456789012", dt.datetime.now(dt.UTC))
            holding.set()
            release.wait(60)  # holds the write open until the reader is done (or gives up)

    thread = threading.Thread(target=writer)
    thread.start()
    assert holding.wait(60)
    with db.transaction(readonly=True) as tx:
        assert tx.count_accounts() == 0  # the snapshot before the writer commits
    # The read finished while the write was still open: it did not wait for the writer.
    assert thread.is_alive()
    release.set()
    thread.join()
    db.dispose()


def test_database_errors_carry_no_request_values(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'e.db'}")
    db.migrate()
    with db.transaction() as tx:
        tx.insert_account("123456789012", dt.datetime.now(dt.UTC))
    try:
        with db.transaction() as tx:
            tx.put_setting("VISIBLE-IN-LOG?", b"x")
            tx.put_setting("VISIBLE-IN-LOG?", b"x")
    except DuplicateEntry as error:
        assert "VISIBLE-IN-LOG?" not in str(error)
    else:
        raise AssertionError("the duplicate was accepted")
    db.dispose()
