"""The IAM admin API: the subset of IAM's operations that manages an account's users, access
keys, roles, inline policies and tags, so that ``aws iam …`` and boto3's IAM client manage
openkms as they manage AWS.

Every call acts on the caller's own account: there is no parameter that names another one,
so nobody crosses accounts. The account's root user may do everything in it; anyone else
needs an identity policy that allows ``iam:<Operation>`` on the resource (the user's or
role's ARN; ``*`` for ListUsers and ListRoles), with an explicit Deny winning, as AWS
decides it. Temporary credentials from GetSessionToken without MFA cannot call it (AWS's
rule for IAM).

The work itself is ``openkms.iam.users`` / ``roles``, the same functions ``openkms admin``
runs; this module only maps IAM's parameters onto them and their results onto IAM's shapes.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from openkms.authz.authorizer import AuthorizationRequest, condition_keys_of
from openkms.authz.evaluation import Reach, caller_of, evaluate_all
from openkms.authz.identity import IdentityPolicies
from openkms.clock import Clock
from openkms.errors import AccessDeniedException, KmsError
from openkms.iam import roles, users
from openkms.iam.principal import Principal
from openkms.iam.users import IdentityError
from openkms.seal import RootKey
from openkms.storage import Database
from openkms.storage.records import AccessKeyRecord, RoleRecord, UserRecord

# IAM's HTTP status for each of its error codes this API answers.
_STATUS = {
    "NoSuchEntity": 404,
    "EntityAlreadyExists": 409,
    "DeleteConflict": 409,
    "LimitExceeded": 409,
    "MalformedPolicyDocument": 400,
    "InvalidInput": 400,
    "ValidationError": 400,
}
_DEFAULT_MAX_ITEMS = 100


class IamError(KmsError):
    """An IAM error code with its status; the Query endpoint renders it as IAM does."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = _STATUS.get(code, 400)


@dataclass(frozen=True, slots=True)
class AdminCall:
    principal: Principal
    operation: str
    params: Mapping[str, Any]  # validated against IAM's input shape
    region: str
    source_ip: str | None = None
    secure_transport: bool = False

    @property
    def account_id(self) -> str:
        return self.principal.account_id

    def user_arn(self, name: str) -> str:
        return users.user_arn(self.account_id, name)

    def role_arn(self, name: str) -> str:
        return roles.role_arn(self.account_id, name)


Handler = Callable[["IamAdministration", AdminCall], dict[str, Any] | None]
Resource = Callable[[AdminCall], str]


@dataclass(frozen=True, slots=True)
class AdminOperation:
    handler: Handler
    resource: Resource


