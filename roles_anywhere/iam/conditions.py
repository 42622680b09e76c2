"""IAM condition operators, evaluated as AWS documents them, for the trust-policy simulator.

Supported: the String and Arn families (``StringEquals``, ``StringNotEquals``, ``…IgnoreCase``,
``StringLike``, ``StringNotLike``, ``ArnEquals``, ``ArnLike``, ``ArnNotEquals``, ``ArnNotLike``),
``Bool`` and ``Null``; each with ``…IfExists`` (not ``Null``) and the ``ForAnyValue:`` /
``ForAllValues:`` set prefixes. Rules (IAM User Guide, "Condition operators"):

- condition key names are case-insensitive, values case-sensitive (except ``…IgnoreCase``);
- several values for one key are ORed; keys, and operators, are ANDed (see ``trust_evaluation``);
- ``*`` and ``?`` are wildcards only in the ``Like`` operators; ``*`` also matches ``/``;
- ``ArnLike`` compares the six ``:``-separated ARN parts one by one;
- a key missing from the request: positive operators are false, negated ones (``…Not…``) true,
  ``…IfExists`` true, ``ForAllValues:`` true (the empty set), ``ForAnyValue:`` false.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache

from roles_anywhere.errors import RolesAnywhereError


class PolicyError(RolesAnywhereError):
    """A policy the simulator cannot evaluate: AWS would reject it, or it uses an operator we lack."""


Matcher = Callable[[str, str], bool]


@cache
def _glob(pattern: str, *, ignore_case: bool = False) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def glob_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM wildcard match: ``*`` any run of characters (``/`` included), ``?`` exactly one."""
    return _glob(pattern, ignore_case=ignore_case).fullmatch(value) is not None


def _arn_like(value: str, pattern: str) -> bool:
    value_parts, pattern_parts = value.split(":", 5), pattern.split(":", 5)
    if len(value_parts) != 6 or len(pattern_parts) != 6:
        return False
    return all(glob_match(p, v) for p, v in zip(pattern_parts, value_parts, strict=True))


def _bool(value: str, policy: str) -> bool:
    return value.lower() == policy.lower()


_BASE: dict[str, tuple[Matcher, bool]] = {
    # name: (matcher(context value, policy value), negated)
    "StringEquals": (lambda v, p: v == p, False),
    "StringNotEquals": (lambda v, p: v == p, True),
    "StringEqualsIgnoreCase": (lambda v, p: v.casefold() == p.casefold(), False),
    "StringNotEqualsIgnoreCase": (lambda v, p: v.casefold() == p.casefold(), True),
    "StringLike": (lambda v, p: glob_match(p, v), False),
    "StringNotLike": (lambda v, p: glob_match(p, v), True),
    "ArnEquals": (lambda v, p: v == p, False),
    "ArnNotEquals": (lambda v, p: v == p, True),
    "ArnLike": (_arn_like, False),
    "ArnNotLike": (_arn_like, True),
    "Bool": (_bool, False),
}
SUPPORTED_OPERATORS = (*_BASE, "Null")


@dataclass(frozen=True)
class Operator:
    """A parsed condition operator: ``ForAnyValue:StringLikeIfExists`` → set, base, if_exists."""

    text: str
    base: str
    set_operator: str | None
    if_exists: bool

    @property
    def negated(self) -> bool:
        """``…Not…`` operators hold when no value matches."""
        return self.base != "Null" and _BASE[self.base][1]


def parse_operator(text: str) -> Operator:
    """Split ``text`` into its parts; an operator IAM does not know, or we cannot evaluate, raises."""
    set_operator = None
    base = text
    for prefix in ("ForAnyValue:", "ForAllValues:"):
        if base.startswith(prefix):
            set_operator, base = prefix[:-1], base.removeprefix(prefix)
    if_exists = base.endswith("IfExists") and base != "IfExists"
    base = base.removesuffix("IfExists") if if_exists else base
    if base not in SUPPORTED_OPERATORS:
        raise PolicyError(
            f"condition operator {text!r} is not one the simulator evaluates "
            f"({', '.join(SUPPORTED_OPERATORS)}, with IfExists and ForAnyValue:/ForAllValues:)"
        )
    if base == "Null" and (if_exists or set_operator):
        raise PolicyError(f"condition operator {text!r}: Null takes neither IfExists nor a set prefix")
    return Operator(text, base, set_operator, if_exists)


def policy_values(raw: object, where: str) -> list[str]:
    """Condition values as IAM reads them: one value or a list; numbers and booleans as text."""
    items = raw if isinstance(raw, list) else [raw]
    values = []
    for item in items:
        if isinstance(item, bool):
            values.append("true" if item else "false")
        elif isinstance(item, (str, int, float)):
            values.append(str(item))
        else:
            raise PolicyError(f"{where}: condition values must be strings, numbers or booleans")
    return values


def condition_holds(operator: Operator, values: Sequence[str], context: Sequence[str] | None) -> bool:
    """Does one operator/key pair hold? ``context`` is the key's values, ``None`` when absent."""
    if operator.base == "Null":
        wanted = {v.lower() for v in values}
        if not wanted <= {"true", "false"}:
            raise PolicyError(f"{operator.text}: values must be 'true' or 'false'")
        return (context is None) in {v == "true" for v in wanted}
    if context is None:
        return _holds_without_key(operator)
    matcher, negated = _BASE[operator.base]

    def single(value: str) -> bool:
        matched = any(matcher(value, policy) for policy in values)
        return not matched if negated else matched

    if operator.set_operator == "ForAllValues" or (operator.set_operator is None and negated):
        # ForAllValues: every value satisfies; a plain negated operator: no value may match.
        return all(single(value) for value in context)
    return any(single(value) for value in context)


def _holds_without_key(operator: Operator) -> bool:
    """A key the request does not have: IfExists and ForAllValues hold, ForAnyValue does not."""
    if operator.if_exists or operator.set_operator == "ForAllValues":
        return True
    if operator.set_operator == "ForAnyValue":
        return False
    return operator.negated


def lookup(context: Mapping[str, Sequence[str]], key: str) -> Sequence[str] | None:
    """The values of ``key`` in ``context``; key names are case-insensitive."""
    folded = key.casefold()
    for name, values in context.items():
        if name.casefold() == folded:
            return values
    return None
