"""Turning a KeyId parameter (key id, key ARN, alias name, alias ARN) into a key.

Keys and aliases live in (account, region). A key ARN or alias ARN naming another region is
refused; one naming another account is refused as AWS refuses a caller that no policy admits.
"""

from __future__ import annotations

import re
import uuid

from openkms.errors import AccessDeniedException, NotFoundException
from openkms.iam.accounts import is_account_id
from openkms.ops.arns import alias_arn, key_arn, parse_kms_arn
from openkms.ops.context import RequestContext, Services
from openkms.ops.key_directory import LoadedKey


def resolve_key(
    services: Services,
    ctx: RequestContext,
    key_id: str,
    *,
    allow_alias: bool = True,
    action: str = "kms:DescribeKey",
) -> LoadedKey:
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
            loaded = _by_alias(services, ctx, arn.resource, arn.account_id)
            if arn.account_id != ctx.account_id:
                # Cross-account use needs a key policy that admits the caller (see below).
                raise _denied(ctx, action, loaded.record.arn)
            return loaded
        found = _by_key_id(services, ctx, arn.resource, arn.account_id, action)
        if found is None:
            raise NotFoundException(f"Key '{key_id}' does not exist")
        return found
    if key_id.startswith("alias/"):
        if not allow_alias:
            raise NotFoundException(f"Invalid keyId '{key_id}'")
        return _by_alias(services, ctx, key_id)
    if not is_key_id(key_id):
        raise NotFoundException(f"Invalid keyId '{key_id}'")
    found = _by_key_id(services, ctx, key_id, ctx.account_id, action)
    if found is None:
        arn_text = key_arn(services.partition, ctx.region, ctx.account_id, key_id)
        raise NotFoundException(f"Key '{arn_text}' does not exist")
    return found


def _by_key_id(
    services: Services, ctx: RequestContext, key_id: str, account_id: str, action: str
) -> LoadedKey | None:
    if not is_key_id(key_id):
        return None
    loaded = services.keys.get(key_id)
    if loaded is None or loaded.record.region != ctx.region:
        return None
    if loaded.record.account_id != account_id:
        return None
    if account_id != ctx.account_id:
        # Cross-account use needs a key policy that admits the caller; policy evaluation is
        # not built yet and the default policy admits only the owning account.
        raise _denied(ctx, action, loaded.record.arn)
    return loaded


# What an alias name can be (AliasNameType's pattern): anything else names nothing, and is
# never sent to the database (nor is an account id that is not one).
_ALIAS_NAME = re.compile(r"alias/[a-zA-Z0-9:/_-]{1,250}", re.ASCII)


def _by_alias(
    services: Services, ctx: RequestContext, alias_name: str, account_id: str | None = None
) -> LoadedKey:
    if account_id is None:
        account_id = ctx.account_id
    well_formed = _ALIAS_NAME.fullmatch(alias_name) and is_account_id(account_id)
    target = services.keys.alias_target(account_id, ctx.region, alias_name) if well_formed else None
    loaded = services.keys.get(target) if target is not None else None
    if loaded is None:
        arn_text = alias_arn(services.partition, ctx.region, account_id, alias_name)
        raise NotFoundException(f"Alias {arn_text} is not found.")
    return loaded


def is_key_id(text: str) -> bool:
    """A key id as KMS writes it: a lowercase, dashed UUID."""
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


def _denied(ctx: RequestContext, action: str, resource: str) -> AccessDeniedException:
    return AccessDeniedException(
        f"User: {ctx.principal.arn} is not authorized to perform: {action} on resource: "
        f"{resource} because no resource-based policy allows the {action} action"
    )
