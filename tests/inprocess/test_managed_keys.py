"""AWS managed keys in process: the first use is a write made only off the event loop, warm
uses never touch the database, and a first use that loses a race on the database uses the
winner's key."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest

from openkms.clock import ManualClock
from openkms.domain.managed_keys import customer_may
from openkms.ops.managed_keys import materialise_managed_key
from openkms.storage import AliasRecord, open_database
from openkms.storage.blocking import WouldBlock, forbid_blocking
from tests.inprocess.conftest import START, Kms, running, server_config
from tests.support import drop_postgres_schema, postgres_schema_url, postgres_url_or_skip

S3 = "alias/aws/s3"


def _managed_aliases(kms: Kms) -> set[str]:
    with kms.runtime.services.db.transaction(readonly=True) as tx:
        return tx.alias_names_with_prefix(kms.account_id, kms.region, "alias/aws/")


def test_a_first_use_on_the_event_loop_writes_nothing_and_asks_for_a_thread(kms: Kms) -> None:
    for operation, params in (
        ("Encrypt", {"KeyId": S3, "Plaintext": b"x"}),
        ("DescribeKey", {"KeyId": S3}),
        ("GenerateDataKey", {"KeyId": S3, "NumberOfBytes": 32}),
    ):
        with forbid_blocking(), pytest.raises(WouldBlock):
            kms.call(operation, **params)
    assert _managed_aliases(kms) == set()
    assert kms.call("ListKeys")["Keys"] == []

    # The re-run, where blocking is allowed, makes the key; later uses are warm.
    blob = kms.call("Encrypt", KeyId=S3, Plaintext=b"x")["CiphertextBlob"]
    assert _managed_aliases(kms) == {S3}
    with forbid_blocking():
        metadata = kms.call("DescribeKey", KeyId=S3)["KeyMetadata"]
        assert kms.call("Decrypt", CiphertextBlob=blob)["Plaintext"] == b"x"
        kms.call("Encrypt", KeyId=S3, Plaintext=b"warm")
        kms.call("GenerateDataKey", KeyId=S3, NumberOfBytes=32)
    assert metadata["KeyManager"] == "AWS"


def test_the_key_dates_follow_the_clock(kms: Kms, clock: ManualClock) -> None:
    metadata = kms.call("DescribeKey", KeyId=S3)["KeyMetadata"]
    assert metadata["CreationDate"] == START
    status = kms.call("GetKeyRotationStatus", KeyId=metadata["KeyId"])
    assert status["NextRotationDate"] == START.replace(year=START.year + 1)
    assert status["RotationPeriodInDays"] == 365


def test_the_customer_may_use_and_read_but_not_manage() -> None:
    for action in (
        "kms:Encrypt",
        "kms:Decrypt",
        "kms:ReEncryptFrom",
        "kms:ReEncryptTo",
        "kms:GenerateDataKey",
        "kms:GenerateDataKeyWithoutPlaintext",
        "kms:DescribeKey",
        "kms:GetKeyRotationStatus",
        "kms:GetKeyPolicy",
        "kms:ListResourceTags",
        "kms:ListKeyRotations",
        "kms:ListAliases",
    ):
        assert customer_may(action), action
    for action in (
        "kms:DisableKey",
        "kms:EnableKey",
        "kms:ScheduleKeyDeletion",
        "kms:CancelKeyDeletion",
        "kms:EnableKeyRotation",
        "kms:DisableKeyRotation",
        "kms:RotateKeyOnDemand",
        "kms:TagResource",
        "kms:UntagResource",
        "kms:UpdateKeyDescription",
        "kms:PutKeyPolicy",
        "kms:CreateAlias",
        "kms:UpdateAlias",
        "kms:DeleteAlias",
    ):
        assert not customer_may(action), action


def test_a_first_use_that_loses_the_race_on_postgresql_uses_the_winners_key(
    tmp_path: Path,
) -> None:
    """Another node inserts the alias and holds its transaction open while this one tries:
    this one waits on the alias's primary key, fails when the other commits, rolls back its
    own key and answers with the winner's."""
    url = postgres_schema_url(postgres_url_or_skip())
    config = dataclasses.replace(server_config(tmp_path / "data"), database_url=url)
    try:
        with running(config, ManualClock(START)) as runtime:
            services = runtime.services
            account = config.account_id
            winner = Kms(runtime, _root(account)).create_key()  # stands in for its key
            other_node = open_database(url)
            try:
                result: list[str | None] = []
                with other_node.transaction() as tx:
                    tx.insert_alias(
                        AliasRecord(account, "us-east-1", S3, winner["KeyId"], START, START)
                    )
                    racer = threading.Thread(
                        target=lambda: result.append(
                            materialise_managed_key(services, account, "us-east-1", S3)
                        )
                    )
                    racer.start()
                    racer.join(timeout=1.0)
                    assert racer.is_alive(), "the racer should wait for the alias's row"
                racer.join(timeout=10)
                assert result == [winner["KeyId"]]
            finally:
                other_node.dispose()
            with services.db.transaction(readonly=True) as tx:
                keys = tx.list_keys(account, "us-east-1", None, 100)
            assert [k.key_id for k in keys] == [winner["KeyId"]]
    finally:
        drop_postgres_schema(url)


def _root(account: str):  # noqa: ANN202 - a Principal
    from openkms.iam.principal import Principal
    from tests.inprocess.conftest import ACCESS_KEY_ID

    return Principal(account, f"arn:aws:iam::{account}:root", account, ACCESS_KEY_ID)
