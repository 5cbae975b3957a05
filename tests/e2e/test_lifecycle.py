"""Rotation and deletion that really happen, through boto3 against a running server.

Time moves with ``time_travel``: the server's clock (a test-only control) and the client's
signing clock go ahead together, and the server's lifecycle jobs (a pass every second) do
what has come due. Nothing sleeps for the periods themselves.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any

import pytest

from tests.e2e.kms_management import (
    LIST_PAGING_VIOLATIONS,
    client,
    fails,
    near,
    new_key,
    not_found,
    refused_to_other_account,
    stored_value,
)
from tests.support import OpenKmsServer, eventually, time_travel

DAY = 86_400.0


def _rotations(kms: Any, key_id: str, **params: Any) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    page: dict[str, Any] = {"Truncated": True}
    while page["Truncated"]:
        marker = {"Marker": page["NextMarker"]} if "NextMarker" in page else {}
        page = kms.list_key_rotations(KeyId=key_id, **params, **marker)
        entries += page["Rotations"]
    return entries


# -- rotation status ---------------------------------------------------------------------------


def test_rotation_is_off_until_enabled_then_reports_its_period_and_next_date(kms):
    key = new_key(kms)
    status = kms.get_key_rotation_status(KeyId=key["KeyId"])
    assert (status["KeyRotationEnabled"], status["KeyId"]) == (False, key["KeyId"])
    assert "RotationPeriodInDays" not in status and "NextRotationDate" not in status

    kms.enable_key_rotation(KeyId=key["Arn"])
    status = kms.get_key_rotation_status(KeyId=key["KeyId"])
    now = dt.datetime.now(dt.UTC)
    assert (status["KeyRotationEnabled"], status["RotationPeriodInDays"]) == (True, 365)
    assert near(status["NextRotationDate"], now + dt.timedelta(days=365))

    # A new period keeps the schedule's start: the next date moves by the difference.
    kms.enable_key_rotation(KeyId=key["KeyId"], RotationPeriodInDays=90)
    status = kms.get_key_rotation_status(KeyId=key["KeyId"])
    assert status["RotationPeriodInDays"] == 90
    assert near(status["NextRotationDate"], now + dt.timedelta(days=90))

    kms.disable_key_rotation(KeyId=key["KeyId"])
    kms.disable_key_rotation(KeyId=key["KeyId"])  # idempotent, as AWS
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is False


@pytest.mark.parametrize(
    ("period", "constraint"),
    [
        (89, "Member must have value greater than or equal to 90"),
        (2561, "Member must have value less than or equal to 2560"),
    ],
)
def test_a_rotation_period_out_of_range_is_refused(server, kms, period, constraint):
    key = new_key(kms)
    fails(
        client(server, validate=False).enable_key_rotation,
        "ValidationException",
        f"1 validation error detected: Value '{period}' at 'rotationPeriodInDays' failed to "
        f"satisfy constraint: {constraint}",
        KeyId=key["KeyId"],
        RotationPeriodInDays=period,
    )
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is False


def test_rotation_of_a_disabled_or_deleted_key_is_refused_with_the_state_error(kms):
    key = new_key(kms)
    kms.disable_key(KeyId=key["KeyId"])
    for call in (kms.enable_key_rotation, kms.disable_key_rotation, kms.rotate_key_on_demand):
        fails(call, "DisabledException", f"{key['Arn']} is disabled.", KeyId=key["KeyId"])
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    for call in (kms.enable_key_rotation, kms.rotate_key_on_demand):
        fails(
            call,
            "KMSInvalidStateException",
            f"{key['Arn']} is pending deletion.",
            KeyId=key["KeyId"],
        )
    # Reading the status is allowed in every state of a key openkms made.
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is False


def test_a_key_pending_deletion_reports_rotation_off_until_the_deletion_is_cancelled(kms):
    key = new_key(kms)
    kms.enable_key_rotation(KeyId=key["KeyId"], RotationPeriodInDays=100)
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    assert kms.get_key_rotation_status(KeyId=key["KeyId"]) | {"ResponseMetadata": None} == {
        "KeyId": key["KeyId"],
        "KeyRotationEnabled": False,
        "ResponseMetadata": None,
    }
    kms.cancel_key_deletion(KeyId=key["KeyId"])
    status = kms.get_key_rotation_status(KeyId=key["KeyId"])
    assert (status["KeyRotationEnabled"], status["RotationPeriodInDays"]) == (True, 100)


def test_an_unknown_key_and_an_alias_are_refused(kms):
    missing = str(uuid.uuid4())
    for call in (
        kms.enable_key_rotation,
        kms.disable_key_rotation,
        kms.get_key_rotation_status,
        kms.rotate_key_on_demand,
        kms.list_key_rotations,
        kms.schedule_key_deletion,
        kms.cancel_key_deletion,
    ):
        fails(call, "NotFoundException", not_found(missing), KeyId=missing)
    key = new_key(kms)
    alias = f"alias/lifecycle-{uuid.uuid4()}"
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    # These operations take a key id or key ARN only, as AWS's.
    fails(kms.rotate_key_on_demand, "NotFoundException", KeyId=alias)


@pytest.mark.parametrize(
    ("operation", "action", "params"),
    [
        ("enable_key_rotation", "kms:EnableKeyRotation", {}),
        ("disable_key_rotation", "kms:DisableKeyRotation", {}),
        ("get_key_rotation_status", "kms:GetKeyRotationStatus", {}),
        ("rotate_key_on_demand", "kms:RotateKeyOnDemand", {}),
        ("list_key_rotations", "kms:ListKeyRotations", {}),
        ("schedule_key_deletion", "kms:ScheduleKeyDeletion", {"PendingWindowInDays": 7}),
        ("cancel_key_deletion", "kms:CancelKeyDeletion", {}),
    ],
)
def test_another_account_cannot_rotate_or_delete_the_key(
    server, kms, other_account, operation, action, params
):
    key = new_key(kms)
    other = client(server, other_account)
    refused_to_other_account(
        getattr(other, operation), other_account["AccountId"], key, action, **params
    )
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"
    assert _rotations(kms, key["KeyId"]) == []


# -- on-demand rotation ------------------------------------------------------------------------


def test_on_demand_rotation_makes_new_material_current_and_old_ciphertexts_still_decrypt(kms):
    key = new_key(kms)
    first_material = key["CurrentKeyMaterialId"]
    old = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"before", EncryptionContext={"a": "1"})

    # The key ARN, also when the request names the key by id (as AWS answers).
    assert kms.rotate_key_on_demand(KeyId=key["KeyId"])["KeyId"] == key["Arn"]
    current = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["CurrentKeyMaterialId"]
    assert current != first_material and len(current) == 64
    int(current, 16)

    new = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"after")
    opened_old = kms.decrypt(CiphertextBlob=old["CiphertextBlob"], EncryptionContext={"a": "1"})
    opened_new = kms.decrypt(CiphertextBlob=new["CiphertextBlob"])
    assert (opened_old["Plaintext"], opened_old["KeyMaterialId"]) == (b"before", first_material)
    assert (opened_new["Plaintext"], opened_new["KeyMaterialId"]) == (b"after", current)
    data_key = kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")
    assert data_key["KeyMaterialId"] == current

    # ReEncrypt moves an old ciphertext onto the current material.
    moved = kms.re_encrypt(
        CiphertextBlob=old["CiphertextBlob"],
        SourceEncryptionContext={"a": "1"},
        DestinationKeyId=key["KeyId"],
    )
    assert (moved["SourceKeyMaterialId"], moved["DestinationKeyMaterialId"]) == (
        first_material,
        current,
    )
    assert kms.decrypt(CiphertextBlob=moved["CiphertextBlob"])["KeyMaterialId"] == current

    # Automatic rotation was not turned on by rotating on demand.
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is False


def test_list_key_rotations_lists_rotations_or_every_material(kms):
    key = new_key(kms)
    assert _rotations(kms, key["KeyId"]) == []
    for _ in range(3):
        kms.rotate_key_on_demand(KeyId=key["KeyId"])
    current = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["CurrentKeyMaterialId"]

    rotations = _rotations(kms, key["KeyId"], Limit=1)
    assert len(rotations) == 3
    assert {r["RotationType"] for r in rotations} == {"ON_DEMAND"}
    assert [r["KeyMaterialState"] for r in rotations] == ["NON_CURRENT", "NON_CURRENT", "CURRENT"]
    assert rotations[-1]["KeyMaterialId"] == current
    assert all(r["KeyId"] == key["KeyId"] for r in rotations)
    dates = [r["RotationDate"] for r in rotations]
    assert dates == sorted(dates)

    everything = _rotations(kms, key["KeyId"], IncludeKeyMaterial="ALL_KEY_MATERIAL")
    assert len(everything) == 4
    assert everything[0]["KeyMaterialId"] == key["CurrentKeyMaterialId"]
    assert "RotationDate" not in everything[0]  # the first material was not a rotation
    assert everything[1:] == rotations

    page = kms.list_key_rotations(KeyId=key["KeyId"], Limit=2)
    assert page["Truncated"] is True and len(page["Rotations"]) == 2
    rest = kms.list_key_rotations(KeyId=key["KeyId"], Marker=page["NextMarker"])
    assert rest["Truncated"] is False and rest["Rotations"] == rotations[2:]


def test_list_key_rotations_refuses_bad_paging(server, kms):
    key = new_key(kms)
    unchecked = client(server, validate=False)
    for params, message in LIST_PAGING_VIOLATIONS:
        fails(
            unchecked.list_key_rotations,
            "ValidationException",
            message,
            KeyId=key["KeyId"],
            **params,
        )
    fails(
        kms.list_key_rotations,
        "InvalidMarkerException",
        KeyId=key["KeyId"],
        Marker="bm90IGEgbWFya2Vy",
    )
    other = new_key(kms)
    kms.rotate_key_on_demand(KeyId=other["KeyId"])
    kms.rotate_key_on_demand(KeyId=other["KeyId"])
    marker = kms.list_key_rotations(KeyId=other["KeyId"], Limit=1)["NextMarker"]
    # Another key's marker only says where to start: past this key's (empty) list.
    assert kms.list_key_rotations(KeyId=key["KeyId"], Marker=marker)["Rotations"] == []
    # A marker of another list (ListKeys) is not one of this list's.
    kms.create_key()
    keys_marker = kms.list_keys(Limit=1)["NextMarker"]
    fails(kms.list_key_rotations, "InvalidMarkerException", KeyId=key["KeyId"], Marker=keys_marker)


def test_on_demand_rotation_stops_at_the_per_key_limit(kms):
    key = new_key(kms)
    for _ in range(25):
        kms.rotate_key_on_demand(KeyId=key["KeyId"])
    before = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["CurrentKeyMaterialId"]
    fails(
        kms.rotate_key_on_demand,
        "LimitExceededException",
        "The on-demand rotations limit has been reached for the given keyId. No more "
        f"on-demand rotations can be performed for this key: {key['Arn']}",
        KeyId=key["KeyId"],
    )
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["CurrentKeyMaterialId"] == before
    assert len(_rotations(kms, key["KeyId"])) == 25


# -- automatic rotation ------------------------------------------------------------------------


def test_automatic_rotation_happens_when_due_exactly_once_and_old_ciphertexts_decrypt(server, kms):
    key = new_key(kms)
    first = key["CurrentKeyMaterialId"]
    old = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"from the first year")
    kms.enable_key_rotation(KeyId=key["KeyId"], RotationPeriodInDays=90)
    not_yet = new_key(kms)
    kms.enable_key_rotation(KeyId=not_yet["KeyId"], RotationPeriodInDays=180)
    disabled = new_key(kms)
    kms.enable_key_rotation(KeyId=disabled["KeyId"], RotationPeriodInDays=90)
    kms.disable_key(KeyId=disabled["KeyId"])

    with time_travel(91 * DAY, server):

        def rotated() -> list[dict[str, Any]]:
            rotations = _rotations(kms, key["KeyId"])
            assert len(rotations) == 1
            return rotations

        (rotation,) = eventually(rotated)
        assert rotation["RotationType"] == "AUTOMATIC"
        assert rotation["KeyMaterialState"] == "CURRENT"
        status = kms.get_key_rotation_status(KeyId=key["KeyId"])
        assert status["NextRotationDate"] > dt.datetime.now(dt.UTC) + dt.timedelta(days=170)
        # Further passes of the job find nothing more to do.
        server.wait_for_log(f"rotated key {key['KeyId']}")
        time.sleep(2.5)
        assert _rotations(kms, key["KeyId"]) == [rotation]
        assert _rotations(kms, not_yet["KeyId"]) == []
        # A disabled key does not rotate (AWS: it rotates once re-enabled, if due).
        assert _rotations(kms, disabled["KeyId"]) == []

    new_material = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["CurrentKeyMaterialId"]
    assert new_material == rotation["KeyMaterialId"] != first
    opened = kms.decrypt(CiphertextBlob=old["CiphertextBlob"])
    assert (opened["Plaintext"], opened["KeyMaterialId"]) == (b"from the first year", first)
    fresh = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"now")
    assert kms.decrypt(CiphertextBlob=fresh["CiphertextBlob"])["KeyMaterialId"] == new_material
    assert server.log().count(f"rotated key {key['KeyId']}") == 1


# -- deletion ----------------------------------------------------------------------------------


def test_schedule_and_cancel_deletion(kms):
    key = new_key(kms)
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"kept")["CiphertextBlob"]
    scheduled = kms.schedule_key_deletion(KeyId=key["KeyId"])
    now = dt.datetime.now(dt.UTC)
    assert (scheduled["KeyId"], scheduled["KeyState"], scheduled["PendingWindowInDays"]) == (
        key["Arn"],
        "PendingDeletion",
        30,
    )
    assert near(scheduled["DeletionDate"], now + dt.timedelta(days=30))
    metadata = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    assert (metadata["KeyState"], metadata["Enabled"]) == ("PendingDeletion", False)
    assert metadata["DeletionDate"] == scheduled["DeletionDate"]
    # Only a multi-Region primary pending replica deletion reports its window.
    assert "PendingDeletionWindowInDays" not in metadata

    pending = f"{key['Arn']} is pending deletion."
    fails(kms.encrypt, "KMSInvalidStateException", pending, KeyId=key["KeyId"], Plaintext=b"x")
    fails(kms.decrypt, "KMSInvalidStateException", pending, CiphertextBlob=blob)
    fails(kms.enable_key, "KMSInvalidStateException", pending, KeyId=key["KeyId"])
    fails(kms.schedule_key_deletion, "KMSInvalidStateException", pending, KeyId=key["KeyId"])

    assert kms.cancel_key_deletion(KeyId=key["KeyId"])["KeyId"] == key["Arn"]
    metadata = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    assert metadata["KeyState"] == "Disabled"
    assert "DeletionDate" not in metadata and "PendingDeletionWindowInDays" not in metadata
    fails(kms.decrypt, "DisabledException", f"{key['Arn']} is disabled.", CiphertextBlob=blob)
    fails(
        kms.cancel_key_deletion,
        "KMSInvalidStateException",
        f"{key['Arn']} is not pending deletion.",
        KeyId=key["KeyId"],
    )
    kms.enable_key(KeyId=key["KeyId"])
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"kept"


@pytest.mark.parametrize(
    ("window", "message"),
    [
        (6, "PendingWindowInDays must be between 7 and 30"),
        (31, "PendingWindowInDays must be between 7 and 30"),
        (
            0,
            "1 validation error detected: Value '0' at 'pendingWindowInDays' failed to "
            "satisfy constraint: Member must have value greater than or equal to 1",
        ),
    ],
)
def test_a_deletion_window_out_of_range_is_refused(server, kms, window, message):
    key = new_key(kms)
    fails(
        client(server, validate=False).schedule_key_deletion,
        "ValidationException",
        message,
        KeyId=key["KeyId"],
        PendingWindowInDays=window,
    )
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"


def _stored_rows(server: OpenKmsServer, key_id: str) -> dict[str, int]:
    """How many rows of each table still name the key, read straight from the database."""
    return {
        table: stored_value(
            server,
            f"SELECT count(*) FROM {table} WHERE {column} = :k",  # noqa: S608 - fixed names
            k=key_id,
        )
        for table, column in (
            ("kms_keys", "key_id"),
            ("key_materials", "key_id"),
            ("aliases", "target_key_id"),
            ("key_tags", "key_id"),
        )
    }


def test_the_key_is_destroyed_when_its_window_ends_and_never_decrypts_again(server, kms):
    key = new_key(kms, Tags=[{"TagKey": "team", "TagValue": "x"}])
    kept = new_key(kms)
    alias = f"alias/doomed-{uuid.uuid4()}"
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    blob = kms.encrypt(KeyId=alias, Plaintext=b"gone for good")["CiphertextBlob"]
    kms.rotate_key_on_demand(KeyId=key["KeyId"])
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    kms.schedule_key_deletion(KeyId=kept["KeyId"], PendingWindowInDays=30)

    with time_travel(6 * DAY, server):
        # Not yet: passes of the jobs run (one a second) and leave it pending.
        time.sleep(2.5)
        assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "PendingDeletion"

    with time_travel(7 * DAY + 60, server):

        def deleted() -> None:
            fails(
                kms.describe_key, "NotFoundException", not_found(key["KeyId"]), KeyId=key["KeyId"]
            )

        eventually(deleted)
        assert kms.describe_key(KeyId=kept["KeyId"])["KeyMetadata"]["KeyState"] == "PendingDeletion"

    fails(kms.describe_key, "NotFoundException", not_found(key["KeyId"]), KeyId=key["Arn"])
    # The ciphertext names a key that no longer exists: as for any blob naming no key.
    fails(kms.decrypt, "InvalidCiphertextException", CiphertextBlob=blob)
    fails(kms.describe_key, "NotFoundException", KeyId=alias)
    aliases = [a["AliasName"] for a in kms.list_aliases()["Aliases"]]
    assert alias not in aliases
    assert key["KeyId"] not in [k["KeyId"] for k in kms.list_keys(Limit=1000)["Keys"]]
    for call in (kms.cancel_key_deletion, kms.enable_key, kms.list_key_rotations):
        fails(call, "NotFoundException", not_found(key["KeyId"]), KeyId=key["KeyId"])
    assert _stored_rows(server, key["KeyId"]) == {
        "kms_keys": 0,
        "key_materials": 0,
        "aliases": 0,
        "key_tags": 0,
    }


# -- several processes and nodes ---------------------------------------------------------------


def test_jobs_do_each_piece_of_work_once_across_workers_and_nodes(tmp_path, database_url_factory):
    """Two servers of two workers each on one PostgreSQL database: four job runners."""
    url = database_url_factory("postgresql")
    root_key = tmp_path / "cluster-root.key"
    first, second = (
        OpenKmsServer(tmp_path / node, url, ["--workers", "2"], root_key_file=root_key).start()
        for node in ("a", "b")
    )
    try:
        kms = client(first)
        rotating = [new_key(kms) for _ in range(6)]
        for key in rotating:
            kms.enable_key_rotation(KeyId=key["KeyId"], RotationPeriodInDays=90)
        doomed = [new_key(kms) for _ in range(4)]
        for key in doomed:
            kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)

        with time_travel(91 * DAY, first, second):
            other = client(second)

            def all_done() -> None:
                for key in rotating:
                    assert len(_rotations(other, key["KeyId"])) == 1
                for key in doomed:
                    fails(other.describe_key, "NotFoundException", KeyId=key["KeyId"])

            eventually(all_done, timeout=30)
            # Every runner has had further passes: still one rotation per key.
            time.sleep(2.5)
            for key in rotating:
                assert len(_rotations(kms, key["KeyId"])) == 1
        logs = first.log() + second.log()
        for key in rotating:
            assert logs.count(f"rotated key {key['KeyId']}") == 1
        for key in doomed:
            assert logs.count(f"deleted key {key['KeyId']}") == 1
        assert "Traceback" not in logs
    finally:
        first.stop()
        second.stop()


def test_a_pending_deletion_survives_a_restart(own_server):
    server = own_server.start()
    kms = client(server)
    key = new_key(kms)
    scheduled = kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    kms.enable_key_rotation(KeyId=new_key(kms)["KeyId"])
    server.restart()
    kms = client(server)
    metadata = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    assert (metadata["KeyState"], metadata["DeletionDate"]) == (
        "PendingDeletion",
        scheduled["DeletionDate"],
    )
