"""KMS's service events in the trail: what the lifecycle jobs did on their own (an automatic
rotation, a deletion at the end of its window, expired imported material) is recorded as
CloudTrail records it (eventType AwsServiceEvent, no caller), found with LookupEvents and
covered by the trail's signed chain."""

from __future__ import annotations

import datetime as dt
import json
import os
from typing import Any

import pytest

from tests.e2e.audit_support import public_key, verify
from tests.e2e.kms_management import new_key
from tests.e2e.test_import import external_key, import_material
from tests.support import OpenKmsServer, eventually, time_travel

DAY = 86_400


@pytest.fixture
def account(server: OpenKmsServer) -> dict[str, str]:
    return server.create_account()


def _service_events(cloudtrail: Any, key_arn: str, name: str) -> list[dict[str, Any]]:
    events = cloudtrail.lookup_events(
        LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": key_arn}]
    )["Events"]
    return [json.loads(e["CloudTrailEvent"]) for e in events if e["EventName"] == name]


def _one(cloudtrail: Any, key_arn: str, name: str) -> dict[str, Any]:
    found = _service_events(cloudtrail, key_arn, name)
    assert len(found) == 1, found
    return found[0]


def _is_service_event(record: dict[str, Any], account: dict[str, str], key_arn: str) -> None:
    assert record["eventType"] == "AwsServiceEvent"
    assert record["eventSource"] == "kms.amazonaws.com"
    assert record["userIdentity"] == {
        "accountId": account["AccountId"],
        "invokedBy": "AWS Internal",
    }
    assert record["sourceIPAddress"] == record["userAgent"] == "AWS Internal"
    assert record["requestParameters"] is None
    assert record["recipientAccountId"] == account["AccountId"]
    assert record["resources"] == [
        {"accountId": account["AccountId"], "type": "AWS::KMS::Key", "ARN": key_arn}
    ]
    assert record["managementEvent"] is True and record["readOnly"] is False


def test_rotation_and_deletion_done_by_the_jobs_are_service_events(server, account, tmp_path):
    kms = server.client_for(account)
    cloudtrail = server.client_for(account, "cloudtrail")
    rotating = new_key(kms)
    kms.enable_key_rotation(KeyId=rotating["KeyId"], RotationPeriodInDays=90)
    doomed = new_key(kms)
    kms.schedule_key_deletion(KeyId=doomed["KeyId"], PendingWindowInDays=7)

    with time_travel(91 * DAY, server):
        rotated = eventually(lambda: _one(cloudtrail, rotating["Arn"], "RotateKey"))
        deleted = eventually(lambda: _one(cloudtrail, doomed["Arn"], "DeleteKey"))
        # The jobs' later passes find nothing more to record.
        server.wait_for_log(f"rotated key {rotating['KeyId']}")
        assert len(_service_events(cloudtrail, rotating["Arn"], "RotateKey")) == 1

    _is_service_event(rotated, account, rotating["Arn"])
    materials = kms.list_key_rotations(
        KeyId=rotating["KeyId"], IncludeKeyMaterial="ALL_KEY_MATERIAL"
    )
    ids = {m["KeyMaterialId"] for m in materials["Rotations"]}
    details = rotated["serviceEventDetails"]
    assert details["rotationType"] == "AUTOMATIC"
    assert details["keyOrigin"] == "AWS_KMS"
    assert details["previousKeyMaterialId"] == rotating["CurrentKeyMaterialId"]
    assert {details["previousKeyMaterialId"], details["currentKeyMaterialId"]} == ids
    assert dt.datetime.fromisoformat(rotated["eventTime"]) > dt.datetime.now(dt.UTC)

    _is_service_event(deleted, account, doomed["Arn"])
    assert deleted["responseElements"] == {"keyId": doomed["Arn"]}

    # The service events are in the signed chain like every request's event.
    result = verify(server, public_key(server, tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_expired_imported_material_is_a_service_event(server, account):
    kms = server.client_for(account)
    cloudtrail = server.client_for(account, "cloudtrail")
    key = external_key(kms)
    valid_to = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    imported = import_material(kms, key["KeyId"], os.urandom(32), ValidTo=valid_to)

    with time_travel(DAY + 60, server):
        record = eventually(lambda: _one(cloudtrail, key["Arn"], "DeleteExpiredKeyMaterial"))

    _is_service_event(record, account, key["Arn"])
    assert record["serviceEventDetails"] == {
        "keyId": key["KeyId"],
        "keyMaterialId": imported["KeyMaterialId"],
    }
