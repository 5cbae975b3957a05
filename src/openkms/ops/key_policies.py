"""Key policies: GetKeyPolicy, PutKeyPolicy, ListKeyPolicies. A key has one policy, named
"default" (AWS: "The only valid value is default"); it is enforced by ``openkms.authz``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from openkms.authz import AuthorizationRequest, Authorizer
from openkms.authz.lockout import check_no_lockout
from openkms.authz.policy import check_key_policy
from openkms.domain.keys import change_key_policy
from openkms.errors import NotFoundException
from openkms.iam.principal_names import check_policy_principals
from openkms.ops.context import RequestContext, Services
from openkms.ops.declaration import Call, handles
from openkms.ops.key_directory import LoadedKey
from openkms.ops.tags import stored_tags_reader

DEFAULT_POLICY_NAME = "default"


@handles("GetKeyPolicy")
def get_key_policy(services: Services, call: Call) -> dict[str, Any]:
    name = _policy_name(call.params)
    return {"Policy": call.key.record.policy, "PolicyName": name}


@handles("PutKeyPolicy")
def put_key_policy(services: Services, call: Call) -> dict[str, Any]:
    _policy_name(call.params)
    policy = call.params["Policy"]
    check_policy_principals(services.db, check_key_policy(policy))
    check_no_lockout(
        _authorizer(services), lockout_request(services, call.ctx, call.key, call.params), policy
    )
    change_key_policy(services.db, call.key.record.key_id, policy)
    return {}


@handles("ListKeyPolicies")
def list_key_policies(services: Services, call: Call) -> dict[str, Any]:
    # One policy per key: any Limit of 1 or more lists it whole, and no marker follows.
    return {"PolicyNames": [DEFAULT_POLICY_NAME], "Truncated": False}


def _authorizer(services: Services) -> Authorizer:
    assert services.authorizer is not None  # the runtime always gives one
    return services.authorizer


def _policy_name(params: dict[str, Any]) -> str:
    name: str = params.get("PolicyName", DEFAULT_POLICY_NAME)
    if name != DEFAULT_POLICY_NAME:
        raise NotFoundException(f"No such policy exists: {name}. A key's only policy is default.")
    return name


def lockout_request(
    services: Services,
    ctx: RequestContext,
    key: LoadedKey,
    params: dict[str, Any],
    tags: Callable[[], dict[str, str]] | None = None,
) -> AuthorizationRequest:
    """The caller's request on ``key``, as the lockout check decides it again. ``tags``: the
    key's tags (for aws:ResourceTag conditions); by default read from the database."""
    record = key.record
    return AuthorizationRequest(
        principal=ctx.principal,
        action="kms:PutKeyPolicy",
        resource_arn=record.arn,
        resource_account=record.account_id,
        region=ctx.region,
        key=key,
        parameters=params,
        when=services.clock.now(),
        source_ip=ctx.source_ip,
        secure_transport=ctx.secure_transport,
        resource_tags=tags or stored_tags_reader(services.db, record.key_id),
    )
