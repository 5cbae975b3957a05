"""Rotation and deletion rules and the lifecycle jobs, on a ManualClock (no HTTP, no sleeping).

The jobs are run a pass at a time (``runtime.jobs.run_once()``), as each server process's job
thread runs them once a second.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import update

from openkms.clock import ManualClock
from openkms.storage import schema
from openkms.storage.changes import KeyChanged
from tests.inprocess.conftest import Kms

DAY = 86_400


def _run(kms: Kms):  # noqa: ANN202 - a JobReport
    return kms.runtime.jobs.run_once()


def _rotations(kms: Kms, key_id: str) -> list[dict]:
    return kms.call("ListKeyRotations", KeyId=key_id)["Rotations"]


def _set_spec(kms: Kms, key_id: str, spec: str) -> None:
    """Make a key look asymmetric/HMAC (CreateKey cannot make one yet), as the state table
    test puts keys into states directly."""
    with kms.runtime.services.db.transaction() as tx:
        tx.connection.execute(
            update(schema.kms_keys).where(schema.kms_keys.c.key_id == key_id).values(key_spec=spec)
        )
        tx.changes.add(KeyChanged(key_id))


def test_nothing_is_due_until_the_period_has_passed(kms: Kms, clock: ManualClock) -> None:
    key = kms.create_key()
    kms.call("EnableKeyRotation", KeyId=key["KeyId"], RotationPeriodInDays=90)
    clock.advance(90 * DAY - 1)
    assert _run(kms).total == 0
    clock.advance(1)
    assert _run(kms).rotated == 1
    assert _run(kms).total == 0
    (rotation,) = _rotations(kms, key["KeyId"])
    assert (rotation["RotationType"], rotation["RotationDate"]) == ("AUTOMATIC", clock.now())
    status = kms.call("GetKeyRotationStatus", KeyId=key["KeyId"])
    assert status["NextRotationDate"] == clock.now() + dt.timedelta(days=90)


def test_a_long_absence_rotates_once_not_once_per_missed_period(
    kms: Kms, clock: ManualClock
) -> None:
    key = kms.create_key()
    kms.call("EnableKeyRotation", KeyId=key["KeyId"], RotationPeriodInDays=90)
    clock.advance(1000 * DAY)
    assert _run(kms).rotated == 1
    assert _run(kms).rotated == 0
    assert len(_rotations(kms, key["KeyId"])) == 1


def test_a_disabled_key_rotates_once_enabled_again_if_due(kms: Kms, clock: ManualClock) -> None:
    key = kms.create_key()
    kms.call("EnableKeyRotation", KeyId=key["KeyId"], RotationPeriodInDays=90)
    kms.call("DisableKey", KeyId=key["KeyId"])
    clock.advance(100 * DAY)
    assert _run(kms).rotated == 0
    kms.call("EnableKey", KeyId=key["KeyId"])
    assert _run(kms).rotated == 1


def test_on_demand_rotation_leaves_the_automatic_schedule(kms: Kms, clock: ManualClock) -> None:
    key = kms.create_key()
    kms.call("EnableKeyRotation", KeyId=key["KeyId"], RotationPeriodInDays=200)
    before = kms.call("GetKeyRotationStatus", KeyId=key["KeyId"])["NextRotationDate"]
    clock.advance(10 * DAY)
    kms.call("RotateKeyOnDemand", KeyId=key["KeyId"])
    assert kms.call("GetKeyRotationStatus", KeyId=key["KeyId"])["NextRotationDate"] == before


def test_changing_the_period_moves_the_next_date_by_the_difference(
    kms: Kms, clock: ManualClock
) -> None:
    key = kms.create_key()
    enabled_at = clock.now()
    kms.call("EnableKeyRotation", KeyId=key["KeyId"], RotationPeriodInDays=365)
    clock.advance(100 * DAY)
    kms.call("EnableKeyRotation", KeyId=key["KeyId"], RotationPeriodInDays=180)
    status = kms.call("GetKeyRotationStatus", KeyId=key["KeyId"])
    assert status["NextRotationDate"] == enabled_at + dt.timedelta(days=180)
    # A period shorter than the time already passed: due now, rotated by the next pass.
    kms.call("EnableKeyRotation", KeyId=key["KeyId"], RotationPeriodInDays=90)
    assert kms.call("GetKeyRotationStatus", KeyId=key["KeyId"])["NextRotationDate"] == clock.now()
    assert _run(kms).rotated == 1


def test_deletion_happens_when_the_window_ends_not_before(kms: Kms, clock: ManualClock) -> None:
    key = kms.create_key()
    kms.call("CreateAlias", AliasName="alias/doomed", TargetKeyId=key["KeyId"])
    kms.call("ScheduleKeyDeletion", KeyId=key["KeyId"], PendingWindowInDays=7)
    clock.advance(7 * DAY - 1)
    assert _run(kms).deleted == 0
    clock.advance(1)
    assert _run(kms).deleted == 1
    with kms.refused("NotFoundException", f"Key '{key['Arn']}' does not exist"):
        kms.call("DescribeKey", KeyId=key["KeyId"])
    names = [a["AliasName"] for a in kms.call("ListAliases")["Aliases"]]
    assert "alias/doomed" not in names
    assert _run(kms).deleted == 0


def test_a_cancelled_deletion_is_not_carried_out(kms: Kms, clock: ManualClock) -> None:
    key = kms.create_key()
    kms.call("ScheduleKeyDeletion", KeyId=key["KeyId"], PendingWindowInDays=7)
    kms.call("CancelKeyDeletion", KeyId=key["KeyId"])
    clock.advance(8 * DAY)
    assert _run(kms).deleted == 0
    assert kms.key_state(key["KeyId"]) == "Disabled"


@pytest.mark.parametrize(
    "spec, usage",
    [
        ("RSA_2048", "ENCRYPT_DECRYPT"),
        ("ECC_NIST_P256", "SIGN_VERIFY"),
        ("HMAC_256", "GENERATE_VERIFY_MAC"),
    ],
)
def test_rotation_of_other_specs_is_refused_after_the_state_check(
    kms: Kms, spec: str, usage: str
) -> None:
    key = kms.call("CreateKey", KeySpec=spec, KeyUsage=usage)["KeyMetadata"]
    for operation in ("EnableKeyRotation", "DisableKeyRotation", "RotateKeyOnDemand"):
        with kms.refused(
            "UnsupportedOperationException",
            f"{key['Arn']} key spec {spec} is not valid for this operation.",
        ):
            kms.call(operation, KeyId=key["KeyId"])
    # AWS answers "not enabled" for such keys (Terraform asks every key).
    assert kms.call("GetKeyRotationStatus", KeyId=key["KeyId"])["KeyRotationEnabled"] is False
    # Key state before key spec: a disabled key of another spec is "disabled".
    kms.call("DisableKey", KeyId=key["KeyId"])
    with kms.refused("DisabledException", f"{key['Arn']} is disabled."):
        kms.call("RotateKeyOnDemand", KeyId=key["KeyId"])


def test_keys_that_must_wait_never_crowd_out_due_ones(kms: Kms, clock: ManualClock) -> None:
    """More disabled due keys than a pass takes (100) do not starve an enabled one."""
    waiting = []
    for _ in range(120):
        key = kms.create_key()
        kms.call("EnableKeyRotation", KeyId=key["KeyId"], RotationPeriodInDays=90)
        kms.call("DisableKey", KeyId=key["KeyId"])
        waiting.append(key)
    clock.advance(DAY)
    due = kms.create_key()
    kms.call("EnableKeyRotation", KeyId=due["KeyId"], RotationPeriodInDays=90)
    clock.advance(90 * DAY)
    assert _run(kms).rotated == 1
    assert len(_rotations(kms, due["KeyId"])) == 1


def test_a_backlog_larger_than_a_batch_is_worked_through_in_one_pass(
    kms: Kms, clock: ManualClock
) -> None:
    keys = [kms.create_key() for _ in range(130)]
    for key in keys:
        kms.call("ScheduleKeyDeletion", KeyId=key["KeyId"], PendingWindowInDays=7)
    clock.advance(7 * DAY)
    assert _run(kms).deleted == 130
    assert _run(kms).deleted == 0


def test_one_key_that_fails_does_not_stop_the_others(kms: Kms, clock: ManualClock) -> None:
    broken = kms.create_key()
    kms.call("EnableKeyRotation", KeyId=broken["KeyId"], RotationPeriodInDays=90)
    # Due first, and of a spec the key store cannot make material for: its rule raises.
    _set_spec(kms, broken["KeyId"], "SM2")
    clock.advance(DAY)
    healthy = kms.create_key()
    kms.call("EnableKeyRotation", KeyId=healthy["KeyId"], RotationPeriodInDays=90)
    doomed = kms.create_key()
    kms.call("ScheduleKeyDeletion", KeyId=doomed["KeyId"], PendingWindowInDays=7)
    clock.advance(91 * DAY)
    report = _run(kms)
    assert (report.rotated, report.deleted) == (1, 1)
    assert len(_rotations(kms, healthy["KeyId"])) == 1
