"""A policy statement's ``Condition`` block, checked and evaluated as AWS IAM does.

Sources: the IAM User Guide's ``reference_policies_elements_condition_operators``,
``reference_policies_multi-value-conditions``, ``reference_policies_elements_condition`` and
``reference_policies_variables``. Where the guide is silent, the choice made is stated where it
is made; the ones a policy author can notice:

- A multi-valued (list) request value under an operator with no set qualifier: a positive
  operator matches if any request value matches any policy value, and a negated one is its
  negation (no request value matches any policy value). The guide only says not to do this.
- An empty list is the key "resolved to a null data set": absent for every operator, Null
  included (``kms:EncryptionContextKeys`` with no encryption context is ``[]`` and KMS's guide
  uses ``"Null": {"kms:EncryptionContextKeys": false}`` to require a context).
- Under ForAllValues/ForAnyValue an empty-string member is null and is left out of the set
  (the guide: "resolve to a null data set, such as an empty string").
- ``...IfExists`` makes an absent key true under a set qualifier too.
- Operator names are case-sensitive (IAM answers ``Invalid Condition type : stringEquals``);
  condition key names are not.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import datetime
import functools
import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

ContextValue = str | bool | int | float | datetime.datetime | list[str] | None


class ConditionError(ValueError):
    """A Condition block that is not valid policy grammar (unknown operator, value of the
    wrong type for the operator, a set operator on a non-list...). Message safe to show; used
    by the policy validator to answer MalformedPolicyDocumentException."""


class _Kind(Enum):
    STRING_EQUALS = "string-equals"
    STRING_EQUALS_IGNORE_CASE = "string-equals-ignore-case"
    STRING_LIKE = "string-like"
    NUMERIC = "numeric"
    DATE = "date"
    BOOL = "bool"
    BINARY = "binary"
    IP = "ip"
    ARN = "arn"
    NULL = "null"


# The kinds whose values may hold policy variables; the guide forbids them elsewhere, so there
# a "${...}" is only text (and so not a valid number, date, address or base64).
_VARIABLE_KINDS = frozenset(
    {_Kind.STRING_EQUALS, _Kind.STRING_EQUALS_IGNORE_CASE, _Kind.STRING_LIKE, _Kind.ARN, _Kind.BOOL}
)

_Compare = Callable[[Decimal, Decimal], bool]


def _eq(a: Decimal, b: Decimal) -> bool:
    return a == b


def _lt(a: Decimal, b: Decimal) -> bool:
    return a < b


def _le(a: Decimal, b: Decimal) -> bool:
    return a <= b


def _gt(a: Decimal, b: Decimal) -> bool:
    return a > b


def _ge(a: Decimal, b: Decimal) -> bool:
    return a >= b


@dataclass(frozen=True, slots=True)
class _Base:
    kind: _Kind
    negated: bool = False
    # The request value comes first: NumericLessThan means request < policy.
    compare: _Compare = _eq
    sets: bool = True  # may take ForAnyValue:/ForAllValues:


_BASE_OPERATORS: dict[str, _Base] = {
    "StringEquals": _Base(_Kind.STRING_EQUALS),
    "StringNotEquals": _Base(_Kind.STRING_EQUALS, negated=True),
    "StringEqualsIgnoreCase": _Base(_Kind.STRING_EQUALS_IGNORE_CASE),
    "StringNotEqualsIgnoreCase": _Base(_Kind.STRING_EQUALS_IGNORE_CASE, negated=True),
    "StringLike": _Base(_Kind.STRING_LIKE),
    "StringNotLike": _Base(_Kind.STRING_LIKE, negated=True),
    "NumericEquals": _Base(_Kind.NUMERIC),
    "NumericNotEquals": _Base(_Kind.NUMERIC, negated=True),
    "NumericLessThan": _Base(_Kind.NUMERIC, compare=_lt),
    "NumericLessThanEquals": _Base(_Kind.NUMERIC, compare=_le),
    "NumericGreaterThan": _Base(_Kind.NUMERIC, compare=_gt),
    "NumericGreaterThanEquals": _Base(_Kind.NUMERIC, compare=_ge),
    "DateEquals": _Base(_Kind.DATE),
    "DateNotEquals": _Base(_Kind.DATE, negated=True),
    "DateLessThan": _Base(_Kind.DATE, compare=_lt),
    "DateLessThanEquals": _Base(_Kind.DATE, compare=_le),
    "DateGreaterThan": _Base(_Kind.DATE, compare=_gt),
    "DateGreaterThanEquals": _Base(_Kind.DATE, compare=_ge),
    "Bool": _Base(_Kind.BOOL),
    "BinaryEquals": _Base(_Kind.BINARY, sets=False),
    "IpAddress": _Base(_Kind.IP),
    "NotIpAddress": _Base(_Kind.IP, negated=True),
    # The guide: ArnEquals and ArnLike "behave identically", as do their negations.
    "ArnEquals": _Base(_Kind.ARN),
    "ArnLike": _Base(_Kind.ARN),
    "ArnNotEquals": _Base(_Kind.ARN, negated=True),
    "ArnNotLike": _Base(_Kind.ARN, negated=True),
    "Null": _Base(_Kind.NULL, sets=False),
}


class _SetOperator(Enum):
    ANY = "ForAnyValue:"
    ALL = "ForAllValues:"


@dataclass(frozen=True, slots=True)
class _Operator:
    base: _Base
    if_exists: bool
    set_operator: _SetOperator | None


@functools.lru_cache(maxsize=256)
def _operator(name: str) -> _Operator:
    rest = name
    set_operator = None
    for candidate in _SetOperator:
        if rest.startswith(candidate.value):
            set_operator = candidate
            rest = rest.removeprefix(candidate.value)
            break
    if_exists = rest.endswith("IfExists")
    base = _BASE_OPERATORS.get(rest.removesuffix("IfExists") if if_exists else rest)
    if (
        base is None
        or (if_exists and base.kind is _Kind.NULL)
        or (set_operator is not None and not base.sets)
    ):
        # IAM's own words for an operator it does not know.
        raise ConditionError(f"Invalid Condition type : {name}")
    return _Operator(base, if_exists, set_operator)


# ---------------------------------------------------------------------------------------------
# Policy variables and wildcards

# One character of a resolved string value, and whether it is a wildcard: only a * or ? the
# author typed is one; text a variable brought in, and ${*} ${?} ${$}, are literal.
_Char = tuple[str, bool]
_Pattern = tuple[_Char, ...]

_VARIABLE = re.compile(r"\$\{([^}]*)\}")
# ${name, 'default'}: the guide writes a comma and a space; any spacing is taken.
_WITH_DEFAULT = re.compile(r"\s*([^,]*?)\s*,\s*'([^']*)'\s*")
_ESCAPES = frozenset({"*", "?", "$"})


def _typed(text: str) -> _Pattern:
    return tuple((char, char in "*?") for char in text)


def _literal(text: str) -> _Pattern:
    return tuple((char, False) for char in text)


@functools.lru_cache(maxsize=4096)
def _untouched(text: str) -> _Pattern:
    return _typed(text)


def _resolve(text: str, variables: Mapping[str, str] | None) -> _Pattern | None:
    """The value with its policy variables replaced, or None if one has no value and no
    default: such a value "is effectively null. There is no equal or like value"."""
    if variables is None or "${" not in text:
        # No variables: a policy in the 2008-10-17 language reads ${...} as plain text.
        return _untouched(text)
    chars: list[_Char] = []
    position = 0
    for match in _VARIABLE.finditer(text):
        chars.extend(_typed(text[position : match.start()]))
        position = match.end()
        inner = match.group(1)
        if inner in _ESCAPES:
            chars.append((inner, False))
            continue
        with_default = _WITH_DEFAULT.fullmatch(inner)
        name, default = with_default.groups() if with_default else (inner.strip(), None)
        # Variable names are condition key names, so case-insensitive.
        value = variables.get(name.lower()) if name else None
        if value is None:
            value = default
        if value is None:
            return None
        chars.extend(_literal(value))
    chars.extend(_typed(text[position:]))
    return tuple(chars)


def _plain(pattern: _Pattern) -> str:
    return "".join(char for char, _ in pattern)


def wildcard_matches(pattern: str, text: str, variables: Mapping[str, str] | None = None) -> bool:
    """IAM's * and ? wildcards, in linear time (for Action and Resource elements too), with
    ``variables`` substituted for ${...} (a variable without a value matches nothing)."""
    resolved = _resolve(pattern, variables)
    return resolved is not None and _glob(resolved, text)


def _glob(pattern: Sequence[_Char], text: str) -> bool:
    """Whether text matches, * being any run (empty too) and ? any one character.

    Backtracks only to the last *, so a hostile pattern costs len(pattern) * len(text) at
    worst, where a translated regular expression can cost exponential time.
    """
    p = t = 0
    star = -1
    star_t = 0
    while t < len(text):
        if p < len(pattern):
            char, wild = pattern[p]
            if wild and char == "*":
                star, star_t = p, t
                p += 1
                continue
            if (wild and char == "?") or char == text[t]:
                p += 1
                t += 1
                continue
        if star < 0:
            return False
        p = star + 1
        star_t += 1
        t = star_t
    return all(wild and char == "*" for char, wild in pattern[p:])


_ARN_SEGMENTS = 6


def _arn_segments(pattern: _Pattern) -> list[_Pattern] | None:
    """The six segments of an ARN pattern; the resource is all after the fifth colon."""
    segments: list[_Pattern] = []
    start = 0
    for index, (char, _) in enumerate(pattern):
        if char == ":" and len(segments) < _ARN_SEGMENTS - 1:
            segments.append(pattern[start:index])
            start = index + 1
    segments.append(pattern[start:])
    return segments if len(segments) == _ARN_SEGMENTS else None


def _arn_matches(pattern: _Pattern, value: str) -> bool:
    # Each segment is matched on its own, so a * or ? before the resource never crosses a
    # colon (the guide's example: "arn:aws:sns:*:111122223333:..." fails under ArnLike
    # against a value whose * would have to span "us-east-2:999999999999:store/abc:").
    segments = _arn_segments(pattern)
    if segments is None:
        return False  # not an ARN pattern: it matches no ARN
    parts = value.split(":", _ARN_SEGMENTS - 1)
    if len(parts) != _ARN_SEGMENTS:
        return False
    return all(_glob(segment, part) for segment, part in zip(segments, parts, strict=True))


# ---------------------------------------------------------------------------------------------
# Numbers and dates

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_EPOCH = re.compile(r"[+-]?\d+(?:\.\d+)?", re.ASCII)
# The W3C profile of ISO 8601 (YYYY, YYYY-MM, YYYY-MM-DD, then hh:mm, hh:mm:ss, hh:mm:ss.s
# with a zone). A time without a zone is taken as UTC rather than refused.
_ISO_DATE = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:[Tt](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?"
    r"([Zz]|[+-]\d{2}:?\d{2})?)?)?)?",
    re.ASCII,
)
_EPOCH_START = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def _decimal(value: object) -> Decimal | None:
    """A JSON number or numeric string as an exact decimal (bool is not a number here)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        # repr gives the shortest text that reads back as this float: 0.1, not 0.1000...0555.
        return Decimal(repr(value)) if value == value and abs(value) != float("inf") else None
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        try:
            return Decimal(value)
        except ArithmeticError:  # an exponent beyond what a decimal holds: not a number
            return None
    return None


