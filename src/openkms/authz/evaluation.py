"""Evaluating one policy document for one request, as AWS evaluates a resource policy: an
explicit Deny that applies wins; otherwise an Allow that applies, and how it reaches the
caller (naming it, or naming its account and so delegating to the account's IAM policies).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum

from openkms.authz.conditions import ContextValue, condition_block_matches
from openkms.authz.policy import Effect, PolicyDocument, Principals, Statement
from openkms.iam.principal import Principal


class Reach(IntEnum):
    """How an Allow statement's principal reaches the caller (higher is stronger)."""

    NONE = 0
    ACCOUNT = 1  # the caller's account: the account's IAM policies decide (delegation)
    DIRECT = 2  # the caller itself, or everyone


@dataclass(frozen=True, slots=True)
class Caller:
    arn: str  # the ARN policies name the caller by: for a role session, the role's
    account_id: str
    is_root: bool
    account_arn: str  # the account's root ARN, as policies name the account
    # A role session is also named by its own ARN (arn:aws:sts::…:assumed-role/R/S).
    session_arn: str | None = None

    def named_in(self, names: frozenset[str]) -> bool:
        return self.arn in names or (self.session_arn is not None and self.session_arn in names)


@functools.lru_cache(maxsize=10_000)
def caller_of(principal: Principal) -> Caller:
    account_arn = f"arn:aws:iam::{principal.account_id}:root"
    policy_arn = principal.policy_arn
    return Caller(
        arn=policy_arn,
        account_id=principal.account_id,
        is_root=principal.arn == account_arn,
        account_arn=account_arn,
        session_arn=principal.arn if policy_arn != principal.arn else None,
    )


@dataclass(frozen=True, slots=True)
class Outcome:
    denied: bool  # an explicit Deny applies
    reach: Reach  # the strongest Allow that applies


ConditionKeys = Callable[[], tuple[Mapping[str, ContextValue], Mapping[str, str]]]


def evaluate(
    document: PolicyDocument,
    caller: Caller,
    action: str,
    resource: str,
    condition_keys: ConditionKeys,
) -> Outcome:
    """``condition_keys`` gives the request's condition keys and policy variables; it is
    called only if a statement that otherwise applies has a Condition."""
    reach = Reach.NONE
    action = action.lower()
    keys: tuple[Mapping[str, ContextValue], Mapping[str, str]] | None = None
    for statement in document.statements:
        if statement.effect is Effect.ALLOW and reach is Reach.DIRECT:
            continue  # nothing stronger to find; only a Deny can change the outcome
        found = _reach(statement, caller)
        if found is Reach.NONE:
            continue
        if not statement.action_matches(action):
            continue
        if statement.resource_variables and document.variables:
            if keys is None:
                keys = condition_keys()
            if not statement.resource_matches(resource, keys[1]):
                continue
        elif not statement.resource_matches(resource):
            continue
        if statement.condition is not None:
            if keys is None:
                keys = condition_keys()
            conditions, variables = keys
            if not condition_block_matches(
                statement.condition, conditions, variables if document.variables else None
            ):
                continue
        if statement.effect is Effect.DENY:
            return _OUTCOMES[(True, reach)]
        if found > reach:
            reach = found
    return _OUTCOMES[(False, reach)]


# Every outcome there can be, made once: evaluation runs on every request.
_OUTCOMES = {(denied, reach): Outcome(denied, reach) for denied in (False, True) for reach in Reach}
NOTHING_APPLIES = _OUTCOMES[(False, Reach.NONE)]


def evaluation_outcome(denied: bool, reach: Reach) -> Outcome:
    return _OUTCOMES[(denied, reach)]


def evaluate_all(
    documents: Iterable[PolicyDocument],
    caller: Caller,
    action: str,
    resource: str,
    condition_keys: ConditionKeys,
) -> Outcome:
    """Several documents of one principal (its identity policies) as one: the first explicit
    Deny, else the strongest Allow of any."""
    reach = Reach.NONE
    for document in documents:
        outcome = evaluate(document, caller, action, resource, condition_keys)
        if outcome.denied:
            return outcome
        reach = max(reach, outcome.reach)
    return evaluation_outcome(False, reach)


def _reach(statement: Statement, caller: Caller) -> Reach:
    if statement.principals is not None:
        return principal_reach(statement.principals, caller)
    if statement.not_principals is None:
        return Reach.DIRECT  # an identity policy's statement: its holder is the principal
    listed = statement.not_principals
    # Only the caller itself is exempt: listing the account exempts its root user, not every
    # principal in it (AWS's pattern lists both the user and the account to exempt the user).
    excluded = listed.everyone or caller.named_in(listed.aws)
    return Reach.NONE if excluded else Reach.DIRECT


def principal_reach(principals: Principals, caller: Caller) -> Reach:
    if principals.everyone or caller.named_in(principals.aws):
        return Reach.DIRECT
    if caller.account_arn in principals.aws:
        # The account's root user is the account; anyone else needs an IAM policy too.
        return Reach.DIRECT if caller.is_root else Reach.ACCOUNT
    return Reach.NONE
