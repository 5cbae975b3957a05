"""TagResource, UntagResource, ListResourceTags (and CreateKey's Tags), end to end: a real
server driven by boto3, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError

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

RESERVED = "Tags beginning with aws: are reserved"


def tags(**pairs: str) -> list[dict[str, str]]:
    return [{"TagKey": k, "TagValue": v} for k, v in pairs.items()]


def numbered(count: int, prefix: str = "k") -> list[dict[str, str]]:
    return [{"TagKey": f"{prefix}{n:03d}", "TagValue": f"v{n}"} for n in range(count)]


def tags_of(kms: Any, key_id: str, **params: Any) -> dict[str, str]:
    """Every tag of the key, following markers; checks that no tag key comes twice."""
    found: dict[str, str] = {}
    while True:
        page = kms.list_resource_tags(KeyId=key_id, **params)
        for tag in page["Tags"]:
            assert set(tag) == {"TagKey", "TagValue"}
            assert tag["TagKey"] not in found
            found[tag["TagKey"]] = tag["TagValue"]
        if not page["Truncated"]:
            assert "NextMarker" not in page
            return found
        params["Marker"] = page["NextMarker"]


# -- TagResource and ListResourceTags -----------------------------------------------------


def test_a_new_key_has_no_tags(kms):
    key = new_key(kms)
    listing = kms.list_resource_tags(KeyId=key["KeyId"])
    assert listing["Tags"] == []
    assert listing["Truncated"] is False
    assert "NextMarker" not in listing


def test_tag_resource_adds_tags_and_list_resource_tags_shows_them(kms):
    key = new_key(kms)
    response = kms.tag_resource(KeyId=key["KeyId"], Tags=tags(team="payments", env="prod"))
    assert set(response) == {"ResponseMetadata"}
    listing = kms.list_resource_tags(KeyId=key["KeyId"])
    assert sorted(listing["Tags"], key=lambda t: t["TagKey"]) == tags(env="prod", team="payments")
    assert listing["Truncated"] is False
    assert "NextMarker" not in listing


def test_tag_resource_overwrites_a_value_and_keeps_other_tags(kms):
    key = new_key(kms, Tags=tags(team="payments", env="dev"))
    kms.tag_resource(KeyId=key["Arn"], Tags=tags(env="prod", owner="alice"))
    assert tags_of(kms, key["KeyId"]) == {"team": "payments", "env": "prod", "owner": "alice"}
    assert tags_of(kms, key["Arn"]) == tags_of(kms, key["KeyId"])


def test_tags_may_be_empty_valued_unicode_and_of_maximum_length(kms):
    key = new_key(kms)
    odd = {
        "empty": "",
        "ключ с пробелом": "значение ✓",
        "k" * 128: "v" * 256,
        "symbols +-=._:/@": "any value at all",
    }
    kms.tag_resource(KeyId=key["KeyId"], Tags=tags(**odd))
    assert tags_of(kms, key["KeyId"]) == odd
    assert tags_of(kms, key["KeyId"], Limit=1) == odd


def test_tag_resource_with_no_tags_changes_nothing(kms):
    key = new_key(kms, Tags=tags(a="1"))
    kms.tag_resource(KeyId=key["KeyId"], Tags=[])
    assert tags_of(kms, key["KeyId"]) == {"a": "1"}


def test_tags_belong_to_one_key(kms):
    first, second = new_key(kms), new_key(kms)
    kms.tag_resource(KeyId=first["KeyId"], Tags=tags(only="first"))
    assert tags_of(kms, second["KeyId"]) == {}


def test_a_disabled_key_can_be_tagged_and_untagged(kms):
    key = new_key(kms)
    kms.disable_key(KeyId=key["KeyId"])
    kms.tag_resource(KeyId=key["KeyId"], Tags=tags(state="disabled", other="x"))
    kms.untag_resource(KeyId=key["KeyId"], TagKeys=["other"])
    assert tags_of(kms, key["KeyId"]) == {"state": "disabled"}


def test_tag_keys_are_case_sensitive(kms):
    key = new_key(kms)
    kms.tag_resource(KeyId=key["KeyId"], Tags=tags(Team="upper", team="lower"))
    assert tags_of(kms, key["KeyId"]) == {"Team": "upper", "team": "lower"}


def test_create_key_stores_its_tags(kms):
    key = new_key(kms, Tags=numbered(50))
    assert tags_of(kms, key["KeyId"]) == {t["TagKey"]: t["TagValue"] for t in numbered(50)}


# -- Tag errors ---------------------------------------------------------------------------


@pytest.mark.parametrize("tag_key", ["aws:owner", "AWS:owner", "Aws:x", "aws:"])
def test_tags_beginning_with_aws_are_reserved(kms, tag_key):
    key = new_key(kms, Tags=tags(keep="me"))
    fails(
        kms.tag_resource,
        "TagException",
        RESERVED,
        KeyId=key["KeyId"],
        Tags=[{"TagKey": tag_key, "TagValue": "v"}],
    )
    fails(kms.create_key, "TagException", RESERVED, Tags=[{"TagKey": tag_key, "TagValue": "v"}])
    assert tags_of(kms, key["KeyId"]) == {"keep": "me"}


def test_a_tag_key_merely_containing_aws_is_allowed(kms):
    key = new_key(kms)
    kms.tag_resource(KeyId=key["KeyId"], Tags=tags(**{"my:aws:thing": "1", "awsome": "2"}))
    assert tags_of(kms, key["KeyId"]) == {"my:aws:thing": "1", "awsome": "2"}


def test_duplicate_tag_keys_in_one_request_are_refused(kms):
    key = new_key(kms)
    duplicated = [{"TagKey": "dup", "TagValue": "1"}, {"TagKey": "dup", "TagValue": "2"}]
    fails(
        kms.tag_resource, "TagException", "Duplicate tag keys", KeyId=key["KeyId"], Tags=duplicated
    )
    fails(kms.create_key, "TagException", "Duplicate tag keys", Tags=duplicated)
    assert tags_of(kms, key["KeyId"]) == {}


def test_more_than_50_tags_in_one_request_are_refused(kms):
    key = new_key(kms)
    fails(kms.tag_resource, "TagException", "Too many tags", KeyId=key["KeyId"], Tags=numbered(51))
    fails(kms.create_key, "TagException", "Too many tags", Tags=numbered(51))
    assert tags_of(kms, key["KeyId"]) == {}


def test_a_key_holds_at_most_50_tags(kms):
    # Chosen (AWS's quota is 50 tags per key; its error for passing it is not recorded):
    # a TagResource that would leave more than 50 is refused as a request of too many tags.
    key = new_key(kms, Tags=numbered(49))
    fails(
        kms.tag_resource,
        "TagException",
        "Too many tags",
        KeyId=key["KeyId"],
        Tags=numbered(2, "new"),
    )
    assert len(tags_of(kms, key["KeyId"])) == 49
    kms.tag_resource(KeyId=key["KeyId"], Tags=numbered(1, "new"))
    assert len(tags_of(kms, key["KeyId"])) == 50
    # Changing the value of a tag the key already has adds none.
    kms.tag_resource(KeyId=key["KeyId"], Tags=[{"TagKey": "k000", "TagValue": "changed"}])
    assert tags_of(kms, key["KeyId"])["k000"] == "changed"
    fails(
        kms.tag_resource, "TagException", "Too many tags", KeyId=key["KeyId"], Tags=tags(one="more")
    )


def test_the_duplicate_check_comes_before_the_count_and_reserved_checks(kms):
    key = new_key(kms)
    many = [*numbered(51), {"TagKey": "k000", "TagValue": "again"}, *tags(**{"aws:x": "y"})]
    fails(kms.tag_resource, "TagException", "Duplicate tag keys", KeyId=key["KeyId"], Tags=many)
    fails(
        kms.tag_resource,
        "TagException",
        "Too many tags",
        KeyId=key["KeyId"],
        Tags=[*numbered(51), *tags(**{"aws:x": "y"})],
    )


def test_tag_key_and_value_lengths_are_checked(kms, server):
    key = new_key(kms, Tags=tags(keep="me"))
    long_key = "k" * 129
    fails(
        kms.tag_resource,
        "ValidationException",
        f"1 validation error detected: Value '{long_key}' at 'tags.1.member.tagKey' failed to "
        "satisfy constraint: Member must have length less than or equal to 128",
        KeyId=key["KeyId"],
        Tags=[{"TagKey": long_key, "TagValue": "v"}],
    )
    fails(
        kms.tag_resource,
        "ValidationException",
        f"1 validation error detected: Value '{long_key}' at 'tags.2.member.tagKey' failed to "
        "satisfy constraint: Member must have length less than or equal to 128",
        KeyId=key["KeyId"],
        Tags=[{"TagKey": "fine", "TagValue": "v"}, {"TagKey": long_key, "TagValue": "v"}],
    )
    fails(
        client(server, validate=False).tag_resource,
        "ValidationException",
        "1 validation error detected: Value '' at 'tags.1.member.tagKey' failed to satisfy "
        "constraint: Member must have length greater than or equal to 1",
        KeyId=key["KeyId"],
        Tags=[{"TagKey": "", "TagValue": "v"}],
    )
    message = fails(
        kms.tag_resource,
        "ValidationException",
        KeyId=key["KeyId"],
        Tags=[{"TagKey": "long-value", "TagValue": "v" * 257}],
    )
    assert message.endswith(
        "at 'tags.1.member.tagValue' failed to satisfy constraint: "
        "Member must have length less than or equal to 256"
    )
    assert tags_of(kms, key["KeyId"]) == {"keep": "me"}


def test_a_too_long_tag_value_is_echoed_as_aws_does(kms):
    key = new_key(kms)
    fails(
        kms.tag_resource,
        "ValidationException",
        f"1 validation error detected: Value '{'v' * 257}' at 'tags.1.member.tagValue' failed "
        "to satisfy constraint: Member must have length less than or equal to 256",
        KeyId=key["KeyId"],
        Tags=[{"TagKey": "long-value", "TagValue": "v" * 257}],
    )


def test_tag_resource_and_create_key_need_whole_tags(kms, server):
    key = new_key(kms)
    unchecked = client(server, validate=False)
    fails(unchecked.tag_resource, "ValidationException", null_member("tags"), KeyId=key["KeyId"])
    fails(
        unchecked.tag_resource,
        "ValidationException",
        null_member("keyId"),
        Tags=tags(a="b"),
    )
    fails(
        unchecked.tag_resource,
        "ValidationException",
        null_member("tags.1.member.tagValue"),
        KeyId=key["KeyId"],
        Tags=[{"TagKey": "no-value"}],
    )
    fails(
        unchecked.create_key,
        "ValidationException",
        null_member("tags.1.member.tagKey"),
        Tags=[{"TagValue": "no-key"}],
    )
    assert tags_of(kms, key["KeyId"]) == {}


def test_a_tag_resource_that_fails_changes_no_tag(kms):
    key = new_key(kms, Tags=tags(a="1", b="2"))
    failing = [
        [*tags(a="changed", c="new"), {"TagKey": "aws:bad", "TagValue": "x"}],
        [*tags(a="changed"), {"TagKey": "c", "TagValue": "1"}, {"TagKey": "c", "TagValue": "2"}],
        [*tags(a="changed"), *numbered(50)],
        [*tags(a="changed"), {"TagKey": "k" * 129, "TagValue": "x"}],
    ]
    for request in failing:
        with pytest.raises(ClientError):
            kms.tag_resource(KeyId=key["KeyId"], Tags=request)
    assert tags_of(kms, key["KeyId"]) == {"a": "1", "b": "2"}


@pytest.mark.parametrize("operation", ["tag_resource", "untag_resource", "list_resource_tags"])
def test_tag_operations_refuse_bad_key_ids(kms, operation):
    call = getattr(kms, operation)
    extra: dict[str, Any] = {
        "tag_resource": {"Tags": tags(a="b")},
        "untag_resource": {"TagKeys": ["a"]},
        "list_resource_tags": {},
    }[operation]
    missing = str(uuid.uuid4())
    fails(call, "NotFoundException", "Invalid keyId 'foo'", KeyId="foo", **extra)
    fails(call, "NotFoundException", not_found(missing), KeyId=missing, **extra)
    fails(call, "NotFoundException", not_found(missing), KeyId=key_arn(missing), **extra)
    fails(
        call,
        "NotFoundException",
        "Invalid arn eu-west-1",
        KeyId=key_arn(missing, "eu-west-1"),
        **extra,
    )


@pytest.mark.parametrize("operation", ["tag_resource", "untag_resource", "list_resource_tags"])
def test_tag_operations_take_no_alias(kms, operation):
    # Chosen: these operations name a key by key id or key ARN only (as AWS documents), so an
    # alias name is not a key id and an alias ARN is not a key ARN.
    key = new_key(kms)
    name = f"alias/tags-{uuid.uuid4()}"
    kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    call = getattr(kms, operation)
    extra: dict[str, Any] = {
        "tag_resource": {"Tags": tags(a="b")},
        "untag_resource": {"TagKeys": ["a"]},
        "list_resource_tags": {},
    }[operation]
    fails(call, "NotFoundException", f"Invalid keyId '{name}'", KeyId=name, **extra)
    alias_arn = f"arn:aws:kms:us-east-1:123456789012:{name}"
    fails(call, "NotFoundException", f"Invalid arn {alias_arn}", KeyId=alias_arn, **extra)
    assert tags_of(kms, key["KeyId"]) == {}


# -- UntagResource ------------------------------------------------------------------------


def test_untag_resource_removes_the_named_tags_only(kms):
    key = new_key(kms, Tags=tags(a="1", b="2", c="3"))
    response = kms.untag_resource(KeyId=key["KeyId"], TagKeys=["a", "c"])
    assert set(response) == {"ResponseMetadata"}
    assert tags_of(kms, key["KeyId"]) == {"b": "2"}
    kms.untag_resource(KeyId=key["Arn"], TagKeys=["b"])
    assert tags_of(kms, key["KeyId"]) == {}


def test_untag_resource_ignores_tag_keys_the_key_does_not_have(kms):
    key = new_key(kms, Tags=tags(a="1"))
    kms.untag_resource(KeyId=key["KeyId"], TagKeys=["not-there", "A"])
    kms.untag_resource(KeyId=key["KeyId"], TagKeys=[])
    assert tags_of(kms, key["KeyId"]) == {"a": "1"}


def test_untag_then_tag_again(kms):
    key = new_key(kms, Tags=tags(a="1"))
    kms.untag_resource(KeyId=key["KeyId"], TagKeys=["a"])
    kms.tag_resource(KeyId=key["KeyId"], Tags=tags(a="2"))
    assert tags_of(kms, key["KeyId"]) == {"a": "2"}


def test_untag_resource_refuses_reserved_tag_keys(kms):
    # Chosen: no aws: tag can exist on a customer key, and removing one is refused as adding is.
    key = new_key(kms, Tags=tags(a="1"))
    fails(
        kms.untag_resource,
        "TagException",
        RESERVED,
        KeyId=key["KeyId"],
        TagKeys=["a", "aws:createdBy"],
    )
    assert tags_of(kms, key["KeyId"]) == {"a": "1"}


def test_untag_resource_validates_its_input(kms, server):
    key = new_key(kms, Tags=tags(a="1"))
    unchecked = client(server, validate=False)
    fails(
        unchecked.untag_resource, "ValidationException", null_member("tagKeys"), KeyId=key["KeyId"]
    )
    fails(unchecked.untag_resource, "ValidationException", null_member("keyId"), TagKeys=["a"])
    fails(
        kms.untag_resource,
        "ValidationException",
        f"1 validation error detected: Value '{'k' * 129}' at 'tagKeys.1.member' failed to "
        "satisfy constraint: Member must have length less than or equal to 128",
        KeyId=key["KeyId"],
        TagKeys=["k" * 129],
    )
    assert tags_of(kms, key["KeyId"]) == {"a": "1"}


# -- ListResourceTags paging --------------------------------------------------------------


def test_list_resource_tags_pages_with_limit_and_marker(kms):
    key = new_key(kms, Tags=numbered(5))
    first = kms.list_resource_tags(KeyId=key["KeyId"], Limit=2)
    second = kms.list_resource_tags(KeyId=key["KeyId"], Limit=2, Marker=first["NextMarker"])
    third = kms.list_resource_tags(KeyId=key["KeyId"], Limit=2, Marker=second["NextMarker"])
    assert [len(p["Tags"]) for p in (first, second, third)] == [2, 2, 1]
    assert [p["Truncated"] for p in (first, second, third)] == [True, True, False]
    assert "NextMarker" not in third
    listed = [t for p in (first, second, third) for t in p["Tags"]]
    assert sorted(listed, key=lambda t: t["TagKey"]) == numbered(5)
    exact = kms.list_resource_tags(KeyId=key["KeyId"], Limit=5)
    assert len(exact["Tags"]) == 5
    assert exact["Truncated"] is False


def test_list_resource_tags_answers_at_most_50(kms):
    key = new_key(kms, Tags=numbered(50))
    default = kms.list_resource_tags(KeyId=key["KeyId"])
    assert len(default["Tags"]) == 50
    assert default["Truncated"] is False
    # The model allows a Limit up to 1000; AWS documents 1 to 50.
    big = kms.list_resource_tags(KeyId=key["KeyId"], Limit=1000)
    assert len(big["Tags"]) == 50
    assert big["Truncated"] is False
    assert len(tags_of(kms, key["KeyId"], Limit=7)) == 50


@pytest.mark.parametrize(
    ("params", "message"),
    LIST_PAGING_VIOLATIONS,
    ids=["limit-0", "limit-1001", "empty-marker"],
)
def test_list_resource_tags_validates_its_input(kms, server, params, message):
    key = new_key(kms)
    fails(
        client(server, validate=False).list_resource_tags,
        "ValidationException",
        message,
        KeyId=key["KeyId"],
        **params,
    )
    fails(
        client(server, validate=False).list_resource_tags,
        "ValidationException",
        null_member("keyId"),
    )


def test_list_resource_tags_refuses_a_marker_it_did_not_make(kms):
    key = new_key(kms, Tags=numbered(3))
    good = kms.list_resource_tags(KeyId=key["KeyId"], Limit=1)["NextMarker"]
    new_key(kms)
    keys_marker = kms.list_keys(Limit=1)["NextMarker"]
    for marker in ["garbage", "AAAA", good[:-3] + "zzz", "x" + good, keys_marker]:
        fails(
            kms.list_resource_tags,
            "InvalidMarkerException",
            KeyId=key["KeyId"],
            Marker=marker,
        )
    assert kms.list_resource_tags(KeyId=key["KeyId"], Marker=good)["Tags"]


# -- Authorisation and regions ------------------------------------------------------------


def test_another_account_cannot_read_or_change_the_tags(kms, server, other_account):
    key = new_key(kms, Tags=tags(owner="me"))
    other_id = other_account["AccountId"]
    other = client(server, other_account)
    calls = [
        (other.tag_resource, "kms:TagResource", {"Tags": tags(owner="them")}),
        (other.untag_resource, "kms:UntagResource", {"TagKeys": ["owner"]}),
        (other.list_resource_tags, "kms:ListResourceTags", {}),
    ]
    for call, action, extra in calls:
        refused_to_other_account(call, other_id, key, action, **extra)
    assert tags_of(kms, key["KeyId"]) == {"owner": "me"}


def test_tags_are_reached_only_in_the_key_region(kms, server):
    key = new_key(kms, Tags=tags(region="east"))
    west = client(server, region=OTHER_REGION)
    fails(
        west.tag_resource,
        "NotFoundException",
        "Invalid arn us-east-1",
        KeyId=key["Arn"],
        Tags=tags(region="west"),
    )
    fails(
        west.untag_resource,
        "NotFoundException",
        not_found(key["KeyId"], region=OTHER_REGION),
        KeyId=key["KeyId"],
        TagKeys=["region"],
    )
    fails(west.list_resource_tags, "NotFoundException", "Invalid arn us-east-1", KeyId=key["Arn"])
    assert tags_of(kms, key["KeyId"]) == {"region": "east"}


def test_concurrent_tag_resource_on_one_key_all_succeed(kms):
    key = new_key(kms)

    def attempt(n: int) -> str:
        try:
            kms.tag_resource(
                KeyId=key["KeyId"], Tags=[*tags(shared=f"writer-{n}"), *numbered(3, f"w{n}-")]
            )
        except ClientError as error:
            return str(error.response["Error"]["Code"])
        return "ok"

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(attempt, range(8)))
    assert outcomes == ["ok"] * 8
    found = tags_of(kms, key["KeyId"])
    assert len(found) == 1 + 8 * 3
    assert found["shared"] in {f"writer-{n}" for n in range(8)}