def _seconds(moment: datetime.datetime) -> Decimal:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)  # a naive time is taken as UTC
    delta = moment - _EPOCH_START
    return (
        Decimal(delta.days) * 86400
        + Decimal(delta.seconds)
        + Decimal(delta.microseconds).scaleb(-6)
    )


@functools.lru_cache(maxsize=1024)
def _parse_date(text: str) -> Decimal | None:
    """An ISO 8601 date or epoch seconds, as exact seconds since the epoch."""
    match = _ISO_DATE.fullmatch(text)
    if match is None:
        # A bare four-digit string is read as a year (above), as ISO reads it, not as 1970.
        return Decimal(text) if _EPOCH.fullmatch(text) else None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    fields = (
        int(year),
        int(month or 1),
        int(day or 1),
        int(hour or 0),
        int(minute or 0),
        int(second or 0),
    )
    try:
        datetime.datetime(*fields)  # a real calendar date and clock time
    except ValueError:
        return None
    offset = 0
    if zone is not None and zone not in "Zz":
        hours, minutes = int(zone[1:3]), int(zone[-2:])
        if hours > 23 or minutes > 59:
            return None
        offset = (hours * 60 + minutes) * 60 * (-1 if zone[0] == "-" else 1)
    seconds = Decimal(calendar.timegm((*fields, 0, 0, 0))) - offset
    if fraction:
        seconds += Decimal(f"0.{fraction}")
    return seconds


