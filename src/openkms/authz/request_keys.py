"""The condition keys of one request (its "request context"), as AWS KMS fills them.

Values are worked out only when a policy's condition asks for them: most statements have no
Condition, and the hot path should not pay for keys nobody reads. A key that does not apply
to the request is absent (``None``), as in AWS; names are looked up in lower case (condition
key names are case-insensitive).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from openkms.authz.conditions import ContextValue

if TYPE_CHECKING:
    from openkms.authz.authorizer import AuthorizationRequest

_Getter = Callable[["AuthorizationRequest"], ContextValue]

# Which request member each parameter-based key reads, by the action being authorised (the
# request's member name differs for ReEncrypt's two sides), and its default when absent.
_ENCRYPTION_CONTEXT = {
    "kms:reencryptfrom": "SourceEncryptionContext",
    "kms:reencryptto": "DestinationEncryptionContext",
}
_ENCRYPTION_ALGORITHM = {
    "kms:reencryptfrom": "SourceEncryptionAlgorithm",
    "kms:reencryptto": "DestinationEncryptionAlgorithm",
}
_ENCRYPTION_ACTIONS = frozenset(
    {
        "kms:encrypt",
        "kms:decrypt",
        "kms:reencryptfrom",
        "kms:reencryptto",
        "kms:generatedatakey",
        "kms:generatedatakeywithoutplaintext",
        "kms:generatedatakeypair",
        "kms:generatedatakeypairwithoutplaintext",
    }
)


def _parameter(
    member: str, actions: frozenset[str] | None = None, default: ContextValue = None
) -> _Getter:
    def get(request: AuthorizationRequest) -> ContextValue:
        if actions is not None and request.action.lower() not in actions:
            return None
        value: ContextValue = request.parameters.get(member, default)
        return value

    return get


def _encryption_context(request: AuthorizationRequest) -> Mapping[str, str] | None:
    action = request.action.lower()
    if action not in _ENCRYPTION_ACTIONS and action != "kms:creategrant":
        return None
    if action == "kms:creategrant":
        # For CreateGrant the context is the one the grant's constraint names.
        constraints = request.parameters.get("Constraints") or {}
        return dict(
            constraints.get("EncryptionContextEquals")
            or constraints.get("EncryptionContextSubset")
            or {}
        )
    member = _ENCRYPTION_CONTEXT.get(action, "EncryptionContext")
    context: Mapping[str, str] = request.parameters.get(member) or {}
    return context


_CREATE_GRANT = frozenset({"kms:creategrant"})
_CREATE_GRANT_FAMILY = frozenset({"kms:creategrant", "kms:listgrants", "kms:revokegrant"})


def _grant_constraint_types(request: AuthorizationRequest) -> ContextValue:
    if request.action.lower() not in _CREATE_GRANT:
        return None
    constraints = request.parameters.get("Constraints")
    return None if not constraints else sorted(constraints)


def _grant_constraint_source_arn(request: AuthorizationRequest) -> ContextValue:
    if request.action.lower() not in _CREATE_GRANT:
        return None
    value: str | None = (request.parameters.get("Constraints") or {}).get("SourceArn")
    return value


def _encryption_context_keys(request: AuthorizationRequest) -> ContextValue:
    context = _encryption_context(request)
    return None if context is None else list(context)


def _encryption_algorithm(request: AuthorizationRequest) -> ContextValue:
    action = request.action.lower()
    if action not in _ENCRYPTION_ACTIONS:
        return None
    member = _ENCRYPTION_ALGORITHM.get(action, "EncryptionAlgorithm")
    value: str = request.parameters.get(member, "SYMMETRIC_DEFAULT")
    return value


def _key_property(attribute: str, create_member: str, create_default: str) -> _Getter:
    """A property of the key, or for CreateKey of the key the request would make."""

    def get(request: AuthorizationRequest) -> ContextValue:
        if request.key is not None:
            value: str = getattr(request.key.record, attribute)
            return value
        if request.action.lower() == "kms:createkey":
            if create_member == "KeySpec":
                spec: str = request.parameters.get(
                    "KeySpec", request.parameters.get("CustomerMasterKeySpec", create_default)
                )
                return spec
            member_value: str = request.parameters.get(create_member, create_default)
            return member_value
        return None

    return get


def _multi_region(request: AuthorizationRequest) -> ContextValue:
    if request.key is not None:
        return request.key.record.multi_region
    if request.action.lower() == "kms:createkey":
        return bool(request.parameters.get("MultiRegion", False))
    return None


# Which request member names the key, by action (ReEncrypt names two keys).
_KEY_MEMBER = {"kms:reencryptfrom": "SourceKeyId", "kms:reencryptto": "DestinationKeyId"}


def _request_alias(request: AuthorizationRequest) -> ContextValue:
    """The alias the caller named the key by (the name, also when it gave the alias ARN)."""
    named = request.parameters.get(_KEY_MEMBER.get(request.action.lower(), "KeyId"))
    if not isinstance(named, str) or request.key is None:
        return None
    if named.startswith("alias/"):
        return named
    if named.startswith("arn:") and ":alias/" in named:
        return "alias/" + named.split(":alias/", 1)[1]
    return None


def _request_tags(request: AuthorizationRequest) -> dict[str, str]:
    tags = request.parameters.get("Tags") or []
    return {tag["TagKey"].lower(): tag["TagValue"] for tag in tags if isinstance(tag, dict)}


def _tag_keys(request: AuthorizationRequest) -> ContextValue:
    if "Tags" in request.parameters:
        return [tag["TagKey"] for tag in request.parameters["Tags"]]
    if "TagKeys" in request.parameters:
        return list(request.parameters["TagKeys"])
    return None


def _epoch(request: AuthorizationRequest) -> ContextValue:
    return int(request.when.timestamp())


def _principal_type(request: AuthorizationRequest) -> ContextValue:
    return request.principal.principal_type


def _mfa_present(request: AuthorizationRequest) -> ContextValue:
    # AWS: absent for long-term credentials, true or false for temporary ones.
    principal = request.principal
    return principal.mfa_authenticated_at is not None if principal.temporary else None


def _mfa_age(request: AuthorizationRequest) -> ContextValue:
    at = request.principal.mfa_authenticated_at
    return None if at is None else max(0, int((request.when - at).total_seconds()))


def _user_id(request: AuthorizationRequest) -> ContextValue:
    return request.principal.user_id


def _username(request: AuthorizationRequest) -> ContextValue:
    arn = request.principal.arn
    return arn.rsplit("/", 1)[-1] if ":user/" in arn else None


_KEYS: dict[str, _Getter] = {
    "kms:calleraccount": lambda r: r.principal.account_id,
    "kms:encryptioncontextkeys": _encryption_context_keys,
    "kms:encryptionalgorithm": _encryption_algorithm,
    "kms:signingalgorithm": _parameter("SigningAlgorithm", frozenset({"kms:sign", "kms:verify"})),
    "kms:messagetype": _parameter("MessageType", frozenset({"kms:sign", "kms:verify"}), "RAW"),
    "kms:macalgorithm": _parameter("MacAlgorithm", frozenset({"kms:generatemac", "kms:verifymac"})),
    "kms:keyagreementalgorithm": _parameter(
        "KeyAgreementAlgorithm", frozenset({"kms:derivesharedsecret"})
    ),
    "kms:datakeypairspec": _parameter(
        "KeyPairSpec",
        frozenset({"kms:generatedatakeypair", "kms:generatedatakeypairwithoutplaintext"}),
    ),
    "kms:keyspec": _key_property("key_spec", "KeySpec", "SYMMETRIC_DEFAULT"),
    "kms:keyusage": _key_property("key_usage", "KeyUsage", "ENCRYPT_DECRYPT"),
    "kms:keyorigin": _key_property("origin", "Origin", "AWS_KMS"),
    "kms:multiregion": _multi_region,
    "kms:requestalias": _request_alias,
    "kms:rotationperiodindays": _parameter(
        "RotationPeriodInDays", frozenset({"kms:enablekeyrotation"}), 365
    ),
    "kms:schedulekeydeletionpendingwindowindays": _parameter(
        "PendingWindowInDays", frozenset({"kms:schedulekeydeletion"}), 30
    ),
    "kms:bypasspolicylockoutsafetycheck": _parameter(
        "BypassPolicyLockoutSafetyCheck", frozenset({"kms:createkey", "kms:putkeypolicy"}), False
    ),
    "kms:wrappingalgorithm": _parameter(
        "WrappingAlgorithm", frozenset({"kms:getparametersforimport"})
    ),
    "kms:wrappingkeyspec": _parameter("WrappingKeySpec", frozenset({"kms:getparametersforimport"})),
    "kms:expirationmodel": _parameter(
        "ExpirationModel", frozenset({"kms:importkeymaterial"}), "KEY_MATERIAL_EXPIRES"
    ),
    "kms:validto": _parameter("ValidTo", frozenset({"kms:importkeymaterial"})),
    "kms:reencryptonsamekey": lambda r: r.same_key,
    # The key's aliases: read from the database only when a condition asks.
    "kms:resourcealiases": lambda r: (
        r.resource_aliases() if r.key is not None and r.resource_aliases is not None else None
    ),
    "kms:grantoperations": _parameter("Operations", _CREATE_GRANT),
    "kms:granteeprincipal": _parameter("GranteePrincipal", _CREATE_GRANT),
    "kms:retiringprincipal": _parameter("RetiringPrincipal", _CREATE_GRANT),
    "kms:grantconstrainttype": _grant_constraint_types,
    "kms:grantconstraintsourcearn": _grant_constraint_source_arn,
    # No openkms caller is an AWS service integrated with KMS.
    "kms:grantisforawsresource": lambda r: (
        False if r.action.lower() in _CREATE_GRANT_FAMILY else None
    ),
    # A role session's aws:PrincipalArn is its role's ARN, as in AWS.
    "aws:principalarn": lambda r: r.principal.policy_arn,
    "aws:principalaccount": lambda r: r.principal.account_id,
    "aws:principaltype": _principal_type,
    "aws:userid": _user_id,
    "aws:username": _username,
    "aws:multifactorauthpresent": _mfa_present,
    "aws:multifactorauthage": _mfa_age,
    "sts:externalid": _parameter("ExternalId", frozenset({"sts:assumerole"})),
    "sts:rolesessionname": _parameter("RoleSessionName", frozenset({"sts:assumerole"})),
    "aws:sourceip": lambda r: r.source_ip,
    "aws:currenttime": lambda r: r.when,
    "aws:epochtime": _epoch,
    "aws:securetransport": lambda r: r.secure_transport,
    "aws:tagkeys": _tag_keys,
}


class RequestKeys(Mapping[str, ContextValue]):
    """The request's condition keys, by lower-case name, computed on first use."""

    def __init__(self, request: AuthorizationRequest) -> None:
        self._request = request
        self._values: dict[str, ContextValue] = {}
        self._resource_tags: dict[str, str] | None = None

    def __getitem__(self, name: str) -> ContextValue:
        name = name.lower()
        if name in self._values:
            return self._values[name]
        value = self._compute(name)
        if value is None:
            raise KeyError(name)
        self._values[name] = value
        return value

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except KeyError:
            return default

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[str]:
        # The keys that exist without a name suffix; per-name keys (encryption context,
        # tags) appear only when asked for by name.
        return iter([name for name in _KEYS if self.get(name) is not None])

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def _tags(self) -> dict[str, str]:
        """The key's tags, read once per request however many tag keys a policy names."""
        if self._resource_tags is None:
            reader = self._request.resource_tags
            self._resource_tags = reader() if reader is not None else {}
        return self._resource_tags

    def _compute(self, name: str) -> ContextValue:
        request = self._request
        getter = _KEYS.get(name)
        if getter is not None:
            return getter(request)
        if name.startswith("kms:encryptioncontext:"):
            context = _encryption_context(request)
            if context is None:
                return None
            wanted = name.removeprefix("kms:encryptioncontext:")
            # The key's name part is case-insensitive; its value is compared as the
            # operator says.
            for key, value in context.items():
                if key.lower() == wanted:
                    return value
            return None
        if name.startswith("aws:principaltag/"):
            return request.principal.tag_map.get(name.removeprefix("aws:principaltag/"))
        if name.startswith("aws:requesttag/"):
            return _request_tags(request).get(name.removeprefix("aws:requesttag/"))
        if name.startswith("aws:resourcetag/"):
            tags = self._tags()
            wanted = name.removeprefix("aws:resourcetag/")
            for key, value in tags.items():
                if key.lower() == wanted:
                    return value
            return None
        return None


class PolicyVariables(Mapping[str, str]):
    """The values ${...} policy variables take: the request's string-valued keys."""

    def __init__(self, keys: RequestKeys) -> None:
        self._keys = keys

    def __getitem__(self, name: str) -> str:
        value = self._keys.get(name)
        if not isinstance(value, str):
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        return (name for name in self._keys if isinstance(self._keys.get(name), str))

    def __len__(self) -> int:
        return sum(1 for _ in self)
