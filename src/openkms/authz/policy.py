"""Policy documents (key policies, and later IAM policies): parsed and checked once into
statements that match quickly, and refused in AWS's words when they are not valid grammar.

A parsed document is cached by its text (``parse_policy``), so a key's policy is parsed once
however many requests it decides; the key directory's invalidation brings a changed policy
text, which is simply another cache entry.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

import orjson

from openkms.authz.conditions import ConditionError, check_condition_block, wildcard_matches
from openkms.errors import LimitExceededException, MalformedPolicyDocumentException

# AWS: a key policy is at most 32 KB; beyond it KMS answers LimitExceededException.
MAX_KEY_POLICY_BYTES = 32_768
_VERSIONS = ("2012-10-17", "2008-10-17")
_ACCOUNT_ID = re.compile(r"\d{12}", re.ASCII)
# arn:aws:iam::111122223333:root, …:user/path/name, …:role/path/name;
# arn:aws:sts::111122223333:assumed-role/R/S
_IAM_PRINCIPAL = re.compile(
    r"arn:aws[a-z-]*:(?:iam::\d{12}:(?:root|user/[\w+=,.@/-]+|role/[\w+=,.@/-]+)"
    r"|sts::\d{12}:(?:assumed-role/[\w+=,.@-]+/[\w+=,.@-]+|federated-user/[\w+=,.@-]+))",
    re.ASCII,
)
_SERVICE_PRINCIPAL = re.compile(r"[a-z0-9.-]+\.amazonaws\.com(?:\.cn)?", re.ASCII)
INVALID_PRINCIPALS = "Policy contains a statement with one or more invalid principals."


class Effect(Enum):
    ALLOW = "Allow"
    DENY = "Deny"


@dataclass(frozen=True, slots=True)
class Principals:
    """Who a Principal (or NotPrincipal) element names. An account id is kept as its root
    ARN: AWS treats the two alike."""

    everyone: bool = False
    aws: frozenset[str] = frozenset()
    services: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Patterns:
    """Action or Resource names with IAM's * and ? wildcards (actions ignore case). The
    common shapes, "*" and "kms:*"-like prefixes, are matched without a regular expression:
    every request on a key evaluates them."""

    exact: frozenset[str]
    # Matched by the linear-time glob: a regular expression of a hostile pattern
    # ("*?*?*?…x") backtracks for seconds, on the event loop, for every request on the key.
    wildcards: tuple[str, ...]
    prefixes: tuple[str, ...] = ()
    everything: bool = False

    # Resource patterns with ${...} policy variables, matched once the request's values are
    # known (a Version 2012-10-17 document only).
    with_variables: tuple[str, ...] = ()

    def matches(self, value: str, variables: Mapping[str, str] | None = None) -> bool:
        if self.everything or value in self.exact or value.startswith(self.prefixes):
            return True
        if any(wildcard_matches(pattern, value) for pattern in self.wildcards):
            return True
        return variables is not None and any(
            wildcard_matches(pattern, value, variables) for pattern in self.with_variables
        )


@dataclass(frozen=True, slots=True)
class Statement:
    effect: Effect
    sid: str | None
    principals: Principals | None  # None: the statement has NotPrincipal instead
    not_principals: Principals | None
    actions: Patterns | None  # None: NotAction instead
    not_actions: Patterns | None
    resources: Patterns | None  # None: NotResource instead
    not_resources: Patterns | None
    condition: Mapping[str, Mapping[str, Any]] | None

    def action_matches(self, action: str) -> bool:
        """``action`` in lower case."""
        if self.actions is not None:
            return self.actions.matches(action)
        assert self.not_actions is not None
        return not self.not_actions.matches(action)

    @property
    def resource_variables(self) -> bool:
        """Whether matching the resource needs the request's policy variables."""
        patterns = self.resources if self.resources is not None else self.not_resources
        return patterns is not None and bool(patterns.with_variables)

    def resource_matches(self, resource: str, variables: Mapping[str, str] | None = None) -> bool:
        if self.resources is not None:
            return self.resources.matches(resource, variables)
        assert self.not_resources is not None
        return not self.not_resources.matches(resource, variables)


@dataclass(frozen=True, slots=True)
class PolicyDocument:
    statements: tuple[Statement, ...]
    # Whether ${aws:username}-style variables are substituted (Version 2012-10-17 only).
    variables: bool


def check_key_policy(text: str) -> PolicyDocument:
    """A key policy as CreateKey and PutKeyPolicy take it: within AWS's size, valid grammar,
    a principal in every statement."""
    if len(text.encode()) > MAX_KEY_POLICY_BYTES:
        raise LimitExceededException(
            f"The key policy is larger than the {MAX_KEY_POLICY_BYTES} bytes a key policy may have."
        )
    return parse_policy(text, require_principal=True)


