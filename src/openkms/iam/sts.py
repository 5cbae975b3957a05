"""STS: AssumeRole and GetSessionToken, issuing temporary credentials whose session token is
sealed and self-contained (``openkms.auth.session_tokens``).

AssumeRole is decided as AWS decides it: the role's trust policy (a resource-based policy
whose resource is the role) must allow the caller ``sts:AssumeRole`` (and ``sts:TagSession``
when the request has session tags), and nothing may deny it. A trust policy naming the
caller itself (or everyone) is enough within the role's account; one naming the caller's
account delegates to the caller's identity policies, which must allow the action on the role
too, as they must for any caller of another account. An unknown role is refused exactly like
a role that does not trust the caller, so a caller learns nothing of roles it may not assume.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from openkms.auth.session_tokens import SessionTokens, new_session_access_key_id
from openkms.authz.authorizer import AuthorizationRequest
from openkms.authz.evaluation import (
    Outcome,
    Reach,
    caller_of,
    evaluate,
    evaluate_all,
)
from openkms.authz.identity import IdentityPolicies
from openkms.authz.policy import parse_policy
from openkms.authz.request_keys import PolicyVariables, RequestKeys
from openkms.clock import Clock
from openkms.errors import AccessDeniedException, ValidationException
from openkms.iam.accounts import new_secret_access_key
from openkms.iam.mfa import MfaCodeRefused, authenticate_code
from openkms.iam.principal import Principal, session_arn
from openkms.iam.roles import MAX_TAGS, merge_tags, tag_problem
from openkms.seal import RootKey
from openkms.storage import Database
from openkms.storage.records import RoleRecord

_ROLE_ARN = re.compile(r"arn:aws:iam::(\d{12}):role/([\w+=,.@-]{1,64})", re.ASCII)
_SESSION_NAME = re.compile(r"[\w+=,.@-]*", re.ASCII)
_SERIAL = re.compile(r"[\w+=/:,.@-]*", re.ASCII)
_EXTERNAL_ID = re.compile(r"[\w+=,.@:/-]*", re.ASCII)
_TOKEN_CODE = re.compile(r"\d*", re.ASCII)
# AWS's bounds: AssumeRole 900 s to the role's maximum (default 1 hour); GetSessionToken
# 900 s to 36 hours (default 12), at most 1 hour for a root user; role chaining 1 hour.
ASSUME_ROLE_DURATION = (900, 43200, 3600)
SESSION_TOKEN_DURATION = (900, 129600, 43200)
ROOT_SESSION_MAX = 3600
CHAINED_SESSION_MAX = 3600
_INVALID_CODE = "MultiFactorAuthentication failed with invalid MFA one time pass code."
_UNKNOWN_DEVICE = (
    "MultiFactorAuthentication failed, unable to validate MFA code.  Please verify your MFA "
    "serial number is valid and associated with this user."
)
# Members openkms refuses rather than ignores: each would change what a session may do.
_UNSUPPORTED = {
    "Policy": "session policies (Policy)",
    "PolicyArns": "session policies (PolicyArns)",
    "SourceIdentity": "SourceIdentity",
    "ProvidedContexts": "ProvidedContexts",
}


@dataclass(frozen=True, slots=True)
class TemporaryCredentials:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expiration: dt.datetime
    principal: Principal
    packed_policy_size: int | None = None


class SecurityTokenService:
    def __init__(
        self,
        db: Database,
        root_key: RootKey,
        tokens: SessionTokens,
        clock: Clock,
        identities: IdentityPolicies,
    ) -> None:
        self._db = db
        self._root_key = root_key
        self._tokens = tokens
        self._clock = clock
        self._identities = identities

    # -- AssumeRole -----------------------------------------------------------------------

    def assume_role(
        self,
        caller: Principal,
        params: Mapping[str, str],
        region: str,
        source_ip: str | None = None,
        secure_transport: bool = False,
    ) -> TemporaryCredentials:
        role_arn = _required(params, "RoleArn", 20, 2048)
        session_name = _required(params, "RoleSessionName", 2, 64)
        if not _SESSION_NAME.fullmatch(session_name):
            raise _pattern_error(session_name, "roleSessionName", r"[\w+=,.@-]*")
        requested = "DurationSeconds" in params
        duration = _duration(params, *ASSUME_ROLE_DURATION)
        _refuse_unsupported(params)
        if "ExternalId" in params:
            external_id = _required(params, "ExternalId", 2, 1224)
            if not _EXTERNAL_ID.fullmatch(external_id):
                raise _pattern_error(external_id, "ExternalId", r"[\w+=,.@:\/-]*")
        tags = _session_tags(params)
        serial, code = _mfa_parameters(params)
        if caller.principal_type == "Account":
            raise AccessDeniedException("Roles may not be assumed by root accounts.")
        denied = AccessDeniedException(
            f"User: {caller.arn} is not authorized to perform: sts:AssumeRole on resource: "
            f"{role_arn}"
        )
        matched = _ROLE_ARN.fullmatch(role_arn)
        if matched is None:
            raise denied
        with self._db.transaction(readonly=True) as tx:
            role = tx.get_role(matched.group(1), matched.group(2))
            role_tags = tx.principal_tags(role.arn) if role is not None else []
        if role is None:
            raise denied
        if caller.principal_type == "AssumedRole" and requested and duration > CHAINED_SESSION_MAX:
            raise ValidationException(
                "The requested DurationSeconds exceeds the 1 hour session limit for roles "
                "assumed by role chaining."
            )
        if duration > role.max_session_duration:
            raise ValidationException(
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
            )
        now = self._clock.now()
        deciding = caller
        mfa_at = None
        if serial is not None and code is not None:
            mfa_at = self._mfa(caller, serial, code)
            # The trust policy sees the MFA just proved (aws:MultiFactorAuthPresent).
            deciding = replace(caller, temporary=True, mfa_authenticated_at=mfa_at)
        request = AuthorizationRequest(
            principal=deciding,
            action="sts:AssumeRole",
            resource_arn=role.arn,
            resource_account=role.account_id,
            region=region,
            parameters=_request_parameters(params, tags),
            when=now,
            source_ip=source_ip,
            secure_transport=secure_transport,
        )
        if not self._allowed(request, role):
            raise denied
        if tags and not self._allowed(replace(request, action="sts:TagSession"), role):
            raise AccessDeniedException(
                f"User: {caller.arn} is not authorized to perform: sts:TagSession on resource: "
                f"{role.arn}"
            )
        principal = Principal(
            account_id=role.account_id,
            arn=session_arn(role.account_id, role.role_name, session_name),
            user_id=f"{role.role_id}:{session_name}",
            access_key_id=new_session_access_key_id(),
            # Session tags override the role's tags of the same key (AWS).
            tags=tuple(merge_tags(role_tags, tags)),
            temporary=True,
            mfa_authenticated_at=mfa_at,
        )
        packed = _packed_size(tags) if tags else None
        return self._issue(principal, now, duration, packed)

    def _allowed(self, request: AuthorizationRequest, role: RoleRecord) -> bool:
        caller = caller_of(request.principal)
        made: list[tuple[RequestKeys, PolicyVariables]] = []

        def condition_keys() -> tuple[RequestKeys, PolicyVariables]:
            if not made:
                keys = RequestKeys(request)
                made.append((keys, PolicyVariables(keys)))
            return made[0]

        identity = self._identity_outcome(request, condition_keys)
        if identity.denied:
            return False
        trust = parse_policy(role.trust_policy, trust=True)
        outcome = evaluate(trust, caller, request.action, role.arn, condition_keys)
        if outcome.denied or outcome.reach is Reach.NONE:
            return False
        if caller.account_id == role.account_id and outcome.reach is Reach.DIRECT:
            return True  # the trust policy names the caller: enough within the account
        return identity.reach is not Reach.NONE

    def _identity_outcome(self, request: AuthorizationRequest, condition_keys: Any) -> Outcome:
        caller = caller_of(request.principal)
        return evaluate_all(
            self._identities.of(caller.arn),
            caller,
            request.action,
            request.resource_arn,
            condition_keys,
        )

    # -- GetSessionToken --------------------------------------------------------------------

    def get_session_token(
        self, caller: Principal, params: Mapping[str, str]
    ) -> TemporaryCredentials:
        duration = _duration(params, *SESSION_TOKEN_DURATION)
        serial, code = _mfa_parameters(params)
        if caller.temporary:
            raise AccessDeniedException("Cannot call GetSessionToken with session credentials")
        if caller.principal_type == "Account":
            # AWS: "If the duration is longer than one hour, the session for AWS account
            # owners defaults to one hour."
            duration = min(duration, ROOT_SESSION_MAX)
        now = self._clock.now()
        mfa_at = (
            self._mfa(caller, serial, code) if serial is not None and code is not None else None
        )
        principal = Principal(
            account_id=caller.account_id,
            arn=caller.arn,
            user_id=caller.user_id,
            access_key_id=new_session_access_key_id(),
            tags=caller.tags,
            temporary=True,
            mfa_authenticated_at=mfa_at,
        )
        return self._issue(principal, now, duration, None)

    # -- both ------------------------------------------------------------------------------

    def _mfa(self, caller: Principal, serial: str, code: str) -> dt.datetime:
        user_name = caller.arn.rsplit("/", 1)[-1] if ":user/" in caller.arn else None
        try:
            return authenticate_code(
                self._db, self._root_key, self._clock, serial, caller.account_id, user_name, code
            )
        except MfaCodeRefused as refused:
            raise AccessDeniedException(
                _INVALID_CODE if refused.invalid_code else _UNKNOWN_DEVICE
            ) from None

    def _issue(
        self, principal: Principal, now: dt.datetime, duration: int, packed: int | None
    ) -> TemporaryCredentials:
        secret = new_secret_access_key()
        # Whole seconds, as AWS's Expiration is.
        expires = now.replace(microsecond=0) + dt.timedelta(seconds=duration)
        token = self._tokens.seal(principal, secret, expires, now.replace(microsecond=0))
        return TemporaryCredentials(
            principal.access_key_id, secret, token, expires, principal, packed
        )


# -- request members ------------------------------------------------------------------------


def _constraint(value: str, member: str, constraint: str) -> ValidationException:
    # AWS's form of a model constraint failure.
    return ValidationException(
        f"1 validation error detected: Value '{value}' at '{member[0].lower() + member[1:]}' "
        f"failed to satisfy constraint: {constraint}"
    )


def _pattern_error(value: str, member: str, pattern: str) -> ValidationException:
    return _constraint(value, member, f"Member must satisfy regular expression pattern: {pattern}")


def _required(params: Mapping[str, str], member: str, low: int, high: int) -> str:
    value = params.get(member)
    if value is None:
        name = member[0].lower() + member[1:]
        raise ValidationException(
            f"1 validation error detected: Value null at '{name}' failed to satisfy "
            "constraint: Member must not be null"
        )
    if len(value) < low:
        raise _constraint(value, member, f"Member must have length greater than or equal to {low}")
    if len(value) > high:
        raise _constraint(value, member, f"Member must have length less than or equal to {high}")
    return value


def _duration(params: Mapping[str, str], low: int, high: int, default: int) -> int:
    text = params.get("DurationSeconds")
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise _constraint(text, "DurationSeconds", "Member must be an integer") from None
    if value < low:
        raise _constraint(
            text, "DurationSeconds", f"Member must have value greater than or equal to {low}"
        )
    if value > high:
        raise _constraint(
            text, "DurationSeconds", f"Member must have value less than or equal to {high}"
        )
    return value


def _refuse_unsupported(params: Mapping[str, str]) -> None:
    for name in params:
        member = name.split(".", 1)[0]
        if member in _UNSUPPORTED:
            raise ValidationException(f"openkms does not support {_UNSUPPORTED[member]}.")


def _members(params: Mapping[str, str], prefix: str) -> dict[int, dict[str, str]]:
    """``Tags.member.1.Key=a`` … as {1: {"Key": "a", …}} (the Query protocol's lists)."""
    found: dict[int, dict[str, str]] = {}
    for name, value in params.items():
        head, _, rest = name.partition(".member.")
        if head != prefix or not rest:
            continue
        index, _, field_name = rest.partition(".")
        if not index.isdigit():
            continue
        found.setdefault(int(index), {})[field_name] = value
    return found


def _session_tags(params: Mapping[str, str]) -> list[tuple[str, str]]:
    members = _members(params, "Tags")
    if len(members) > MAX_TAGS:
        raise _constraint(
            "[…]", "Tags", f"Member must have length less than or equal to {MAX_TAGS}"
        )
    tags: list[tuple[str, str]] = []
    for index in sorted(members):
        member = members[index]
        if "Key" not in member or "Value" not in member:
            raise ValidationException("Each session tag must have a Key and a Value.")
        key, value = member["Key"], member["Value"]
        problem = tag_problem(key, value)
        if problem is not None:
            raise ValidationException(f"Invalid session tag {key!r}: {problem}.")
        tags.append((key, value))
    if len({key.lower() for key, _ in tags}) != len(tags):
        raise ValidationException(
            "Duplicate tag keys found. Please note that Tag keys are case insensitive."
        )
    # TransitiveTagKeys (role chaining) are accepted and not carried further: documented.
    return tags


def _mfa_parameters(params: Mapping[str, str]) -> tuple[str | None, str | None]:
    serial, code = params.get("SerialNumber"), params.get("TokenCode")
    if serial is not None:
        _required(params, "SerialNumber", 9, 256)
        if not _SERIAL.fullmatch(serial):
            raise _pattern_error(serial, "SerialNumber", r"[\w+=/:,.@-]*")
    if code is not None:
        _required(params, "TokenCode", 6, 6)
        if not _TOKEN_CODE.fullmatch(code):
            raise _pattern_error(code, "TokenCode", r"[\d]*")
    if (serial is None) != (code is None):
        raise ValidationException("SerialNumber and TokenCode must be given together.")
    return serial, code


def _request_parameters(params: Mapping[str, str], tags: list[tuple[str, str]]) -> dict[str, Any]:
    """The request as condition keys read it (aws:RequestTag/…, aws:TagKeys, sts:…)."""
    parameters: dict[str, Any] = {"RoleSessionName": params.get("RoleSessionName")}
    if "ExternalId" in params:
        parameters["ExternalId"] = params["ExternalId"]
    if tags:
        parameters["Tags"] = [{"TagKey": k, "TagValue": v} for k, v in tags]
    return parameters


def _packed_size(tags: list[tuple[str, str]]) -> int:
    """PackedPolicySize: how much of the session-tag allowance the tags take, in percent (AWS
    does not publish its packing; this is the share of 50 full-size tags)."""
    used = sum(len(k) + len(v) for k, v in tags)
    return max(1, min(100, round(100 * used / (MAX_TAGS * 384))))