class IamAdministration:
    def __init__(
        self, db: Database, root_key: RootKey, clock: Clock, identities: IdentityPolicies
    ) -> None:
        self._db = db
        self._root_key = root_key
        self._clock = clock
        self._identities = identities

    @staticmethod
    def knows(operation: str) -> bool:
        return operation in OPERATIONS

    def call(self, call: AdminCall) -> dict[str, Any] | None:
        operation = OPERATIONS[call.operation]
        self._authorize(call, operation.resource(call))
        try:
            return operation.handler(self, call)
        except IdentityError as error:
            raise IamError(error.code, str(error)) from None
        except ValueError as error:  # a check of iam.accounts (an id's form)
            raise IamError("ValidationError", str(error)) from None

    def _authorize(self, call: AdminCall, resource: str) -> None:
        principal = call.principal
        caller = caller_of(principal)
        if caller.is_root:
            return  # the account's root user manages its own account
        action = f"iam:{call.operation}"
        denied = (
            f"User: {principal.arn} is not authorized to perform: {action} on resource: {resource}"
        )
        session_without_mfa = principal.temporary and principal.mfa_authenticated_at is None
        if session_without_mfa and principal.principal_type == "User":
            raise AccessDeniedException(
                f"{denied} because temporary credentials from GetSessionToken need MFA to call IAM"
            )
        request = AuthorizationRequest(
            principal=principal,
            action=action,
            resource_arn=resource,
            resource_account=call.account_id,
            region=call.region,
            when=self._clock.now(),
            source_ip=call.source_ip,
            secure_transport=call.secure_transport,
        )
        outcome = evaluate_all(
            self._identities.of(caller.arn), caller, action, resource, condition_keys_of(request)
        )
        if outcome.denied:
            raise AccessDeniedException(
                f"{denied} with an explicit deny in an identity-based policy"
            )
        if outcome.reach is Reach.NONE:
            raise AccessDeniedException(
                f"{denied} because no identity-based policy allows the {action} action"
            )

    # -- users ----------------------------------------------------------------------------

    def create_user(self, call: AdminCall) -> dict[str, Any]:
        _refuse_path(call.params)
        if "PermissionsBoundary" in call.params:
            raise IamError("ValidationError", "Permissions boundaries are not supported.")
        tags = _tags(call.params)
        roles.check_tags(tags)
        user = users.add_user(self._db, self._clock, call.account_id, call.params["UserName"], tags)
        return {"User": _user(user, tags)}

    def get_user(self, call: AdminCall) -> dict[str, Any]:
        name = call.params.get("UserName") or _own_user_name(call)
        if name is None:
            created = self._account_created(call.account_id)
            arn = f"arn:aws:iam::{call.account_id}:root"
            return {
                "User": {"Path": "/", "UserId": call.account_id, "Arn": arn, "CreateDate": created}
            }
        with self._db.transaction(readonly=True) as tx:
            user = _existing_user(tx.get_user(call.account_id, name), name)
            tags = tx.principal_tags(user.arn)
        return {"User": _user(user, tags)}

    def list_users(self, call: AdminCall) -> dict[str, Any]:
        _refuse_path(call.params, "PathPrefix")
        after, limit = _page(call.params)
        with self._db.transaction(readonly=True) as tx:
            found = tx.list_users(call.account_id, after, limit + 1)
        return _paged("Users", [(u.user_name, _user(u, ())) for u in found], limit)

    def delete_user(self, call: AdminCall) -> None:
        roles.delete_user(self._db, call.account_id, call.params["UserName"])

    # -- access keys ----------------------------------------------------------------------

    def create_access_key(self, call: AdminCall) -> dict[str, Any]:
        name = _key_owner(call)
        issued = users.create_access_key(
            self._db, self._root_key, self._clock, call.account_id, name
        )
        with self._db.transaction(readonly=True) as tx:
            record = tx.get_access_key(issued.access_key_id)
        assert record is not None
        key = _access_key(record, name)
        key["SecretAccessKey"] = issued.secret_access_key
        return {"AccessKey": key}

    def list_access_keys(self, call: AdminCall) -> dict[str, Any]:
        name = _key_owner(call)
        found = users.list_access_keys(self._db, call.account_id, name)
        return {"AccessKeyMetadata": [_access_key(r, name) for r in found], "IsTruncated": False}

    def update_access_key(self, call: AdminCall) -> None:
        params = call.params
        owner = users.principal_arn(call.account_id, _key_owner(call))
        users.set_access_key_status(
            self._db, call.account_id, params["AccessKeyId"], params["Status"], owner
        )

    def delete_access_key(self, call: AdminCall) -> None:
        owner = users.principal_arn(call.account_id, _key_owner(call))
        users.delete_access_key(self._db, call.account_id, call.params["AccessKeyId"], owner)

    # -- inline policies (of a user or a role: ``kind``) ----------------------------------

    def put_policy(self, call: AdminCall, kind: str) -> None:
        p = call.params
        put = users.put_user_policy if kind == "user" else roles.put_role_policy
        put(self._db, call.account_id, p[_MEMBER[kind]], p["PolicyName"], p["PolicyDocument"])

    def get_policy(self, call: AdminCall, kind: str) -> dict[str, Any]:
        name, documents = self._inline_policies(call, kind)
        policy = call.params["PolicyName"]
        if policy not in documents:
            raise IamError("NoSuchEntity", f"The {kind} policy with name {policy} cannot be found.")
        return {_MEMBER[kind]: name, "PolicyName": policy, "PolicyDocument": documents[policy]}

    def list_policies(self, call: AdminCall, kind: str) -> dict[str, Any]:
        _, documents = self._inline_policies(call, kind)
        return {"PolicyNames": sorted(documents), "IsTruncated": False}

    def delete_policy(self, call: AdminCall, kind: str) -> None:
        p = call.params
        delete = users.delete_user_policy if kind == "user" else roles.delete_role_policy
        delete(self._db, call.account_id, p[_MEMBER[kind]], p["PolicyName"])

    def _inline_policies(self, call: AdminCall, kind: str) -> tuple[str, dict[str, str]]:
        name = call.params[_MEMBER[kind]]
        with self._db.transaction(readonly=True) as tx:
            if kind == "user":
                user = _existing_user(tx.get_user(call.account_id, name), name)
                texts = tx.user_policies(user.arn)
            else:
                role = _existing_role(tx.get_role(call.account_id, name), name)
                texts = tx.role_policies(role.arn)
        return name, dict(texts)

    # -- roles ----------------------------------------------------------------------------

    def create_role(self, call: AdminCall) -> dict[str, Any]:
        p = call.params
        _refuse_path(p)
        for unsupported in ("PermissionsBoundary", "Description"):
            if p.get(unsupported):
                raise IamError("ValidationError", f"{unsupported} is not supported.")
        tags = _tags(p)
        roles.check_tags(tags)
        role = roles.create_role(
            self._db,
            self._clock,
            call.account_id,
            p["RoleName"],
            p["AssumeRolePolicyDocument"],
            p.get("MaxSessionDuration", roles.MIN_SESSION_DURATION),
            tags,
        )
        return {"Role": _role(role, tags)}

    def get_role(self, call: AdminCall) -> dict[str, Any]:
        name = call.params["RoleName"]
        with self._db.transaction(readonly=True) as tx:
            role = _existing_role(tx.get_role(call.account_id, name), name)
            tags = tx.principal_tags(role.arn)
        return {"Role": _role(role, tags)}

    def list_roles(self, call: AdminCall) -> dict[str, Any]:
        _refuse_path(call.params, "PathPrefix")
        after, limit = _page(call.params)
        with self._db.transaction(readonly=True) as tx:
            found = tx.list_roles(call.account_id, after, limit + 1)
        return _paged("Roles", [(r.role_name, _role(r, ())) for r in found], limit)

    def update_assume_role_policy(self, call: AdminCall) -> None:
        p = call.params
        roles.update_trust_policy(self._db, call.account_id, p["RoleName"], p["PolicyDocument"])

    def delete_role(self, call: AdminCall) -> None:
        roles.delete_role(self._db, call.account_id, call.params["RoleName"])

    # -- tags (of a user or a role: ``kind``) ---------------------------------------------

    def tag(self, call: AdminCall, kind: str) -> None:
        name = call.params[_MEMBER[kind]]
        roles.tag_principal(self._db, call.account_id, kind, name, _tags(call.params))

    def untag(self, call: AdminCall, kind: str) -> None:
        name, keys = call.params[_MEMBER[kind]], call.params["TagKeys"]
        roles.untag_principal(self._db, call.account_id, kind, name, keys)

    def list_tags(self, call: AdminCall, kind: str) -> dict[str, Any]:
        name = call.params[_MEMBER[kind]]
        found = roles.list_principal_tags(self._db, call.account_id, kind, name)
        return {"Tags": _tag_list(found), "IsTruncated": False}

    def _account_created(self, account_id: str) -> dt.datetime:
        with self._db.transaction(readonly=True) as tx:
            created = tx.account_created_at(account_id)
        return created or self._clock.now()