@functools.lru_cache(maxsize=4096)
def parse_policy(text: str, require_principal: bool = True, trust: bool = False) -> PolicyDocument:
    """``trust``: a role's trust policy, whose resource is the role itself, so its statements
    name a principal and no Resource (IAM: "Has prohibited field Resource")."""
    try:
        # orjson bounds nesting depth, so a deeply nested document is an error, not a crash.
        document = orjson.loads(text)
    except (ValueError, RecursionError):
        raise MalformedPolicyDocumentException("The policy document is not valid JSON.") from None
    if not isinstance(document, dict):
        raise MalformedPolicyDocumentException("The policy document must be a JSON object.")
    version = document.get("Version", "2008-10-17")
    if version not in _VERSIONS:
        raise MalformedPolicyDocumentException(
            f"The policy document's Version must be 2012-10-17 (or 2008-10-17), not {version!r}."
        )
    statements: Any = document.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not statements:
        raise MalformedPolicyDocumentException(
            "The policy document must contain at least one statement."
        )
    variables = version == "2012-10-17"
    return PolicyDocument(
        tuple(_statement(s, require_principal or trust, variables, trust) for s in statements),
        variables=variables,
    )


def _statement(raw: Any, require_principal: bool, variables: bool, trust: bool) -> Statement:
    if not isinstance(raw, dict):
        raise MalformedPolicyDocumentException("Each policy statement must be an object.")
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise MalformedPolicyDocumentException(
            "Each policy statement must have an Effect of Allow or Deny."
        )
    if ("Action" in raw) == ("NotAction" in raw):
        raise MalformedPolicyDocumentException(
            "Each policy statement must name exactly one of Action or NotAction."
        )
    if "Principal" in raw and "NotPrincipal" in raw:
        raise MalformedPolicyDocumentException(INVALID_PRINCIPALS)
    if require_principal and "Principal" not in raw and "NotPrincipal" not in raw:
        raise MalformedPolicyDocumentException("Policy contains a statement with no principal.")
    if trust:
        if "Resource" in raw or "NotResource" in raw:
            raise MalformedPolicyDocumentException("Has prohibited field Resource")
    elif ("Resource" in raw) == ("NotResource" in raw):
        # AWS refuses key policy statements without one since August 2025, as IAM does.
        raise MalformedPolicyDocumentException(
            "Each policy statement must name exactly one of Resource or NotResource."
        )
    condition = raw.get("Condition")
    if condition is not None:
        try:
            check_condition_block(condition)
        except ConditionError as error:
            raise MalformedPolicyDocumentException(str(error)) from None
    sid = raw.get("Sid")
    return Statement(
        effect=Effect(effect),
        sid=sid if isinstance(sid, str) else None,
        principals=_principals(raw["Principal"]) if "Principal" in raw else None,
        not_principals=_principals(raw["NotPrincipal"]) if "NotPrincipal" in raw else None,
        actions=_patterns(raw["Action"], "Action", lower=True) if "Action" in raw else None,
        not_actions=(
            _patterns(raw["NotAction"], "NotAction", lower=True) if "NotAction" in raw else None
        ),
        resources=(
            _patterns(raw["Resource"], "Resource", variables=variables)
            if "Resource" in raw
            else _EVERYTHING
            if trust
            else None
        ),
        not_resources=(
            _patterns(raw["NotResource"], "NotResource", variables=variables)
            if "NotResource" in raw
            else None
        ),
        condition=condition,
    )


_EVERYTHING = Patterns(frozenset(), (), ("",), everything=True)


def _strings(value: Any, element: str) -> list[str]:
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, str) and v for v in values):
        raise MalformedPolicyDocumentException(
            f"A policy statement's {element} must be a string or a list of strings."
        )
    return values


def _patterns(value: Any, element: str, lower: bool = False, variables: bool = False) -> Patterns:
    exact: set[str] = set()
    wildcards: list[str] = []
    prefixes: list[str] = []
    with_variables: list[str] = []
    for text in _strings(value, element):
        text = text.lower() if lower else text
        if variables and "${" in text:
            with_variables.append(text)
            continue
        head = text[:-1]
        if text.endswith("*") and "*" not in head and "?" not in head:
            prefixes.append(head)  # "" for "*": every name starts with it
        elif "*" in text or "?" in text:
            wildcards.append(text)
        else:
            exact.add(text)
    return Patterns(
        frozenset(exact),
        tuple(wildcards),
        tuple(prefixes),
        everything="" in prefixes,
        with_variables=tuple(with_variables),
    )


def _principals(value: Any) -> Principals:
    if value == "*":
        return Principals(everyone=True)
    if not isinstance(value, dict) or not value:
        raise MalformedPolicyDocumentException(INVALID_PRINCIPALS)
    everyone = False
    aws: set[str] = set()
    services: set[str] = set()
    for kind, names in value.items():
        try:
            listed = _strings(names, "Principal")
        except MalformedPolicyDocumentException:
            raise MalformedPolicyDocumentException(INVALID_PRINCIPALS) from None
        for name in listed:
            if kind == "AWS":
                if name == "*":
                    everyone = True
                elif _ACCOUNT_ID.fullmatch(name):
                    aws.add(f"arn:aws:iam::{name}:root")
                elif _IAM_PRINCIPAL.fullmatch(name):
                    aws.add(name)
                else:
                    raise MalformedPolicyDocumentException(INVALID_PRINCIPALS)
            elif kind == "Service" and _SERVICE_PRINCIPAL.fullmatch(name):
                services.add(name)
            else:
                raise MalformedPolicyDocumentException(INVALID_PRINCIPALS)
    return Principals(everyone, frozenset(aws), frozenset(services))
