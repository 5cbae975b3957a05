"""Finding the resources a request names: keys by id, ARN, alias name or alias ARN; the key a
ciphertext was made under; an alias and its target.

Keys and aliases live in (account, region). A key ARN or alias ARN naming another region is
refused here. One naming another account is found, and the authorizer decides (the default
key policy admits only the owning account). Resolution never decides who may do what.
"""

from __future__ import annotations

import re
from typing import Any

from openkms.authz.grant_tokens import grant_id_of, is_grant_id
from openkms.authz.grants import Grant
from openkms.crypto.ciphertext_blob import CiphertextBlob, MalformedBlob
from openkms.errors import (
    InvalidArnException,
    InvalidCiphertextException,
    InvalidGrantIdException,
    NotAuthorizedException,
    NotFoundException,
    ValidationException,
)
from openkms.iam.accounts import is_account_id
from openkms.ops.arns import alias_arn, key_arn, parse_kms_arn
from openkms.ops.context import RequestContext, Services
from openkms.ops.declaration import Resolve, Resolved
from openkms.ops.key_directory import LoadedKey
from openkms.ops.managed_keys import materialise_managed_key
from openkms.storage.records import GrantRecord

ALIAS_PREFIX = "alias/"
_RESERVED_ALIAS_PREFIX = "alias/aws/"
# What an alias name can be (AliasNameType's pattern): anything else names nothing, and is
# never sent to the database (nor is an account id that is not one).
_ALIAS_NAME = re.compile(r"alias/[a-zA-Z0-9:/_-]{1,250}", re.ASCII)
# A key id as KMS writes it: a lower-case, dashed UUID (exactly what str(uuid.UUID) prints),
# or a multi-Region key id, "mrk-" and 32 lower-case hex digits.
_KEY_ID = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32}", re.ASCII
)


def is_key_id(text: str) -> bool:
    return _KEY_ID.fullmatch(text) is not None


def resolve(
    kind: Resolve, services: Services, ctx: RequestContext, params: dict[str, Any]
) -> Resolved:
    resolved = Resolved()
    if kind is Resolve.KEY:
        resolved.keys["key"] = find_key(services, ctx, params["KeyId"])
    elif kind is Resolve.KEY_ID_OR_ARN:
        resolved.keys["key"] = find_key(services, ctx, params["KeyId"], allow_alias=False)
    elif kind is Resolve.GRANT_KEY:
        if _names_alias(params["KeyId"]):
            raise InvalidArnException("Key Aliases are not supported for this operation.")
        resolved.keys["key"] = find_key(services, ctx, params["KeyId"], allow_alias=False)
    elif kind is Resolve.OPTIONAL_KEY:
        if "KeyId" in params:
            resolved.keys["key"] = find_key(services, ctx, params["KeyId"], allow_alias=False)
    elif kind is Resolve.CIPHERTEXT:
        _ciphertext_key(services, ctx, params, params.get("KeyId"), "key", resolved)
    elif kind is Resolve.RE_ENCRYPT:
        _ciphertext_key(services, ctx, params, params.get("SourceKeyId"), "source", resolved)
        resolved.keys["destination"] = find_key(services, ctx, params["DestinationKeyId"])
    elif kind is Resolve.ALIAS_TARGET:
        _alias(services, ctx, params["AliasName"], resolved)
        resolved.keys["key"] = _alias_target_key(services, ctx, params["TargetKeyId"])
    elif kind is Resolve.ALIAS_RETARGET:
        _alias(services, ctx, params["AliasName"], resolved)
        resolved.keys["key"] = _alias_target_key(services, ctx, params["TargetKeyId"])
        resolved.keys["old_key"] = _existing_alias_target(services, ctx, resolved)
    elif kind is Resolve.ALIAS:
        _alias(services, ctx, params["AliasName"], resolved)
        resolved.keys["key"] = _existing_alias_target(services, ctx, resolved)
    elif kind is Resolve.GRANT:
        _grant(services, ctx, params, resolved)
    return resolved


def _names_alias(key_id: str) -> bool:
    if key_id.startswith(ALIAS_PREFIX):
        return True
    arn = parse_kms_arn(key_id) if key_id.startswith("arn:") else None
    return arn is not None and arn.resource_type == "alias"


def _grant(
    services: Services, ctx: RequestContext, params: dict[str, Any], resolved: Resolved
) -> None:
    """RetireGrant's grant: by its token, or by its key and id."""
    token = params.get("GrantToken")
    if token is not None:
        grant_id = grant_id_of(token)
        record = _grant_record(services, grant_id)
        key = services.keys.get(record.key_id) if record is not None else None
        if record is None or key is None or key.record.region != ctx.region:
            raise NotFoundException("Grant not found.")
    else:
        if "KeyId" not in params or "GrantId" not in params:
            raise ValidationException(
                "Either GrantToken, or both KeyId and GrantId, must be specified."
            )
        key = find_key(services, ctx, params["KeyId"], allow_alias=False)
        grant_id = params["GrantId"]
        if not is_grant_id(grant_id):
            raise InvalidGrantIdException("Grant ID is not valid.")
        record = _grant_record(services, grant_id)
        if record is None or record.key_id != key.record.key_id:
            raise NotFoundException(f"Grant ID {grant_id} not found")
    resolved.keys["key"] = key
    resolved.grant = Grant.from_record(record)


def _grant_record(services: Services, grant_id: str) -> GrantRecord | None:
    with services.db.transaction(readonly=True) as tx:
        return tx.get_grant(grant_id)


