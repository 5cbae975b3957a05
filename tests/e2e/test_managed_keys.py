"""AWS managed keys end to end: predefined alias/aws/* aliases listed in every account and
region, the key made on first use (once, however many callers race), and refused to every
management operation, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from openkms.domain.managed_keys import PREDEFINED_ALIASES, managed_key_policy, managed_service
from tests.e2e.kms_management import (
    OTHER_REGION,
    all_key_ids,
    client,
    denied,
    fails,
    new_key,
    stored_policy,
    stored_value,
)
from tests.support import OpenKmsServer, eventually, time_travel

DAY = 24 * 3600
S3 = "alias/aws/s3"
S3_DESCRIPTION = "Default key that protects my S3 objects when no other key is defined"


def alias_arn(account: str, name: str, region: str = "us-east-1") -> str:
    return f"arn:aws:kms:{region}:{account}:{name}"


def all_aliases(kms: Any, **params: Any) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    while True:
        page = kms.list_aliases(**params)
        entries += page["Aliases"]
        assert len(page["Aliases"]) <= params.get("Limit", 50)
        # A marker that repeats an entry would page forever.
        assert len({e["AliasName"] for e in entries}) == len(entries), "an alias listed twice"
        if not page["Truncated"]:
            assert "NextMarker" not in page
            return entries
        params["Marker"] = page["NextMarker"]


def predefined(account: str, region: str = "us-east-1") -> list[dict[str, str]]:
    return [
        {"AliasName": name, "AliasArn": alias_arn(account, name, region)}
        for name in PREDEFINED_ALIASES
    ]


def by_name(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {entry["AliasName"]: entry for entry in entries}


def server_key_count(server: OpenKmsServer, account: str) -> int:
    """Keys of ``account`` as the database holds them (all regions)."""
    return int(
        stored_value(server, "SELECT count(*) FROM kms_keys WHERE account_id = :a", a=account)
    )


# -- predefined aliases --------------------------------------------------------------------------


def test_a_fresh_account_lists_the_predefined_aliases_without_a_key(fresh):
    account, kms = fresh
    listing = kms.list_aliases(Limit=100)
    assert listing["Aliases"] == predefined(account["AccountId"])
    assert listing["Truncated"] is False
    assert len(PREDEFINED_ALIASES) == 39
    assert {"alias/aws/s3", "alias/aws/ebs", "alias/aws/rds", "alias/aws/lambda"} <= set(
        PREDEFINED_ALIASES
    )
    for limit in (1, 2, 3):
        assert all_aliases(kms, Limit=limit) == predefined(account["AccountId"])
    # Listing made nothing.
    assert kms.list_keys()["Keys"] == []


def test_predefined_aliases_merge_with_the_accounts_own_in_order_on_every_page(fresh):
    account, kms = fresh
    key = new_key(kms)
    # Names sorting before, between and after the alias/aws/ names.
    own = ["alias/a", "alias/aws-x", "alias/aws/", "alias/awt", "alias/zz", "alias/AWS/s3"]
    own = [name for name in own if not name.startswith("alias/aws/")]
    for name in own:
        kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    kms.encrypt(KeyId="alias/aws/lambda", Plaintext=b"x")
    expected = sorted(PREDEFINED_ALIASES + tuple(own))
    for limit in (1, 2, 3, 7, 50, 100):
        listed = all_aliases(kms, Limit=limit)
        assert [e["AliasName"] for e in listed] == expected, limit
    entries = by_name(all_aliases(kms))
    assert "TargetKeyId" in entries["alias/aws/lambda"]
    assert entries["alias/zz"]["TargetKeyId"] == key["KeyId"]
    assert "TargetKeyId" not in entries["alias/aws/s3"]
    # A KeyId filter lists only the key's own aliases, never predefined ones.
    assert sorted(e["AliasName"] for e in all_aliases(kms, KeyId=key["KeyId"])) == sorted(own)


# -- first use -----------------------------------------------------------------------------------


def test_first_use_makes_the_aws_managed_key_and_its_alias(server, fresh):
    account, kms = fresh
    account_id = account["AccountId"]
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    blob = kms.encrypt(KeyId=S3, Plaintext=b"via s3")["CiphertextBlob"]
    after = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)

    metadata = kms.describe_key(KeyId=S3)["KeyMetadata"]
    key_id = metadata["KeyId"]
    assert metadata["KeyManager"] == "AWS"
    assert metadata["Description"] == S3_DESCRIPTION
    assert (metadata["Enabled"], metadata["KeyState"]) == (True, "Enabled")
    assert (metadata["KeySpec"], metadata["KeyUsage"], metadata["Origin"]) == (
        "SYMMETRIC_DEFAULT",
        "ENCRYPT_DECRYPT",
        "AWS_KMS",
    )
    assert metadata["Arn"] == f"arn:aws:kms:us-east-1:{account_id}:key/{key_id}"
    assert before <= metadata["CreationDate"] <= after

    status = kms.get_key_rotation_status(KeyId=key_id)
    assert status["KeyRotationEnabled"] is True
    assert status["RotationPeriodInDays"] == 365
    assert status["NextRotationDate"] - metadata["CreationDate"] == dt.timedelta(days=365)

    entry = by_name(all_aliases(kms))[S3]
    assert entry["TargetKeyId"] == key_id
    assert entry["AliasArn"] == alias_arn(account_id, S3)
    assert entry["CreationDate"] == metadata["CreationDate"]
    assert all_aliases(kms, KeyId=key_id) == [entry]

    # The alias ARN works too, and every later use is the same key.
    assert kms.describe_key(KeyId=alias_arn(account_id, S3))["KeyMetadata"]["KeyId"] == key_id
    again = kms.generate_data_key(KeyId=S3, KeySpec="AES_256")
    assert again["KeyId"] == metadata["Arn"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"via s3"
    assert kms.decrypt(CiphertextBlob=blob, KeyId=S3)["KeyId"] == metadata["Arn"]
    assert kms.list_keys()["Keys"] == [{"KeyId": key_id, "KeyArn": metadata["Arn"]}]
    assert kms.list_resource_tags(KeyId=key_id)["Tags"] == []
    assert server_key_count(server, account_id) == 1

    service = managed_service(S3)
    assert service is not None
    assert stored_policy(server, key_id) == managed_key_policy(
        service, "aws", account_id, "us-east-1"
    )
    assert '"kms:ViaService" : "s3.us-east-1.amazonaws.com"' in stored_policy(server, key_id)


def test_the_alias_arn_makes_the_key_too_and_ebs_gets_its_own_description(fresh):
    account, kms = fresh
    arn = alias_arn(account["AccountId"], "alias/aws/ebs")
    metadata = kms.describe_key(KeyId=arn)["KeyMetadata"]
    assert metadata["KeyManager"] == "AWS"
    assert metadata["Description"] == (
        "Default master key that protects my EBS volumes when no other key is defined"
    )
    assert by_name(all_aliases(kms))["alias/aws/ebs"]["TargetKeyId"] == metadata["KeyId"]


def test_each_region_and_each_account_gets_its_own_key(server, fresh):
    account, kms = fresh
    west = client(server, account, region=OTHER_REGION)
    here = kms.describe_key(KeyId=S3)["KeyMetadata"]
    there = west.describe_key(KeyId=S3)["KeyMetadata"]
    assert here["KeyId"] != there["KeyId"]
    assert there["Arn"].startswith(f"arn:aws:kms:{OTHER_REGION}:{account['AccountId']}:key/")
    assert by_name(all_aliases(west))[S3]["TargetKeyId"] == there["KeyId"]
    assert [k["KeyId"] for k in west.list_keys()["Keys"]] == [there["KeyId"]]
    assert '"kms:ViaService" : "s3.us-west-2.amazonaws.com"' in stored_policy(
        server, there["KeyId"]
    )

    stranger = server.create_account()
    theirs = client(server, stranger).describe_key(KeyId=S3)["KeyMetadata"]
    assert theirs["AWSAccountId"] == stranger["AccountId"]
    assert theirs["KeyId"] not in (here["KeyId"], there["KeyId"])
    assert kms.describe_key(KeyId=S3)["KeyMetadata"]["KeyId"] == here["KeyId"]


def test_another_accounts_alias_arn_makes_no_key_there(server, fresh):
    account, kms = fresh
    stranger = client(server, server.create_account())
    arn = alias_arn(account["AccountId"], "alias/aws/sqs")
    fails(stranger.describe_key, "NotFoundException", f"Alias {arn} is not found.", KeyId=arn)
    assert "TargetKeyId" not in by_name(all_aliases(kms))["alias/aws/sqs"]
    assert server_key_count(server, account["AccountId"]) == 0


def test_an_unknown_service_alias_is_not_found_and_makes_no_key(server, fresh):
    account, kms = fresh
    for name in ("alias/aws/nosuchservice", "alias/aws/", "alias/aws/s3/x", "alias/aws/S3"):
        message = f"Alias {alias_arn(account['AccountId'], name)} is not found."
        fails(kms.describe_key, "NotFoundException", message, KeyId=name)
        fails(kms.encrypt, "NotFoundException", message, KeyId=name, Plaintext=b"x")
    assert kms.list_keys()["Keys"] == []
    assert all_aliases(kms) == predefined(account["AccountId"])
    assert server_key_count(server, account["AccountId"]) == 0


def test_key_id_or_arn_operations_do_not_take_the_alias_and_make_no_key(server, fresh):
    account, kms = fresh
    fails(
        kms.get_key_rotation_status,
        "NotFoundException",
        f"Invalid keyId '{S3}'",
        KeyId=S3,
    )
    assert server_key_count(server, account["AccountId"]) == 0


# -- races ---------------------------------------------------------------------------------------


def _race(make_client: Any, callers: int, alias: str) -> set[str]:
    """``callers`` threads with their own clients use ``alias`` for the first time at once."""
    clients = [make_client(n) for n in range(callers)]
    barrier = threading.Barrier(callers)

    def first_use(n: int) -> str:
        barrier.wait()
        return str(clients[n].encrypt(KeyId=alias, Plaintext=b"race")["KeyId"])

    with ThreadPoolExecutor(max_workers=callers) as pool:
        return set(pool.map(first_use, range(callers)))


def test_concurrent_first_uses_on_two_workers_make_one_key(own_server):
    own_server.extra_args = ["--workers", "2"]
    server = own_server.start()
    account = server.create_account()
    for alias in ("alias/aws/s3", "alias/aws/rds", "alias/aws/lambda"):
        arns = _race(lambda _n: server.client_for(account), 16, alias)
        assert len(arns) == 1, arns
    assert server_key_count(server, account["AccountId"]) == 3
    kms = server.client_for(account)
    assert len(kms.list_keys()["Keys"]) == 3
    assert "Traceback" not in server.log()


def test_concurrent_first_uses_on_two_nodes_make_one_key(tmp_path, database_url_factory):
    url = database_url_factory("postgresql")  # skips without PostgreSQL
    root_key = tmp_path / "cluster-root.key"
    nodes = [
        OpenKmsServer(tmp_path / f"node{i}", url, ["--workers", "2"], root_key_file=root_key)
        for i in (1, 2)
    ]
    try:
        for node in nodes:
            node.start()
        account = nodes[0].create_account()
        for alias in ("alias/aws/s3", "alias/aws/ebs", "alias/aws/sns"):
            arns = _race(lambda n: nodes[n % 2].client_for(account), 16, alias)
            assert len(arns) == 1, arns
        assert server_key_count(nodes[0], account["AccountId"]) == 3
        a, b = (node.client_for(account) for node in nodes)
        assert a.describe_key(KeyId=S3)["KeyMetadata"] == b.describe_key(KeyId=S3)["KeyMetadata"]
        for node in nodes:
            assert "Traceback" not in node.log()
    finally:
        for node in nodes:
            node.stop()


# -- what the customer may not do ------------------------------------------------------------------


def test_every_management_operation_is_refused_with_access_denied(server, fresh):
    account, kms = fresh
    root = account["AccountId"]
    metadata = kms.describe_key(KeyId=S3)["KeyMetadata"]
    key_id, arn = metadata["KeyId"], metadata["Arn"]
    refused: list[tuple[str, Any, dict[str, Any]]] = [
        ("kms:DisableKey", kms.disable_key, {}),
        ("kms:EnableKey", kms.enable_key, {}),
        ("kms:ScheduleKeyDeletion", kms.schedule_key_deletion, {"PendingWindowInDays": 7}),
        ("kms:CancelKeyDeletion", kms.cancel_key_deletion, {}),
        ("kms:EnableKeyRotation", kms.enable_key_rotation, {}),
        ("kms:DisableKeyRotation", kms.disable_key_rotation, {}),
        ("kms:RotateKeyOnDemand", kms.rotate_key_on_demand, {}),
        ("kms:TagResource", kms.tag_resource, {"Tags": [{"TagKey": "k", "TagValue": "v"}]}),
        ("kms:UntagResource", kms.untag_resource, {"TagKeys": ["k"]}),
        ("kms:UpdateKeyDescription", kms.update_key_description, {"Description": "mine"}),
    ]
    for action, call, params in refused:
        # By key id and by key ARN alike; before any state error (CancelKeyDeletion on an
        # Enabled key would otherwise be KMSInvalidStateException).
        for name in (key_id, arn):
            fails(call, "AccessDeniedException", denied(root, action, arn), KeyId=name, **params)

    # Nothing changed.
    after = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert (after["KeyState"], after["Description"]) == ("Enabled", S3_DESCRIPTION)
    assert "DeletionDate" not in after
    assert kms.list_resource_tags(KeyId=key_id)["Tags"] == []
    status = kms.get_key_rotation_status(KeyId=key_id)
    assert (status["KeyRotationEnabled"], status["RotationPeriodInDays"]) == (True, 365)
    assert kms.list_key_rotations(KeyId=key_id)["Rotations"] == []

    # Use stays allowed.
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"still usable")["CiphertextBlob"]
    reencrypted = kms.re_encrypt(CiphertextBlob=blob, DestinationKeyId=S3)["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=reencrypted)["Plaintext"] == b"still usable"
    assert "CiphertextBlob" in kms.generate_data_key_without_plaintext(KeyId=S3, NumberOfBytes=32)


def test_alias_operations_cannot_touch_an_aws_managed_key(server, fresh):
    account, kms = fresh
    root = account["AccountId"]
    managed = kms.describe_key(KeyId=S3)["KeyMetadata"]
    mine = new_key(kms)
    own = f"alias/mine-{uuid.uuid4().hex[:8]}"
    kms.create_alias(AliasName=own, TargetKeyId=mine["KeyId"])

    # No alias of the customer's may name the managed key.
    for target in (managed["KeyId"], managed["Arn"]):
        fails(
            kms.create_alias,
            "AccessDeniedException",
            denied(root, "kms:CreateAlias", managed["Arn"]),
            AliasName=f"alias/new-{uuid.uuid4().hex[:8]}",
            TargetKeyId=target,
        )
        fails(
            kms.update_alias,
            "AccessDeniedException",
            denied(root, "kms:UpdateAlias", managed["Arn"]),
            AliasName=own,
            TargetKeyId=target,
        )
    # Its own alias cannot be moved, deleted or made again.
    fails(kms.update_alias, "NotAuthorizedException", AliasName=S3, TargetKeyId=mine["KeyId"])
    fails(kms.delete_alias, "NotAuthorizedException", AliasName=S3)
    fails(kms.create_alias, "NotAuthorizedException", AliasName=S3, TargetKeyId=mine["KeyId"])
    # Nor can a customer take a predefined alias that has no key yet.
    fails(
        kms.create_alias,
        "NotAuthorizedException",
        AliasName="alias/aws/rds",
        TargetKeyId=mine["KeyId"],
    )

    entries = by_name(all_aliases(kms))
    assert entries[S3]["TargetKeyId"] == managed["KeyId"]
    assert entries[own]["TargetKeyId"] == mine["KeyId"]
    assert "TargetKeyId" not in entries["alias/aws/rds"]
    assert sorted(entries) == sorted((*PREDEFINED_ALIASES, own))


def test_another_account_may_not_use_the_managed_key(server, fresh, other_account):
    account, kms = fresh
    managed = kms.describe_key(KeyId=S3)["KeyMetadata"]
    other = client(server, other_account)
    fails(
        other.encrypt,
        "AccessDeniedException",
        denied(other_account["AccountId"], "kms:Encrypt", managed["Arn"]),
        KeyId=managed["Arn"],
        Plaintext=b"x",
    )


# -- rotation ------------------------------------------------------------------------------------


def test_the_managed_key_rotates_every_year_and_old_ciphertexts_decrypt(own_server):
    server = own_server.start()
    kms = server.client()
    metadata = kms.describe_key(KeyId=S3)["KeyMetadata"]
    key_id, first = metadata["KeyId"], metadata["CurrentKeyMaterialId"]
    old = kms.encrypt(KeyId=S3, Plaintext=b"year one")["CiphertextBlob"]

    with time_travel(364 * DAY, server):
        time.sleep(2.5)  # job passes run, and find nothing due
        assert kms.list_key_rotations(KeyId=key_id)["Rotations"] == []

    with time_travel(366 * DAY, server):

        def rotated() -> dict[str, Any]:
            rotations = kms.list_key_rotations(KeyId=key_id)["Rotations"]
            assert len(rotations) == 1
            return dict(rotations[0])

        rotation = eventually(rotated)
        assert rotation["RotationType"] == "AUTOMATIC"
        assert rotation["KeyMaterialState"] == "CURRENT"
        status = kms.get_key_rotation_status(KeyId=key_id)
        assert status["KeyRotationEnabled"] is True
        assert status["NextRotationDate"] > dt.datetime.now(dt.UTC) + dt.timedelta(days=365 + 360)
        current = kms.describe_key(KeyId=S3)["KeyMetadata"]["CurrentKeyMaterialId"]
        assert current == rotation["KeyMaterialId"] != first
        opened = kms.decrypt(CiphertextBlob=old)
        assert (opened["Plaintext"], opened["KeyMaterialId"]) == (b"year one", first)
        fresh_blob = kms.encrypt(KeyId=S3, Plaintext=b"year two")["CiphertextBlob"]
        assert kms.decrypt(CiphertextBlob=fresh_blob)["KeyMaterialId"] == current
    assert server.log().count(f"rotated key {key_id}") == 1


def test_the_managed_key_survives_a_restart(own_server):
    server = own_server.start()
    kms = server.client()
    key_id = kms.describe_key(KeyId="alias/aws/secretsmanager")["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId="alias/aws/secretsmanager", Plaintext=b"kept")["CiphertextBlob"]
    server.restart()
    kms = server.client()
    assert kms.describe_key(KeyId="alias/aws/secretsmanager")["KeyMetadata"]["KeyId"] == key_id
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"kept"
    assert key_id in all_key_ids(kms)


@pytest.mark.parametrize("name", ["alias/aws/dynamodb", "alias/aws/lambda", "alias/aws/xray"])
def test_each_service_key_has_its_policy_and_description(server, fresh, name):
    account, kms = fresh
    metadata = kms.describe_key(KeyId=name)["KeyMetadata"]
    service = managed_service(name)
    assert service is not None
    assert metadata["Description"] == service.description
    assert stored_policy(server, metadata["KeyId"]) == managed_key_policy(
        service, "aws", account["AccountId"], "us-east-1"
    )
