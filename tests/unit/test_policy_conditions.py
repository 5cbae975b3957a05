"""Condition blocks (openkms.authz.conditions), case by case from the IAM User Guide:
reference_policies_elements_condition_operators, reference_policies_multi-value-conditions,
reference_policies_elements_condition, reference_policies_variables, and the KMS guide's
conditions-kms for kms:EncryptionContextKeys. Where the guide is silent and the module makes
a choice, the case says so. Every table has both outcomes, so no constant answer passes."""

from __future__ import annotations

import datetime

import pytest

from openkms.authz.conditions import ConditionError, check_condition_block, condition_block_matches


def utc(year, month, day, hour=0, minute=0, second=0, microsecond=0):
    return datetime.datetime(
        year, month, day, hour, minute, second, microsecond, tzinfo=datetime.UTC
    )


def case(name, block, context, expected, variables=None):
    return pytest.param(block, context, variables, expected, id=name)


ABSENT: dict[str, object] = {}

STRING = [
    # Condition element: StringEquals "johndoe" denies users named JohnDoe.
    case(
        "StringEquals exact",
        {"StringEquals": {"aws:username": "johndoe"}},
        {"aws:username": "johndoe"},
        True,
    ),
    case(
        "StringEquals is case-sensitive",
        {"StringEquals": {"aws:username": "johndoe"}},
        {"aws:username": "JohnDoe"},
        False,
    ),
    case(
        "StringEqualsIgnoreCase matches JohnDoe",
        {"StringEqualsIgnoreCase": {"aws:username": "johndoe"}},
        {"aws:username": "JohnDoe"},
        True,
    ),
    case(
        "StringEqualsIgnoreCase, capitals in the policy",
        {"StringEqualsIgnoreCase": {"aws:username": "JohnDoe"}},
        {"aws:username": "johndoe"},
        True,
    ),
    case(
        "StringEqualsIgnoreCase other name",
        {"StringEqualsIgnoreCase": {"aws:username": "johndoe"}},
        {"aws:username": "janedoe"},
        False,
    ),
    case(
        "StringNotEquals differs by case",
        {"StringNotEquals": {"aws:username": "johndoe"}},
        {"aws:username": "JohnDoe"},
        True,
    ),
    case(
        "StringNotEquals same",
        {"StringNotEquals": {"aws:username": "johndoe"}},
        {"aws:username": "johndoe"},
        False,
    ),
    case(
        "StringNotEqualsIgnoreCase differs by case only",
        {"StringNotEqualsIgnoreCase": {"aws:username": "johndoe"}},
        {"aws:username": "JOHNDOE"},
        False,
    ),
    case(
        "StringNotEqualsIgnoreCase other name",
        {"StringNotEqualsIgnoreCase": {"aws:username": "johndoe"}},
        {"aws:username": "jane"},
        True,
    ),
    # Condition block: "StringLike": {"s3:prefix": ["janedoe/*"]}.
    case(
        "StringLike prefix",
        {"StringLike": {"s3:prefix": ["janedoe/*"]}},
        {"s3:prefix": "janedoe/photos/2024"},
        True,
    ),
    case(
        "StringLike other prefix",
        {"StringLike": {"s3:prefix": ["janedoe/*"]}},
        {"s3:prefix": "johndoe/photos"},
        False,
    ),
    case(
        "StringLike is case-sensitive",
        {"StringLike": {"s3:prefix": ["janedoe/*"]}},
        {"s3:prefix": "JaneDoe/photos"},
        False,
    ),
    case(
        "StringLike * matches the empty run",
        {"StringLike": {"s3:prefix": "home/*"}},
        {"s3:prefix": "home/"},
        True,
    ),
    case(
        "StringLike without wildcards is whole-string",
        {"StringLike": {"s3:prefix": "home"}},
        {"s3:prefix": "home/x"},
        False,
    ),
    # The home-directory example lists "" among the prefixes.
    case(
        "StringLike empty value matches empty prefix",
        {"StringLike": {"s3:prefix": ["", "home/"]}},
        {"s3:prefix": ""},
        True,
    ),
    case(
        "StringLike empty value only",
        {"StringLike": {"s3:prefix": [""]}},
        {"s3:prefix": "other/"},
        False,
    ),
    case(
        "StringLike ? is one character",
        {"StringLike": {"ec2:instancetype": "t?.micro"}},
        {"ec2:instancetype": "t2.micro"},
        True,
    ),
    case(
        "StringLike ? is not two",
        {"StringLike": {"ec2:instancetype": "t?.micro"}},
        {"ec2:instancetype": "t22.micro"},
        False,
    ),
    case(
        "StringLike ? is not zero",
        {"StringLike": {"ec2:instancetype": "t?.micro"}},
        {"ec2:instancetype": "t.micro"},
        False,
    ),
    # The IfExists example's instance types: OR across a key's values.
    case(
        "StringLike any listed value",
        {"StringLike": {"ec2:InstanceType": ["t1.*", "t2.*", "m3.*"]}},
        {"ec2:instancetype": "m3.large"},
        True,
    ),
    case(
        "StringLike none of the listed values",
        {"StringLike": {"ec2:InstanceType": ["t1.*", "t2.*", "m3.*"]}},
        {"ec2:instancetype": "c5.large"},
        False,
    ),
    case(
        "StringNotLike unlisted",
        {"StringNotLike": {"ec2:instancetype": ["t1.*", "t2.*"]}},
        {"ec2:instancetype": "m3.large"},
        True,
    ),
    case(
        "StringNotLike listed",
        {"StringNotLike": {"ec2:instancetype": ["t1.*", "t2.*"]}},
        {"ec2:instancetype": "t2.nano"},
        False,
    ),
    # Multi-value conditions: negated operators with several values are a logical AND.
    case(
        "StringNotEquals several values, one matches",
        {"StringNotEquals": {"aws:PrincipalAccount": ["111122223333", "444455556666"]}},
        {"aws:principalaccount": "444455556666"},
        False,
    ),
    case(
        "StringNotEquals several values, none matches",
        {"StringNotEquals": {"aws:PrincipalAccount": ["111122223333", "444455556666"]}},
        {"aws:principalaccount": "999999999999"},
        True,
    ),
]

# The multi-value page's block: AND across operators and across keys, OR across values.
DEPARTMENT_BLOCK = {
    "StringEqualsIgnoreCase": {
        "aws:PrincipalTag/department": ["finance", "hr", "legal"],
        "aws:PrincipalTag/role": ["audit", "security"],
    },
    "StringEquals": {"aws:PrincipalAccount": "123456789012"},
}
FINANCE_AUDITOR = {
    "aws:principaltag/department": "HR",
    "aws:principaltag/role": "audit",
    "aws:principalaccount": "123456789012",
}
COMBINING = [
    case("all keys of all operators match", DEPARTMENT_BLOCK, FINANCE_AUDITOR, True),
    case(
        "one key absent",
        DEPARTMENT_BLOCK,
        {k: v for k, v in FINANCE_AUDITOR.items() if k != "aws:principaltag/role"},
        False,
    ),
    case(
        "one key's value unlisted",
        DEPARTMENT_BLOCK,
        {**FINANCE_AUDITOR, "aws:principaltag/role": "developer"},
        False,
    ),
    case(
        "the other operator fails",
        DEPARTMENT_BLOCK,
        {**FINANCE_AUDITOR, "aws:principalaccount": "111122223333"},
        False,
    ),
    case("an empty block is no condition", {}, ABSENT, True),
]