# -- resources ------------------------------------------------------------------------------


def _named_user(call: AdminCall) -> str:
    return call.user_arn(call.params["UserName"])


def _named_role(call: AdminCall) -> str:
    return call.role_arn(call.params["RoleName"])


def _account_wide(call: AdminCall) -> str:
    return "*"  # IAM's List* actions have no resource type: policies allow them on "*"


def _user_or_self(call: AdminCall) -> str:
    name = call.params.get("UserName") or _own_user_name(call)
    return call.user_arn(name) if name else call.principal.arn


def _own_user_name(call: AdminCall) -> str | None:
    """The caller's user name when it is a user; None for the root user. A role session has
    no user to act on: it must name one (IAM's error)."""
    principal = call.principal
    if principal.principal_type == "Account":
        return None
    if principal.principal_type != "User":
        raise IamError(
            "ValidationError", "Must specify userName when calling with non-User credentials"
        )
    return principal.arn.rsplit("/", 1)[1]


def _key_owner(call: AdminCall) -> str | None:
    return call.params.get("UserName") or _own_user_name(call)


_MEMBER = {"user": "UserName", "role": "RoleName"}


def _per_kind(kind: str, resource: Resource) -> dict[str, AdminOperation]:
    """The inline-policy and tag operations of users or of roles (IAM's PutUserPolicy and
    PutRolePolicy, TagUser and TagRole, …), one handler for both kinds."""
    noun = kind.capitalize()
    handlers: dict[str, Callable[[IamAdministration, AdminCall, str], Any]] = {
        f"Put{noun}Policy": IamAdministration.put_policy,
        f"Get{noun}Policy": IamAdministration.get_policy,
        f"List{noun}Policies": IamAdministration.list_policies,
        f"Delete{noun}Policy": IamAdministration.delete_policy,
        f"Tag{noun}": IamAdministration.tag,
        f"Untag{noun}": IamAdministration.untag,
        f"List{noun}Tags": IamAdministration.list_tags,
    }
    return {
        name: AdminOperation(functools.partial(_with_kind, handler, kind), resource)
        for name, handler in handlers.items()
    }


