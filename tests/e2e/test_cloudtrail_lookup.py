"""CloudTrail's LookupEvents on the audit trail, through boto3's cloudtrail client and
``aws cloudtrail lookup-events``: an auditor's questions answered, page by page, within the
caller's own account, refused to callers not allowed."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import uuid
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.e2e.audit_support import request_id
from tests.e2e.test_awscli import _aws_executable
from tests.support import REGION, OpenKmsServer, time_travel

USER_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "cloudtrail:LookupEvents", "Resource": "*"}],
    }
)


def _lookup_all(cloudtrail: Any, **params: Any) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while True:
        page = cloudtrail.lookup_events(**params)
        events += page["Events"]
        if "NextToken" not in page:
            return events
        params["NextToken"] = page["NextToken"]


def _refused(call: Any, code: str, **params: Any) -> str:
    with pytest.raises(ClientError) as info:
        call(**params)
    assert info.value.response["Error"]["Code"] == code, info.value.response
    return str(info.value.response["Error"].get("Message", ""))


def _unvalidated(server: OpenKmsServer, account: dict[str, str]) -> Any:
    """A cloudtrail client that sends what it is given: the server must refuse it."""
    import boto3

    return boto3.session.Session().client(
        "cloudtrail",
        endpoint_url=server.endpoint,
        region_name=REGION,
        aws_access_key_id=account["AccessKeyId"],
        aws_secret_access_key=account["SecretAccessKey"],
        config=Config(parameter_validation=False, retries={"max_attempts": 1}),
    )


@pytest.fixture
def account(server: OpenKmsServer) -> dict[str, str]:
    return server.create_account()


def test_who_used_a_key_between_two_times_from_where_and_what_was_refused(server, account):
    kms = server.client_for(account)
    cloudtrail = server.client_for(account, "cloudtrail")
    key = kms.create_key()["KeyMetadata"]  # before t1
    mallory = server.create_user(account["AccountId"], f"mallory-{uuid.uuid4().hex[:6]}")
    now = dt.datetime.now(dt.UTC)
    t1, t2 = now + dt.timedelta(seconds=100), now + dt.timedelta(seconds=200)
    with time_travel(150, server):
        used = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"payroll")
        kms.decrypt(CiphertextBlob=used["CiphertextBlob"])
        # A user of the account with no permission on the key: refused.
        with pytest.raises(ClientError) as denied:
            server.client_for(mallory).encrypt(KeyId=key["Arn"], Plaintext=b"x")
    with time_travel(250, server):
        kms.describe_key(KeyId=key["KeyId"])  # after t2: not in the answer

    events = _lookup_all(
        cloudtrail,
        LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": key["Arn"]}],
        StartTime=t1,
        EndTime=t2,
    )
    assert [e["EventName"] for e in events] == ["Encrypt", "Decrypt", "Encrypt"]
    records = [json.loads(e["CloudTrailEvent"]) for e in events]
    refused, decrypted, encrypted = records
    assert refused["requestID"] == request_id(denied.value)
    assert refused["errorCode"] == "AccessDeniedException"
    assert refused["userIdentity"]["arn"] == mallory["Arn"]
    assert events[0]["Username"] == mallory["UserName"]
    assert events[0]["AccessKeyId"] == mallory["AccessKeyId"]
    assert encrypted["requestID"] == request_id(used)
    assert "errorCode" not in encrypted and "errorCode" not in decrypted
    assert events[2]["Username"] == "root"
    for event, record in zip(events, records, strict=True):
        assert record["sourceIPAddress"] == "127.0.0.1"
        assert record["eventSource"] == "kms.amazonaws.com" == event["EventSource"]
        assert event["EventId"] == record["eventID"]
        assert event["ReadOnly"] == "true"
        assert event["Resources"] == [{"ResourceType": "AWS::KMS::Key", "ResourceName": key["Arn"]}]
        assert t1 <= event["EventTime"] <= t2
    # Newest first.
    assert [e["EventTime"] for e in events] == sorted(
        (e["EventTime"] for e in events), reverse=True
    )
    # The refusals alone, by the user's access key.
    by_key = cloudtrail.lookup_events(
        LookupAttributes=[{"AttributeKey": "AccessKeyId", "AttributeValue": mallory["AccessKeyId"]}]
    )["Events"]
    assert [json.loads(e["CloudTrailEvent"])["errorCode"] for e in by_key] == [
        "AccessDeniedException"
    ]


def test_each_lookup_attribute_finds_its_events(server, account):
    kms = server.client_for(account)
    cloudtrail = server.client_for(account, "cloudtrail")
    key = kms.create_key()["KeyMetadata"]
    encrypted = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    everything = _lookup_all(cloudtrail)
    encrypt_event = next(e for e in everything if e["EventName"] == "Encrypt")

    def names(key_name: str, value: str) -> list[str]:
        attributes = [{"AttributeKey": key_name, "AttributeValue": value}]
        return [e["EventName"] for e in _lookup_all(cloudtrail, LookupAttributes=attributes)]

    assert names("EventId", encrypt_event["EventId"]) == ["Encrypt"]
    assert json.loads(encrypt_event["CloudTrailEvent"])["requestID"] == request_id(encrypted)
    assert names("EventName", "CreateKey") == ["CreateKey"]
    assert "CreateKey" in names("ReadOnly", "false") and "Encrypt" not in names("ReadOnly", "false")
    assert "Encrypt" in names("ReadOnly", "true") and "CreateKey" not in names("ReadOnly", "true")
    assert {"CreateKey", "Encrypt"} <= set(names("Username", "root"))
    assert names("ResourceType", "AWS::KMS::Key")[:2] == ["Encrypt", "CreateKey"]
    assert names("ResourceName", key["Arn"]) == ["Encrypt", "CreateKey"]
    assert {"CreateKey", "Encrypt", "LookupEvents"} <= set(
        names("AccessKeyId", account["AccessKeyId"])
    )
    assert "Encrypt" in names("EventSource", "kms.amazonaws.com")
    assert names("EventName", "NoSuchOperation") == []


def test_each_lookup_is_itself_recorded_as_a_read_of_cloudtrail(server, account):
    cloudtrail = server.client_for(account, "cloudtrail")
    asked = cloudtrail.lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateKey"}],
        MaxResults=7,
    )
    events = cloudtrail.lookup_events(
        LookupAttributes=[
            {"AttributeKey": "EventSource", "AttributeValue": "cloudtrail.amazonaws.com"}
        ]
    )["Events"]
    record = next(
        json.loads(e["CloudTrailEvent"])
        for e in events
        if json.loads(e["CloudTrailEvent"])["requestID"] == request_id(asked)
    )
    assert record["eventName"] == "LookupEvents" and record["readOnly"] is True
    assert record["eventSource"] == "cloudtrail.amazonaws.com"
    assert record["requestParameters"] == {
        "lookupAttributes": [{"attributeKey": "EventName", "attributeValue": "CreateKey"}],
        "maxResults": 7,
    }
    assert record["responseElements"] is None
    assert record["recipientAccountId"] == account["AccountId"]


def test_pages_follow_next_token_newest_first_without_loss_or_repeat(server, account):
    kms = server.client_for(account)
    cloudtrail = server.client_for(account, "cloudtrail")
    key = kms.create_key()["KeyMetadata"]
    made = [request_id(kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")) for _ in range(7)]
    attributes = [{"AttributeKey": "EventName", "AttributeValue": "Encrypt"}]
    pages = []
    params: dict[str, Any] = {"LookupAttributes": attributes, "MaxResults": 3}
    while True:
        page = cloudtrail.lookup_events(**params)
        pages.append(page["Events"])
        if "NextToken" not in page:
            break
        params["NextToken"] = page["NextToken"]
    assert [len(p) for p in pages] == [3, 3, 1]
    found = [json.loads(e["CloudTrailEvent"])["requestID"] for p in pages for e in p]
    assert found == list(reversed(made))
    # boto3's paginator and a default page (50) agree.
    paginated = [
        e["EventId"]
        for page in cloudtrail.get_paginator("lookup_events").paginate(LookupAttributes=attributes)
        for e in page["Events"]
    ]
    assert paginated == [e["EventId"] for p in pages for e in p]
    # A token goes with the parameters it was given for.
    first = cloudtrail.lookup_events(LookupAttributes=attributes, MaxResults=1)
    message = _refused(
        cloudtrail.lookup_events,
        "InvalidNextTokenException",
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateKey"}],
        NextToken=first["NextToken"],
    )
    assert "other parameters" in message
    _refused(cloudtrail.lookup_events, "InvalidNextTokenException", NextToken="not-a-token")
    # Another account cannot use it either.
    other = server.create_account()
    _refused(
        server.client_for(other, "cloudtrail").lookup_events,
        "InvalidNextTokenException",
        LookupAttributes=attributes,
        NextToken=first["NextToken"],
    )


@pytest.mark.parametrize(
    ("params", "code"),
    [
        (
            {
                "LookupAttributes": [
                    {"AttributeKey": "EventName", "AttributeValue": "Encrypt"},
                    {"AttributeKey": "Username", "AttributeValue": "root"},
                ]
            },
            "InvalidLookupAttributesException",
        ),
        (
            {"LookupAttributes": [{"AttributeKey": "KeyId", "AttributeValue": "x"}]},
            "InvalidLookupAttributesException",
        ),
        (
            {"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": ""}]},
            "InvalidLookupAttributesException",
        ),
        (
            {"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "_" * 1001}]},
            "InvalidLookupAttributesException",
        ),
        (
            {"LookupAttributes": [{"AttributeKey": "ReadOnly", "AttributeValue": "yes"}]},
            "InvalidLookupAttributesException",
        ),
        ({"StartTime": 2_000_000_000, "EndTime": 1_900_000_000}, "InvalidTimeRangeException"),
        ({"MaxResults": 0}, "InvalidMaxResultsException"),
        ({"MaxResults": 51}, "InvalidMaxResultsException"),
        ({"EventCategory": "data"}, "InvalidEventCategoryException"),
        ({"MaxResults": "ten"}, "SerializationException"),
    ],
)
def test_bad_input_is_refused_with_cloudtrails_error(server, account, params, code):
    cloudtrail = _unvalidated(server, account)
    _refused(cloudtrail.lookup_events, code, **params)


def test_insights_events_are_none(server, account):
    cloudtrail = server.client_for(account, "cloudtrail")
    assert cloudtrail.lookup_events(EventCategory="insight")["Events"] == []


def test_a_user_needs_cloudtrail_lookup_events_in_its_identity_policies(server, account):
    kms = server.client_for(account)
    kms.create_key()
    user = server.create_user(account["AccountId"], f"auditor-{uuid.uuid4().hex[:6]}")
    cloudtrail = server.client_for(user, "cloudtrail")
    message = _refused(cloudtrail.lookup_events, "AccessDeniedException")
    assert message == (
        f"User: {user['Arn']} is not authorized to perform: cloudtrail:LookupEvents on "
        "resource: * because no identity-based policy allows the cloudtrail:LookupEvents action"
    )
    server.put_user_policy(user, "audit", USER_POLICY)
    names = {e["EventName"] for e in _lookup_all(cloudtrail)}
    assert "CreateKey" in names
    # An explicit Deny wins.
    deny = json.loads(USER_POLICY)
    deny["Statement"].append({"Effect": "Deny", "Action": "cloudtrail:*", "Resource": "*"})
    server.put_user_policy(user, "no-audit", json.dumps(deny))
    message = _refused(cloudtrail.lookup_events, "AccessDeniedException")
    assert message.endswith("with an explicit deny in an identity-based policy")


def test_another_accounts_events_are_not_visible(server, account):
    kms = server.client_for(account)
    key = kms.create_key()["KeyMetadata"]
    kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    mine = _lookup_all(server.client_for(account, "cloudtrail"))
    assert mine and all(
        account["AccountId"]
        in (
            json.loads(e["CloudTrailEvent"])["recipientAccountId"],
            json.loads(e["CloudTrailEvent"])["userIdentity"].get("accountId"),
        )
        for e in mine
    )
    other = server.create_account()
    theirs = server.client_for(other, "cloudtrail")
    by_key = [{"AttributeKey": "ResourceName", "AttributeValue": key["Arn"]}]
    assert theirs.lookup_events(LookupAttributes=by_key)["Events"] == []
    by_id = [{"AttributeKey": "EventId", "AttributeValue": mine[-1]["EventId"]}]
    assert theirs.lookup_events(LookupAttributes=by_id)["Events"] == []
    their_ids = {e["EventId"] for e in _lookup_all(theirs)}
    assert not their_ids & {e["EventId"] for e in mine}


def test_a_cross_account_use_is_seen_by_both_accounts(server, account):
    owner = server.client_for(account)
    other = server.create_account()
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account['AccountId']}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{other['AccountId']}:root"},
                "Action": "kms:Encrypt",
                "Resource": "*",
            },
        ],
    }
    key = owner.create_key(Policy=json.dumps(policy))["KeyMetadata"]
    used = server.client_for(other).encrypt(KeyId=key["Arn"], Plaintext=b"x")
    by_key = [{"AttributeKey": "ResourceName", "AttributeValue": key["Arn"]}]
    for who in (account, other):
        events = server.client_for(who, "cloudtrail").lookup_events(LookupAttributes=by_key)
        ids = [json.loads(e["CloudTrailEvent"])["requestID"] for e in events["Events"]]
        assert request_id(used) in ids


def test_aws_cli_lookup_events(server, account):
    kms = server.client_for(account)
    key = kms.create_key()["KeyMetadata"]
    start = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    for _ in range(3):
        kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    end = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {
        "AWS_ACCESS_KEY_ID": account["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": account["SecretAccessKey"],
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_MAX_ATTEMPTS": "1",
    }
    command = [
        _aws_executable(), "--endpoint-url", server.endpoint, "--output", "json",
        "cloudtrail", "lookup-events",
        "--lookup-attributes", "AttributeKey=EventName,AttributeValue=Encrypt",
        "--start-time", start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "--end-time", end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "--page-size", "2",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    events = json.loads(result.stdout)["Events"]
    # The CLI followed NextToken across pages of two.
    assert [e["EventName"] for e in events] == ["Encrypt"] * 3
    for event in events:
        record = json.loads(event["CloudTrailEvent"])
        assert record["sourceIPAddress"] == "127.0.0.1"
        assert record["resources"][0]["ARN"] == key["Arn"]
    # A bad time range, as the CLI shows CloudTrail's error.
    command[command.index("--start-time") + 1] = end.strftime("%Y-%m-%dT%H:%M:%SZ")
    command[command.index("--end-time") + 1] = start.strftime("%Y-%m-%dT%H:%M:%SZ")
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode != 0 and "InvalidTimeRangeException" in result.stderr
