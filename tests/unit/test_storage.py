"""Storage on SQLite and PostgreSQL: migrations, and all-or-nothing transactions."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openkms.storage import DuplicateEntry, KeyRecord, MaterialRecord, open_database


@pytest.fixture
def db(tmp_path, backend, database_url_factory):
    url = database_url_factory(backend) or f"sqlite:///{tmp_path / 'unit.db'}"
    database = open_database(url)
    database.migrate()
    yield database
    database.dispose()


def _key(key_id: str = "0b0f9b58-3c2c-4b8e-9a55-1b7d0d3c1a11") -> KeyRecord:
    return KeyRecord(
        key_id=key_id,
        account_id="123456789012",
        region="us-east-1",
        arn=f"arn:aws:kms:us-east-1:123456789012:key/{key_id}",
        description="",
        key_usage="ENCRYPT_DECRYPT",
        key_spec="SYMMETRIC_DEFAULT",
        origin="AWS_KMS",
        key_manager="CUSTOMER",
        key_state="Enabled",
        creation_date=dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC),
        policy="{}",
        multi_region=False,
        current_version=1,
    )


def _material(key_id: str) -> MaterialRecord:
    return MaterialRecord(key_id, 1, "ab" * 32, b"wrapped", dt.datetime.now(dt.UTC))


def _account(db) -> None:
    with db.transaction() as tx:
        tx.insert_account("123456789012", dt.datetime.now(dt.UTC))


def test_migrating_twice_is_harmless(db):
    db.migrate()
    with db.transaction() as tx:
        assert tx.count_accounts() == 0


def test_a_transaction_that_fails_part_way_leaves_nothing(db):
    _account(db)
    key = _key()
    with pytest.raises(RuntimeError), db.transaction() as tx:
        tx.insert_key(key)
        tx.insert_material(_material(key.key_id))
        raise RuntimeError("the process dies here")
    with db.transaction() as tx:
        assert tx.get_key(key.key_id) is None
        assert tx.list_materials(key.key_id) == []


def test_a_constraint_violation_rolls_back_the_whole_unit(db):
    _account(db)
    key = _key()
    with pytest.raises(DuplicateEntry), db.transaction() as tx:
        tx.insert_key(key)
        tx.insert_material(_material(key.key_id))
        tx.insert_material(_material(key.key_id))  # duplicate primary key
    with db.transaction() as tx:
        assert tx.get_key(key.key_id) is None


def test_records_round_trip_with_utc_timestamps(db):
    _account(db)
    key = _key()
    with db.transaction() as tx:
        tx.insert_key(key)
        tx.insert_material(_material(key.key_id))
    with db.transaction() as tx:
        stored = tx.get_key(key.key_id)
    assert stored == key
    assert stored.creation_date.tzinfo is not None


@given(
    tags=st.dictionaries(
        st.text(alphabet=st.sampled_from("a\\\x000Z"), min_size=1, max_size=6),
        st.text(alphabet=st.sampled_from("\\\x000b"), max_size=6),
        min_size=1,
        max_size=8,
    )
)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_free_text_with_nul_and_backslashes_round_trips_and_pages(db, tags):
    key = _key()
    with db.transaction() as tx:
        if not tx.account_exists(key.account_id):
            tx.insert_account(key.account_id, dt.datetime.now(dt.UTC))
        if tx.get_key(key.key_id) is None:
            tx.insert_key(replace(key, description="nul\x00 and \\0 stay apart"))
        tx.delete_tags(key.key_id, [k for k, _ in tx.list_tags(key.key_id)])
        tx.put_tags(key.key_id, tags.items())
    with db.transaction() as tx:
        assert tx.get_key(key.key_id).description == "nul\x00 and \\0 stay apart"
        assert dict(tx.list_tags(key.key_id)) == tags
        # Paging one at a time with the last key as the bound visits every tag once.
        seen, after = [], None
        while page := tx.list_tags(key.key_id, after, 1):
            seen.append(page[0][0])
            after = page[0][0]
        assert sorted(seen) == sorted(tags)


def test_committed_changes_reach_listeners_and_rolled_back_ones_do_not(db):
    from openkms.storage.changes import KeyChanged

    seen: list[set] = []
    db.add_change_listener(lambda changes: seen.append(set(changes)))
    _account(db)
    key = _key()
    with pytest.raises(DuplicateEntry), db.transaction() as tx:
        tx.insert_key(key)
        tx.insert_key(key)
    assert seen == []
    with db.transaction() as tx:
        tx.insert_key(key)
    assert seen == [{KeyChanged(key.key_id)}]
    with db.transaction() as tx:
        tx.set_key_state(key.key_id, "Disabled")
        assert seen == [{KeyChanged(key.key_id)}], "published before the commit"
    assert seen[-1] == {KeyChanged(key.key_id)} and len(seen) == 2
    with db.transaction(readonly=True) as tx:
        tx.get_key(key.key_id)
    assert len(seen) == 2, "a read changes nothing"


def test_a_store_connecting_or_disconnecting_changes_each_of_its_keys(db):
    """The key directory shows a key Unavailable while its store is not connected, so a
    connection change must reach every cache of the store's keys (and the token sessions)."""
    from openkms.ops.key_directory import KeyDirectory
    from openkms.storage.changes import CustomKeyStoreChanged, KeyChanged
    from openkms.storage.records import CustomKeyStoreRecord

    _account(db)
    store_id = "cks-0123456789abcdef0"
    in_store = replace(
        _key(), custom_key_store_id=store_id, cloud_hsm_cluster_id="cluster-abcdefghijk"
    )
    elsewhere = _key("1b0f9b58-3c2c-4b8e-9a55-1b7d0d3c1a12")
    with db.transaction() as tx:
        tx.insert_custom_key_store(
            CustomKeyStoreRecord(
                store_id, "123456789012", "us-east-1", "vault", "AWS_CLOUDHSM",
                "cluster-abcdefghijk", "anchor", b"wrapped", "CONNECTED", None,
                dt.datetime.now(dt.UTC),
            )
        )  # fmt: skip
        tx.insert_key(in_store)
        tx.insert_material(_material(in_store.key_id))
        tx.insert_key(elsewhere)
    directory = KeyDirectory(db, ttl_seconds=600)
    loaded = directory.get(in_store.key_id)
    assert loaded is not None and loaded.record.key_state == "Enabled"

    seen: list[set] = []
    db.add_change_listener(lambda changes: seen.append(set(changes)))
    with db.transaction() as tx:
        tx.update_custom_key_store(store_id, connection_state="DISCONNECTED")
    assert seen == [{CustomKeyStoreChanged(store_id), KeyChanged(in_store.key_id)}]
    loaded = directory.get(in_store.key_id)
    assert loaded is not None and loaded.record.key_state == "Unavailable"
    with db.transaction(readonly=True) as tx:
        stored = tx.get_key(in_store.key_id)
        assert stored is not None and stored.key_state == "Enabled", "the stored state stays"
    # Pending deletion is shown as it is, whatever the store's state.
    with db.transaction() as tx:
        tx.set_key_state(in_store.key_id, "PendingDeletion")
    loaded = directory.get(in_store.key_id)
    assert loaded is not None and loaded.record.key_state == "PendingDeletion"
    with db.transaction() as tx:
        tx.update_custom_key_store(store_id, name="renamed")
    assert seen[-1] == {CustomKeyStoreChanged(store_id)}, "no key changes for a rename"
    with db.transaction(readonly=True) as tx:
        assert tx.key_ids_in_custom_key_store(store_id) == [in_store.key_id]