def _with_kind(
    handler: Callable[[IamAdministration, AdminCall, str], Any],
    kind: str,
    admin: IamAdministration,
    call: AdminCall,
) -> Any:
    return handler(admin, call, kind)


OPERATIONS: dict[str, AdminOperation] = {
    "CreateUser": AdminOperation(IamAdministration.create_user, _named_user),
    "GetUser": AdminOperation(IamAdministration.get_user, _user_or_self),
    "ListUsers": AdminOperation(IamAdministration.list_users, _account_wide),
    "DeleteUser": AdminOperation(IamAdministration.delete_user, _named_user),
    "CreateAccessKey": AdminOperation(IamAdministration.create_access_key, _user_or_self),
    "ListAccessKeys": AdminOperation(IamAdministration.list_access_keys, _user_or_self),
    "UpdateAccessKey": AdminOperation(IamAdministration.update_access_key, _user_or_self),
    "DeleteAccessKey": AdminOperation(IamAdministration.delete_access_key, _user_or_self),
    **_per_kind("user", _named_user),
    "CreateRole": AdminOperation(IamAdministration.create_role, _named_role),
    "GetRole": AdminOperation(IamAdministration.get_role, _named_role),
    "ListRoles": AdminOperation(IamAdministration.list_roles, _account_wide),
    "UpdateAssumeRolePolicy": AdminOperation(
        IamAdministration.update_assume_role_policy, _named_role
    ),
    "DeleteRole": AdminOperation(IamAdministration.delete_role, _named_role),
    **_per_kind("role", _named_role),
}


# -- shapes ---------------------------------------------------------------------------------


def _refuse_path(params: Mapping[str, Any], member: str = "Path") -> None:
    # ARNs here have no path: a user is arn:aws:iam::<account>:user/<name>.
    if params.get(member, "/") != "/":
        raise IamError("ValidationError", f"Only the path / is supported ({member}).")


def _page(params: Mapping[str, Any]) -> tuple[str, int]:
    return params.get("Marker", ""), params.get("MaxItems", _DEFAULT_MAX_ITEMS)


def _paged(member: str, found: list[tuple[str, dict[str, Any]]], limit: int) -> dict[str, Any]:
    """A page of at most ``limit`` of ``found`` (name, shape) pairs, read one past the limit
    to know whether more follow; the marker is the page's last name."""
    page = found[:limit]
    result: dict[str, Any] = {member: [shape for _, shape in page], "IsTruncated": False}
    if len(found) > limit:
        result.update(IsTruncated=True, Marker=page[-1][0])
    return result


def _tags(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [(tag["Key"], tag["Value"]) for tag in params.get("Tags", [])]


def _tag_list(tags: Any) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags]


def _user(user: UserRecord, tags: Any) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "Path": "/",
        "UserName": user.user_name,
        "UserId": user.user_id,
        "Arn": user.arn,
        "CreateDate": user.created_at,
    }
    if tags:
        shape["Tags"] = _tag_list(tags)
    return shape


def _role(role: RoleRecord, tags: Any) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "Path": "/",
        "RoleName": role.role_name,
        "RoleId": role.role_id,
        "Arn": role.arn,
        "CreateDate": role.created_at,
        "AssumeRolePolicyDocument": role.trust_policy,
        "MaxSessionDuration": role.max_session_duration,
    }
    if tags:
        shape["Tags"] = _tag_list(tags)
    return shape


def _access_key(record: AccessKeyRecord, user_name: str | None) -> dict[str, Any]:
    # The root user's keys carry the account id where a user's carry its name.
    return {
        "UserName": user_name or record.account_id,
        "AccessKeyId": record.access_key_id,
        "Status": record.status,
        "CreateDate": record.created_at,
    }


def _existing_user(user: UserRecord | None, name: str) -> UserRecord:
    if user is None:
        raise IamError("NoSuchEntity", f"The user with name {name} cannot be found.")
    return user


def _existing_role(role: RoleRecord | None, name: str) -> RoleRecord:
    if role is None:
        raise IamError("NoSuchEntity", f"The role with name {name} cannot be found.")
    return role
