"""CreateAlias, UpdateAlias, DeleteAlias, ListAliases, end to end: a real server driven by
boto3, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError

from openkms.domain.managed_keys import PREDEFINED_ALIASES
from tests.e2e.kms_management import (
    LIST_PAGING_VIOLATIONS,
    OTHER_REGION,
    client,
    fails,
    key_arn,
    new_key,
    not_found,
    null_member,
    refused_to_other_account,
)
from tests.support import ACCOUNT_ID, REGION

ALIAS_FIELDS = {"AliasName", "AliasArn", "TargetKeyId", "CreationDate", "LastUpdatedDate"}
PREFIX_MESSAGE = (
    'Alias must start with the prefix "alias/". Please see '
    "https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html"
)
PATTERN = "^[a-zA-Z0-9:/_-]+$"


def alias_arn(name: str, region: str = REGION, account: str = ACCOUNT_ID) -> str:
    return f"arn:aws:kms:{region}:{account}:{name}"


def unique(label: str = "test") -> str:
    return f"alias/{label}-{uuid.uuid4()}"


def alias_not_found(name: str, region: str = REGION, account: str = ACCOUNT_ID) -> str:
    return f"Alias {alias_arn(name, region, account)} is not found."


def all_aliases(kms: Any, **params: Any) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    while True:
        page = kms.list_aliases(**params)
        entries += page["Aliases"]
        if not page["Truncated"]:
            assert "NextMarker" not in page
            return entries
        params["Marker"] = page["NextMarker"]


def names(entries: list[dict[str, Any]]) -> list[str]:
    return [entry["AliasName"] for entry in entries]


def target_of(kms: Any, name: str) -> str:
    return str(kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"])


def pattern_message(value: str) -> str:
    return (
        f"1 validation error detected: Value '{value}' at 'aliasName' failed to satisfy "
        f"constraint: Member must satisfy regular expression pattern: {PATTERN}"
    )


# -- CreateAlias --------------------------------------------------------------------------


def test_create_alias_and_list_it_with_every_field(kms):
    key = new_key(kms)
    name = unique()
    before = dt.datetime.now(dt.UTC)
    response = kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    after = dt.datetime.now(dt.UTC)
    assert set(response) == {"ResponseMetadata"}

    [entry] = kms.list_aliases(KeyId=key["KeyId"])["Aliases"]
    assert set(entry) == ALIAS_FIELDS
    assert entry["AliasName"] == name
    assert entry["AliasArn"] == f"arn:aws:kms:us-east-1:123456789012:{name}"
    assert entry["TargetKeyId"] == key["KeyId"]
    assert before - dt.timedelta(seconds=5) <= entry["CreationDate"] <= after
    assert entry["LastUpdatedDate"] == entry["CreationDate"]
    assert name in names(all_aliases(kms))


def test_create_alias_takes_a_key_arn_as_target(kms):
    key = new_key(kms)
    name = unique()
    kms.create_alias(AliasName=name, TargetKeyId=key["Arn"])
    assert target_of(kms, name) == key["KeyId"]


def test_an_alias_resolves_in_describe_key_and_in_cryptographic_operations(kms):
    key = new_key(kms)
    name = unique()
    kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    assert kms.describe_key(KeyId=name)["KeyMetadata"] == key
    assert kms.describe_key(KeyId=alias_arn(name))["KeyMetadata"] == key
    encrypted = kms.encrypt(KeyId=alias_arn(name), Plaintext=b"via alias")
    assert encrypted["KeyId"] == key["Arn"]
    decrypted = kms.decrypt(CiphertextBlob=encrypted["CiphertextBlob"], KeyId=name)
    assert decrypted["Plaintext"] == b"via alias"


def test_a_key_can_have_several_aliases(kms):
    key = new_key(kms)
    made = sorted(unique(label) for label in ("one", "two", "three"))
    for name in made:
        kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    assert sorted(names(all_aliases(kms, KeyId=key["KeyId"]))) == made
    assert sorted(names(all_aliases(kms, KeyId=key["Arn"]))) == made
    for name in made:
        assert target_of(kms, name) == key["KeyId"]


def test_an_alias_may_name_a_disabled_key_and_still_resolves(kms):
    key = new_key(kms)
    kms.disable_key(KeyId=key["KeyId"])
    name = unique()
    kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    described = kms.describe_key(KeyId=name)["KeyMetadata"]
    assert (described["KeyId"], described["KeyState"]) == (key["KeyId"], "Disabled")
    fails(
        kms.encrypt,
        "DisabledException",
        f"{key['Arn']} is disabled.",
        KeyId=name,
        Plaintext=b"x",
    )


def test_alias_names_may_use_every_character_the_pattern_allows_but_a_colon(kms):
    key = new_key(kms)
    name = f"alias/Az09_-/nested/{uuid.uuid4().hex}"
    kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    assert target_of(kms, name) == key["KeyId"]
    long_name = f"alias/{uuid.uuid4().hex}".ljust(256, "x")
    assert len(long_name) == 256
    kms.create_alias(AliasName=long_name, TargetKeyId=key["KeyId"])
    assert target_of(kms, long_name) == key["KeyId"]


@pytest.mark.parametrize("name", ["foo", "aliasfoo", "Alias/foo", "ALIAS/foo", "/alias/foo"])
def test_create_alias_refuses_a_name_without_the_alias_prefix(kms, name):
    key = new_key(kms)
    fails(
        kms.create_alias,
        "ValidationException",
        PREFIX_MESSAGE,
        AliasName=name,
        TargetKeyId=key["KeyId"],
    )


def test_create_alias_refuses_the_bare_prefix(kms):
    # Chosen: "alias/" alone names nothing, so it is refused as a name without the prefix.
    key = new_key(kms)
    fails(
        kms.create_alias,
        "ValidationException",
        PREFIX_MESSAGE,
        AliasName="alias/",
        TargetKeyId=key["KeyId"],
    )


def test_create_alias_refuses_the_reserved_aws_prefix(kms):
    key = new_key(kms)
    for name in ("alias/aws/ebs", "alias/aws/my-own"):
        with pytest.raises(ClientError) as info:
            kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
        assert info.value.response["Error"]["Code"] == "NotAuthorizedException"
        assert info.value.response["Error"]["Message"] == ""
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert all_aliases(kms, KeyId=key["KeyId"]) == []


def test_create_alias_refuses_an_alias_that_exists(kms):
    first, second = new_key(kms), new_key(kms)
    name = unique()
    kms.create_alias(AliasName=name, TargetKeyId=first["KeyId"])
    for target in (first["KeyId"], second["KeyId"]):
        fails(
            kms.create_alias,
            "AlreadyExistsException",
            f"An alias with the name arn:aws:kms:us-east-1:123456789012:{name} already exists",
            AliasName=name,
            TargetKeyId=target,
        )
    assert target_of(kms, name) == first["KeyId"]
    assert all_aliases(kms, KeyId=second["KeyId"]) == []


def test_create_alias_refuses_an_alias_as_target(kms):
    key = new_key(kms)
    existing = unique()
    kms.create_alias(AliasName=existing, TargetKeyId=key["KeyId"])
    name = unique()
    for target in (existing, alias_arn(existing), unique("missing")):
        fails(
            kms.create_alias,
            "ValidationException",
            "Aliases must refer to keys. Not aliases",
            AliasName=name,
            TargetKeyId=target,
        )
    fails(kms.describe_key, "NotFoundException", alias_not_found(name), KeyId=name)


@pytest.mark.parametrize(
    "name", ["alias/has space", "alias/dotted.name", "alias/ümlaut", "alias/semi;colon"]
)
def test_create_alias_refuses_a_name_outside_the_pattern(kms, name):
    key = new_key(kms)
    fails(
        kms.create_alias,
        "ValidationException",
        pattern_message(name),
        AliasName=name,
        TargetKeyId=key["KeyId"],
    )


def test_create_alias_refuses_a_colon_in_the_name(kms):
    key = new_key(kms)
    fails(
        kms.create_alias,
        "ValidationException",
        "alias/my:alias contains invalid characters for an alias",
        AliasName="alias/my:alias",
        TargetKeyId=key["KeyId"],
    )


def test_create_alias_validates_lengths_and_required_members(server, kms):
    key = new_key(kms)
    unchecked = client(server, validate=False)
    message = fails(
        unchecked.create_alias,
        "ValidationException",
        AliasName="alias/" + "a" * 251,
        TargetKeyId=key["KeyId"],
    )
    assert message.startswith("1 validation error detected: Value ")
    assert message.endswith(
        "at 'aliasName' failed to satisfy constraint: "
        "Member must have length less than or equal to 256"
    )
    message = fails(unchecked.create_alias, "ValidationException", AliasName="", TargetKeyId="")
    assert message.startswith("3 validation errors detected: ")
    assert (
        "Value '' at 'aliasName' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1"
    ) in message
    assert pattern_message("").removeprefix("1 validation error detected: ") in message
    assert (
        "Value '' at 'targetKeyId' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1"
    ) in message
    fails(
        unchecked.create_alias,
        "ValidationException",
        null_member("targetKeyId"),
        AliasName=unique(),
    )
    fails(
        unchecked.create_alias,
        "ValidationException",
        null_member("aliasName"),
        TargetKeyId=key["KeyId"],
    )


def test_create_alias_refuses_a_target_that_is_not_a_key(kms):
    name = unique()
    missing = str(uuid.uuid4())
    fails(
        kms.create_alias,
        "NotFoundException",
        "Invalid keyId 'foo'",
        AliasName=name,
        TargetKeyId="foo",
    )
    for target in (missing, key_arn(missing)):
        fails(
            kms.create_alias,
            "NotFoundException",
            not_found(missing),
            AliasName=name,
            TargetKeyId=target,
        )
    fails(
        kms.create_alias,
        "NotFoundException",
        "Invalid arn eu-west-1",
        AliasName=name,
        TargetKeyId=key_arn(missing, "eu-west-1"),
    )
    fails(kms.describe_key, "NotFoundException", alias_not_found(name), KeyId=name)


def test_a_create_alias_that_fails_creates_no_alias(fresh):
    _, kms = fresh
    key = new_key(kms)
    name = unique()
    failing = [
        {"AliasName": name, "TargetKeyId": str(uuid.uuid4())},
        {"AliasName": name, "TargetKeyId": "foo"},
        {"AliasName": name, "TargetKeyId": "alias/whatever"},
        {"AliasName": "alias/aws/" + name, "TargetKeyId": key["KeyId"]},
        {"AliasName": name.replace("alias/", ""), "TargetKeyId": key["KeyId"]},
        {"AliasName": name + ":x", "TargetKeyId": key["KeyId"]},
        {"AliasName": name + " x", "TargetKeyId": key["KeyId"]},
    ]
    for params in failing:
        with pytest.raises(ClientError):
            kms.create_alias(**params)
    # Only AWS's predefined aliases (which name no key until first used) are listed.
    listing = kms.list_aliases(Limit=100)
    assert names(listing["Aliases"]) == list(PREDEFINED_ALIASES)
    assert all("TargetKeyId" not in entry for entry in listing["Aliases"])
    assert listing["Truncated"] is False
    assert "NextMarker" not in listing


# -- UpdateAlias --------------------------------------------------------------------------


def test_update_alias_points_it_at_another_key(kms, server):
    first, second = new_key(kms), new_key(kms)
    name = unique()
    kms.create_alias(AliasName=name, TargetKeyId=first["KeyId"])
    [created] = all_aliases(kms, KeyId=first["KeyId"])
    server.move_clock(90)
    try:
        assert set(kms.update_alias(AliasName=name, TargetKeyId=second["Arn"])) == {
            "ResponseMetadata"
        }
    finally:
        server.move_clock(0)
    assert target_of(kms, name) == second["KeyId"]
    assert kms.describe_key(KeyId=alias_arn(name))["KeyMetadata"] == second
    assert all_aliases(kms, KeyId=first["KeyId"]) == []
    [updated] = all_aliases(kms, KeyId=second["KeyId"])
    assert updated["AliasName"] == name
    assert updated["AliasArn"] == alias_arn(name)
    assert updated["CreationDate"] == created["CreationDate"]
    assert updated["LastUpdatedDate"] - created["CreationDate"] >= dt.timedelta(seconds=80)
    # And back again, by key id.
    kms.update_alias(AliasName=name, TargetKeyId=first["KeyId"])
    assert target_of(kms, name) == first["KeyId"]


def test_update_alias_to_a_disabled_key(kms):
    first, second = new_key(kms), new_key(kms)
    kms.disable_key(KeyId=second["KeyId"])
    name = unique()
    kms.create_alias(AliasName=name, TargetKeyId=first["KeyId"])
    kms.update_alias(AliasName=name, TargetKeyId=second["KeyId"])
    assert target_of(kms, name) == second["KeyId"]


def test_update_alias_of_an_unknown_alias_is_not_found(kms):
    key = new_key(kms)
    name = unique("never-made")
    fails(
        kms.update_alias,
        "NotFoundException",
        alias_not_found(name),
        AliasName=name,
        TargetKeyId=key["KeyId"],
    )
    fails(kms.describe_key, "NotFoundException", alias_not_found(name), KeyId=name)


def test_an_update_alias_that_fails_leaves_the_alias_as_it_was(kms, server):
    key, other = new_key(kms), new_key(kms)
    name = unique()
    kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    alias_name = unique()
    kms.create_alias(AliasName=alias_name, TargetKeyId=other["KeyId"])
    missing = str(uuid.uuid4())
    fails(
        kms.update_alias,
        "ValidationException",
        "Aliases must refer to keys. Not aliases",
        AliasName=name,
        TargetKeyId=alias_name,
    )
    fails(
        kms.update_alias,
        "ValidationException",
        "Aliases must refer to keys. Not aliases",
        AliasName=name,
        TargetKeyId=alias_arn(alias_name),
    )
    fails(
        kms.update_alias,
        "NotFoundException",
        not_found(missing),
        AliasName=name,
        TargetKeyId=missing,
    )
    fails(
        kms.update_alias,
        "NotFoundException",
        "Invalid keyId 'foo'",
        AliasName=name,
        TargetKeyId="foo",
    )
    fails(
        kms.update_alias,
        "NotFoundException",
        "Invalid arn us-west-2",
        AliasName=name,
        TargetKeyId=key_arn(other["KeyId"], OTHER_REGION),
    )
    unchecked = client(server, validate=False)
    fails(unchecked.update_alias, "ValidationException", null_member("targetKeyId"), AliasName=name)
    fails(
        unchecked.update_alias,
        "ValidationException",
        null_member("aliasName"),
        TargetKeyId=other["KeyId"],
    )
    assert target_of(kms, name) == key["KeyId"]


def test_update_alias_refuses_bad_alias_names(kms):
    key = new_key(kms)
    fails(
        kms.update_alias,
        "ValidationException",
        PREFIX_MESSAGE,
        AliasName="foo",
        TargetKeyId=key["KeyId"],
    )
    with pytest.raises(ClientError) as info:
        kms.update_alias(AliasName="alias/aws/ebs", TargetKeyId=key["KeyId"])
    assert info.value.response["Error"]["Code"] == "NotAuthorizedException"
    fails(
        kms.update_alias,
        "ValidationException",
        pattern_message("alias/no way"),
        AliasName="alias/no way",
        TargetKeyId=key["KeyId"],
    )


# -- DeleteAlias --------------------------------------------------------------------------


def test_delete_alias(kms):
    key = new_key(kms)
    name = unique()
    kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    assert set(kms.delete_alias(AliasName=name)) == {"ResponseMetadata"}
    fails(kms.describe_key, "NotFoundException", alias_not_found(name), KeyId=name)
    fails(kms.describe_key, "NotFoundException", alias_not_found(name), KeyId=alias_arn(name))
    assert name not in names(all_aliases(kms))
    # The key itself is untouched, and the name is free again.
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"] == key
    other = new_key(kms)
    kms.create_alias(AliasName=name, TargetKeyId=other["KeyId"])
    assert target_of(kms, name) == other["KeyId"]


def test_delete_alias_deletes_only_that_alias(kms):
    key = new_key(kms)
    keep, drop = unique("keep"), unique("drop")
    for name in (keep, drop):
        kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    kms.delete_alias(AliasName=drop)
    assert names(all_aliases(kms, KeyId=key["KeyId"])) == [keep]


def test_delete_alias_of_an_unknown_alias_is_not_found(kms):
    name = unique("gone")
    fails(kms.delete_alias, "NotFoundException", alias_not_found(name), AliasName=name)
    key = new_key(kms)
    kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    kms.delete_alias(AliasName=name)
    fails(kms.delete_alias, "NotFoundException", alias_not_found(name), AliasName=name)


def test_delete_alias_refuses_bad_alias_names(kms, server):
    fails(kms.delete_alias, "ValidationException", PREFIX_MESSAGE, AliasName="foo")
    fails(kms.delete_alias, "ValidationException", PREFIX_MESSAGE, AliasName=alias_arn("alias/x"))
    with pytest.raises(ClientError) as info:
        kms.delete_alias(AliasName="alias/aws/ebs")
    assert info.value.response["Error"]["Code"] == "NotAuthorizedException"
    fails(
        kms.delete_alias,
        "ValidationException",
        pattern_message("alias/a b"),
        AliasName="alias/a b",
    )
    fails(
        client(server, validate=False).delete_alias, "ValidationException", null_member("aliasName")
    )


# -- ListAliases --------------------------------------------------------------------------


def test_list_aliases_of_a_fresh_account_lists_only_the_predefined_aliases(fresh):
    account, kms = fresh
    listing = kms.list_aliases(Limit=100)
    assert listing["Aliases"] == [
        {"AliasName": name, "AliasArn": alias_arn(name, account=account["AccountId"])}
        for name in PREDEFINED_ALIASES
    ]
    assert listing["Truncated"] is False
    assert "NextMarker" not in listing


def test_list_aliases_pages_with_limit_and_marker(fresh):
    account, kms = fresh
    key, other = new_key(kms), new_key(kms)
    made = {unique(f"page{n}") for n in range(5)}
    for name in made:
        kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    kms.create_alias(AliasName=unique("other"), TargetKeyId=other["KeyId"])

    first = kms.list_aliases(KeyId=key["KeyId"], Limit=2)
    second = kms.list_aliases(KeyId=key["KeyId"], Limit=2, Marker=first["NextMarker"])
    third = kms.list_aliases(KeyId=key["KeyId"], Limit=2, Marker=second["NextMarker"])
    assert [len(p["Aliases"]) for p in (first, second, third)] == [2, 2, 1]
    assert [p["Truncated"] for p in (first, second, third)] == [True, True, False]
    assert "NextMarker" not in third
    listed = [e for p in (first, second, third) for e in p["Aliases"]]
    assert sorted(names(listed)) == sorted(made)
    for entry in listed:
        assert entry["AliasArn"] == alias_arn(entry["AliasName"], account=account["AccountId"])
        assert entry["TargetKeyId"] == key["KeyId"]
    own = 6 + len(PREDEFINED_ALIASES)
    assert len(all_aliases(kms)) == own
    assert len(all_aliases(kms, Limit=1)) == own


def test_list_aliases_answers_50_by_default_and_at_most_100(fresh):
    _, kms = fresh
    key = new_key(kms)
    # With AWS's predefined aliases: 101 + 39 in all.
    made = {f"alias/many-{n:03d}" for n in range(101)}
    for name in made:
        kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    default = kms.list_aliases()
    assert len(default["Aliases"]) == 50
    assert default["Truncated"] is True
    # The model allows a Limit up to 1000; AWS documents at most 100 per page.
    big = kms.list_aliases(Limit=1000)
    assert len(big["Aliases"]) == 100
    assert big["Truncated"] is True
    rest = kms.list_aliases(Limit=1000, Marker=big["NextMarker"])
    assert len(rest["Aliases"]) == 101 + len(PREDEFINED_ALIASES) - 100
    assert rest["Truncated"] is False
    assert set(names(big["Aliases"] + rest["Aliases"])) == made | set(PREDEFINED_ALIASES)


def test_list_aliases_of_a_key_without_aliases_is_empty(kms):
    key = new_key(kms)
    listing = kms.list_aliases(KeyId=key["KeyId"])
    assert listing["Aliases"] == []
    assert listing["Truncated"] is False


def test_list_aliases_refuses_a_key_id_that_names_no_key(kms):
    missing = str(uuid.uuid4())
    fails(kms.list_aliases, "NotFoundException", "Invalid keyId 'foo'", KeyId="foo")
    fails(kms.list_aliases, "NotFoundException", not_found(missing), KeyId=missing)
    fails(kms.list_aliases, "NotFoundException", not_found(missing), KeyId=key_arn(missing))
    fails(
        kms.list_aliases,
        "NotFoundException",
        "Invalid arn eu-west-1",
        KeyId=key_arn(missing, "eu-west-1"),
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        *LIST_PAGING_VIOLATIONS,
        (
            {"KeyId": ""},
            "1 validation error detected: Value '' at 'keyId' failed to satisfy constraint: "
            "Member must have length greater than or equal to 1",
        ),
    ],
    ids=["limit-0", "limit-1001", "empty-marker", "empty-key-id"],
)
def test_list_aliases_validates_its_input(server, params, message):
    fails(client(server, validate=False).list_aliases, "ValidationException", message, **params)


def test_list_aliases_refuses_a_marker_it_did_not_make(kms):
    key = new_key(kms)
    for n in range(2):
        kms.create_alias(AliasName=unique(f"m{n}"), TargetKeyId=key["KeyId"])
    new_key(kms)
    good = kms.list_aliases(Limit=1)["NextMarker"]
    keys_marker = kms.list_keys(Limit=1)["NextMarker"]
    for marker in ["garbage", "AAAA", good[:-2] + "xy", good + "A", keys_marker]:
        fails(kms.list_aliases, "InvalidMarkerException", Marker=marker)
    assert kms.list_aliases(Limit=1, Marker=good)["Aliases"]


# -- Authorisation: another account -------------------------------------------------------


def test_aliases_belong_to_their_account(kms, server, other_account):
    mine = new_key(kms)
    name = unique("shared-name")
    kms.create_alias(AliasName=name, TargetKeyId=mine["KeyId"])
    other = client(server, other_account)
    assert name not in names(all_aliases(other))
    fails(
        other.describe_key,
        "NotFoundException",
        alias_not_found(name, account=other_account["AccountId"]),
        KeyId=name,
    )
    # The same name is free in the other account, for the other account's key.
    theirs = new_key(other)
    other.create_alias(AliasName=name, TargetKeyId=theirs["KeyId"])
    assert target_of(other, name) == theirs["KeyId"]
    assert target_of(kms, name) == mine["KeyId"]
    [entry] = [e for e in all_aliases(other) if e["AliasName"] == name]
    assert entry["AliasArn"] == alias_arn(name, account=other_account["AccountId"])
    # Deleting it there leaves this account's alias alone.
    other.delete_alias(AliasName=name)
    assert target_of(kms, name) == mine["KeyId"]
    fails(
        other.delete_alias,
        "NotFoundException",
        alias_not_found(name, account=other_account["AccountId"]),
        AliasName=name,
    )
    assert target_of(kms, name) == mine["KeyId"]


def test_another_account_cannot_alias_the_key(kms, server, other_account):
    mine = new_key(kms)
    other_id = other_account["AccountId"]
    other = client(server, other_account)
    name = unique("hijack")
    refused_to_other_account(
        other.create_alias, other_id, mine, "kms:CreateAlias", "TargetKeyId", AliasName=name
    )
    assert name not in names(all_aliases(other))

    theirs = new_key(other)
    other.create_alias(AliasName=name, TargetKeyId=theirs["KeyId"])
    refused_to_other_account(
        other.update_alias, other_id, mine, "kms:UpdateAlias", "TargetKeyId", AliasName=name
    )
    assert target_of(other, name) == theirs["KeyId"]
    assert all_aliases(kms, KeyId=mine["KeyId"]) == []


def test_another_account_cannot_list_the_aliases_of_the_key(kms, server, other_account):
    mine = new_key(kms)
    kms.create_alias(AliasName=unique(), TargetKeyId=mine["KeyId"])
    other_id = other_account["AccountId"]
    other = client(server, other_account)
    refused_to_other_account(other.list_aliases, other_id, mine, "kms:ListAliases")


# -- Regions ------------------------------------------------------------------------------


def test_aliases_live_in_one_region(kms, server):
    east = new_key(kms)
    name = unique("regional")
    kms.create_alias(AliasName=name, TargetKeyId=east["KeyId"])
    west = client(server, region=OTHER_REGION)
    assert name not in names(all_aliases(west))
    fails(
        west.describe_key,
        "NotFoundException",
        alias_not_found(name, region=OTHER_REGION),
        KeyId=name,
    )
    fails(west.describe_key, "NotFoundException", "Invalid arn us-east-1", KeyId=alias_arn(name))
    fails(
        west.delete_alias,
        "NotFoundException",
        alias_not_found(name, region=OTHER_REGION),
        AliasName=name,
    )
    # An alias may not point across regions.
    fails(
        west.create_alias,
        "NotFoundException",
        "Invalid arn us-east-1",
        AliasName=name,
        TargetKeyId=east["Arn"],
    )
    fails(
        west.create_alias,
        "NotFoundException",
        not_found(east["KeyId"], region=OTHER_REGION),
        AliasName=name,
        TargetKeyId=east["KeyId"],
    )
    # The same name is free in the other region.
    west_key = new_key(west)
    west.create_alias(AliasName=name, TargetKeyId=west_key["KeyId"])
    [entry] = [e for e in all_aliases(west) if e["AliasName"] == name]
    assert entry["AliasArn"] == alias_arn(name, region=OTHER_REGION)
    assert target_of(west, name) == west_key["KeyId"]
    assert target_of(kms, name) == east["KeyId"]
    fails(
        kms.update_alias,
        "NotFoundException",
        "Invalid arn us-west-2",
        AliasName=name,
        TargetKeyId=west_key["Arn"],
    )
    assert target_of(kms, name) == east["KeyId"]


# -- Concurrency --------------------------------------------------------------------------


def test_concurrent_create_alias_of_one_name_makes_exactly_one(kms):
    keys = [new_key(kms)["KeyId"] for _ in range(4)]
    name = unique("race")

    def attempt(n: int) -> str:
        try:
            kms.create_alias(AliasName=name, TargetKeyId=keys[n % len(keys)])
        except ClientError as error:
            return str(error.response["Error"]["Code"])
        return "created"

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(attempt, range(8)))
    assert outcomes.count("created") == 1
    assert sorted(set(outcomes)) == ["AlreadyExistsException", "created"]
    winner = keys[outcomes.index("created") % len(keys)]
    assert target_of(kms, name) == winner
