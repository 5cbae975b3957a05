"""GetKeyLastUsage through boto3: the last successful cryptographic operation on a key, read
from the audit trail, with the trail's event id of that request and TrackingStartDate."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.audit_support import request_id
from tests.e2e.kms_management import (
    client,
    fails,
    near,
    new_key,
    not_found,
    refused_to_other_account,
)
from tests.support import OpenKmsServer


@pytest.fixture
def account(server: OpenKmsServer) -> dict[str, str]:
    return server.create_account()


def _last(kms: Any, key_id: str) -> dict[str, Any]:
    return dict(kms.get_key_last_usage(KeyId=key_id)["KeyLastUsage"])


def _trail_record(cloudtrail: Any, event_id: str) -> dict[str, Any]:
    (event,) = cloudtrail.lookup_events(
        LookupAttributes=[{"AttributeKey": "EventId", "AttributeValue": event_id}]
    )["Events"]
    return dict(json.loads(event["CloudTrailEvent"]))


def test_a_new_key_has_no_usage_and_tracking_starts_at_its_creation(server, account):
    kms = server.client_for(account)
    key = new_key(kms)
    answer = kms.get_key_last_usage(KeyId=key["Arn"])
    assert answer["KeyId"] == key["KeyId"]
    assert answer["KeyLastUsage"] == {}
    assert answer["KeyCreationDate"] == key["CreationDate"]
    # The trail began when the server first started, before the key: the key's creation wins.
    assert answer["TrackingStartDate"] == key["CreationDate"]


def test_the_last_successful_cryptographic_use_is_reported_with_its_trail_event(server, account):
    kms = server.client_for(account)
    cloudtrail = server.client_for(account, "cloudtrail")
    key = new_key(kms)
    other = new_key(kms)
    encrypted = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext={"a": "b"})
    last = _last(kms, key["KeyId"])
    assert last["Operation"] == "Encrypt"
    assert last["KmsRequestId"] == request_id(encrypted)
    assert near(last["Timestamp"], key["CreationDate"])
    record = _trail_record(cloudtrail, last["CloudTrailEventId"])
    assert record["requestID"] == request_id(encrypted)
    assert record["eventName"] == "Encrypt"

    # Neither a refused use nor an operation that is not cryptographic counts.
    fails(
        kms.decrypt,
        "InvalidCiphertextException",
        CiphertextBlob=encrypted["CiphertextBlob"],
        EncryptionContext={"a": "wrong"},
    )
    kms.describe_key(KeyId=key["KeyId"])
    kms.get_key_rotation_status(KeyId=key["KeyId"])
    assert _last(kms, key["KeyId"])["KmsRequestId"] == request_id(encrypted)

    decrypted = kms.decrypt(
        CiphertextBlob=encrypted["CiphertextBlob"], EncryptionContext={"a": "b"}
    )
    assert _last(kms, key["KeyId"])["Operation"] == "Decrypt"
    assert _last(kms, key["KeyId"])["KmsRequestId"] == request_id(decrypted)

    # ReEncrypt uses both keys.
    moved = kms.re_encrypt(
        CiphertextBlob=encrypted["CiphertextBlob"],
        SourceEncryptionContext={"a": "b"},
        DestinationKeyId=other["KeyId"],
    )
    for used in (key, other):
        last = _last(kms, used["KeyId"])
        assert (last["Operation"], last["KmsRequestId"]) == ("ReEncrypt", request_id(moved))

    data_key = kms.generate_data_key_without_plaintext(KeyId=other["Arn"], KeySpec="AES_256")
    assert _last(kms, other["KeyId"])["Operation"] == "GenerateDataKeyWithoutPlaintext"
    assert _last(kms, other["KeyId"])["KmsRequestId"] == request_id(data_key)
    # The other key's use is not this one's.
    assert _last(kms, key["KeyId"])["KmsRequestId"] == request_id(moved)


def test_bad_key_ids_are_refused(server, account):
    kms = server.client_for(account)
    missing = "1234abcd-12ab-34cd-56ef-1234567890ab"
    fails(
        kms.get_key_last_usage,
        "NotFoundException",
        not_found(missing, account=account["AccountId"]),
        KeyId=missing,
    )
    unchecked = client(server, account, validate=False).get_key_last_usage
    fails(unchecked, "ValidationException", KeyId="")
    fails(unchecked, "ValidationException")
    # An alias is not a key id here (AWS: key id or key ARN only).
    kms.create_alias(AliasName=f"alias/usage-{missing[:8]}-{account['AccountId']}",
                     TargetKeyId=new_key(kms)["KeyId"])  # fmt: skip
    fails(kms.get_key_last_usage, "NotFoundException",
          KeyId=f"alias/usage-{missing[:8]}-{account['AccountId']}")  # fmt: skip


def test_another_account_cannot_read_the_keys_usage(server, account, other_account):
    kms = server.client_for(account)
    key = new_key(kms)
    kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    refused_to_other_account(
        server.client_for(other_account).get_key_last_usage,
        other_account["AccountId"],
        key,
        "kms:GetKeyLastUsage",
    )