def find_key(
    services: Services, ctx: RequestContext, key_id: str, *, allow_alias: bool = True
) -> LoadedKey:
    """The key ``key_id`` names, as seen from the caller's region."""
    if key_id.startswith("arn:"):
        arn = parse_kms_arn(key_id)
        if (
            arn is None
            or arn.partition != services.partition
            or (arn.resource_type == "alias" and not allow_alias)
        ):
            raise NotFoundException(f"Invalid arn {key_id}")
        if arn.region != ctx.region:
            raise NotFoundException(f"Invalid arn {arn.region}")
        if arn.resource_type == "alias":
            return _by_alias(services, ctx, arn.resource, arn.account_id, materialise=True)
        found = _by_key_id(services, ctx, arn.resource, arn.account_id)
        if found is None:
            raise NotFoundException(f"Key '{key_id}' does not exist")
        return found
    if key_id.startswith(ALIAS_PREFIX):
        if not allow_alias:
            raise NotFoundException(f"Invalid keyId '{key_id}'")
        return _by_alias(services, ctx, key_id, materialise=True)
    if not is_key_id(key_id):
        raise NotFoundException(f"Invalid keyId '{key_id}'")
    found = _by_key_id(services, ctx, key_id, ctx.account_id)
    if found is None:
        arn_text = key_arn(services.partition, ctx.region, ctx.account_id, key_id)
        raise NotFoundException(f"Key '{arn_text}' does not exist")
    return found


def _by_key_id(
    services: Services, ctx: RequestContext, key_id: str, account_id: str
) -> LoadedKey | None:
    if not is_key_id(key_id):
        return None
    loaded = services.keys.get(key_id)
    if loaded is None or loaded.record.region != ctx.region:
        return None
    if loaded.record.account_id != account_id:
        return None
    return loaded


def _by_alias(
    services: Services,
    ctx: RequestContext,
    alias_name: str,
    account_id: str | None = None,
    *,
    materialise: bool = False,
) -> LoadedKey:
    """The key an alias names. With ``materialise``, a predefined alias/aws/<service> alias
    of the caller's own account that has no key yet gets its AWS managed key now (a caller
    of another account cannot make keys in this one: for it the alias is simply not found)."""
    if account_id is None:
        account_id = ctx.account_id
    well_formed = _ALIAS_NAME.fullmatch(alias_name) and is_account_id(account_id)
    target = services.keys.alias_target(account_id, ctx.region, alias_name) if well_formed else None
    if target is None and well_formed and materialise and account_id == ctx.account_id:
        made = materialise_managed_key(services, account_id, ctx.region, alias_name)
        if made is not None:
            # Read through the directory so that the next use is warm (the write just
            # invalidated the alias's entry).
            target = services.keys.alias_target(account_id, ctx.region, alias_name) or made
    loaded = services.keys.get(target) if target is not None else None
    if loaded is None:
        arn_text = alias_arn(services.partition, ctx.region, account_id, alias_name)
        raise NotFoundException(f"Alias {arn_text} is not found.")
    return loaded


def _ciphertext_key(
    services: Services,
    ctx: RequestContext,
    params: dict[str, Any],
    key_id: str | None,
    role: str,
    resolved: Resolved,
) -> None:
    """The key a ciphertext was made under. A named key is found by its name; the ciphertext
    is matched against it later (after authorisation and the state check), so a caller learns
    nothing about a key it may not use."""
    if key_id is not None:
        resolved.keys[role] = find_key(services, ctx, key_id)
        return
    blob = request_blob(params)
    key = services.keys.get(blob.key_id)
    if key is None or key.record.region != ctx.region:
        raise InvalidCiphertextException()
    resolved.keys[role] = key
    resolved.blob = blob


def request_blob(params: dict[str, Any]) -> CiphertextBlob:
    """The request's CiphertextBlob, parsed as a symmetric key's blob."""
    return parse_blob(request_ciphertext(params))


def request_ciphertext(params: dict[str, Any]) -> bytes:
    """The request's CiphertextBlob. The model lets it be absent (a dry run with
    IGNORE_CIPHERTEXT needs none), so its absence is checked here, in AWS's words."""
    data = params.get("CiphertextBlob")
    if data is None:
        raise ValidationException(
            "1 validation error detected: Value null at 'ciphertextBlob' failed to satisfy "
            "constraint: Member must not be null"
        )
    return bytes(data)


def parse_blob(data: bytes) -> CiphertextBlob:
    try:
        return CiphertextBlob.parse(data)
    except MalformedBlob:
        raise InvalidCiphertextException() from None


def check_alias_name(name: str) -> str:
    if not name.startswith(ALIAS_PREFIX) or name == ALIAS_PREFIX:
        raise ValidationException(
            'Alias must start with the prefix "alias/". Please see '
            "https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html"
        )
    if name.startswith(_RESERVED_ALIAS_PREFIX):
        raise NotAuthorizedException()
    if ":" in name:
        # The model's pattern admits ':', but an alias name may not hold one (it would make
        # alias ARNs ambiguous); AWS answers in these words.
        raise ValidationException(f"{name} contains invalid characters for an alias")
    return name


def _alias(services: Services, ctx: RequestContext, name: str, resolved: Resolved) -> None:
    resolved.alias_name = check_alias_name(name)
    resolved.alias_arn = alias_arn(services.partition, ctx.region, ctx.account_id, name)


def _existing_alias_target(
    services: Services, ctx: RequestContext, resolved: Resolved
) -> LoadedKey:
    assert resolved.alias_name is not None
    return _by_alias(services, ctx, resolved.alias_name)


def _alias_target_key(services: Services, ctx: RequestContext, key_id: str) -> LoadedKey:
    if key_id.startswith(ALIAS_PREFIX) or ":alias/" in key_id:
        raise ValidationException("Aliases must refer to keys. Not aliases")
    return find_key(services, ctx, key_id, allow_alias=False)
