"""Grants, decided in process: what a grant gives its grantee and nothing more, its
constraints, tokens, who may retire and revoke it, the grant condition keys, and AWS's errors
for every bad input (each leaving the grants as they were)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from openkms.authz.grant_tokens import issue_token
from openkms.errors import KmsError
from openkms.iam.roles import create_role, delete_role
from tests.inprocess.conftest import (
    ACCOUNT_ID,
    OTHER_ACCOUNT_ID,
    Kms,
    assert_error,
    iam_user,
    other_account_root,
)

ROOT = f"arn:aws:iam::{ACCOUNT_ID}:root"
ADMIN = {"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "kms:*", "Resource": "*"}


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _code(call: Any) -> KmsError:
    with pytest.raises(KmsError) as caught:
        call()
    return caught.value


def _grant(kms: Kms, key_id: str, grantee: str, operations: list[str], **extra: Any) -> dict:
    return kms.call(
        "CreateGrant", KeyId=key_id, GranteePrincipal=grantee, Operations=operations, **extra
    )


def _grants(kms: Kms, key_id: str) -> list[dict]:
    return kms.call("ListGrants", KeyId=key_id)["Grants"]


# -- what a grant gives -------------------------------------------------------------------


def test_a_grant_gives_its_grantee_its_operations_and_nothing_else(kms: Kms) -> None:
    user = iam_user(kms)  # no identity policy: only the grant can let it in
    key, other_key = kms.create_key()["KeyId"], kms.create_key()["KeyId"]
    refused = _code(lambda: user.call("Encrypt", KeyId=key, Plaintext=b"x"))
    assert refused.code == "AccessDeniedException"

    _grant(kms, key, user.principal.arn, ["Encrypt"])
    blob = user.call("Encrypt", KeyId=key, Plaintext=b"x")["CiphertextBlob"]
    # Not another operation, not another key, not another principal.
    assert _code(lambda: user.call("Decrypt", CiphertextBlob=blob)).code == "AccessDeniedException"
    assert (
        _code(lambda: user.call("Encrypt", KeyId=other_key, Plaintext=b"x")).code
        == "AccessDeniedException"
    )
    stranger = iam_user(kms)
    assert (
        _code(lambda: stranger.call("Encrypt", KeyId=key, Plaintext=b"x")).code
        == "AccessDeniedException"
    )
    assert _code(lambda: user.call("DisableKey", KeyId=key)).code == "AccessDeniedException"


def test_an_explicit_deny_wins_over_a_grant(kms: Kms) -> None:
    user = iam_user(kms)
    key = kms.create_key()["KeyId"]
    _grant(kms, key, user.principal.arn, ["Encrypt"])
    user.call("Encrypt", KeyId=key, Plaintext=b"x")
    deny = {
        "Effect": "Deny",
        "Principal": {"AWS": user.principal.arn},
        "Action": "kms:Encrypt",
        "Resource": "*",
    }
    kms.call("PutKeyPolicy", KeyId=key, Policy=_policy(ADMIN, deny))
    error = _code(lambda: user.call("Encrypt", KeyId=key, Plaintext=b"x"))
    assert error.code == "AccessDeniedException"
    assert error.message.endswith("with an explicit deny in a resource-based policy")

    # An identity-based Deny wins too.
    denied_user = iam_user(
        kms, _policy({"Effect": "Deny", "Action": "kms:Encrypt", "Resource": "*"})
    )
    key2 = kms.create_key()["KeyId"]
    _grant(kms, key2, denied_user.principal.arn, ["Encrypt"])
    error = _code(lambda: denied_user.call("Encrypt", KeyId=key2, Plaintext=b"x"))
    assert error.message.endswith("with an explicit deny in an identity-based policy")


def test_a_grant_for_another_account_is_used_by_key_arn(runtime: Any, kms: Kms) -> None:
    other = other_account_root(runtime)
    key = kms.create_key()
    _grant(kms, key["KeyId"], f"arn:aws:iam::{OTHER_ACCOUNT_ID}:root", ["Encrypt", "DescribeKey"])
    other.call("Encrypt", KeyId=key["Arn"], Plaintext=b"x")
    other.call("DescribeKey", KeyId=key["Arn"])
    assert _code(lambda: other.call("DisableKey", KeyId=key["Arn"])).code == "AccessDeniedException"


def test_an_account_id_as_grantee_means_the_account(kms: Kms) -> None:
    key = kms.create_key()["KeyId"]
    _grant(kms, key, OTHER_ACCOUNT_ID, ["Encrypt"])
    (grant,) = _grants(kms, key)
    assert grant["GranteePrincipal"] == f"arn:aws:iam::{OTHER_ACCOUNT_ID}:root"


# -- constraints --------------------------------------------------------------------------


def test_encryption_context_subset_and_equals(kms: Kms) -> None:
    subset_user, equals_user = iam_user(kms), iam_user(kms)
    key = kms.create_key()["KeyId"]
    _grant(
        kms,
        key,
        subset_user.principal.arn,
        ["Encrypt", "Decrypt"],
        Constraints={"EncryptionContextSubset": {"dept": "a"}},
    )
    _grant(
        kms,
        key,
        equals_user.principal.arn,
        ["Encrypt"],
        Constraints={"EncryptionContextEquals": {"dept": "a"}},
    )

    def encrypt(user: Kms, context: dict[str, str]) -> Any:
        return lambda: user.call("Encrypt", KeyId=key, Plaintext=b"x", EncryptionContext=context)

    blob = encrypt(subset_user, {"dept": "a", "extra": "1"})()["CiphertextBlob"]
    subset_user.call("Decrypt", CiphertextBlob=blob, EncryptionContext={"dept": "a", "extra": "1"})
    for context in ({}, {"dept": "b"}, {"Dept": "a"}, {"dept": "A"}):
        assert _code(encrypt(subset_user, context)).code == "AccessDeniedException", context
    encrypt(equals_user, {"dept": "a"})()
    for context in ({}, {"dept": "a", "extra": "1"}, {"dept": "b"}):
        assert _code(encrypt(equals_user, context)).code == "AccessDeniedException", context


def test_re_encrypt_checks_each_side_s_own_context(kms: Kms) -> None:
    user = iam_user(kms)
    source, destination = kms.create_key()["KeyId"], kms.create_key()["KeyId"]
    _grant(
        kms,
        source,
        user.principal.arn,
        ["ReEncryptFrom"],
        Constraints={"EncryptionContextEquals": {"side": "from"}},
    )
    _grant(
        kms,
        destination,
        user.principal.arn,
        ["ReEncryptTo"],
        Constraints={"EncryptionContextEquals": {"side": "to"}},
    )
    blob = kms.call("Encrypt", KeyId=source, Plaintext=b"x", EncryptionContext={"side": "from"})[
        "CiphertextBlob"
    ]
    user.call(
        "ReEncrypt",
        CiphertextBlob=blob,
        SourceEncryptionContext={"side": "from"},
        DestinationKeyId=destination,
        DestinationEncryptionContext={"side": "to"},
    )
    error = _code(
        lambda: user.call(
            "ReEncrypt",
            CiphertextBlob=blob,
            SourceEncryptionContext={"side": "from"},
            DestinationKeyId=destination,
            DestinationEncryptionContext={"side": "from"},
        )
    )
    assert error.code == "AccessDeniedException"
    assert "kms:ReEncryptTo" in error.message


def test_constraints_are_refused_for_keys_without_encryption_context(kms: Kms) -> None:
    user = iam_user(kms)
    key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyId"]
    error = _code(
        lambda: _grant(
            kms,
            key,
            user.principal.arn,
            ["Sign"],
            Constraints={"EncryptionContextSubset": {"a": "b"}},
        )
    )
    assert error.code == "ValidationException"
    assert _grants(kms, key) == []


SOURCE = f"arn:aws:s3:::bucket-of-{ACCOUNT_ID}"
SOURCE_ARN = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT_ID}:trail/audit"


def test_a_source_arn_constraint_admits_only_requests_on_behalf_of_that_resource(
    kms: Kms,
) -> None:
    """AWS: as aws:SourceArn in the grant. Only an AWS service acting for a resource sends
    aws:SourceArn, and none calls openkms: such a grant gives its grantee nothing but
    RetireGrant (which the constraint does not apply to)."""
    user, plain_user = iam_user(kms), iam_user(kms)
    key = kms.create_key()["KeyId"]
    operations = ["Encrypt", "DescribeKey", "CreateGrant", "RetireGrant"]
    made = _grant(kms, key, user.principal.arn, operations, Constraints={"SourceArn": SOURCE_ARN})
    _grant(kms, key, plain_user.principal.arn, operations)
    (entry,) = [g for g in _grants(kms, key) if g["GrantId"] == made["GrantId"]]
    assert entry["Constraints"] == {"SourceArn": SOURCE_ARN}

    plain_user.call("Encrypt", KeyId=key, Plaintext=b"x")
    plain_user.call("DescribeKey", KeyId=key)
    for call in (
        lambda: user.call("Encrypt", KeyId=key, Plaintext=b"x", GrantTokens=[made["GrantToken"]]),
        lambda: user.call("DescribeKey", KeyId=key),
        lambda: _grant(user, key, plain_user.principal.arn, ["Encrypt"]),
    ):
        assert _code(call).code == "AccessDeniedException"
    user.call("RetireGrant", KeyId=key, GrantId=made["GrantId"])
    assert [g["GranteePrincipal"] for g in _grants(kms, key)] == [plain_user.principal.arn]


def test_a_source_arn_constraint_suits_every_key_and_joins_a_context_constraint(
    kms: Kms,
) -> None:
    signing = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyId"]
    _grant(kms, signing, ROOT, ["Sign", "Verify"], Constraints={"SourceArn": SOURCE_ARN})
    key = kms.create_key()["KeyId"]
    both = {"SourceArn": SOURCE_ARN, "EncryptionContextSubset": {"a": "b"}}
    _grant(kms, key, ROOT, ["Encrypt"], Constraints=both)
    (entry,) = _grants(kms, key)
    assert entry["Constraints"] == both
    # The model's pattern: an ARN with an account.
    error = _code(lambda: _grant(kms, key, ROOT, ["Encrypt"], Constraints={"SourceArn": SOURCE}))
    assert error.code == "ValidationException"
    assert "sourceArn" in error.message
    assert len(_grants(kms, key)) == 1


# -- creating a grant from a grant ----------------------------------------------------------


def test_a_grant_passes_on_at_most_what_it_gives(kms: Kms) -> None:
    middle, last = iam_user(kms), iam_user(kms)
    key = kms.create_key()["KeyId"]
    _grant(
        kms,
        key,
        middle.principal.arn,
        ["Encrypt", "CreateGrant"],
        Constraints={"EncryptionContextSubset": {"a": "1"}},
    )

    def pass_on(operations: list[str], constraints: dict | None) -> Any:
        extra = {"Constraints": constraints} if constraints is not None else {}
        return lambda: _grant(middle, key, last.principal.arn, operations, **extra)

    # More operations, or looser constraints, than the grant has: refused.
    assert (
        _code(pass_on(["Encrypt", "Decrypt"], {"EncryptionContextSubset": {"a": "1"}})).code
        == "AccessDeniedException"
    )
    assert _code(pass_on(["Encrypt"], None)).code == "AccessDeniedException"
    assert (
        _code(pass_on(["Encrypt"], {"EncryptionContextSubset": {"a": "2"}})).code
        == "AccessDeniedException"
    )
    # As strict or stricter: allowed.
    pass_on(["Encrypt"], {"EncryptionContextSubset": {"a": "1", "b": "2"}})()
    pass_on(["Encrypt"], {"EncryptionContextEquals": {"a": "1"}})()
    last.call("Encrypt", KeyId=key, Plaintext=b"x", EncryptionContext={"a": "1"})
    assert len(_grants(kms, key)) == 3


# -- tokens ----------------------------------------------------------------------------------


def test_grant_tokens_must_be_tokens(kms: Kms) -> None:
    user = iam_user(kms)
    key = kms.create_key()["KeyId"]
    token = _grant(kms, key, user.principal.arn, ["Encrypt"])["GrantToken"]
    user.call("Encrypt", KeyId=key, Plaintext=b"x", GrantTokens=[token])
    for bad in ("garbage", token[:-2] + ("AA" if not token.endswith("AA") else "BB"), "a" * 200):
        error = _code(
            lambda bad=bad: user.call("Encrypt", KeyId=key, Plaintext=b"x", GrantTokens=[bad])
        )
        assert_error(error, "InvalidGrantTokenException", "Invalid grant token.")
    error = _code(lambda: user.call("Encrypt", KeyId=key, Plaintext=b"x", GrantTokens=[token] * 11))
    assert error.code == "ValidationException"


def test_a_token_of_a_grant_that_does_not_exist_gives_nothing(kms: Kms) -> None:
    user = iam_user(kms)
    key = kms.create_key()["KeyId"]
    made_up = issue_token("ab" * 32)
    error = _code(lambda: user.call("Encrypt", KeyId=key, Plaintext=b"x", GrantTokens=[made_up]))
    assert error.code == "AccessDeniedException"


def test_the_same_name_and_request_is_the_same_grant(kms: Kms) -> None:
    user = iam_user(kms)
    key = kms.create_key()["KeyId"]
    first = _grant(kms, key, user.principal.arn, ["Encrypt"], Name="app")
    again = _grant(kms, key, user.principal.arn, ["Encrypt"], Name="app")
    assert again["GrantId"] == first["GrantId"]
    assert again["GrantToken"] != first["GrantToken"]
    other = _grant(kms, key, user.principal.arn, ["Encrypt", "Decrypt"], Name="app")
    assert other["GrantId"] != first["GrantId"]
    assert len(_grants(kms, key)) == 2


# -- bad input -------------------------------------------------------------------------------


_EIGHT_PAIRS = {f"k{i}": "v" for i in range(8)}
_NOT_A_PRINCIPAL = "ARN does not refer to a valid principal: "


@pytest.mark.parametrize(
    ("params", "code", "message"),
    [
        (
            {"GranteePrincipal": "not-an-arn", "Operations": ["Encrypt"]},
            "InvalidArnException",
            _NOT_A_PRINCIPAL + "not-an-arn",
        ),
        (
            {"GranteePrincipal": "arn:aws:s3:::bucket", "Operations": ["Encrypt"]},
            "InvalidArnException",
            _NOT_A_PRINCIPAL + "arn:aws:s3:::bucket",
        ),
        ({"Operations": ["Encrypt"]}, "ValidationException", "GranteePrincipal is required."),
        (
            {"GranteePrincipal": ROOT, "Operations": []},
            "ValidationException",
            "The list of grant operations must not be empty.",
        ),
        (
            {"GranteePrincipal": ROOT, "Operations": ["CreateGrant"]},
            "ValidationException",
            "Grants must not contain only the CreateGrant operation.",
        ),
        (
            {
                "GranteePrincipal": ROOT,
                "Operations": ["Encrypt"],
                "Constraints": {
                    "EncryptionContextEquals": {"a": "b"},
                    "EncryptionContextSubset": {"a": "b"},
                },
            },
            "ValidationException",
            "More than one constraint supplied",
        ),
        ({"GranteePrincipal": ROOT, "Operations": ["Sign"]}, "ValidationException", None),
        ({"GranteePrincipal": ROOT, "Operations": ["Nonsense"]}, "ValidationException", None),
        (
            {"GranteePrincipal": ROOT, "Operations": ["Encrypt"], "RetiringPrincipal": "x"},
            "InvalidArnException",
            _NOT_A_PRINCIPAL + "x",
        ),
        ({"GranteePrincipal": ROOT, "Operations": ["Encrypt"], "Name": "a b"}, None, None),
        (
            {
                "GranteeServicePrincipal": "s3.amazonaws.com",
                "Operations": ["Encrypt"],
            },
            "UnsupportedOperationException",
            None,
        ),
        # Principals that do not exist, in this account, in another known one, or in none.
        *(
            (
                {"GranteePrincipal": arn, "Operations": ["Encrypt"]},
                "InvalidArnException",
                _NOT_A_PRINCIPAL + arn,
            )
            for arn in (
                f"arn:aws:iam::{ACCOUNT_ID}:user/nobody",
                f"arn:aws:iam::{ACCOUNT_ID}:user/path/nobody",
                f"arn:aws:iam::{ACCOUNT_ID}:role/nobody",
                f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/nobody/session",
                f"arn:aws:iam::{OTHER_ACCOUNT_ID}:user/nobody",
                "arn:aws:iam::999988887777:role/nobody",
                "arn:aws:sts::999988887777:federated-user/nobody",
            )
        ),
        (
            {
                "GranteePrincipal": ROOT,
                "RetiringPrincipal": f"arn:aws:iam::{ACCOUNT_ID}:role/nobody",
                "Operations": ["Encrypt"],
            },
            "InvalidArnException",
            _NOT_A_PRINCIPAL + f"arn:aws:iam::{ACCOUNT_ID}:role/nobody",
        ),
        # AWS's constraint limits: 8 pairs, 384 characters in all.
        (
            {
                "GranteePrincipal": ROOT,
                "Operations": ["Encrypt"],
                "Constraints": {"EncryptionContextSubset": {**_EIGHT_PAIRS, "k8": "v"}},
            },
            "ValidationException",
            "EncryptionContextSubset can have at most 8 encryption context pairs.",
        ),
        (
            {
                "GranteePrincipal": ROOT,
                "Operations": ["Encrypt"],
                "Constraints": {"EncryptionContextEquals": {"k": "v" * 384}},
            },
            "ValidationException",
            "EncryptionContextEquals cannot exceed 384 characters (its keys and values together).",
        ),
    ],
)
def test_bad_create_grant_requests_change_nothing(
    module_kms: Kms, params: dict[str, Any], code: str | None, message: str | None
) -> None:
    key = module_kms.create_key()["KeyId"]
    error = _code(lambda: module_kms.call("CreateGrant", KeyId=key, **params))
    assert_error(error, code or "ValidationException", message)
    assert _grants(module_kms, key) == []


@pytest.mark.parametrize("alias_form", ["name", "arn"])
def test_create_grant_refuses_an_alias_as_aws_does(kms: Kms, alias_form: str) -> None:
    key = kms.create_key()
    kms.call("CreateAlias", AliasName="alias/granted", TargetKeyId=key["KeyId"])
    alias = (
        "alias/granted"
        if alias_form == "name"
        else key["Arn"].replace(f"key/{key['KeyId']}", "alias/granted")
    )
    error = _code(lambda: _grant(kms, alias, ROOT, ["Encrypt"]))
    assert_error(error, "InvalidArnException", "Key Aliases are not supported for this operation.")
    # Also an alias that names no key: the alias is refused before anything is looked up.
    error = _code(lambda: _grant(kms, "alias/none", ROOT, ["Encrypt"]))
    assert error.code == "InvalidArnException"
    assert _grants(kms, key["KeyId"]) == []
    # The key by id and by ARN still works.
    _grant(kms, key["KeyId"], ROOT, ["Encrypt"])
    _grant(kms, key["Arn"], ROOT, ["Decrypt"])
    assert len(_grants(kms, key["KeyId"])) == 2


def test_grants_name_principals_that_exist(runtime: Any, kms: Kms) -> None:
    """Users, roles and role sessions of this and another known account; an account root or
    id of any account, known or not."""
    services = kms.runtime.services
    other_account_root(runtime)  # makes the second account known
    user = iam_user(kms)
    trust = _policy({"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "sts:AssumeRole"})
    role = create_role(services.db, services.clock, ACCOUNT_ID, "granted-role", trust)
    other_role = create_role(services.db, services.clock, OTHER_ACCOUNT_ID, "theirs", trust)
    key = kms.create_key()["KeyId"]
    for grantee in (
        user.principal.arn,
        role.arn,
        f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/granted-role/any-session",
        other_role.arn,
        f"arn:aws:sts::{OTHER_ACCOUNT_ID}:federated-user/fed",
        f"arn:aws:iam::{OTHER_ACCOUNT_ID}:root",
        "arn:aws:iam::999988887777:root",
        "999988887777",
    ):
        _grant(kms, key, grantee, ["Encrypt"], RetiringPrincipal=role.arn)
    assert len(_grants(kms, key)) == 8
    # A principal that is gone is not a valid principal any more.
    delete_role(services.db, OTHER_ACCOUNT_ID, "theirs")
    error = _code(lambda: _grant(kms, key, other_role.arn, ["Decrypt"]))
    assert_error(error, "InvalidArnException", _NOT_A_PRINCIPAL + other_role.arn)
    assert len(_grants(kms, key)) == 8


def test_existence_is_not_told_to_a_caller_who_may_not_create_grants(kms: Kms) -> None:
    user = iam_user(kms)
    key = kms.create_key()["KeyId"]
    for grantee in (f"arn:aws:iam::{ACCOUNT_ID}:user/nobody", kms.principal.arn):
        error = _code(lambda grantee=grantee: _grant(user, key, grantee, ["Encrypt"]))
        assert error.code == "AccessDeniedException"


def test_constraints_at_aws_s_limits_are_accepted(kms: Kms) -> None:
    user = iam_user(kms)
    key = kms.create_key()["KeyId"]
    eight = {f"k{i}": "v" for i in range(8)}
    _grant(
        kms, key, user.principal.arn, ["Encrypt"], Constraints={"EncryptionContextEquals": eight}
    )
    # 384 characters, keys and values together.
    full = {"k": "v" * 383}
    _grant(kms, key, user.principal.arn, ["Encrypt"], Constraints={"EncryptionContextSubset": full})
    user.call("Encrypt", KeyId=key, Plaintext=b"x", EncryptionContext=eight)
    user.call("Encrypt", KeyId=key, Plaintext=b"x", EncryptionContext={**full, "more": "1"})


def test_create_grant_on_a_disabled_key_is_refused(kms: Kms) -> None:
    key = kms.create_key()["KeyId"]
    kms.call("DisableKey", KeyId=key)
    error = _code(lambda: _grant(kms, key, ROOT, ["Encrypt"]))
    assert error.code == "DisabledException"
    kms.call("EnableKey", KeyId=key)
    assert _grants(kms, key) == []


def test_dry_run_creates_no_grant(kms: Kms) -> None:
    key = kms.create_key()["KeyId"]
    error = _code(lambda: _grant(kms, key, ROOT, ["Encrypt"], DryRun=True))
    assert error.code == "DryRunOperationException"
    assert _grants(kms, key) == []


# -- listing -------------------------------------------------------------------------------


def test_list_grants_pages_and_filters(kms: Kms) -> None:
    users = [iam_user(kms) for _ in range(3)]
    key = kms.create_key()
    made = {_grant(kms, key["KeyId"], user.principal.arn, ["Encrypt"])["GrantId"] for user in users}
    seen: list[dict] = []
    page = kms.call("ListGrants", KeyId=key["KeyId"], Limit=2)
    assert page["Truncated"] and len(page["Grants"]) == 2
    seen += page["Grants"]
    page = kms.call("ListGrants", KeyId=key["KeyId"], Limit=2, Marker=page["NextMarker"])
    assert not page["Truncated"] and "NextMarker" not in page
    seen += page["Grants"]
    assert {g["GrantId"] for g in seen} == made
    entry = seen[0]
    assert entry["KeyId"] == key["Arn"]
    assert entry["IssuingAccount"] == ROOT
    assert entry["Operations"] == ["Encrypt"]
    assert "Constraints" not in entry and "RetiringPrincipal" not in entry

    one = kms.call("ListGrants", KeyId=key["KeyId"], GranteePrincipal=users[1].principal.arn)
    assert [g["GranteePrincipal"] for g in one["Grants"]] == [users[1].principal.arn]
    by_id = kms.call("ListGrants", KeyId=key["KeyId"], GrantId=entry["GrantId"])
    assert [g["GrantId"] for g in by_id["Grants"]] == [entry["GrantId"]]
    error = _code(lambda: kms.call("ListGrants", KeyId=key["KeyId"], GrantId="nope"))
    assert error.code == "InvalidGrantIdException"
    error = _code(lambda: kms.call("ListGrants", KeyId=key["KeyId"], Marker="bogus"))
    assert error.code == "InvalidMarkerException"


def test_list_grants_needs_permission(kms: Kms) -> None:
    user = iam_user(kms)
    key = kms.create_key()["KeyId"]
    error = _code(lambda: user.call("ListGrants", KeyId=key))
    assert error.code == "AccessDeniedException"


def test_list_retirable_grants(kms: Kms) -> None:
    retirer = iam_user(kms)
    key = kms.create_key()["KeyId"]
    made = _grant(kms, key, ROOT, ["Encrypt"], RetiringPrincipal=retirer.principal.arn)
    _grant(kms, key, ROOT, ["Decrypt"])
    found = kms.call("ListRetirableGrants", RetiringPrincipal=retirer.principal.arn)["Grants"]
    assert [g["GrantId"] for g in found] == [made["GrantId"]]
    assert found[0]["RetiringPrincipal"] == retirer.principal.arn
    error = _code(lambda: kms.call("ListRetirableGrants", RetiringPrincipal="nobody"))
    assert error.code == "InvalidArnException"
    # An account-level action: a user needs an identity policy for it.
    error = _code(
        lambda: retirer.call("ListRetirableGrants", RetiringPrincipal=retirer.principal.arn)
    )
    assert error.code == "AccessDeniedException"


# -- retiring and revoking -------------------------------------------------------------------


def test_who_may_retire_a_grant(kms: Kms) -> None:
    grantee, retirer, stranger = iam_user(kms), iam_user(kms), iam_user(kms)
    key = kms.create_key()["KeyId"]
    by_retirer = _grant(
        kms, key, grantee.principal.arn, ["Encrypt"], RetiringPrincipal=retirer.principal.arn
    )
    self_retiring = _grant(kms, key, grantee.principal.arn, ["Encrypt", "RetireGrant"])
    not_self = _grant(kms, key, grantee.principal.arn, ["Decrypt"])

    for grant in (by_retirer, self_retiring, not_self):
        error = _code(
            lambda grant=grant: stranger.call("RetireGrant", GrantToken=grant["GrantToken"])
        )
        assert error.code == "AccessDeniedException"
    error = _code(lambda: grantee.call("RetireGrant", KeyId=key, GrantId=not_self["GrantId"]))
    assert error.code == "AccessDeniedException"
    assert len(_grants(kms, key)) == 3

    retirer.call("RetireGrant", GrantToken=by_retirer["GrantToken"])
    grantee.call("RetireGrant", KeyId=key, GrantId=self_retiring["GrantId"])
    kms.call("RetireGrant", KeyId=key, GrantId=not_self["GrantId"])  # the issuing account
    assert _grants(kms, key) == []
    error = _code(lambda: grantee.call("Encrypt", KeyId=key, Plaintext=b"x"))
    assert error.code == "AccessDeniedException"


def test_retire_grant_bad_input(kms: Kms) -> None:
    key = kms.create_key()["KeyId"]
    made = _grant(kms, key, ROOT, ["Encrypt"])
    cases = [
        ({}, "ValidationException"),
        ({"KeyId": key}, "ValidationException"),
        ({"GrantToken": "garbage"}, "InvalidGrantTokenException"),
        ({"GrantToken": issue_token("cd" * 32)}, "NotFoundException"),
        ({"KeyId": key, "GrantId": "short"}, "InvalidGrantIdException"),
        ({"KeyId": key, "GrantId": "ef" * 32}, "NotFoundException"),
        ({"KeyId": "alias/nope", "GrantId": made["GrantId"]}, "NotFoundException"),
    ]
    for params, code in cases:
        error = _code(lambda params=params: kms.call("RetireGrant", **params))
        assert error.code == code, (params, error.message)
    error = _code(lambda: kms.call("RetireGrant", GrantToken=made["GrantToken"], DryRun=True))
    assert error.code == "DryRunOperationException"
    assert len(_grants(kms, key)) == 1


def test_revoke_grant(kms: Kms) -> None:
    user = iam_user(kms)
    key, other_key = kms.create_key()["KeyId"], kms.create_key()["KeyId"]
    made = _grant(kms, key, user.principal.arn, ["Encrypt", "RetireGrant"])
    user.call("Encrypt", KeyId=key, Plaintext=b"x")
    # The grantee may retire its grant, but revoking needs kms:RevokeGrant.
    error = _code(lambda: user.call("RevokeGrant", KeyId=key, GrantId=made["GrantId"]))
    assert error.code == "AccessDeniedException"
    for key_id, grant_id, code in (
        (key, "x", "InvalidGrantIdException"),
        (key, "ab" * 32, "NotFoundException"),
        (other_key, made["GrantId"], "NotFoundException"),
    ):
        error = _code(
            lambda key_id=key_id, grant_id=grant_id: kms.call(
                "RevokeGrant", KeyId=key_id, GrantId=grant_id
            )
        )
        assert error.code == code
    error = _code(lambda: kms.call("RevokeGrant", KeyId=key, GrantId=made["GrantId"], DryRun=True))
    assert error.code == "DryRunOperationException"
    user.call("Encrypt", KeyId=key, Plaintext=b"x")

    kms.call("RevokeGrant", KeyId=key, GrantId=made["GrantId"])
    error = _code(lambda: user.call("Encrypt", KeyId=key, Plaintext=b"x"))
    assert error.code == "AccessDeniedException"
    assert _grants(kms, key) == []


def test_deleting_a_key_deletes_its_grants(kms: Kms, clock: Any) -> None:
    key = kms.create_key()["KeyId"]
    made = _grant(kms, key, ROOT, ["Encrypt"], RetiringPrincipal=ROOT)
    kms.call("ScheduleKeyDeletion", KeyId=key, PendingWindowInDays=7)
    # Grants outlive the key's disabling and pending deletion, as in AWS.
    assert [g["GrantId"] for g in _grants(kms, key)] == [made["GrantId"]]
    clock.advance(8 * 86400)
    kms.runtime.jobs.run_once()
    assert kms.call("ListRetirableGrants", RetiringPrincipal=ROOT)["Grants"] == []


# -- grant condition keys --------------------------------------------------------------------


def _creator(kms: Kms, condition: dict[str, Any]) -> tuple[Kms, str]:
    """A user allowed kms:CreateGrant by the key policy only under ``condition``."""
    user = iam_user(kms)
    key = kms.create_key()["KeyId"]
    statement = {
        "Effect": "Allow",
        "Principal": {"AWS": user.principal.arn},
        "Action": "kms:CreateGrant",
        "Resource": "*",
        "Condition": condition,
    }
    kms.call("PutKeyPolicy", KeyId=key, Policy=_policy(ADMIN, statement))
    return user, key


@pytest.mark.parametrize(
    ("condition", "allowed", "refused"),
    [
        (
            {"ForAllValues:StringEquals": {"kms:GrantOperations": ["Encrypt", "Decrypt"]}},
            {"Operations": ["Encrypt"]},
            {"Operations": ["Encrypt", "CreateGrant"]},
        ),
        (
            {"StringEquals": {"kms:GranteePrincipal": ROOT}},
            {"GranteePrincipal": ROOT},
            {"GranteePrincipal": f"arn:aws:iam::{OTHER_ACCOUNT_ID}:root"},
        ),
        (
            {"StringEquals": {"kms:RetiringPrincipal": ROOT}},
            {"RetiringPrincipal": ROOT},
            {"RetiringPrincipal": f"arn:aws:iam::{OTHER_ACCOUNT_ID}:root"},
        ),
        (
            {"ForAnyValue:StringEquals": {"kms:GrantConstraintType": "EncryptionContextEquals"}},
            {"Constraints": {"EncryptionContextEquals": {"a": "b"}}},
            {"Constraints": {"EncryptionContextSubset": {"a": "b"}}},
        ),
        (
            {"StringEquals": {"kms:GrantConstraintSourceArn": SOURCE_ARN}},
            {"Constraints": {"SourceArn": SOURCE_ARN}},
            {"Constraints": {"SourceArn": SOURCE_ARN + "-2"}},
        ),
        (
            {"ForAnyValue:StringEquals": {"kms:GrantConstraintType": "SourceArn"}},
            {"Constraints": {"SourceArn": SOURCE_ARN, "EncryptionContextSubset": {"a": "b"}}},
            {"Constraints": {"EncryptionContextSubset": {"a": "b"}}},
        ),
        (
            {"Bool": {"kms:GrantIsForAWSResource": "false"}},
            {},
            None,
        ),
        (
            {"Bool": {"kms:GrantIsForAWSResource": "true"}},
            None,
            {},
        ),
        (
            {"StringEquals": {"kms:EncryptionContext:dept": "a"}},
            {"Constraints": {"EncryptionContextSubset": {"dept": "a"}}},
            {"Constraints": {"EncryptionContextSubset": {"dept": "b"}}},
        ),
    ],
)
def test_grant_condition_keys_flip_the_decision(
    module_kms: Kms,
    condition: dict[str, Any],
    allowed: dict[str, Any] | None,
    refused: dict[str, Any] | None,
) -> None:
    user, key = _creator(module_kms, condition)

    def create(extra: dict[str, Any]) -> Any:
        params: dict[str, Any] = {"GranteePrincipal": ROOT, "Operations": ["Encrypt"], **extra}
        return lambda: user.call("CreateGrant", KeyId=key, **params)

    if allowed is not None:
        create(allowed)()
    if refused is not None:
        assert _code(create(refused)).code == "AccessDeniedException"
