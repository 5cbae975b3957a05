"""The domain rules are callable without a request, as a background job would call them, and
the caches follow what commits: a committed change is seen at once, a rolled-back one never.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import event

from openkms.domain.key_states import IllegalTransition
from openkms.domain.keys import change_key_description, change_key_state
from openkms.errors import KmsError
from openkms.storage.changes import Change, KeyChanged
from tests.inprocess.conftest import Kms, assert_error, set_state


@pytest.fixture
def changes(kms: Kms) -> list[Change]:
    """Every change a committed transaction publishes (this test's own runtime)."""
    seen: list[Change] = []
    kms.runtime.services.db.add_change_listener(seen.extend)
    return seen


@pytest.fixture
def statements(kms: Kms) -> Iterator[list[str]]:
    """Every SQL statement the runtime executes while the test runs."""
    seen: list[str] = []
    engine = kms.runtime.services.db.engine

    def record(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def _stored_state(kms: Kms, key_id: str) -> str:
    with kms.runtime.services.db.transaction(readonly=True) as tx:
        record = tx.get_key(key_id)
    assert record is not None
    return record.key_state


def _warm(kms: Kms, key_id: str, statements: list[str]) -> None:
    """Use the key until it is cached: then Encrypt runs no SQL at all."""
    kms.call("Encrypt", KeyId=key_id, Plaintext=b"warm")
    statements.clear()
    kms.call("Encrypt", KeyId=key_id, Plaintext=b"warm")
    assert statements == []


def test_a_job_disabling_a_key_is_seen_by_the_next_request(
    kms: Kms, changes: list[Change], statements: list[str]
) -> None:
    key = kms.create_key()
    _warm(kms, key["KeyId"], statements)

    # A background job: no request, no principal, just the rule and the database.
    before = change_key_state(kms.runtime.services.db, key["KeyId"], "DisableKey", "Disabled")
    assert before.key_state == "Enabled"
    assert KeyChanged(key["KeyId"]) in changes

    # The cached key was forgotten on commit: the next request reads it again and is refused.
    statements.clear()
    with kms.refused("DisabledException", f"{key['Arn']} is disabled."):
        kms.call("Encrypt", KeyId=key["KeyId"], Plaintext=b"x")
    assert statements, "the refusal came from a stale cache, not from the database"
    assert kms.key_state(key["KeyId"]) == "Disabled"

    change_key_state(kms.runtime.services.db, key["KeyId"], "EnableKey", "Enabled")
    assert kms.call("Encrypt", KeyId=key["KeyId"], Plaintext=b"x")["KeyId"] == key["Arn"]


def test_a_job_changing_a_description_is_seen_at_once(kms: Kms) -> None:
    key = kms.create_key(Description="before")
    kms.call("DescribeKey", KeyId=key["KeyId"])  # cached
    change_key_description(kms.runtime.services.db, key["KeyId"], "after")
    assert kms.call("DescribeKey", KeyId=key["KeyId"])["KeyMetadata"]["Description"] == "after"


def test_the_state_table_refuses_a_job_first(kms: Kms, changes: list[Change]) -> None:
    """PendingDeletion -> Enabled is a change AWS never makes; asked for as EnableKey, the
    key-state table refuses it before the transition table is consulted."""
    key = kms.create_key()
    set_state(kms.runtime, key["KeyId"], "PendingDeletion")
    changes.clear()
    with pytest.raises(KmsError) as caught:
        change_key_state(kms.runtime.services.db, key["KeyId"], "EnableKey", "Enabled")
    assert_error(caught.value, "KMSInvalidStateException", f"{key['Arn']} is pending deletion.")
    assert changes == []
    assert _stored_state(kms, key["KeyId"]) == "PendingDeletion"


def test_a_transition_aws_never_makes_is_refused_even_where_the_state_table_allows(
    kms: Kms, changes: list[Change]
) -> None:
    """CancelKeyDeletion may act on a key pending deletion (its row allows it), but AWS moves
    such a key to Disabled, never straight to Enabled: that is a defect, not a client error."""
    key = kms.create_key()
    set_state(kms.runtime, key["KeyId"], "PendingDeletion")
    changes.clear()
    db = kms.runtime.services.db
    with pytest.raises(IllegalTransition):
        change_key_state(db, key["KeyId"], "CancelKeyDeletion", "Enabled")
    assert changes == []
    assert _stored_state(kms, key["KeyId"]) == "PendingDeletion"

    # The change AWS does make is allowed.
    change_key_state(db, key["KeyId"], "CancelKeyDeletion", "Disabled")
    assert _stored_state(kms, key["KeyId"]) == "Disabled"
    assert changes == [KeyChanged(key["KeyId"])]


def test_cancel_key_deletion_refuses_a_key_not_pending_deletion(kms: Kms) -> None:
    key = kms.create_key()
    with pytest.raises(KmsError) as caught:
        change_key_state(kms.runtime.services.db, key["KeyId"], "CancelKeyDeletion", "Disabled")
    assert_error(caught.value, "KMSInvalidStateException", f"{key['Arn']} is not pending deletion.")
    assert _stored_state(kms, key["KeyId"]) == "Enabled"


def test_a_transaction_that_raises_rolls_back_and_invalidates_nothing(
    kms: Kms, changes: list[Change], statements: list[str]
) -> None:
    key = kms.create_key(Description="kept")
    _warm(kms, key["KeyId"], statements)
    changes.clear()

    class JobFailed(Exception):
        pass

    with pytest.raises(JobFailed), kms.runtime.services.db.transaction() as tx:
        tx.set_key_state(key["KeyId"], "Disabled")
        tx.set_key_description(key["KeyId"], "lost")
        raise JobFailed

    assert changes == []  # nothing published
    # The cache still serves the key: Encrypt runs no SQL, and works.
    statements.clear()
    assert kms.call("Encrypt", KeyId=key["KeyId"], Plaintext=b"x")["KeyId"] == key["Arn"]
    assert statements == []
    # The database is as it was.
    with kms.runtime.services.db.transaction(readonly=True) as tx:
        record = tx.get_key(key["KeyId"])
    assert record is not None
    assert (record.key_state, record.description) == ("Enabled", "kept")
