"""CreateGrant, ListGrants, ListRetirableGrants, RetireGrant and RevokeGrant.

Who may call them is the dispatcher's work (the declarations, the authorizer and the grant
the request names); what is left here is AWS's input rules and the grants table.
"""

from __future__ import annotations

import json
from typing import Any

from openkms.authz.grant_tokens import is_grant_id, issue_token, new_grant_id
from openkms.authz.grants import EQUALS, SOURCE_ARN, SUBSET, Grant
from openkms.crypto.key_specs import spec_info
from openkms.domain.keys import locked_key
from openkms.errors import (
    InvalidArnException,
    InvalidGrantIdException,
    LimitExceededException,
    NotFoundException,
    ValidationException,
)
from openkms.iam.principal_names import names_existing_principal, principal_arn_of
from openkms.ops.arns import key_arn
from openkms.ops.context import Services
from openkms.ops.declaration import Call, handles
from openkms.ops.pagination import decode_marker, encode_marker
from openkms.storage.records import GrantRecord
from openkms.storage.repository import Transaction

# AWS's quota of grants per key (its former 500 per grantee and key was lifted in 2021).
MAX_GRANTS_PER_KEY = 50_000
_DEFAULT_LIMIT = 50
_MAX_LIMIT = 100
_MARKER_KIND = "grants"
_RETIRABLE_MARKER_KIND = "retirable-grants"

# The grant operations each key usage can do (AWS's "Grant operations" table); CreateGrant,
# RetireGrant and DescribeKey fit every key.
_ANY_KEY = frozenset({"CreateGrant", "RetireGrant", "DescribeKey"})
_SYMMETRIC = _ANY_KEY | {
    "Encrypt",
    "Decrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "ReEncryptFrom",
    "ReEncryptTo",
}
_OPERATIONS_BY_USAGE = {
    "ENCRYPT_DECRYPT": _ANY_KEY
    | {"Encrypt", "Decrypt", "ReEncryptFrom", "ReEncryptTo", "GetPublicKey"},
    "SIGN_VERIFY": _ANY_KEY | {"Sign", "Verify", "GetPublicKey"},
    "GENERATE_VERIFY_MAC": _ANY_KEY | {"GenerateMac", "VerifyMac"},
    "KEY_AGREEMENT": _ANY_KEY | {"DeriveSharedSecret", "GetPublicKey"},
    "ENCAPSULATE_DECAPSULATE": _ANY_KEY | {"Encapsulate", "Decapsulate", "GetPublicKey"},
}
# The operations an encryption-context constraint can apply to: a symmetric key's (those
# without a context, DescribeKey and the grant operations, are not constrained).
_WITH_CONTEXT = _SYMMETRIC

# AWS's limits on an encryption-context constraint (CreateGrant's Constraints): at most 8
# pairs, and 384 characters in all. The model has neither; AWS's error text is not recorded.
MAX_CONSTRAINT_PAIRS = 8
MAX_CONSTRAINT_CHARACTERS = 384


def allowed_operations(key_usage: str, symmetric: bool) -> frozenset[str]:
    if symmetric and key_usage == "ENCRYPT_DECRYPT":
        return _SYMMETRIC
    return _OPERATIONS_BY_USAGE.get(key_usage, _ANY_KEY)


def check_principal_form(text: str) -> str:
    """A grantee or retiring principal as AWS accepts it: an IAM ARN, or an account id for
    the account (answered as the account's root ARN)."""
    arn = principal_arn_of(text)
    if arn is None:
        raise _not_a_principal(text)
    return arn


def _not_a_principal(text: str) -> InvalidArnException:
    return InvalidArnException(f"ARN does not refer to a valid principal: {text}")


