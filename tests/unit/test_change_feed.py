"""The change feed's bookkeeping: a process is not 'behind' its own writes, a counter that
outlived its database is lowered, and a slow rate still admits requests."""

from __future__ import annotations

from pathlib import Path

from openkms.server.change_feed import ChangeFollower, SharedSequence
from openkms.storage import open_database
from openkms.storage.changes import KeyChanged
from openkms.token_buckets import TokenBuckets


def _db(tmp_path: Path):  # noqa: ANN202
    db = open_database(f"sqlite:///{tmp_path / 'feed.db'}")
    db.migrate()
    return db


def test_a_process_is_not_behind_its_own_writes_but_is_behind_anothers(tmp_path: Path):
    db = _db(tmp_path)
    shared = SharedSequence(tmp_path / "changes.seq")
    follower = ChangeFollower(db, shared)
    with db.transaction() as tx:
        tx.changes.add(KeyChanged("k1"))
    assert shared.value() == follower.applied == 1
    assert not follower.is_behind()
    # Another process on the node commits (its own database handle and follower).
    other_db = _db(tmp_path)
    other = ChangeFollower(other_db, SharedSequence(tmp_path / "changes.seq"))
    seen: list[object] = []
    db.add_change_listener(lambda changes: seen.extend(changes))
    with other_db.transaction() as tx:
        tx.changes.add(KeyChanged("k2"))
    assert other.applied == 2 and follower.is_behind()
    follower.catch_up()
    assert not follower.is_behind() and KeyChanged("k2") in seen
    db.dispose()
    other_db.dispose()


def test_a_counter_file_ahead_of_its_database_is_lowered(tmp_path: Path):
    SharedSequence(tmp_path / "changes.seq").advance(1, 500)  # left by a replaced database
    db = _db(tmp_path)
    shared = SharedSequence(tmp_path / "changes.seq")
    follower = ChangeFollower(db, shared)
    assert shared.value() == 0 and not follower.is_behind()
    db.dispose()


def test_a_rate_below_one_per_second_still_admits_a_request():
    buckets = TokenBuckets()
    assert buckets.take(("a",), 0.5)
    assert not buckets.take(("a",), 0.5)