NUMERIC = [
    # "NumericLessThanEquals": {"s3:max-keys": "10"}: up to 10 objects.
    case(
        "NumericLessThanEquals at the bound",
        {"NumericLessThanEquals": {"s3:max-keys": "10"}},
        {"s3:max-keys": 10},
        True,
    ),
    case(
        "NumericLessThanEquals above",
        {"NumericLessThanEquals": {"s3:max-keys": "10"}},
        {"s3:max-keys": 11},
        False,
    ),
    case("NumericEquals", {"NumericEquals": {"k": "10"}}, {"k": 10}, True),
    case("NumericEquals a decimal request", {"NumericEquals": {"k": "10"}}, {"k": 10.0}, True),
    case("NumericEquals other", {"NumericEquals": {"k": "10"}}, {"k": 11}, False),
    case("NumericEquals a JSON number", {"NumericEquals": {"k": 10}}, {"k": 10}, True),
    case("NumericNotEquals same", {"NumericNotEquals": {"k": "10"}}, {"k": 10}, False),
    case("NumericNotEquals other", {"NumericNotEquals": {"k": "10"}}, {"k": 11}, True),
    case("NumericLessThan below", {"NumericLessThan": {"k": "10"}}, {"k": 9}, True),
    case("NumericLessThan equal", {"NumericLessThan": {"k": "10"}}, {"k": 10}, False),
    case("NumericGreaterThan above", {"NumericGreaterThan": {"k": "10"}}, {"k": 11}, True),
    case("NumericGreaterThan equal", {"NumericGreaterThan": {"k": "10"}}, {"k": 10}, False),
    case(
        "NumericGreaterThanEquals equal", {"NumericGreaterThanEquals": {"k": "10"}}, {"k": 10}, True
    ),
    case(
        "NumericGreaterThanEquals below", {"NumericGreaterThanEquals": {"k": "10"}}, {"k": 9}, False
    ),
    case("decimal values compare exactly", {"NumericLessThan": {"k": "1.5"}}, {"k": 1.4}, True),
    case("decimal values at the bound", {"NumericLessThan": {"k": "1.5"}}, {"k": 1.5}, False),
    case("negative values", {"NumericGreaterThan": {"k": "-1"}}, {"k": 0}, True),
    case("a numeric request string", {"NumericEquals": {"k": "365"}}, {"k": "365"}, True),
    case(
        "a non-numeric request value matches nothing",
        {"NumericEquals": {"k": "10"}},
        {"k": "ten"},
        False,
    ),
    # aws:EpochTime takes Date or Numeric operators.
    case(
        "aws:EpochTime with a numeric operator",
        {"NumericLessThan": {"aws:EpochTime": "1767225600"}},
        {"aws:epochtime": 1767225599},
        True,
    ),
    case(
        "aws:EpochTime held as a time, numerically (choice)",
        {"NumericGreaterThanEquals": {"aws:EpochTime": "1767225600"}},
        {"aws:epochtime": utc(2026, 1, 1)},
        True,
    ),
    # The request context example: aws:MultiFactorAuthAge is not present with access keys.
    case(
        "an absent number does not match",
        {"NumericLessThanEquals": {"aws:MultiFactorAuthAge": "3600"}},
        ABSENT,
        False,
    ),
    case(
        "a present number within bounds",
        {"NumericLessThanEquals": {"aws:MultiFactorAuthAge": "3600"}},
        {"aws:multifactorauthage": 60},
        True,
    ),
]

DATE = [
    # "DateGreaterThan": {"aws:TokenIssueTime": "2020-01-01T00:00:01Z"}.
    case(
        "DateGreaterThan after",
        {"DateGreaterThan": {"aws:TokenIssueTime": "2020-01-01T00:00:01Z"}},
        {"aws:tokenissuetime": utc(2020, 6, 1)},
        True,
    ),
    case(
        "DateGreaterThan before",
        {"DateGreaterThan": {"aws:TokenIssueTime": "2020-01-01T00:00:01Z"}},
        {"aws:tokenissuetime": utc(2019, 12, 31)},
        False,
    ),
    case(
        "DateGreaterThan at the instant",
        {"DateGreaterThan": {"aws:TokenIssueTime": "2020-01-01T00:00:01Z"}},
        {"aws:tokenissuetime": utc(2020, 1, 1, 0, 0, 1)},
        False,
    ),
    case(
        "an absent token issue time (access keys)",
        {"DateGreaterThan": {"aws:TokenIssueTime": "2020-01-01T00:00:01Z"}},
        ABSENT,
        False,
    ),
    case(
        "date-only is midnight UTC",
        {"DateEquals": {"aws:CurrentTime": "2026-01-01"}},
        {"aws:currenttime": utc(2026, 1, 1)},
        True,
    ),
    case(
        "date-only is not the whole day",
        {"DateEquals": {"aws:CurrentTime": "2026-01-01"}},
        {"aws:currenttime": utc(2026, 1, 1, 0, 0, 1)},
        False,
    ),
    case(
        "an offset is applied",
        {"DateLessThan": {"aws:CurrentTime": "2026-01-01T01:00:00+01:00"}},
        {"aws:currenttime": utc(2025, 12, 31, 23, 59, 59)},
        True,
    ),
    case(
        "an offset is applied at the instant",
        {"DateLessThan": {"aws:CurrentTime": "2026-01-01T01:00:00+01:00"}},
        {"aws:currenttime": utc(2026, 1, 1)},
        False,
    ),
    case(
        "a negative offset",
        {"DateEquals": {"aws:CurrentTime": "2025-12-31T19:00:00-05:00"}},
        {"aws:currenttime": utc(2026, 1, 1)},
        True,
    ),
    case(
        "minutes without seconds",
        {"DateLessThanEquals": {"aws:CurrentTime": "2026-01-01T00:00Z"}},
        {"aws:currenttime": utc(2026, 1, 1)},
        True,
    ),
    case(
        "fractional seconds",
        {"DateLessThanEquals": {"aws:CurrentTime": "2026-01-01T00:00:00.5Z"}},
        {"aws:currenttime": utc(2026, 1, 1, 0, 0, 0, 500000)},
        True,
    ),
    case(
        "fractional seconds, after",
        {"DateLessThanEquals": {"aws:CurrentTime": "2026-01-01T00:00:00.5Z"}},
        {"aws:currenttime": utc(2026, 1, 1, 0, 0, 0, 600000)},
        False,
    ),
    case(
        "epoch policy value",
        {"DateGreaterThanEquals": {"aws:CurrentTime": "1767225600"}},
        {"aws:currenttime": utc(2026, 1, 1)},
        True,
    ),
    case(
        "epoch policy value, before",
        {"DateGreaterThanEquals": {"aws:CurrentTime": "1767225600"}},
        {"aws:currenttime": utc(2025, 12, 31, 23, 59, 59)},
        False,
    ),
    case(
        "epoch as a JSON number",
        {"DateGreaterThan": {"aws:CurrentTime": 1767225600}},
        {"aws:currenttime": utc(2026, 1, 2)},
        True,
    ),
    case(
        "epoch request value",
        {"DateEquals": {"aws:EpochTime": "2026-01-01T00:00:00Z"}},
        {"aws:epochtime": 1767225600},
        True,
    ),
    case(
        "epoch request value, a second later",
        {"DateEquals": {"aws:EpochTime": "2026-01-01T00:00:00Z"}},
        {"aws:epochtime": 1767225601},
        False,
    ),
    case(
        "DateNotEquals same",
        {"DateNotEquals": {"aws:CurrentTime": "2026-01-01T00:00:00Z"}},
        {"aws:currenttime": utc(2026, 1, 1)},
        False,
    ),
    case(
        "DateNotEquals other",
        {"DateNotEquals": {"aws:CurrentTime": "2026-01-01T00:00:00Z"}},
        {"aws:currenttime": utc(2026, 1, 2)},
        True,
    ),
    case(
        "DateLessThan before",
        {"DateLessThan": {"aws:CurrentTime": "2026-01-01T00:00:00Z"}},
        {"aws:currenttime": utc(2025, 6, 1)},
        True,
    ),
    case(
        "DateGreaterThanEquals after",
        {"DateGreaterThanEquals": {"aws:CurrentTime": "2026-01-01"}},
        {"aws:currenttime": utc(2026, 3, 1)},
        True,
    ),
    case(
        "a year-to-year range, inside",
        {
            "DateGreaterThan": {"aws:CurrentTime": "2026-01-01T00:00:00Z"},
            "DateLessThan": {"aws:CurrentTime": "2026-06-30T00:00:00Z"},
        },
        {"aws:currenttime": utc(2026, 3, 1)},
        True,
    ),
    case(
        "a year-to-year range, outside",
        {
            "DateGreaterThan": {"aws:CurrentTime": "2026-01-01T00:00:00Z"},
            "DateLessThan": {"aws:CurrentTime": "2026-06-30T00:00:00Z"},
        },
        {"aws:currenttime": utc(2026, 7, 1)},
        False,
    ),
]