def _check_constraints(
    constraints: dict[str, Any] | None, operations: list[str], symmetric: bool
) -> None:
    if not constraints:
        return
    if EQUALS in constraints and SUBSET in constraints:
        raise ValidationException("More than one constraint supplied")
    kind = EQUALS if EQUALS in constraints else SUBSET if SUBSET in constraints else None
    if kind is None:
        return  # SourceArn alone suits every key and every operation
    if not symmetric:
        raise ValidationException(
            "Grant constraints are not supported for an asymmetric or HMAC KMS key: its "
            "operations take no encryption context."
        )
    unsupported = [op for op in operations if op not in _WITH_CONTEXT]
    if unsupported:
        raise ValidationException(
            "Grant constraints EncryptionContextEquals and EncryptionContextSubset are not "
            f"supported for the operations {', '.join(sorted(set(unsupported)))}."
        )
    pairs: dict[str, str] = constraints[kind]
    if len(pairs) > MAX_CONSTRAINT_PAIRS:
        raise ValidationException(
            f"{kind} can have at most {MAX_CONSTRAINT_PAIRS} encryption context pairs."
        )
    characters = sum(len(name) + len(value) for name, value in pairs.items())
    if characters > MAX_CONSTRAINT_CHARACTERS:
        raise ValidationException(
            f"{kind} cannot exceed {MAX_CONSTRAINT_CHARACTERS} characters (its keys and "
            "values together)."
        )


def _check_principals_exist(tx: Transaction, principals: list[str | None]) -> None:
    for principal in principals:
        if principal is not None and not names_existing_principal(tx, principal):
            raise _not_a_principal(principal)


@handles("CreateGrant")
def create_grant(services: Services, call: Call) -> dict[str, Any]:
    req = call.params
    record = call.key.record
    grantee = req.get("GranteePrincipal")
    if grantee is None:
        raise ValidationException("GranteePrincipal is required.")
    grantee = check_principal_form(grantee)
    retiring = req.get("RetiringPrincipal")
    if retiring is not None:
        retiring = check_principal_form(retiring)
    operations = list(dict.fromkeys(req["Operations"]))
    if not operations:
        raise ValidationException("The list of grant operations must not be empty.")
    if operations == ["CreateGrant"]:
        raise ValidationException("Grants must not contain only the CreateGrant operation.")
    allowed = allowed_operations(record.key_usage, spec_info(record.key_spec).symmetric)
    refused = [op for op in operations if op not in allowed]
    if refused:
        raise ValidationException(
            f"Grant operations {', '.join(refused)} are not supported for a KMS key with "
            f"KeySpec {record.key_spec} and KeyUsage {record.key_usage}."
        )
    constraints = req.get("Constraints") or None
    _check_constraints(constraints, operations, spec_info(record.key_spec).symmetric)
    stored_operations = json.dumps(operations)
    stored_constraints = (
        json.dumps(constraints, sort_keys=True, ensure_ascii=False) if constraints else None
    )
    name = req.get("Name")
    with services.db.transaction() as tx:
        # Whether the principals exist is asked only of a caller allowed to create the grant
        # (the dispatcher authorised it), so it is no oracle of another account's IAM.
        _check_principals_exist(tx, [grantee, retiring])
        locked_key(tx, record.key_id, "CreateGrant")
        if name is not None:
            for existing in tx.list_grants(record.key_id):
                if (
                    existing.name == name
                    and existing.grantee_principal == grantee
                    and existing.retiring_principal == retiring
                    and json.loads(existing.operations) == operations
                    and existing.constraints == stored_constraints
                ):
                    # The same request again: the same grant, a new token (AWS).
                    grant_id = existing.grant_id
                    return {"GrantToken": issue_token(grant_id), "GrantId": grant_id}
        if tx.count_grants(record.key_id) >= MAX_GRANTS_PER_KEY:
            raise LimitExceededException(
                f"The key {record.arn} already has {MAX_GRANTS_PER_KEY} grants."
            )
        grant_id = new_grant_id()
        tx.insert_grant(
            GrantRecord(
                grant_id=grant_id,
                key_id=record.key_id,
                name=name,
                grantee_principal=grantee,
                retiring_principal=retiring,
                operations=stored_operations,
                constraints=stored_constraints,
                issuing_account=call.ctx.account_id,
                creation_date=services.clock.now(),
            )
        )
    return {"GrantToken": issue_token(grant_id), "GrantId": grant_id}


@handles("ListGrants")
def list_grants(services: Services, call: Call) -> dict[str, Any]:
    req = call.params
    record = call.key.record
    grant_id = req.get("GrantId")
    if grant_id is not None and not is_grant_id(grant_id):
        raise InvalidGrantIdException("Grant ID is not valid.")
    grantee = req.get("GranteePrincipal")
    limit = _limit(req)
    after = decode_marker(req.get("Marker"), _MARKER_KIND, is_grant_id)
    with services.db.transaction(readonly=True) as tx:
        if grant_id is not None:
            one = tx.get_grant(grant_id)
            rows = [
                one
                for one in ([one] if one is not None else [])
                if one.key_id == record.key_id
                and (grantee is None or one.grantee_principal == grantee)
                and (after is None or one.grant_id > after)
            ]
        else:
            rows = tx.list_grants(
                record.key_id, grantee_principal=grantee, after_grant_id=after, limit=limit + 1
            )
    return _page(services, rows, limit, _MARKER_KIND, call.ctx.region)