def _date(value: object) -> Decimal | None:
    if isinstance(value, datetime.datetime):
        return _seconds(value)
    if isinstance(value, str):
        return _parse_date(value)
    return _decimal(value)  # epoch seconds as a number


def _number(value: object) -> Decimal | None:
    if isinstance(value, datetime.datetime):
        return _seconds(value)  # aws:EpochTime may be held as a time
    return _decimal(value)


# ---------------------------------------------------------------------------------------------
# Request values


def _as_string(value: object) -> str | None:
    """A request value as the string operators see it."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.UTC).replace(tzinfo=None)
        return value.isoformat(timespec="seconds") + "Z"
    return None


def _as_bool(value: object) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower()
    return None


def _base64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


_IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_CIDR = re.compile(r"[0-9A-Fa-f:.]+(?:/\d{1,3})?", re.ASCII)


@functools.lru_cache(maxsize=1024)
def _network(text: str) -> _IpNetwork | None:
    # CIDR only: the ipaddress module would also take a netmask ("/255.0.0.0"). Host bits
    # after the prefix are ignored rather than refused.
    if not _CIDR.fullmatch(text):
        return None
    try:
        return ipaddress.ip_network(text, strict=False)  # a bare address is /32 or /128
    except ValueError:
        return None


def _address_in(value: object, network: _IpNetwork) -> bool:
    if not isinstance(value, str):
        return False
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False
    candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [address]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        # A dual-stack listener reports an IPv4 caller as ::ffff:a.b.c.d; it is that caller.
        candidates.append(address.ipv4_mapped)
    return any(each.version == network.version and each in network for each in candidates)


# ---------------------------------------------------------------------------------------------
# Parsing a block

_Scalar = str | bool | int | float
_Matcher = Callable[[object], bool]


@dataclass(frozen=True, slots=True)
class _Clause:
    operator: _Operator
    key: str  # lower case
    # Per kind: str (string, ARN and Bool kinds, before variables), Decimal (numeric, date),
    # bytes (binary), a network (IP), bool (Null: True means "the key is absent").
    values: tuple[object, ...]
    # The tests of the values, when no variable can change them (worked out once).
    fixed: tuple[_Matcher, ...] | None


def _scalars(name: str, key: str, raw: object) -> list[_Scalar]:
    scalars: list[_Scalar] = []
    for item in raw if isinstance(raw, list) else [raw]:
        if not isinstance(item, str | bool | int | float):
            raise ConditionError(
                f"The value of condition key {key} under {name} must be a string, number or "
                "boolean, or a list of them."
            )
        scalars.append(item)
    return scalars


def _policy_value(name: str, key: str, kind: _Kind, value: _Scalar) -> object:
    def wrong(what: str) -> ConditionError:
        return ConditionError(f"{name} needs {what} for condition key {key}, not {value!r}.")

    if kind is _Kind.NUMERIC:
        number = _decimal(value)
        if number is None:
            raise wrong("a number")
        return number
    if kind is _Kind.DATE:
        moment = _date(value)
        if moment is None:
            raise wrong("an ISO 8601 date or epoch seconds")
        return moment
    if kind is _Kind.IP:
        network = _network(value) if isinstance(value, str) else None
        if network is None:
            raise wrong("an IP address or CIDR range")
        return network
    if kind is _Kind.BINARY:
        data = _base64(value) if isinstance(value, str) else None
        if data is None:
            raise wrong("base64")
        return data
    if kind is _Kind.NULL:
        flag = _as_bool(value)
        if flag is None:
            raise wrong('"true" or "false"')
        return flag == "true"
    if kind is _Kind.BOOL:
        flag = _as_bool(value)
        if flag is not None:
            return flag
        if isinstance(value, str) and "${" in value:
            return value  # a variable: known only per request
        raise wrong('"true" or "false"')
    # String and ARN kinds compare text; a JSON number or boolean is its JSON text.
    text = _as_string(value)
    assert text is not None
    return text


def _parse(block: object) -> tuple[_Clause, ...]:
    if not isinstance(block, Mapping):
        raise ConditionError("The Condition element must be an object of condition operators.")
    clauses: list[_Clause] = []
    for name, keys in block.items():
        if not isinstance(name, str):
            raise ConditionError("Condition operators must be strings.")
        operator = _operator(name)
        if not isinstance(keys, Mapping):
            raise ConditionError(f"The value of {name} must be an object of condition keys.")
        for key, raw in keys.items():
            if not isinstance(key, str) or not key:
                raise ConditionError(f"{name} names a condition key that is not a string.")
            kind = operator.base.kind
            values = tuple(
                _policy_value(name, key, kind, value) for value in _scalars(name, key, raw)
            )
            fixed = None
            if kind is not _Kind.NULL and not any(
                isinstance(value, str) and "${" in value for value in values
            ):
                fixed = tuple(_matchers(operator, values, None))
            clauses.append(_Clause(operator, key.lower(), values, fixed))
    return tuple(clauses)


# Parsed blocks by identity: a policy document is parsed once and its Condition objects are
# kept (and never changed), so each statement's block is parsed once, not per request. The
# entry holds the block itself, so its id cannot be reused while the entry exists.
_PARSED: dict[int, tuple[object, tuple[_Clause, ...]]] = {}
_PARSED_LIMIT = 4096


def _clauses(block: object) -> tuple[_Clause, ...]:
    entry = _PARSED.get(id(block))
    if entry is not None and entry[0] is block:
        return entry[1]
    clauses = _parse(block)
    if len(_PARSED) >= _PARSED_LIMIT:
        _PARSED.clear()  # rare (thousands of live policies): start again rather than track age
    _PARSED[id(block)] = (block, clauses)
    return clauses


# ---------------------------------------------------------------------------------------------
# Evaluating a clause


def _matchers(
    operator: _Operator, values: tuple[object, ...], variables: Mapping[str, str] | None
) -> list[_Matcher]:
    """One test per policy value; a value whose variable has no value has none."""
    kind = operator.base.kind
    matchers: list[_Matcher] = []
    for value in values:
        if kind in _VARIABLE_KINDS:
            assert isinstance(value, str)
            pattern = _resolve(value, variables)
            if pattern is None:
                continue
            matchers.append(_text_matcher(kind, pattern))
        elif kind is _Kind.NUMERIC or kind is _Kind.DATE:
            assert isinstance(value, Decimal)
            matchers.append(_ordered_matcher(kind, operator.base.compare, value))
        elif kind is _Kind.BINARY:
            assert isinstance(value, bytes)
            matchers.append(functools.partial(_binary_equals, value))
        else:
            assert kind is _Kind.IP
            assert isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network)
            matchers.append(functools.partial(_in_network, value))
    return matchers


def _text_matcher(kind: _Kind, pattern: _Pattern) -> _Matcher:
    if kind is _Kind.STRING_LIKE:
        return lambda value: (text := _as_string(value)) is not None and _glob(pattern, text)
    if kind is _Kind.ARN:
        return lambda value: isinstance(value, str) and _arn_matches(pattern, value)
    plain = _plain(pattern)  # equality: a typed * or ? is just a character
    if kind is _Kind.STRING_EQUALS:
        return lambda value: _as_string(value) == plain
    if kind is _Kind.STRING_EQUALS_IGNORE_CASE:
        lowered = plain.lower()
        return lambda value: (text := _as_string(value)) is not None and text.lower() == lowered
    assert kind is _Kind.BOOL
    flag = plain.lower()  # a variable may bring in anything; _as_bool only gives true/false
    return lambda value: _as_bool(value) == flag


def _ordered_matcher(kind: _Kind, compare: _Compare, policy: Decimal) -> _Matcher:
    convert = _number if kind is _Kind.NUMERIC else _date

    def matches(value: object) -> bool:
        request = convert(value)
        return request is not None and compare(request, policy)

    return matches


def _binary_equals(policy: bytes, value: object) -> bool:
    return isinstance(value, str) and _base64(value) == policy


def _in_network(network: _IpNetwork, value: object) -> bool:
    return _address_in(value, network)


def _clause_matches(
    clause: _Clause, context: Mapping[str, ContextValue], variables: Mapping[str, str] | None
) -> bool:
    operator = clause.operator
    base = operator.base
    found = context.get(clause.key)
    absent = found is None or (isinstance(found, list) and not found)
    if base.kind is _Kind.NULL:
        return any(wants_absent == absent for wants_absent in clause.values)
    if absent:
        if operator.if_exists or operator.set_operator is _SetOperator.ALL:
            return True
        if operator.set_operator is _SetOperator.ANY:
            return False
        # A missing key matches nothing, so a negated operator ("matches none") holds.
        return base.negated
    requested: list[object] = list(found) if isinstance(found, list) else [found]
    matchers = clause.fixed
    if matchers is None:
        matchers = tuple(_matchers(operator, clause.values, variables))

    def holds(value: object) -> bool:
        # OR across the policy's values; a negated operator is their NOR.
        return any(matcher(value) for matcher in matchers) != base.negated

    if operator.set_operator is not None:
        members = [value for value in requested if value != ""]  # "" is a null member
        if operator.set_operator is _SetOperator.ALL:
            return all(holds(value) for value in members)
        return any(holds(value) for value in members)
    # No set qualifier. One request value is the usual case; for several, a positive
    # operator matches if any does, and a negated one only if none matches (its negation).
    if base.negated:
        return all(holds(value) for value in requested)
    return any(holds(value) for value in requested)


# ---------------------------------------------------------------------------------------------
# The API


def check_condition_block(block: object) -> None:
    """Validate a statement's Condition value (a dict of operator -> {key: value-or-list})
    without a request; raise ConditionError."""
    _parse(block)


def condition_block_matches(
    block: Mapping[str, Mapping[str, object]],
    context: Mapping[str, ContextValue],
    variables: Mapping[str, str] | None = None,
) -> bool:
    """Whether every operator/key in the block matches the request context (AND across
    operators and keys, OR across a key's values; for negated operators AND across values
    i.e. 'matches none').

    ``context`` is read only with ``get`` by lower-case key name (it may compute values on
    demand); None, a missing key or an empty list is an absent key. ``variables`` holds the
    policy variables' values by lower-case name; None means the policy's language has no
    variables (Version 2008-10-17), so ``${...}`` is plain text, while a mapping, even an
    empty one, turns substitution on. Raises ConditionError for a block that
    check_condition_block would refuse.
    """
    return all(_clause_matches(clause, context, variables) for clause in _clauses(block))