BOOL = [
    # "Bool": {"aws:SecureTransport": "false"}: the request is not over TLS.
    case(
        "Bool false, plain HTTP",
        {"Bool": {"aws:SecureTransport": "false"}},
        {"aws:securetransport": False},
        True,
    ),
    case(
        "Bool false, TLS",
        {"Bool": {"aws:SecureTransport": "false"}},
        {"aws:securetransport": True},
        False,
    ),
    case(
        "Bool values ignore case",
        {"Bool": {"aws:SecureTransport": "TRUE"}},
        {"aws:securetransport": True},
        True,
    ),
    case(
        "Bool JSON true",
        {"Bool": {"aws:SecureTransport": True}},
        {"aws:securetransport": True},
        True,
    ),
    case(
        "Bool JSON true, false request",
        {"Bool": {"aws:SecureTransport": True}},
        {"aws:securetransport": False},
        False,
    ),
    case(
        "Bool against a string request value",
        {"Bool": {"kms:multiregion": "true"}},
        {"kms:multiregion": "True"},
        True,
    ),
    case("Bool absent", {"Bool": {"aws:MultiFactorAuthPresent": "true"}}, ABSENT, False),
    # Long-term keys carry no aws:MultiFactorAuthPresent, hence the advice to use BoolIfExists.
    case(
        "BoolIfExists absent",
        {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}},
        ABSENT,
        True,
    ),
    case(
        "BoolIfExists present and different",
        {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}},
        {"aws:multifactorauthpresent": True},
        False,
    ),
    case(
        "Bool with a variable",
        {"Bool": {"kms:multiregion": "${aws:securetransport}"}},
        {"kms:multiregion": True},
        True,
        {"aws:securetransport": "true"},
    ),
    case(
        "Bool with a variable, different",
        {"Bool": {"kms:multiregion": "${aws:securetransport}"}},
        {"kms:multiregion": False},
        False,
        {"aws:securetransport": "true"},
    ),
]

BINARY = [
    case(
        "BinaryEquals",
        {"BinaryEquals": {"key": "QmluYXJ5VmFsdWVJbkJhc2U2NA=="}},
        {"key": "QmluYXJ5VmFsdWVJbkJhc2U2NA=="},
        True,
    ),
    case(
        "BinaryEquals other bytes",
        {"BinaryEquals": {"key": "QmluYXJ5VmFsdWVJbkJhc2U2NA=="}},
        {"key": "QmluYXJ5"},
        False,
    ),
    case(
        "BinaryEquals absent",
        {"BinaryEquals": {"key": "QmluYXJ5VmFsdWVJbkJhc2U2NA=="}},
        ABSENT,
        False,
    ),
]

BOTH_FAMILIES = {"IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:DB8:1234:5678::/64"]}}
IP = [
    # "IpAddress": {"aws:SourceIp": "203.0.113.0/24"}: 203.0.113.0 to 203.0.113.255.
    case(
        "IPv4 CIDR inside",
        {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}},
        {"aws:sourceip": "203.0.113.255"},
        True,
    ),
    case(
        "IPv4 CIDR outside",
        {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}},
        {"aws:sourceip": "203.0.114.0"},
        False,
    ),
    case(
        "a bare IPv4 address is /32",
        {"IpAddress": {"aws:SourceIp": "203.0.113.5"}},
        {"aws:sourceip": "203.0.113.5"},
        True,
    ),
    case(
        "a bare IPv4 address is only itself",
        {"IpAddress": {"aws:SourceIp": "203.0.113.5"}},
        {"aws:sourceip": "203.0.113.6"},
        False,
    ),
    case(
        "IPv6 CIDR inside",
        {"IpAddress": {"aws:SourceIp": "2001:DB8:1234:5678::/64"}},
        {"aws:sourceip": "2001:db8:1234:5678:abcd::1"},
        True,
    ),
    case(
        "IPv6 CIDR outside",
        {"IpAddress": {"aws:SourceIp": "2001:DB8:1234:5678::/64"}},
        {"aws:sourceip": "2001:db8:1234:5679::1"},
        False,
    ),
    case(
        "a bare IPv6 address is /128",
        {"IpAddress": {"aws:SourceIp": "2001:db8::1"}},
        {"aws:sourceip": "2001:db8::2"},
        False,
    ),
    case("IPv4 and IPv6 mixed, v4 caller", BOTH_FAMILIES, {"aws:sourceip": "203.0.113.9"}, True),
    case(
        "IPv4 and IPv6 mixed, v6 caller",
        BOTH_FAMILIES,
        {"aws:sourceip": "2001:db8:1234:5678::9"},
        True,
    ),
    case("IPv4 and IPv6 mixed, neither", BOTH_FAMILIES, {"aws:sourceip": "198.51.100.1"}, False),
    # Choice: an IPv4-mapped IPv6 address (a dual-stack socket) is its IPv4 caller.
    case(
        "IPv4-mapped IPv6 caller",
        {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}},
        {"aws:sourceip": "::ffff:203.0.113.9"},
        True,
    ),
    case(
        "NotIpAddress outside",
        {"NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"}},
        {"aws:sourceip": "198.51.100.1"},
        True,
    ),
    case(
        "NotIpAddress inside",
        {"NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"}},
        {"aws:sourceip": "203.0.113.1"},
        False,
    ),
    # Through a VPC endpoint there is no aws:SourceIp: IpAddress returns false.
    case(
        "IpAddress without aws:SourceIp",
        {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}},
        ABSENT,
        False,
    ),
    case(
        "a request value that is not an address",
        {"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}},
        {"aws:sourceip": "localhost"},
        False,
    ),
]

