"""CreateKey, DescribeKey, ListKeys, EnableKey, DisableKey, UpdateKeyDescription, end to end:
a real server driven by boto3, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ClientError

from tests.e2e.kms_management import (
    OTHER_REGION,
    all_key_ids,
    client,
    denied,
    fails,
    key_arn,
    new_key,
    not_found,
    null_member,
    refused_to_other_account,
    stored_policy,
    unchecked_client,
)
from tests.support import (
    ACCOUNT_ID,
    REGION,
)

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
METADATA_FIELDS = {
    "AWSAccountId",
    "KeyId",
    "Arn",
    "CreationDate",
    "Enabled",
    "Description",
    "KeyUsage",
    "KeyState",
    "Origin",
    "KeyManager",
    "CustomerMasterKeySpec",
    "KeySpec",
    "EncryptionAlgorithms",
    "MultiRegion",
    "CurrentKeyMaterialId",
}
DEFAULT_POLICY = """{
  "Version" : "2012-10-17",
  "Id" : "key-default-1",
  "Statement" : [ {
    "Sid" : "Enable IAM User Permissions",
    "Effect" : "Allow",
    "Principal" : {
      "AWS" : "arn:aws:iam::%s:root"
    },
    "Action" : "kms:*",
    "Resource" : "*"
  } ]
}"""


# -- CreateKey ----------------------------------------------------------------------------


def test_create_key_returns_the_full_metadata_of_a_symmetric_key(kms):
    before = dt.datetime.now(dt.UTC)
    metadata = kms.create_key()["KeyMetadata"]
    after = dt.datetime.now(dt.UTC)

    assert set(metadata) == METADATA_FIELDS
    key_id = metadata["KeyId"]
    assert UUID.fullmatch(key_id)
    assert metadata["AWSAccountId"] == ACCOUNT_ID
    assert metadata["Arn"] == f"arn:aws:kms:us-east-1:123456789012:key/{key_id}"
    assert before - dt.timedelta(seconds=5) <= metadata["CreationDate"] <= after
    assert metadata["CreationDate"].tzinfo is not None
    assert metadata["Enabled"] is True
    assert metadata["Description"] == ""
    assert metadata["KeyUsage"] == "ENCRYPT_DECRYPT"
    assert metadata["KeyState"] == "Enabled"
    assert metadata["Origin"] == "AWS_KMS"
    assert metadata["KeyManager"] == "CUSTOMER"
    assert metadata["CustomerMasterKeySpec"] == "SYMMETRIC_DEFAULT"
    assert metadata["KeySpec"] == "SYMMETRIC_DEFAULT"
    assert metadata["EncryptionAlgorithms"] == ["SYMMETRIC_DEFAULT"]
    assert metadata["MultiRegion"] is False
    assert re.fullmatch(r"[0-9a-f]{64}", metadata["CurrentKeyMaterialId"])


def test_describe_key_returns_exactly_what_create_key_returned(kms):
    created = new_key(kms, Description="same everywhere")
    described = kms.describe_key(KeyId=created["KeyId"])["KeyMetadata"]
    assert described == created


def test_create_key_accepts_every_parameter_a_symmetric_key_allows(kms):
    metadata = new_key(
        kms,
        Description="all explicit",
        KeyUsage="ENCRYPT_DECRYPT",
        KeySpec="SYMMETRIC_DEFAULT",
        Origin="AWS_KMS",
        MultiRegion=False,
        BypassPolicyLockoutSafetyCheck=False,
        Tags=[{"TagKey": "team", "TagValue": "payments"}],
    )
    assert metadata["Description"] == "all explicit"
    assert metadata["KeySpec"] == "SYMMETRIC_DEFAULT"
    assert kms.list_resource_tags(KeyId=metadata["KeyId"])["Tags"] == [
        {"TagKey": "team", "TagValue": "payments"}
    ]


def test_create_key_accepts_the_deprecated_customer_master_key_spec(kms):
    metadata = new_key(kms, CustomerMasterKeySpec="SYMMETRIC_DEFAULT")
    assert metadata["CustomerMasterKeySpec"] == "SYMMETRIC_DEFAULT"
    assert metadata["KeySpec"] == "SYMMETRIC_DEFAULT"


def test_every_key_gets_its_own_id_and_key_material_id(kms):
    keys = [new_key(kms) for _ in range(3)]
    assert len({k["KeyId"] for k in keys}) == 3
    assert len({k["CurrentKeyMaterialId"] for k in keys}) == 3


def test_create_key_with_a_description_of_the_maximum_length(kms):
    description = "d" * 8192
    metadata = new_key(kms, Description=description)
    assert kms.describe_key(KeyId=metadata["KeyId"])["KeyMetadata"]["Description"] == description


def test_a_new_key_gets_aws_default_key_policy_text(kms, server):
    metadata = new_key(kms)
    assert stored_policy(server, metadata["KeyId"]) == DEFAULT_POLICY % ACCOUNT_ID


def test_a_new_key_in_another_account_names_that_account_in_its_default_policy(
    server, other_account
):
    metadata = new_key(client(server, other_account))
    policy = stored_policy(server, metadata["KeyId"])
    assert policy == DEFAULT_POLICY % other_account["AccountId"]
    assert metadata["AWSAccountId"] == other_account["AccountId"]
    assert metadata["Arn"] == key_arn(metadata["KeyId"], account=other_account["AccountId"])


def test_a_policy_given_to_create_key_is_stored_as_given(kms, server):
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "root",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            ],
        },
        indent=1,
    )
    metadata = new_key(kms, Policy=policy)
    assert stored_policy(server, metadata["KeyId"]) == policy


@pytest.mark.parametrize(
    "params",
    [
        {"KeySpec": "SM2", "KeyUsage": "SIGN_VERIFY"},
        {"CustomerMasterKeySpec": "SM2", "KeyUsage": "ENCRYPT_DECRYPT"},
    ],
    ids=["key-spec", "cmk-spec"],
)
def test_create_key_refuses_sm2_outside_china_as_aws_does(kms, params):
    fails(
        kms.create_key,
        "UnsupportedOperationException",
        "KeySpec SM2 is not supported in this Region",
        **params,
    )


@pytest.mark.parametrize("spec", ["RSA_2048", "ECC_NIST_P256", "HMAC_256", "ML_KEM_768"])
def test_create_key_needs_a_key_usage_for_every_key_but_symmetric_ones(kms, spec):
    fails(
        kms.create_key,
        "ValidationException",
        "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.",
        KeySpec=spec,
    )


@pytest.mark.parametrize("usage", ["SIGN_VERIFY", "GENERATE_VERIFY_MAC", "KEY_AGREEMENT"])
def test_create_key_refuses_a_key_usage_a_symmetric_key_cannot_have(kms, usage):
    fails(
        kms.create_key,
        "ValidationException",
        f"KeyUsage {usage} is not compatible with KeySpec SYMMETRIC_DEFAULT",
        KeyUsage=usage,
    )


def test_create_key_refuses_key_spec_with_customer_master_key_spec(kms):
    fails(
        kms.create_key,
        "ValidationException",
        "You cannot specify KeySpec and CustomerMasterKeySpec in the same request. "
        "CustomerMasterKeySpec is deprecated.",
        KeySpec="SYMMETRIC_DEFAULT",
        CustomerMasterKeySpec="SYMMETRIC_DEFAULT",
    )


@pytest.mark.parametrize(
    ("member", "path", "value"),
    [
        ("KeySpec", "keySpec", "AES_999"),
        ("CustomerMasterKeySpec", "customerMasterKeySpec", "symmetric_default"),
        ("KeyUsage", "keyUsage", "RANDOM"),
        ("Origin", "origin", "SOMEWHERE"),
    ],
)
def test_create_key_refuses_values_outside_an_enum(kms, member, path, value):
    message = fails(kms.create_key, "ValidationException", **{member: value})
    prefix = (
        f"1 validation error detected: Value '{value}' at '{path}' failed to satisfy "
        "constraint: Member must satisfy enum value set: ["
    )
    assert message.startswith(prefix)
    assert message.endswith("]")
    # Every value the service model allows is listed (AWS's own order is not the model's).
    model = botocore.session.get_session().get_service_model("kms")
    allowed = model.operation_model("CreateKey").input_shape.members[member].enum
    assert sorted(message[len(prefix) : -1].split(", ")) == sorted(allowed)


def test_create_key_refuses_a_description_over_8192_characters(kms):
    message = fails(kms.create_key, "ValidationException", Description="d" * 8193)
    assert message.startswith("1 validation error detected: Value ")
    assert message.endswith(
        "at 'description' failed to satisfy constraint: "
        "Member must have length less than or equal to 8192"
    )


@pytest.mark.parametrize(
    "policy",
    [
        "not json at all",
        "[]",
        '"a string"',
        "{}",
        '{"Version": "2012-10-17", "Statement": []}',
        '{"Statement": [{"Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*"}]}',
        '{"Statement": [{"Effect": "Maybe", "Principal": "*", "Action": "kms:*"}]}',
        '{"Statement": [{"Effect": "Allow", "Principal": "*", "Resource": "*"}]}',
        '{"Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}',
        '{"Statement": ["not an object"]}',
    ],
    ids=[
        "not-json",
        "array",
        "string",
        "no-statement",
        "empty-statements",
        "no-effect",
        "bad-effect",
        "no-action",
        "no-principal",
        "statement-not-object",
    ],
)
def test_create_key_refuses_a_malformed_policy(kms, policy):
    fails(kms.create_key, "MalformedPolicyDocumentException", Policy=policy)


def test_create_key_refuses_an_empty_policy(server):
    # Both the length and the pattern ([...]+) fail, and AWS names each broken constraint.
    message = fails(unchecked_client(server).create_key, "ValidationException", Policy="")
    assert message.startswith("2 validation errors detected: ")
    assert (
        "Value '' at 'policy' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1"
    ) in message
    assert (
        "Value '' at 'policy' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: "
    ) in message


def test_create_key_refuses_multi_region_keys_origins_and_key_stores_not_built(kms):
    fails(kms.create_key, "UnsupportedOperationException", MultiRegion=True)
    fails(kms.create_key, "UnsupportedOperationException", Origin="EXTERNAL_KEY_STORE")
    # Imported material is built for symmetric, HMAC, RSA and ECC keys.
    fails(
        kms.create_key,
        "UnsupportedOperationException",
        Origin="EXTERNAL",
        KeySpec="ML_DSA_44",
        KeyUsage="SIGN_VERIFY",
    )
    fails(
        kms.create_key,
        "CustomKeyStoreNotFoundException",
        "Custom key store 'cks-1234567890abcdef0' does not exist.",
        CustomKeyStoreId="cks-1234567890abcdef0",
    )


def test_a_create_key_that_fails_creates_no_key(fresh):
    _, kms = fresh
    assert kms.list_keys()["Keys"] == []
    failing: list[dict[str, Any]] = [
        {"KeySpec": "RSA_2048"},
        {"KeyUsage": "SIGN_VERIFY"},
        {"Policy": "{not json"},
        {"Tags": [{"TagKey": "aws:reserved", "TagValue": "x"}]},
        {"Tags": [{"TagKey": "dup", "TagValue": "1"}, {"TagKey": "dup", "TagValue": "2"}]},
        {"Tags": [{"TagKey": f"k{i}", "TagValue": "v"} for i in range(51)]},
        {"Tags": [{"TagKey": "k" * 129, "TagValue": "v"}]},
        {"Description": "d" * 8193},
        {"MultiRegion": True},
        {"CustomKeyStoreId": "cks-1234567890abcdef0"},
    ]
    for params in failing:
        with pytest.raises(ClientError):
            kms.create_key(**{"Description": "should not exist", **params})
    listing = kms.list_keys()
    assert listing["Keys"] == []
    assert listing["Truncated"] is False
    assert "NextMarker" not in listing

    made = new_key(kms)
    assert all_key_ids(kms) == [made["KeyId"]]


# -- DescribeKey --------------------------------------------------------------------------


def test_describe_key_by_key_id_and_by_key_arn(kms):
    created = new_key(kms)
    assert kms.describe_key(KeyId=created["KeyId"])["KeyMetadata"] == created
    assert kms.describe_key(KeyId=created["Arn"])["KeyMetadata"] == created


def test_describe_key_by_alias_name_and_by_alias_arn(kms):
    created = new_key(kms)
    alias = f"alias/describe-{uuid.uuid4()}"
    kms.create_alias(AliasName=alias, TargetKeyId=created["KeyId"])
    alias_arn = f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:{alias}"
    assert kms.describe_key(KeyId=alias)["KeyMetadata"] == created
    assert kms.describe_key(KeyId=alias_arn)["KeyMetadata"] == created


@pytest.mark.parametrize(
    "key_id",
    [
        "foo",
        "134f2428cec14b25a1ae9048164dba47",
        "mrk-fake-key-id",
        "{134f2428-cec1-4b25-a1ae-9048164dba47}",
        " 134f2428-cec1-4b25-a1ae-9048164dba47",
    ],
    ids=["word", "undashed-uuid", "bad-mrk", "braced-uuid", "leading-space"],
)
def test_describe_key_with_a_malformed_key_id_is_invalid_key_id(kms, key_id):
    fails(kms.describe_key, "NotFoundException", f"Invalid keyId '{key_id}'", KeyId=key_id)


def test_describe_key_of_an_unknown_key_names_the_full_key_arn(kms):
    key_id = str(uuid.uuid4())
    fails(kms.describe_key, "NotFoundException", not_found(key_id), KeyId=key_id)
    fails(kms.describe_key, "NotFoundException", not_found(key_id), KeyId=key_arn(key_id))


def test_describe_key_of_an_unknown_alias_names_the_full_alias_arn(kms):
    alias = f"alias/missing-{uuid.uuid4()}"
    message = f"Alias arn:aws:kms:us-east-1:123456789012:{alias} is not found."
    fails(kms.describe_key, "NotFoundException", message, KeyId=alias)
    fails(
        kms.describe_key,
        "NotFoundException",
        message,
        KeyId=f"arn:aws:kms:us-east-1:123456789012:{alias}",
    )


def test_describe_key_with_an_arn_of_another_region_is_invalid_arn(kms):
    key_id = new_key(kms)["KeyId"]
    fails(
        kms.describe_key,
        "NotFoundException",
        "Invalid arn eu-west-1",
        KeyId=key_arn(key_id, region="eu-west-1"),
    )
    fails(
        kms.describe_key,
        "NotFoundException",
        "Invalid arn ap-southeast-1",
        KeyId=f"arn:aws:kms:ap-southeast-1:{ACCOUNT_ID}:alias/anything",
    )


def test_describe_key_validates_its_input(server):
    kms = unchecked_client(server)
    fails(kms.describe_key, "ValidationException", null_member("keyId"))
    fails(
        kms.describe_key,
        "ValidationException",
        "1 validation error detected: Value '' at 'keyId' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1",
        KeyId="",
    )
    message = fails(kms.describe_key, "ValidationException", KeyId="k" * 2049)
    assert message.endswith(
        "at 'keyId' failed to satisfy constraint: "
        "Member must have length less than or equal to 2048"
    )
    message = fails(
        kms.describe_key, "ValidationException", KeyId=str(uuid.uuid4()), GrantTokens=["t"] * 11
    )
    assert "at 'grantTokens' failed to satisfy constraint: Member must have length" in message


def test_describe_key_shows_a_disabled_key_as_disabled(kms):
    created = new_key(kms)
    kms.disable_key(KeyId=created["KeyId"])
    described = kms.describe_key(KeyId=created["KeyId"])["KeyMetadata"]
    assert described == {**created, "Enabled": False, "KeyState": "Disabled"}


# -- ListKeys -----------------------------------------------------------------------------


def test_list_keys_of_a_fresh_account_is_empty(fresh):
    _, kms = fresh
    listing = kms.list_keys()
    assert listing["Keys"] == []
    assert listing["Truncated"] is False
    assert "NextMarker" not in listing


def test_list_keys_lists_each_key_once_with_its_arn(kms):
    made = {new_key(kms)["KeyId"] for _ in range(3)}
    entries: list[dict[str, str]] = []
    params: dict[str, Any] = {}
    while True:
        page = kms.list_keys(**params)
        entries += page["Keys"]
        if not page["Truncated"]:
            break
        params["Marker"] = page["NextMarker"]
    ids = [entry["KeyId"] for entry in entries]
    assert len(ids) == len(set(ids))
    assert made <= set(ids)
    for entry in entries:
        assert set(entry) == {"KeyId", "KeyArn"}
        assert entry["KeyArn"] == key_arn(entry["KeyId"])


def test_list_keys_pages_with_limit_and_marker(fresh):
    account, kms = fresh
    made = {new_key(kms)["KeyId"] for _ in range(5)}

    first = kms.list_keys(Limit=2)
    assert len(first["Keys"]) == 2
    assert first["Truncated"] is True
    second = kms.list_keys(Limit=2, Marker=first["NextMarker"])
    assert len(second["Keys"]) == 2
    assert second["Truncated"] is True
    third = kms.list_keys(Limit=2, Marker=second["NextMarker"])
    assert len(third["Keys"]) == 1
    assert third["Truncated"] is False
    assert "NextMarker" not in third

    ids = [e["KeyId"] for page in (first, second, third) for e in page["Keys"]]
    assert sorted(ids) == sorted(made)
    for page in (first, second, third):
        for entry in page["Keys"]:
            assert entry["KeyArn"] == key_arn(entry["KeyId"], account=account["AccountId"])

    exact = kms.list_keys(Limit=5)
    assert len(exact["Keys"]) == 5
    assert exact["Truncated"] is False
    assert "NextMarker" not in exact
    # A marker stays good after keys were added: the rest of the listing is still there.
    late = new_key(kms)["KeyId"]
    rest = {e["KeyId"] for e in kms.list_keys(Marker=first["NextMarker"])["Keys"]}
    first_ids = {e["KeyId"] for e in first["Keys"]}
    assert made - first_ids <= rest <= (made | {late}) - first_ids


def test_list_keys_answers_100_keys_by_default_and_up_to_1000(fresh):
    _, kms = fresh
    made = {new_key(kms)["KeyId"] for _ in range(101)}
    default = kms.list_keys()
    assert len(default["Keys"]) == 100
    assert default["Truncated"] is True
    rest = kms.list_keys(Marker=default["NextMarker"])
    assert len(rest["Keys"]) == 1
    assert rest["Truncated"] is False
    assert {e["KeyId"] for e in default["Keys"] + rest["Keys"]} == made
    everything = kms.list_keys(Limit=1000)
    assert len(everything["Keys"]) == 101
    assert everything["Truncated"] is False


@pytest.mark.parametrize(
    ("limit", "constraint"),
    [
        (0, "Member must have value greater than or equal to 1"),
        (-1, "Member must have value greater than or equal to 1"),
        (1001, "Member must have value less than or equal to 1000"),
    ],
)
def test_list_keys_refuses_a_limit_out_of_range(server, limit, constraint):
    fails(
        unchecked_client(server).list_keys,
        "ValidationException",
        f"1 validation error detected: Value '{limit}' at 'limit' failed to satisfy "
        f"constraint: {constraint}",
        Limit=limit,
    )


def test_list_keys_refuses_an_empty_marker(server):
    fails(
        unchecked_client(server).list_keys,
        "ValidationException",
        "1 validation error detected: Value '' at 'marker' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1",
        Marker="",
    )


def test_list_keys_refuses_a_marker_it_did_not_make(kms):
    for _ in range(2):
        new_key(kms)
    good = kms.list_keys(Limit=1)["NextMarker"]
    key_id = new_key(kms)["KeyId"]
    for n in range(2):
        kms.create_alias(AliasName=f"alias/marker-{n}-{uuid.uuid4()}", TargetKeyId=key_id)
    alias_marker = kms.list_aliases(Limit=1)["NextMarker"]
    tampered = good[:-4] + ("AAAA" if good[-4:] != "AAAA" else "BBBB")
    for marker in ["garbage", "AAAA", "not base64 !", tampered, alias_marker, good + "x"]:
        fails(kms.list_keys, "InvalidMarkerException", Marker=marker)


def test_list_keys_with_resource_owners(fresh):
    _, kms = fresh
    made = new_key(kms)["KeyId"]
    assert [e["KeyId"] for e in kms.list_keys(ResourceOwners=["SELF"])["Keys"]] == [made]
    both = kms.list_keys(ResourceOwners=["SELF", "OTHER_ACCOUNTS_VIA_RAM"])
    assert [e["KeyId"] for e in both["Keys"]] == [made]
    # No key is shared with this account (openkms has no RAM), so none of another's appear.
    shared = kms.list_keys(ResourceOwners=["OTHER_ACCOUNTS_VIA_RAM"])
    assert shared["Keys"] == []
    assert shared["Truncated"] is False


# -- EnableKey and DisableKey -------------------------------------------------------------


def test_disable_and_enable_a_key(kms):
    created = new_key(kms)
    key_id = created["KeyId"]
    assert kms.disable_key(KeyId=key_id)["ResponseMetadata"]["HTTPStatusCode"] == 200
    described = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert (described["KeyState"], described["Enabled"]) == ("Disabled", False)
    fails(
        kms.encrypt,
        "DisabledException",
        f"{created['Arn']} is disabled.",
        KeyId=key_id,
        Plaintext=b"secret",
    )

    kms.enable_key(KeyId=key_id)
    described = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert described == created
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"secret")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"secret"


def test_enable_and_disable_are_idempotent_and_take_a_key_arn(kms):
    created = new_key(kms)
    kms.enable_key(KeyId=created["Arn"])
    assert kms.describe_key(KeyId=created["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"
    kms.disable_key(KeyId=created["Arn"])
    kms.disable_key(KeyId=created["Arn"])
    assert kms.describe_key(KeyId=created["KeyId"])["KeyMetadata"]["KeyState"] == "Disabled"
    kms.enable_key(KeyId=created["KeyId"])
    kms.enable_key(KeyId=created["KeyId"])
    assert kms.describe_key(KeyId=created["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"


def test_disabling_one_key_leaves_others_enabled(kms):
    first, second = new_key(kms), new_key(kms)
    kms.disable_key(KeyId=first["KeyId"])
    assert kms.describe_key(KeyId=second["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"


@pytest.mark.parametrize("operation", ["enable_key", "disable_key"])
def test_enable_and_disable_refuse_bad_key_ids(kms, server, operation):
    call = getattr(kms, operation)
    missing = str(uuid.uuid4())
    fails(call, "NotFoundException", "Invalid keyId 'foo'", KeyId="foo")
    fails(call, "NotFoundException", not_found(missing), KeyId=missing)
    fails(call, "NotFoundException", not_found(missing), KeyId=key_arn(missing))
    fails(call, "NotFoundException", "Invalid arn eu-west-1", KeyId=key_arn(missing, "eu-west-1"))
    unchecked = getattr(unchecked_client(server), operation)
    fails(unchecked, "ValidationException", null_member("keyId"))


def test_key_management_operations_take_no_alias(kms):
    # Chosen: EnableKey, DisableKey and UpdateKeyDescription name a key by key id or key ARN
    # only (as AWS documents); an alias name is not a key id, an alias ARN not a key ARN.
    created = new_key(kms)
    alias = f"alias/manage-{uuid.uuid4()}"
    kms.create_alias(AliasName=alias, TargetKeyId=created["KeyId"])
    alias_arn = f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:{alias}"
    calls = [
        (kms.enable_key, {}),
        (kms.disable_key, {}),
        (kms.update_key_description, {"Description": "via alias"}),
    ]
    for call, extra in calls:
        fails(call, "NotFoundException", f"Invalid keyId '{alias}'", KeyId=alias, **extra)
        fails(call, "NotFoundException", f"Invalid arn {alias_arn}", KeyId=alias_arn, **extra)
    assert kms.describe_key(KeyId=created["KeyId"])["KeyMetadata"] == created


# -- UpdateKeyDescription -----------------------------------------------------------------


def test_update_key_description(kms):
    created = new_key(kms, Description="before")
    kms.update_key_description(KeyId=created["KeyId"], Description="after")
    assert kms.describe_key(KeyId=created["KeyId"])["KeyMetadata"] == {
        **created,
        "Description": "after",
    }
    kms.update_key_description(KeyId=created["Arn"], Description="")
    assert kms.describe_key(KeyId=created["KeyId"])["KeyMetadata"]["Description"] == ""
    kms.update_key_description(KeyId=created["KeyId"], Description="x" * 8192)
    assert kms.describe_key(KeyId=created["KeyId"])["KeyMetadata"]["Description"] == "x" * 8192


def test_update_key_description_of_a_disabled_key(kms):
    created = new_key(kms)
    kms.disable_key(KeyId=created["KeyId"])
    kms.update_key_description(KeyId=created["KeyId"], Description="still manageable")
    described = kms.describe_key(KeyId=created["KeyId"])["KeyMetadata"]
    assert described["Description"] == "still manageable"
    assert described["KeyState"] == "Disabled"


def test_update_key_description_refuses_bad_input_and_changes_nothing(kms, server):
    created = new_key(kms, Description="unchanged")
    key_id = created["KeyId"]
    message = fails(
        kms.update_key_description, "ValidationException", KeyId=key_id, Description="d" * 8193
    )
    assert message.endswith("Member must have length less than or equal to 8192")
    unchecked = unchecked_client(server)
    fails(
        unchecked.update_key_description,
        "ValidationException",
        null_member("description"),
        KeyId=key_id,
    )
    message = fails(unchecked.update_key_description, "ValidationException")
    assert message.startswith("2 validation errors detected: ")
    assert "Value null at 'keyId' failed to satisfy constraint: Member must not be null" in message
    assert "Value null at 'description' failed to satisfy constraint" in message
    missing = str(uuid.uuid4())
    fails(
        kms.update_key_description,
        "NotFoundException",
        not_found(missing),
        KeyId=missing,
        Description="x",
    )
    fails(
        kms.update_key_description,
        "NotFoundException",
        "Invalid keyId 'foo'",
        KeyId="foo",
        Description="x",
    )
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["Description"] == "unchanged"


# -- Authorisation: another account -------------------------------------------------------

KEY_OPERATIONS = [
    ("describe_key", "kms:DescribeKey", {}),
    ("enable_key", "kms:EnableKey", {}),
    ("disable_key", "kms:DisableKey", {}),
    ("update_key_description", "kms:UpdateKeyDescription", {"Description": "hijacked"}),
]


def test_another_account_does_not_see_the_key_in_list_keys(kms, server, other_account):
    key_id = new_key(kms)["KeyId"]
    assert key_id not in all_key_ids(client(server, other_account))
    assert key_id in all_key_ids(kms)


@pytest.mark.parametrize(
    ("operation", "action", "extra"), KEY_OPERATIONS, ids=[op[0] for op in KEY_OPERATIONS]
)
def test_another_account_cannot_use_the_key_by_id_or_arn(
    kms, server, other_account, operation, action, extra
):
    created = new_key(kms, Description="mine")
    kms.disable_key(KeyId=created["KeyId"])  # so that an EnableKey that got through shows
    before = kms.describe_key(KeyId=created["KeyId"])["KeyMetadata"]
    other = other_account["AccountId"]
    call = getattr(client(server, other_account), operation)

    refused_to_other_account(call, other, created, action, **extra)
    assert kms.describe_key(KeyId=created["KeyId"])["KeyMetadata"] == before


def test_another_account_cannot_reach_the_key_through_its_alias(kms, server, other_account):
    created = new_key(kms)
    alias = f"alias/private-{uuid.uuid4()}"
    kms.create_alias(AliasName=alias, TargetKeyId=created["KeyId"])
    other = other_account["AccountId"]
    other_kms = client(server, other_account)
    # The alias name is looked up in the caller's own account, where there is none.
    fails(
        other_kms.describe_key,
        "NotFoundException",
        f"Alias arn:aws:kms:{REGION}:{other}:{alias} is not found.",
        KeyId=alias,
    )
    fails(
        other_kms.describe_key,
        "AccessDeniedException",
        denied(other, "kms:DescribeKey", created["Arn"]),
        KeyId=f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:{alias}",
    )
    missing_alias = f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:alias/missing-{uuid.uuid4()}"
    fails(
        other_kms.describe_key,
        "NotFoundException",
        f"Alias {missing_alias} is not found.",
        KeyId=missing_alias,
    )


def test_an_unknown_key_arn_of_another_account_is_not_found(server, other_account):
    missing = str(uuid.uuid4())
    fails(
        client(server, other_account).describe_key,
        "NotFoundException",
        not_found(missing),
        KeyId=key_arn(missing),
    )


def test_a_key_arn_naming_the_wrong_account_is_not_found(kms):
    created = new_key(kms)
    wrong = key_arn(created["KeyId"], account="999999999999")
    fails(kms.describe_key, "NotFoundException", f"Key '{wrong}' does not exist", KeyId=wrong)


# -- Regions ------------------------------------------------------------------------------


def test_keys_live_in_one_region(kms, server):
    created = new_key(kms)
    west = client(server, region=OTHER_REGION)
    assert created["KeyId"] not in all_key_ids(west)
    fails(
        west.describe_key,
        "NotFoundException",
        not_found(created["KeyId"], region=OTHER_REGION),
        KeyId=created["KeyId"],
    )
    for call in (west.describe_key, west.enable_key, west.disable_key):
        fails(call, "NotFoundException", "Invalid arn us-east-1", KeyId=created["Arn"])
    fails(
        west.update_key_description,
        "NotFoundException",
        "Invalid arn us-east-1",
        KeyId=created["Arn"],
        Description="x",
    )
    assert kms.describe_key(KeyId=created["KeyId"])["KeyMetadata"] == created


def test_a_key_made_in_another_region_carries_that_region(kms, server):
    west = client(server, region=OTHER_REGION)
    created = new_key(west)
    assert created["Arn"] == key_arn(created["KeyId"], region=OTHER_REGION)
    assert west.describe_key(KeyId=created["Arn"])["KeyMetadata"] == created
    assert created["KeyId"] in all_key_ids(west)
    assert created["KeyId"] not in all_key_ids(kms)
    fails(kms.describe_key, "NotFoundException", "Invalid arn us-west-2", KeyId=created["Arn"])


def test_a_well_formed_multi_region_key_id_that_names_no_key_is_not_found(kms):
    missing = "mrk-" + uuid.uuid4().hex
    fails(kms.describe_key, "NotFoundException", not_found(missing), KeyId=missing)
    fails(kms.describe_key, "NotFoundException", not_found(missing), KeyId=key_arn(missing))
    fails(kms.encrypt, "NotFoundException", not_found(missing), KeyId=missing, Plaintext=b"x")
    for malformed in ("mrk-" + uuid.uuid4().hex.upper(), "mrk-" + uuid.uuid4().hex[:31]):
        fails(
            kms.describe_key, "NotFoundException", f"Invalid keyId '{malformed}'", KeyId=malformed
        )