@handles("ListRetirableGrants")
def list_retirable_grants(services: Services, call: Call) -> dict[str, Any]:
    req = call.params
    retiring = req.get("RetiringPrincipal")
    if retiring is None:
        raise ValidationException("RetiringPrincipal is required.")
    arn = principal_arn_of(retiring)
    if arn is None:
        raise InvalidArnException(f"Invalid principal: {retiring}")
    retiring = arn
    limit = _limit(req)
    after = decode_marker(req.get("Marker"), _RETIRABLE_MARKER_KIND, is_grant_id)
    account, region = call.ctx.account_id, call.ctx.region
    with services.db.transaction(readonly=True) as tx:
        candidates = tx.list_grants(retiring_principal=retiring, after_grant_id=after)
    rows = []
    for grant in candidates:
        # The account's and region's grants only: a key elsewhere is not the caller's to see.
        key = services.keys.get(grant.key_id)
        if key is not None and key.record.account_id == account and key.record.region == region:
            rows.append(grant)
        if len(rows) > limit:
            break
    return _page(services, rows, limit, _RETIRABLE_MARKER_KIND, region)


@handles("RetireGrant")
def retire_grant(services: Services, call: Call) -> dict[str, Any]:
    grant = call.resolved.grant
    assert grant is not None  # resolution found it, or refused the request
    with services.db.transaction() as tx:
        locked_key(tx, grant.key_id, "RetireGrant")
        if tx.get_grant(grant.grant_id) is None:
            raise NotFoundException(f"Grant ID {grant.grant_id} not found")
        tx.delete_grant(grant.record)
    return {}


@handles("RevokeGrant")
def revoke_grant(services: Services, call: Call) -> dict[str, Any]:
    grant_id = call.params["GrantId"]
    key_id = call.key.record.key_id
    if not is_grant_id(grant_id):
        raise InvalidGrantIdException("Grant ID is not valid.")
    with services.db.transaction() as tx:
        locked_key(tx, key_id, "RevokeGrant")
        found = tx.get_grant(grant_id)
        if found is None or found.key_id != key_id:
            raise NotFoundException(f"Grant ID {grant_id} not found")
        tx.delete_grant(found)
    return {}


def _limit(req: dict[str, Any]) -> int:
    return min(int(req.get("Limit", _DEFAULT_LIMIT)), _MAX_LIMIT)


def _page(
    services: Services, rows: list[GrantRecord], limit: int, kind: str, region: str
) -> dict[str, Any]:
    page = rows[:limit]
    entries = [_entry(services, Grant.from_record(row), region) for row in page]
    response: dict[str, Any] = {"Grants": entries, "Truncated": len(rows) > limit}
    if len(rows) > limit:
        response["NextMarker"] = encode_marker(page[-1].grant_id, kind)
    return response


def _entry(services: Services, grant: Grant, region: str) -> dict[str, Any]:
    key = services.keys.get(grant.key_id)
    account = key.record.account_id if key is not None else grant.issuing_account
    arn = (
        key.record.arn
        if key is not None
        else key_arn(services.partition, region, account, grant.key_id)
    )
    entry: dict[str, Any] = {
        "KeyId": arn,
        "GrantId": grant.grant_id,
        "Name": grant.name or "",
        "CreationDate": grant.record.creation_date,
        "GranteePrincipal": grant.grantee,
        "IssuingAccount": f"arn:aws:iam::{grant.issuing_account}:root",
        "Operations": list(grant.operations),
    }
    if grant.retiring is not None:
        entry["RetiringPrincipal"] = grant.retiring
    constraints: dict[str, Any] = {k: dict(v) for k, v in grant.constraints.items()}
    if grant.source_arn is not None:
        constraints[SOURCE_ARN] = grant.source_arn
    if constraints:
        entry["Constraints"] = constraints
    return entry