# The ARN section's example: StringLike's first * spans "us-east-2:999999999999:store/abc:",
# ArnLike's stops at the colon.
DOC_PATTERN = "arn:aws:someservice:*:111122223333:finance/*"
DOC_VALUE = "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt"
ARN = [
    case(
        "the ARN example under StringLike",
        {"StringLike": {"aws:SourceArn": DOC_PATTERN}},
        {"aws:sourcearn": DOC_VALUE},
        True,
    ),
    case(
        "the ARN example under ArnLike",
        {"ArnLike": {"aws:SourceArn": DOC_PATTERN}},
        {"aws:sourcearn": DOC_VALUE},
        False,
    ),
    case(
        "the ARN example's pattern, a real match",
        {"ArnLike": {"aws:SourceArn": DOC_PATTERN}},
        {"aws:sourcearn": "arn:aws:someservice:us-east-2:111122223333:finance/document.txt"},
        True,
    ),
    case(
        "ArnEquals exact",
        {"ArnEquals": {"aws:SourceArn": "arn:aws:sns:us-east-2:123456789012:TOPIC-ID"}},
        {"aws:sourcearn": "arn:aws:sns:us-east-2:123456789012:TOPIC-ID"},
        True,
    ),
    case(
        "ArnEquals other topic",
        {"ArnEquals": {"aws:SourceArn": "arn:aws:sns:us-east-2:123456789012:TOPIC-ID"}},
        {"aws:sourcearn": "arn:aws:sns:us-east-2:123456789012:OTHER"},
        False,
    ),
    case(
        "ArnEquals is case-sensitive",
        {"ArnEquals": {"aws:SourceArn": "arn:aws:sns:us-east-2:123456789012:TOPIC-ID"}},
        {"aws:sourcearn": "arn:aws:sns:us-east-2:123456789012:topic-id"},
        False,
    ),
    # ArnEquals and ArnLike behave identically: wildcards work in both.
    case(
        "ArnEquals takes wildcards",
        {"ArnEquals": {"aws:PrincipalArn": "arn:aws:iam::*:role/*"}},
        {"aws:principalarn": "arn:aws:iam::111122223333:role/Admin"},
        True,
    ),
    case(
        "ArnLike role pattern",
        {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/*"}},
        {"aws:principalarn": "arn:aws:iam::111122223333:role/Admin"},
        True,
    ),
    case(
        "ArnLike role pattern, a user",
        {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/*"}},
        {"aws:principalarn": "arn:aws:iam::111122223333:user/Admin"},
        False,
    ),
    case(
        "ArnLike * in the account does not span the region",
        {"ArnLike": {"aws:SourceArn": "arn:aws:sns:*:TOPIC"}},
        {"aws:sourcearn": "arn:aws:sns:us-east-1:111122223333:TOPIC"},
        False,
    ),
    case(
        "ArnLike ?",
        {"ArnLike": {"aws:SourceArn": "arn:aws:s3:::bucket-?"}},
        {"aws:sourcearn": "arn:aws:s3:::bucket-1"},
        True,
    ),
    case(
        "ArnLike ? is one character",
        {"ArnLike": {"aws:SourceArn": "arn:aws:s3:::bucket-?"}},
        {"aws:sourcearn": "arn:aws:s3:::bucket-12"},
        False,
    ),
    # The resource is everything after the fifth colon, colons included.
    case(
        "ArnLike resource keeps its colons",
        {"ArnLike": {"aws:SourceArn": "arn:aws:logs:us-east-1:111122223333:log-group:*"}},
        {"aws:sourcearn": "arn:aws:logs:us-east-1:111122223333:log-group:app:log-stream:x"},
        True,
    ),
    case(
        "ArnLike a value that is not an ARN",
        {"ArnLike": {"aws:SourceArn": "arn:aws:s3:::*"}},
        {"aws:sourcearn": "bucket"},
        False,
    ),
    case(
        "ArnNotLike other role",
        {"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/Admin*"}},
        {"aws:principalarn": "arn:aws:iam::111122223333:role/Dev"},
        True,
    ),
    case(
        "ArnNotLike matching role",
        {"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/Admin*"}},
        {"aws:principalarn": "arn:aws:iam::111122223333:role/AdminTeam"},
        False,
    ),
    case(
        "ArnNotEquals same",
        {"ArnNotEquals": {"aws:SourceArn": "arn:aws:sns:us-east-2:123456789012:T"}},
        {"aws:sourcearn": "arn:aws:sns:us-east-2:123456789012:T"},
        False,
    ),
    case(
        "ArnNotEquals other",
        {"ArnNotEquals": {"aws:SourceArn": "arn:aws:sns:us-east-2:123456789012:T"}},
        {"aws:sourcearn": "arn:aws:sns:us-east-2:123456789012:U"},
        True,
    ),
]

# Condition operators, "Important": an absent key makes the values not match, so a positive
# operator is false and a negated one true; ...IfExists makes it true; Null tests presence.
ABSENT_KEYS = [
    case(
        "StringEquals absent",
        {"StringEquals": {"aws:PrincipalTag/job-category": "admin"}},
        ABSENT,
        False,
    ),
    case(
        "StringEquals, None is absent",
        {"StringEquals": {"aws:PrincipalTag/job-category": "a"}},
        {"aws:principaltag/job-category": None},
        False,
    ),
    case("StringNotEquals absent", {"StringNotEquals": {"k": "v"}}, ABSENT, True),
    case(
        "StringNotEqualsIgnoreCase absent", {"StringNotEqualsIgnoreCase": {"k": "v"}}, ABSENT, True
    ),
    case("StringLike absent", {"StringLike": {"k": "*"}}, ABSENT, False),
    case("StringNotLike absent", {"StringNotLike": {"k": "v*"}}, ABSENT, True),
    case("ArnLike absent", {"ArnLike": {"aws:SourceArn": "arn:aws:s3:::*"}}, ABSENT, False),
    case("ArnNotLike absent", {"ArnNotLike": {"aws:SourceArn": "arn:aws:s3:::*"}}, ABSENT, True),
    case(
        "ArnNotEquals absent", {"ArnNotEquals": {"aws:SourceArn": "arn:aws:s3:::b"}}, ABSENT, True
    ),
    case("NotIpAddress absent", {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, ABSENT, True),
    case("NumericEquals absent", {"NumericEquals": {"k": "1"}}, ABSENT, False),
    case("NumericNotEquals absent", {"NumericNotEquals": {"k": "1"}}, ABSENT, True),
    case("DateNotEquals absent", {"DateNotEquals": {"k": "2026-01-01"}}, ABSENT, True),
    case("DateEquals absent", {"DateEquals": {"k": "2026-01-01"}}, ABSENT, False),
    # The IfExists example: StringLikeIfExists on ec2:InstanceType.
    case(
        "StringLikeIfExists absent",
        {"StringLikeIfExists": {"ec2:InstanceType": ["t1.*", "t2.*", "m3.*"]}},
        ABSENT,
        True,
    ),
    case(
        "StringLikeIfExists present, listed",
        {"StringLikeIfExists": {"ec2:InstanceType": ["t1.*", "t2.*", "m3.*"]}},
        {"ec2:instancetype": "t2.micro"},
        True,
    ),
    case(
        "StringLikeIfExists present, unlisted",
        {"StringLikeIfExists": {"ec2:InstanceType": ["t1.*", "t2.*", "m3.*"]}},
        {"ec2:instancetype": "c5.large"},
        False,
    ),
    case("StringNotEqualsIfExists absent", {"StringNotEqualsIfExists": {"k": "v"}}, ABSENT, True),
    case(
        "StringNotEqualsIfExists present, equal",
        {"StringNotEqualsIfExists": {"k": "v"}},
        {"k": "v"},
        False,
    ),
    case("NumericLessThanIfExists absent", {"NumericLessThanIfExists": {"k": "1"}}, ABSENT, True),
    case(
        "NumericLessThanIfExists present", {"NumericLessThanIfExists": {"k": "1"}}, {"k": 2}, False
    ),
    case(
        "DateLessThanIfExists absent", {"DateLessThanIfExists": {"k": "2026-01-01"}}, ABSENT, True
    ),
    case(
        "IpAddressIfExists absent",
        {"IpAddressIfExists": {"aws:SourceIp": "10.0.0.0/8"}},
        ABSENT,
        True,
    ),
    case(
        "ArnLikeIfExists absent",
        {"ArnLikeIfExists": {"aws:SourceArn": "arn:aws:s3:::x"}},
        ABSENT,
        True,
    ),
    case("BinaryEqualsIfExists absent", {"BinaryEqualsIfExists": {"k": "AAAA"}}, ABSENT, True),
    case(
        "another condition still decides",
        {"StringLikeIfExists": {"k": "v*"}, "StringEquals": {"other": "x"}},
        {"other": "y"},
        False,
    ),
    # "Null": {"aws:TokenIssueTime": "true"}: the caller must not use temporary credentials.
    case("Null true, absent", {"Null": {"aws:TokenIssueTime": "true"}}, ABSENT, True),
    case(
        "Null true, present",
        {"Null": {"aws:TokenIssueTime": "true"}},
        {"aws:tokenissuetime": utc(2026, 1, 1)},
        False,
    ),
    case(
        "Null false, present",
        {"Null": {"aws:TokenIssueTime": "false"}},
        {"aws:tokenissuetime": utc(2026, 1, 1)},
        True,
    ),
    case("Null false, absent", {"Null": {"aws:TokenIssueTime": "false"}}, ABSENT, False),
    case("Null JSON true", {"Null": {"aws:ResourceTag/Type": True}}, ABSENT, True),
    case(
        "Null value ignores case",
        {"Null": {"aws:ResourceTag/Type": "TRUE"}},
        {"aws:resourcetag/type": "x"},
        False,
    ),
    # KMS: "Null": {"kms:EncryptionContextKeys": false} requires an encryption context.
    case(
        "Null false, an encryption context",
        {"Null": {"kms:EncryptionContextKeys": False}},
        {"kms:encryptioncontextkeys": ["AppName"]},
        True,
    ),
    case(
        "Null false, no encryption context (an empty set)",
        {"Null": {"kms:EncryptionContextKeys": False}},
        {"kms:encryptioncontextkeys": []},
        False,
    ),
]

# Multi-value conditions: the DynamoDB dynamodb:Attributes examples and their tables.
GET_ITEM = {"ForAllValues:StringEquals": {"dynamodb:Attributes": ["ID", "Message", "Tags"]}}
POST_TABLE = {
    "ForAllValues:StringEquals": {"dynamodb:Attributes": ["PostDateTime", "Message", "Tags"]}
}
PUT_ITEM = {"ForAnyValue:StringEquals": {"dynamodb:Attributes": ["ID", "PostDateTime"]}}
TAGS_NOT = ["DataClass", "Owner"]
SETS = [
    case(
        "ForAllValues, every value listed",
        GET_ITEM,
        {"dynamodb:attributes": ["Message", "Tags"]},
        True,
    ),
    case(
        "ForAllValues, every value listed with ID",
        GET_ITEM,
        {"dynamodb:attributes": ["ID", "Message", "Tags"]},
        True,
    ),
    case(
        "ForAllValues, UserName not listed",
        GET_ITEM,
        {"dynamodb:attributes": ["Message", "UserName"]},
        False,
    ),
    case(
        "ForAllValues, the evaluation table",
        POST_TABLE,
        {"dynamodb:attributes": ["PostDateTime", "UserName"]},
        False,
    ),
    case("ForAllValues, no key in the request", GET_ITEM, ABSENT, True),
    case("ForAllValues, an empty set", GET_ITEM, {"dynamodb:attributes": []}, True),
    case(
        "ForAllValues, an empty string (a null data set)",
        GET_ITEM,
        {"dynamodb:attributes": ""},
        True,
    ),
    case(
        "ForAnyValue, PostDateTime and Message",
        PUT_ITEM,
        {"dynamodb:attributes": ["PostDateTime", "Message"]},
        True,
    ),
    case("ForAnyValue, UserName alone", PUT_ITEM, {"dynamodb:attributes": ["UserName"]}, False),
    case(
        "ForAnyValue, the evaluation table",
        PUT_ITEM,
        {"dynamodb:attributes": ["UserName", "Message", "PostDateTime"]},
        True,
    ),
    case("ForAnyValue, no key in the request", PUT_ITEM, ABSENT, False),
    case("ForAnyValue, an empty set", PUT_ITEM, {"dynamodb:attributes": []}, False),
    case("ForAnyValue, an empty string", PUT_ITEM, {"dynamodb:attributes": ""}, False),
    # KMS conditions-kms: ForAnyValue on kms:EncryptionContextKeys needs AppName among the keys.
    case(
        "ForAnyValue AppName and Project",
        {"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": "AppName"}},
        {"kms:encryptioncontextkeys": ["AppName", "Project"]},
        True,
    ),
    case(
        "ForAnyValue Project only",
        {"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": "AppName"}},
        {"kms:encryptioncontextkeys": ["Project"]},
        False,
    ),
    case(
        "ForAnyValue no encryption context",
        {"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": "AppName"}},
        {"kms:encryptioncontextkeys": []},
        False,
    ),
    case(
        "ForAllValues no encryption context",
        {"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": "AppName"}},
        {"kms:encryptioncontextkeys": []},
        True,
    ),
    case(
        "ForAllValues an unlisted key",
        {"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": "AppName"}},
        {"kms:encryptioncontextkeys": ["AppName", "Project"]},
        False,
    ),
    # Negated with a set qualifier: per request value, "matches none of the policy values".
    case(
        "ForAllValues:StringNotEquals absent",
        {"ForAllValues:StringNotEquals": {"aws:TagKeys": TAGS_NOT}},
        ABSENT,
        True,
    ),
    case(
        "ForAllValues:StringNotEquals all listed",
        {"ForAllValues:StringNotEquals": {"aws:TagKeys": TAGS_NOT}},
        {"aws:tagkeys": ["DataClass", "Owner"]},
        False,
    ),
    case(
        "ForAllValues:StringNotEquals one listed",
        {"ForAllValues:StringNotEquals": {"aws:TagKeys": TAGS_NOT}},
        {"aws:tagkeys": ["DataClass", "Dept"]},
        False,
    ),
    case(
        "ForAllValues:StringNotEquals none listed",
        {"ForAllValues:StringNotEquals": {"aws:TagKeys": TAGS_NOT}},
        {"aws:tagkeys": ["Dept", "SIC"]},
        True,
    ),
    case(
        "ForAnyValue:StringNotEquals absent",
        {"ForAnyValue:StringNotEquals": {"aws:TagKeys": TAGS_NOT}},
        ABSENT,
        False,
    ),
    case(
        "ForAnyValue:StringNotEquals all listed",
        {"ForAnyValue:StringNotEquals": {"aws:TagKeys": TAGS_NOT}},
        {"aws:tagkeys": ["DataClass", "Owner"]},
        False,
    ),
    case(
        "ForAnyValue:StringNotEquals one unlisted",
        {"ForAnyValue:StringNotEquals": {"aws:TagKeys": TAGS_NOT}},
        {"aws:tagkeys": ["Dept", "DataClass"]},
        True,
    ),
    case(
        "ForAllValues:StringLike all created",
        {"ForAllValues:StringLike": {"aws:TagKeys": "Created*"}},
        {"aws:tagkeys": ["CreatedBy", "CreatedAt"]},
        True,
    ),
    case(
        "ForAllValues:StringLike one other",
        {"ForAllValues:StringLike": {"aws:TagKeys": "Created*"}},
        {"aws:tagkeys": ["CreatedBy", "Owner"]},
        False,
    ),
    case(
        "ForAnyValue:StringEqualsIgnoreCase",
        {"ForAnyValue:StringEqualsIgnoreCase": {"aws:TagKeys": "owner"}},
        {"aws:tagkeys": ["Dept", "OWNER"]},
        True,
    ),
    case(
        "ForAllValues:ArnLike",
        {"ForAllValues:ArnLike": {"k": "arn:aws:iam::111122223333:role/*"}},
        {"k": ["arn:aws:iam::111122223333:role/A", "arn:aws:iam::444455556666:role/B"]},
        False,
    ),
    case(
        "ForAnyValue:ArnLike",
        {"ForAnyValue:ArnLike": {"k": "arn:aws:iam::111122223333:role/*"}},
        {"k": ["arn:aws:iam::111122223333:role/A", "arn:aws:iam::444455556666:role/B"]},
        True,
    ),
    case(
        "ForAllValues:NumericLessThan",
        {"ForAllValues:NumericLessThan": {"k": "5"}},
        {"k": ["3", "4"]},
        True,
    ),
    case(
        "ForAllValues:NumericLessThan, one too big",
        {"ForAllValues:NumericLessThan": {"k": "5"}},
        {"k": ["3", "7"]},
        False,
    ),
    case(
        "ForAnyValue:IpAddress",
        {"ForAnyValue:IpAddress": {"k": "10.0.0.0/8"}},
        {"k": ["192.0.2.1", "10.1.2.3"]},
        True,
    ),
    case(
        "ForAllValues:NotIpAddress",
        {"ForAllValues:NotIpAddress": {"k": "10.0.0.0/8"}},
        {"k": ["192.0.2.1", "10.1.2.3"]},
        False,
    ),
    case(
        "ForAnyValue:DateGreaterThan",
        {"ForAnyValue:DateGreaterThan": {"k": "2026-01-01"}},
        {"k": ["2025-01-01T00:00:00Z", "2027-01-01T00:00:00Z"]},
        True,
    ),
    case("ForAnyValue:Bool", {"ForAnyValue:Bool": {"k": "true"}}, {"k": ["false"]}, False),
    # A single-valued request value under a set qualifier is a one-element set.
    case("ForAnyValue, a single value", {"ForAnyValue:StringEquals": {"k": "a"}}, {"k": "a"}, True),
    case(
        "ForAnyValue, a single other value",
        {"ForAnyValue:StringEquals": {"k": "a"}},
        {"k": "b"},
        False,
    ),
    case(
        "ForAllValues, a single other value",
        {"ForAllValues:StringEquals": {"k": "a"}},
        {"k": "b"},
        False,
    ),
    # Choice (the guide says IfExists treats an absent key as true): so under a qualifier too.
    case(
        "ForAnyValue:StringEqualsIfExists absent",
        {"ForAnyValue:StringEqualsIfExists": {"k": "a"}},
        ABSENT,
        True,
    ),
    case(
        "ForAnyValue:StringEqualsIfExists present, unlisted",
        {"ForAnyValue:StringEqualsIfExists": {"k": "a"}},
        {"k": ["b"]},
        False,
    ),
    # Choice: a list under an operator without a qualifier; positive: any value matches,
    # negated: none does (the negation).
    case(
        "plain StringEquals, one of several", {"StringEquals": {"k": "a"}}, {"k": ["b", "a"]}, True
    ),
    case(
        "plain StringEquals, none of several",
        {"StringEquals": {"k": "a"}},
        {"k": ["b", "c"]},
        False,
    ),
    case(
        "plain StringNotEquals, one of several equal",
        {"StringNotEquals": {"k": "a"}},
        {"k": ["b", "a"]},
        False,
    ),
    case(
        "plain StringNotEquals, none equal",
        {"StringNotEquals": {"k": "a"}},
        {"k": ["b", "c"]},
        True,
    ),
]

# Condition key names are case-insensitive ("aws:SourceIP" is "AWS:SourceIp"); values follow
# the operator.
KEY_NAMES = [
    case(
        "aws:SourceIP",
        {"IpAddress": {"aws:SourceIP": "203.0.113.0/24"}},
        {"aws:sourceip": "203.0.113.1"},
        True,
    ),
    case(
        "AWS:SourceIp",
        {"IpAddress": {"AWS:SourceIp": "203.0.113.0/24"}},
        {"aws:sourceip": "198.51.100.1"},
        False,
    ),
    case(
        "AWS:currenttime",
        {"DateGreaterThan": {"AWS:currenttime": "2020-01-01"}},
        {"aws:currenttime": utc(2026, 1, 1)},
        True,
    ),
    case(
        "an encryption context key's name",
        {"StringEquals": {"kms:EncryptionContext:Department": "IT"}},
        {"kms:encryptioncontext:department": "IT"},
        True,
    ),
    case(
        "an encryption context value's case",
        {"StringEquals": {"kms:EncryptionContext:Department": "IT"}},
        {"kms:encryptioncontext:department": "it"},
        False,
    ),
    case(
        "a tag key name",
        {"StringEquals": {"aws:ResourceTag/TagKey1": "Value1"}},
        {"aws:resourcetag/tagkey1": "Value1"},
        True,
    ),
    case(
        "a key named twice in different case, both apply",
        {"StringEquals": {"aws:ResourceTag/EC2": "test1", "aws:ResourceTag/ec2": "test2"}},
        {"aws:resourcetag/ec2": "test1"},
        False,
    ),
]

VARIABLES = [
    # The home-directory example: "s3:prefix": "home/${aws:username}/".
    case(
        "a variable in StringLike",
        {"StringLike": {"s3:prefix": "home/${aws:username}/*"}},
        {"s3:prefix": "home/David/notes"},
        True,
        {"aws:username": "David"},
    ),
    case(
        "a variable in StringLike, someone else's",
        {"StringLike": {"s3:prefix": "home/${aws:username}/*"}},
        {"s3:prefix": "home/Adele/notes"},
        False,
        {"aws:username": "David"},
    ),
    case(
        "variable names ignore case",
        {"StringEquals": {"k": "${AWS:UserName}"}},
        {"k": "David"},
        True,
        {"aws:username": "David"},
    ),
    case(
        "a variable in the SNS endpoint example",
        {
            "StringLike": {"sns:endpoint": "https://example.com/${aws:username}/"},
            "StringEquals": {"sns:Protocol": "https"},
        },
        {"sns:endpoint": "https://example.com/David/", "sns:protocol": "https"},
        True,
        {"aws:username": "David"},
    ),
    case(
        "a variable in ArnLike",
        {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::111122223333:user/${aws:username}"}},
        {"aws:principalarn": "arn:aws:iam::111122223333:user/David"},
        True,
        {"aws:username": "David"},
    ),
    case(
        "a variable in ArnLike, other user",
        {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::111122223333:user/${aws:username}"}},
        {"aws:principalarn": "arn:aws:iam::111122223333:user/Adele"},
        False,
        {"aws:username": "David"},
    ),
    case(
        "a tag variable",
        {"StringEquals": {"aws:ResourceTag/team": "${aws:PrincipalTag/team}"}},
        {"aws:resourcetag/team": "yellow"},
        True,
        {"aws:principaltag/team": "yellow"},
    ),
    # Policy variables with no value: no equal or like value...
    case(
        "no value: StringEquals",
        {"StringEquals": {"aws:ResourceTag/team": "${aws:PrincipalTag/team}"}},
        {"aws:resourcetag/team": ""},
        False,
        {},
    ),
    case(
        "no value: StringLike",
        {"StringLike": {"k": "${aws:username}*"}},
        {"k": "anything"},
        False,
        {},
    ),
    # ...but inverted operators do match against it.
    case(
        "no value: StringNotEquals",
        {"StringNotEquals": {"k": "${aws:username}"}},
        {"k": "anything"},
        True,
        {},
    ),
    case(
        "no value: another listed value still matches",
        {"StringEquals": {"k": ["${aws:username}", "fallback"]}},
        {"k": "fallback"},
        True,
        {},
    ),
    # Defaults: ${aws:PrincipalTag/team, 'company-wide'}.
    case(
        "a default when the tag is missing",
        {"StringEquals": {"k": "bucket-${aws:PrincipalTag/team, 'company-wide'}"}},
        {"k": "bucket-company-wide"},
        True,
        {},
    ),
    case(
        "the tag when it is there",
        {"StringEquals": {"k": "bucket-${aws:PrincipalTag/team, 'company-wide'}"}},
        {"k": "bucket-yellow"},
        True,
        {"aws:principaltag/team": "yellow"},
    ),
    case(
        "not the default when the tag is there",
        {"StringEquals": {"k": "bucket-${aws:PrincipalTag/team, 'company-wide'}"}},
        {"k": "bucket-company-wide"},
        False,
        {"aws:principaltag/team": "yellow"},
    ),
    # Special characters: ${*}, ${?} and ${$} are the literal characters.
    case("${*} is a literal asterisk", {"StringLike": {"k": "a${*}b"}}, {"k": "a*b"}, True, {}),
    case("${*} is not a wildcard", {"StringLike": {"k": "a${*}b"}}, {"k": "axb"}, False, {}),
    case(
        "${?} is a literal question mark", {"StringLike": {"k": "why${?}"}}, {"k": "why?"}, True, {}
    ),
    case("${?} is not a wildcard", {"StringLike": {"k": "why${?}"}}, {"k": "whyx"}, False, {}),
    case(
        "${$} is a literal dollar",
        {"StringEquals": {"k": "${$}{aws:username}"}},
        {"k": "${aws:username}"},
        True,
        {"aws:username": "David"},
    ),
    case(
        "${$} does not start a variable",
        {"StringEquals": {"k": "${$}{aws:username}"}},
        {"k": "David"},
        False,
        {"aws:username": "David"},
    ),
    # Choice (follows from the escapes existing): text a variable brings in is literal.
    case(
        "a variable's * is literal",
        {"StringLike": {"k": "home/${aws:username}"}},
        {"k": "home/bob"},
        False,
        {"aws:username": "b*"},
    ),
    case(
        "a variable's * matches itself",
        {"StringLike": {"k": "home/${aws:username}"}},
        {"k": "home/b*"},
        True,
        {"aws:username": "b*"},
    ),
    # Without Version 2012-10-17 (variables=None) a variable is literal text.
    case(
        "2008-10-17: literal text",
        {"StringEquals": {"k": "${aws:username}"}},
        {"k": "${aws:username}"},
        True,
        None,
    ),
    case(
        "2008-10-17: not substituted",
        {"StringEquals": {"k": "${aws:username}"}},
        {"k": "David"},
        False,
        None,
    ),
]

TABLES = STRING + COMBINING + NUMERIC + DATE + BOOL + BINARY + IP + ARN + ABSENT_KEYS + SETS
TABLES += KEY_NAMES + VARIABLES


@pytest.mark.parametrize(("block", "context", "variables", "expected"), TABLES)
def test_condition(block, context, variables, expected):
    check_condition_block(block)  # every block here is valid grammar
    assert condition_block_matches(block, context, variables) is expected


def test_each_table_has_both_outcomes():
    for table in (
        STRING,
        COMBINING,
        NUMERIC,
        DATE,
        BOOL,
        BINARY,
        IP,
        ARN,
        ABSENT_KEYS,
        SETS,
        KEY_NAMES,
        VARIABLES,
    ):
        assert {param.values[3] for param in table} == {True, False}


def test_a_block_evaluated_twice_gives_the_same_answers():
    block = {"StringEquals": {"k": "${aws:username}"}}
    assert condition_block_matches(block, {"k": "a"}, {"aws:username": "a"})
    assert not condition_block_matches(block, {"k": "a"}, {"aws:username": "b"})
    assert condition_block_matches(block, {"k": "b"}, {"aws:username": "b"})


def test_context_is_read_by_get_only():
    """The evaluator's request context computes keys on demand; only the keys named are read."""

    class Lazy(dict):
        def __init__(self):
            super().__init__()
            self.asked: list[str] = []

        def get(self, key, default=None):
            self.asked.append(key)
            return {"aws:sourceip": "10.0.0.1"}.get(key, default)

        def __iter__(self):
            raise AssertionError("iterated")

    context = Lazy()
    assert condition_block_matches({"IpAddress": {"AWS:SourceIP": "10.0.0.0/8"}}, context)
    assert context.asked == ["aws:sourceip"]


def test_a_pathological_pattern_is_quick():
    import time

    block = {"StringLike": {"k": "*a" * 30 + "b"}}
    started = time.perf_counter()
    assert not condition_block_matches(block, {"k": "a" * 5000})
    assert time.perf_counter() - started < 2


INVALID = [
    # Unknown operators, and IAM's own answer for a miscased one:
    # "MalformedPolicyDocument: Invalid Condition type : stringEquals".
    pytest.param(
        {"stringEquals": {"k": "v"}},
        "Invalid Condition type : stringEquals",
        id="operator names are case-sensitive",
    ),
    pytest.param({"StringEqual": {"k": "v"}}, "StringEqual", id="unknown operator"),
    pytest.param({"ForAnyValues:StringEquals": {"k": "v"}}, "ForAnyValues", id="unknown qualifier"),
    pytest.param({"forallvalues:StringEquals": {"k": "v"}}, "forallvalues", id="qualifier case"),
    pytest.param({"NullIfExists": {"k": "true"}}, "NullIfExists", id="Null has no IfExists"),
    pytest.param(
        {"StringEqualsIfExistsIfExists": {"k": "v"}}, "IfExistsIfExists", id="IfExists twice"
    ),
    pytest.param({"ForAllValues:Null": {"k": "true"}}, "ForAllValues:Null", id="Null in a set"),
    pytest.param(
        {"ForAnyValue:BinaryEquals": {"k": "AAAA"}}, "BinaryEquals", id="BinaryEquals in a set"
    ),
    pytest.param({"IfExists": {"k": "v"}}, "IfExists", id="IfExists alone"),
    # Values of the wrong type for the operator.
    pytest.param({"NumericEquals": {"k": "ten"}}, "k", id="a word for a number"),
    pytest.param({"NumericLessThan": {"k": "${aws:epochtime}"}}, "k", id="no variables in numeric"),
    pytest.param({"NumericEquals": {"k": True}}, "k", id="a boolean for a number"),
    pytest.param({"NumericEquals": {"k": ["1", "x"]}}, "k", id="one bad number in a list"),
    pytest.param({"DateLessThan": {"k": "yesterday"}}, "k", id="a word for a date"),
    pytest.param({"DateLessThan": {"k": "2026-13-01"}}, "k", id="month 13"),
    pytest.param({"DateLessThan": {"k": "2026-02-30T00:00:00Z"}}, "k", id="February 30"),
    pytest.param({"DateLessThan": {"k": "2026-01-01T25:00:00Z"}}, "k", id="hour 25"),
    pytest.param({"DateLessThan": {"k": "2026-01-*"}}, "k", id="no wildcards in dates"),
    pytest.param({"Bool": {"k": "yes"}}, "k", id="yes is not a Bool"),
    pytest.param({"Bool": {"k": 1}}, "k", id="1 is not a Bool"),
    pytest.param({"Null": {"k": "maybe"}}, "k", id="maybe is not Null's"),
    pytest.param({"IpAddress": {"k": "203.0.113.0/33"}}, "k", id="prefix too long"),
    pytest.param({"IpAddress": {"k": "not-an-ip"}}, "k", id="not an address"),
    pytest.param({"IpAddress": {"k": "10.0.0.0/255.0.0.0"}}, "k", id="a netmask, not CIDR"),
    pytest.param({"NotIpAddress": {"k": 10}}, "k", id="a number for an address"),
    pytest.param({"BinaryEquals": {"k": "not base64!"}}, "k", id="not base64"),
    # Shapes that are not the grammar.
    pytest.param([], "", id="a list for the block"),
    pytest.param("StringEquals", "", id="a string for the block"),
    pytest.param({"StringEquals": "v"}, "StringEquals", id="a string for an operator's keys"),
    pytest.param({"StringEquals": ["k", "v"]}, "StringEquals", id="a list for an operator's keys"),
    pytest.param({"StringEquals": {"k": {"v": 1}}}, "k", id="an object for a value"),
    pytest.param({"StringEquals": {"k": [["v"]]}}, "k", id="a nested list"),
    pytest.param({"StringEquals": {"k": None}}, "k", id="null for a value"),
    pytest.param({"StringEquals": {"": "v"}}, "StringEquals", id="an empty key name"),
    pytest.param({"StringEquals": {1: "v"}}, "StringEquals", id="a number for a key name"),
]


@pytest.mark.parametrize(("block", "mentions"), INVALID)
def test_invalid_blocks_are_refused(block, mentions):
    with pytest.raises(ConditionError) as refused:
        check_condition_block(block)
    assert mentions in str(refused.value)
    assert isinstance(refused.value, ValueError)
    with pytest.raises(ConditionError):
        condition_block_matches(block, {"k": "v"}, {})


VALID = [
    pytest.param({"NumericEquals": {"k": ["1", 2, 3.5, "-4", "0.25", "1e3"]}}, id="numbers"),
    pytest.param(
        {
            "DateEquals": {
                "k": [
                    "2026",
                    "2026-01",
                    "2026-01-01",
                    "2026-01-01T00:00Z",
                    "2026-01-01T00:00:00Z",
                    "2026-01-01T00:00:00.123Z",
                    "2026-01-01T00:00:00+05:30",
                    "1767225600",
                    1767225600,
                ]
            }
        },
        id="date formats",
    ),
    pytest.param({"Bool": {"k": ["true", "False", True, "${aws:securetransport}"]}}, id="bools"),
    pytest.param({"Null": {"k": ["true", False]}}, id="nulls"),
    pytest.param(
        {"IpAddress": {"k": ["10.0.0.0/8", "10.0.0.1", "::/0", "2001:DB8::1"]}}, id="addresses"
    ),
    pytest.param({"StringEquals": {"k": [1, True, "v"]}}, id="JSON scalars for strings"),
    pytest.param({"ForAnyValue:StringNotLikeIfExists": {"k": "v"}}, id="qualifier and IfExists"),
    pytest.param({"StringEquals": {}}, id="an operator with no keys"),
    pytest.param({"StringEquals": {"k": []}}, id="a key with no values"),
    pytest.param({"ArnLike": {"k": "*"}}, id="an ARN pattern that is not an ARN"),
]


@pytest.mark.parametrize("block", VALID)
def test_valid_blocks_are_accepted(block):
    check_condition_block(block)


def test_parsed_values_decide():
    """The accepted forms above mean what they say, not merely parse."""
    assert condition_block_matches(
        {"NumericEquals": {"k": "1e3"}}, {"k": 1000}
    ) and not condition_block_matches({"NumericEquals": {"k": "1e3"}}, {"k": 100})
    assert condition_block_matches({"DateEquals": {"k": "2026"}}, {"k": utc(2026, 1, 1)})
    assert not condition_block_matches({"DateEquals": {"k": "2026-02"}}, {"k": utc(2026, 1, 1)})
    assert condition_block_matches({"StringEquals": {"k": True}}, {"k": "true"})
    assert condition_block_matches({"StringEquals": {"k": 1}}, {"k": "1"})
    assert not condition_block_matches({"StringEquals": {"k": []}}, {"k": "v"})
    assert condition_block_matches({"StringNotEquals": {"k": []}}, {"k": "v"})
    assert not condition_block_matches({"ArnLike": {"k": "*"}}, {"k": "arn:aws:s3:::b"})
