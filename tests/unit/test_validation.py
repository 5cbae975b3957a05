"""Validation of request bodies against botocore's real KMS service model, in AWS's words."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openkms.errors import KmsError, SerializationException, ValidationException
from openkms.model import load_kms_model, validate_input

MODEL = load_kms_model()
KEY = "1234abcd-12ab-34cd-56ef-1234567890ab"


def valid(operation: str, body: Any) -> dict[str, Any]:
    return validate_input(MODEL, operation, body)


def violations(operation: str, body: Any) -> list[str]:
    with pytest.raises(ValidationException) as info:
        validate_input(MODEL, operation, body)
    message = info.value.message or ""
    head, _, rest = message.partition(": ")
    found = rest.split("; ")
    noun = "error" if len(found) == 1 else "errors"
    assert head == f"{len(found)} validation {noun} detected"
    return found


def violation(operation: str, body: Any) -> str:
    found = violations(operation, body)
    assert len(found) == 1, found
    return found[0]


def serialization(operation: str, body: Any) -> str | None:
    with pytest.raises(SerializationException) as info:
        validate_input(MODEL, operation, body)
    return info.value.message


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# -- the model ----------------------------------------------------------------------------


def test_the_model_is_botocores_kms_model():
    assert MODEL.target_prefix == "TrentService"
    assert MODEL.api_version == "2014-11-01"
    for operation in ("Encrypt", "Decrypt", "CreateKey", "Sign", "GenerateMac"):
        assert MODEL.has_operation(operation)
    assert not MODEL.has_operation("encrypt")
    assert MODEL.shape("PlaintextType") == {
        **MODEL.shape("PlaintextType"),
        "type": "blob",
        "min": 1,
        "max": 4096,
        "sensitive": True,
    }


# -- accepted bodies ----------------------------------------------------------------------


def test_a_valid_body_comes_back_with_blobs_decoded():
    body = {
        "KeyId": KEY,
        "Plaintext": b64(b"\x00secret\xff"),
        "EncryptionContext": {"a": "b"},
        "GrantTokens": ["token"],
        "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
        "DryRun": False,
    }
    assert valid("Encrypt", body) == {**body, "Plaintext": b"\x00secret\xff"}


def test_nulls_and_unknown_members_are_dropped():
    body = {"KeyId": KEY, "Plaintext": b64(b"p"), "EncryptionContext": None, "Future": {"x": 1}}
    assert valid("Encrypt", body) == {"KeyId": KEY, "Plaintext": b"p"}


def test_an_operation_without_required_members_accepts_nothing():
    assert valid("ListKeys", {}) == {}
    assert valid("GenerateRandom", None) == {}
    assert valid("ListAliases", {"Limit": 1000, "Marker": "x"}) == {"Limit": 1000, "Marker": "x"}


def test_an_integral_float_is_an_integer():
    assert valid("GenerateRandom", {"NumberOfBytes": 32.0}) == {"NumberOfBytes": 32}
    assert isinstance(valid("GenerateRandom", {"NumberOfBytes": 32.0})["NumberOfBytes"], int)


def test_timestamps_are_epoch_seconds():
    body = {"KeyId": KEY, "ImportToken": b64(b"t"), "EncryptedKeyMaterial": b64(b"m")}
    body["ValidTo"] = 1_800_000_000.5
    result = valid("ImportKeyMaterial", body)
    assert result["ValidTo"] == dt.datetime.fromtimestamp(1_800_000_000.5, dt.UTC)
    assert serialization("ImportKeyMaterial", {**body, "ValidTo": "tomorrow"}) == (
        "STRING_VALUE can not be converted to a Date"
    )


def test_nested_structures_lists_and_maps():
    body = {
        "Tags": [{"TagKey": "a", "TagValue": ""}, {"TagKey": "b", "TagValue": "2"}],
        "Description": "d",
    }
    assert valid("CreateKey", body) == body
    grant = {
        "KeyId": KEY,
        "GranteePrincipal": "arn:aws:iam::111122223333:role/r",
        "Operations": ["Encrypt", "Decrypt"],
        "Constraints": {"EncryptionContextSubset": {"k": "v"}},
    }
    assert valid("CreateGrant", grant) == grant


# -- violations ---------------------------------------------------------------------------


def test_required_members():
    assert set(violations("Encrypt", {})) == {
        "Value null at 'keyId' failed to satisfy constraint: Member must not be null",
        # Plaintext is sensitive: not even "null" is shown for it.
        "Value at 'plaintext' failed to satisfy constraint: Member must not be null",
    }
    assert violation("DescribeKey", {"KeyId": None}) == (
        "Value null at 'keyId' failed to satisfy constraint: Member must not be null"
    )


@pytest.mark.parametrize(
    ("operation", "body", "expected"),
    [
        (
            "DescribeKey",
            {"KeyId": ""},
            "Value '' at 'keyId' failed to satisfy constraint: "
            "Member must have length greater than or equal to 1",
        ),
        (
            "DescribeKey",
            {"KeyId": "k" * 2049},
            f"Value '{'k' * 2049}' at 'keyId' failed to satisfy constraint: "
            "Member must have length less than or equal to 2048",
        ),
        (
            "Encrypt",
            {"KeyId": KEY, "Plaintext": b64(b"x" * 4097)},
            "Value at 'plaintext' failed to satisfy constraint: "
            "Member must have length less than or equal to 4096",
        ),
        (
            "Encrypt",
            {"KeyId": KEY, "Plaintext": ""},
            "Value at 'plaintext' failed to satisfy constraint: "
            "Member must have length greater than or equal to 1",
        ),
        (
            "Decrypt",
            {"CiphertextBlob": b64(b"c" * 6145)},
            "Value at 'ciphertextBlob' failed to satisfy constraint: "
            "Member must have length less than or equal to 6144",
        ),
        (
            "GenerateRandom",
            {"NumberOfBytes": 0},
            "Value '0' at 'numberOfBytes' failed to satisfy constraint: "
            "Member must have value greater than or equal to 1",
        ),
        (
            "GenerateRandom",
            {"NumberOfBytes": 1025},
            "Value '1025' at 'numberOfBytes' failed to satisfy constraint: "
            "Member must have value less than or equal to 1024",
        ),
        (
            "GenerateDataKey",
            {"KeyId": KEY, "KeySpec": "AES_257"},
            "Value 'AES_257' at 'keySpec' failed to satisfy constraint: "
            "Member must satisfy enum value set: [AES_256, AES_128]",
        ),
        (
            "CreateAlias",
            {"AliasName": "alias/a b", "TargetKeyId": KEY},
            "Value 'alias/a b' at 'aliasName' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$",
        ),
        (
            "ListKeys",
            {"Limit": 1001},
            "Value '1001' at 'limit' failed to satisfy constraint: "
            "Member must have value less than or equal to 1000",
        ),
        (
            "ListKeys",
            {"Marker": ""},
            "Value '' at 'marker' failed to satisfy constraint: "
            "Member must have length greater than or equal to 1",
        ),
        (
            "Encrypt",
            {"KeyId": KEY, "Plaintext": "AA==", "GrantTokens": ["t"] * 11},
            "Value at 'grantTokens' failed to satisfy constraint: "
            "Member must have length less than or equal to 10",
        ),
        (
            "Encrypt",
            {"KeyId": KEY, "Plaintext": "AA==", "GrantTokens": [""]},
            "Value '' at 'grantTokens.1.member' failed to satisfy constraint: "
            "Member must have length greater than or equal to 1",
        ),
        (
            "CreateKey",
            {"Tags": [{"TagKey": "ok", "TagValue": "v"}, {"TagKey": "k" * 129, "TagValue": "v"}]},
            f"Value '{'k' * 129}' at 'tags.2.member.tagKey' failed to satisfy constraint: "
            "Member must have length less than or equal to 128",
        ),
        (
            "CreateKey",
            {"Tags": [{"TagKey": "k"}]},
            "Value null at 'tags.1.member.tagValue' failed to satisfy constraint: "
            "Member must not be null",
        ),
        (
            "CreateGrant",
            {
                "KeyId": KEY,
                "GranteePrincipal": "p",
                "Operations": ["Encrypt"],
                "Constraints": {"EncryptionContextSubset": {}},
                "Name": "bad name",
            },
            "Value 'bad name' at 'name' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$",
        ),
    ],
)
def test_one_violation_in_awss_words(operation, body, expected):
    assert violation(operation, body) == expected


def test_every_violation_is_reported():
    found = violations(
        "CreateKey",
        {
            "Description": "d" * 8193,
            "KeyUsage": "SHRED",
            "Tags": [{"TagKey": ""}],
        },
    )
    assert len(found) == 4
    assert any(v.startswith("Value null at 'tags.1.member.tagValue'") for v in found)
    assert any(v.startswith("Value '' at 'tags.1.member.tagKey'") for v in found)
    assert any(v.startswith("Value 'SHRED' at 'keyUsage'") for v in found)
    assert any("at 'description'" in v and "less than or equal to 8192" in v for v in found)


def test_one_member_can_break_several_constraints():
    found = violations("CreateAlias", {"AliasName": "", "TargetKeyId": KEY})
    assert set(found) == {
        "Value '' at 'aliasName' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1",
        "Value '' at 'aliasName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$",
    }


def test_patterns_match_whole_values_and_ascii_only():
    assert valid("CreateAlias", {"AliasName": "alias/ok_1-2:3", "TargetKeyId": KEY})
    for name in ("alias/x\n", "alias/é", "alias/x y", "alias/١"):
        violation("CreateAlias", {"AliasName": name, "TargetKeyId": KEY})


# -- type mismatches ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "body", "message"),
    [
        (
            "GenerateRandom",
            {"NumberOfBytes": "5"},
            "STRING_VALUE can not be converted to an Integer",
        ),
        (
            "GenerateRandom",
            {"NumberOfBytes": True},
            "TRUE_VALUE can not be converted to an Integer",
        ),
        (
            "GenerateRandom",
            {"NumberOfBytes": 1.5},
            "NUMBER_VALUE can not be converted to an Integer",
        ),
        ("GenerateRandom", {"NumberOfBytes": [5]}, "Start of list found where not expected"),
        ("GenerateRandom", {"NumberOfBytes": 2**31}, None),
        ("GenerateRandom", {"NumberOfBytes": -(2**31) - 1}, None),
        ("DescribeKey", {"KeyId": 7}, "NUMBER_VALUE can not be converted to a String"),
        ("DescribeKey", {"KeyId": False}, "FALSE_VALUE can not be converted to a String"),
        ("DescribeKey", {"KeyId": {"a": 1}}, "Start of structure or map found where not expected."),
        ("Encrypt", {"KeyId": KEY, "Plaintext": 1}, "NUMBER_VALUE can not be converted to a Blob"),
        (
            "Encrypt",
            {"KeyId": KEY, "Plaintext": "AA==", "DryRun": "no"},
            "STRING_VALUE can not be converted to an Boolean",
        ),
        (
            "Encrypt",
            {"KeyId": KEY, "Plaintext": "AA==", "DryRun": 0},
            "NUMBER_VALUE can not be converted to an Boolean",
        ),
        (
            "Encrypt",
            {"KeyId": KEY, "Plaintext": "AA==", "GrantTokens": "t"},
            "Expected list or null",
        ),
        ("Encrypt", {"KeyId": KEY, "Plaintext": "AA==", "GrantTokens": [None]}, None),
        (
            "Encrypt",
            {"KeyId": KEY, "Plaintext": "AA==", "EncryptionContext": []},
            "Start of list found where not expected",
        ),
        (
            "Encrypt",
            {"KeyId": KEY, "Plaintext": "AA==", "EncryptionContext": "x"},
            "Expected map or null",
        ),
        (
            "Encrypt",
            {"KeyId": KEY, "Plaintext": "AA==", "EncryptionContext": {"k": 1}},
            "NUMBER_VALUE can not be converted to a String",
        ),
        ("Decrypt", {"CiphertextBlob": "AA==", "Recipient": "r"}, "Expected null"),
        ("CreateKey", {"Tags": [None]}, None),
        ("CreateKey", {"Tags": ["tag"]}, "Expected null"),
    ],
)
def test_a_value_of_the_wrong_json_type(operation, body, message):
    assert serialization(operation, body) == message


@pytest.mark.parametrize(
    "value", ["!!!!", "YQ=", "YQ==YQ==", "YQ==\n", "Y Q==", "Y", "YQ=a", "YQ-_"]
)
def test_a_blob_that_is_not_base64(value):
    message = serialization("Encrypt", {"KeyId": KEY, "Plaintext": value})
    assert message == "Could not decode the base64-encoded value of 'plaintext'"


@pytest.mark.parametrize(
    ("value", "data"),
    [("YQ==", b"a"), ("YQ", b"a"), ("YWI=", b"ab"), ("YWI", b"ab"), ("YWJj", b"abc")],
)
def test_base64_padding_may_be_left_off(value, data):
    assert valid("Encrypt", {"KeyId": KEY, "Plaintext": value})["Plaintext"] == data


def test_a_type_mismatch_wins_over_constraint_violations():
    # AWS reads the whole body before it validates: a body it cannot read is a
    # SerializationException even where other members also break constraints.
    serialization("Encrypt", {"KeyId": "", "Plaintext": 5})


# -- properties ---------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=1, max_size=4096))
def test_any_plaintext_within_limits_round_trips(data):
    assert valid("Encrypt", {"KeyId": KEY, "Plaintext": b64(data)})["Plaintext"] == data


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=2048))
def test_any_key_id_within_limits_is_accepted(key_id):
    assert valid("DescribeKey", {"KeyId": key_id}) == {"KeyId": key_id}


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=-(2**31), max_value=2**31 - 1))
def test_integers_are_checked_against_their_range(number):
    if 1 <= number <= 1024:
        assert valid("GenerateRandom", {"NumberOfBytes": number}) == {"NumberOfBytes": number}
    else:
        bound = "greater than or equal to 1" if number < 1 else "less than or equal to 1024"
        assert violation("GenerateRandom", {"NumberOfBytes": number}) == (
            f"Value '{number}' at 'numberOfBytes' failed to satisfy constraint: "
            f"Member must have value {bound}"
        )


@settings(max_examples=100, deadline=None)
# "; " separates violations in the message, so a value holding it cannot be told apart.
@given(st.text(max_size=20).filter(lambda v: "; " not in v))
def test_enums_accept_exactly_their_members(value):
    allowed = MODEL.shape("DataKeySpec")["enum"]
    body = {"KeyId": KEY, "KeySpec": value}
    if value in allowed:
        assert valid("GenerateDataKey", body)["KeySpec"] == value
    else:
        assert violation("GenerateDataKey", body).endswith(
            "Member must satisfy enum value set: [AES_256, AES_128]"
        )


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=10)
    | st.sampled_from(["AA==", "SYMMETRIC_DEFAULT", KEY]),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=10,
)


@st.composite
def _bodies(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    operation = draw(st.sampled_from(sorted(MODEL.operations)))
    shape = MODEL.input_shape_name(operation)
    members = sorted(MODEL.shape(shape)["members"]) if shape else []
    chosen = draw(st.lists(st.sampled_from(members), unique=True)) if members else []
    return operation, {name: draw(_json) for name in chosen}


@settings(max_examples=500, deadline=None)
@given(_bodies())
def test_every_operation_answers_any_body_with_a_value_or_an_aws_error(request):
    operation, body = request
    try:
        result = validate_input(MODEL, operation, body)
    except KmsError as error:
        assert error.code in ("ValidationException", "SerializationException")
        assert error.status == 400
    else:
        assert set(result) <= set(body)


@pytest.mark.parametrize("operation", sorted(MODEL.operations))
def test_every_operation_validates_an_empty_body(operation):
    try:
        validate_input(MODEL, operation, {})
    except ValidationException as error:
        assert "Member must not be null" in (error.message or "")
