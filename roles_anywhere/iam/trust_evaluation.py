"""Evaluate a role trust policy for the request Roles Anywhere makes to STS, and say why.

Roles Anywhere calls STS as the service principal ``rolesanywhere.amazonaws.com`` for three actions:
``sts:AssumeRole``, ``sts:TagSession`` (the certificate's attributes become session tags) and
``sts:SetSourceIdentity``. All three must be allowed. Per action, IAM's rule: an explicit Deny in any
matching statement wins; otherwise an Allow is needed; otherwise the default is deny. A statement
matches when its Principal/NotPrincipal, Action/NotAction and every Condition hold. Any document is
accepted, not only the ones this project generates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from roles_anywhere.iam.conditions import (
    PolicyError,
    condition_holds,
    glob_match,
    lookup,
    parse_operator,
    policy_values,
)
from roles_anywhere.iam.policy import ROLES_ANYWHERE_SERVICE, TRUST_ACTIONS


@dataclass(frozen=True)
class ConditionResult:
    """One operator/key pair of a statement, and whether it held for this request."""

    operator: str
    key: str
    values: tuple[str, ...]
    actual: tuple[str, ...] | None
    holds: bool


@dataclass(frozen=True)
class StatementResult:
    """Why a statement did or did not apply to one action."""

    index: int
    sid: str | None
    effect: str
    principal_matches: bool
    action_matches: bool
    conditions: tuple[ConditionResult, ...]

    @property
    def applies(self) -> bool:
        """The statement takes part in the decision for this action."""
        return self.principal_matches and self.action_matches and all(c.holds for c in self.conditions)

    @property
    def label(self) -> str:
        """``statement 0 (Sid)`` for messages."""
        return f"statement {self.index}" + (f" ({self.sid})" if self.sid else "")


@dataclass(frozen=True)
class ActionDecision:
    """The decision for one STS action: allowed, explicitly denied, or denied by default."""

    action: str
    decision: str  # "allowed" | "explicit-deny" | "implicit-deny"
    statements: tuple[StatementResult, ...] = field(default=())

    @property
    def allowed(self) -> bool:
        """True only for an Allow with no Deny."""
        return self.decision == "allowed"


@dataclass(frozen=True)
class TrustDecision:
    """All three actions; the request is allowed only if each one is."""

    actions: tuple[ActionDecision, ...]

    @property
    def allowed(self) -> bool:
        """Every action allowed."""
        return all(a.allowed for a in self.actions)

    def reasons(self) -> list[str]:
        """Plain-language reasons for the actions not allowed; actions failing alike share one line."""
        grouped: dict[str, list[str]] = {}
        for action in self.actions:
            if not action.allowed:
                grouped.setdefault(_reason(action), []).append(action.action)
        return [f"{', '.join(actions)}: {reason}" for reason, actions in grouped.items()]


def evaluate_trust_policy(
    document: Mapping[str, Any], context: Mapping[str, Sequence[str]], *, source: str = "trust policy"
) -> TrustDecision:
    """Evaluate ``document`` for Roles Anywhere's request with condition ``context`` (key → values)."""
    statements = policy_statements(document, source)
    decisions = []
    for action in TRUST_ACTIONS:
        results = tuple(_statement(i, s, action, context, source) for i, s in enumerate(statements))
        applying = [r for r in results if r.applies]
        if any(r.effect == "Deny" for r in applying):
            decision = "explicit-deny"
        elif any(r.effect == "Allow" for r in applying):
            decision = "allowed"
        else:
            decision = "implicit-deny"
        decisions.append(ActionDecision(action, decision, results))
    return TrustDecision(tuple(decisions))


def policy_statements(
    document: Mapping[str, Any], source: str, *, trust: bool = True
) -> list[Mapping[str, Any]]:
    """``document``'s statements, checked as IAM checks them.

    A trust policy names principals and no resources; an identity-based policy (``trust=False``)
    the other way round.
    """
    if not isinstance(document, Mapping):
        raise PolicyError(f"{source}: a policy document must be a JSON object")
    statements = document.get("Statement")
    if isinstance(statements, Mapping):
        statements = [statements]
    if not isinstance(statements, list) or not statements:
        raise PolicyError(f"{source}: Statement must be a statement or a non-empty list of them")
    required, forbidden = ("Principal", "Resource") if trust else ("Resource", "Principal")
    for index, statement in enumerate(statements):
        where = f"{source}: Statement[{index}]"
        if not isinstance(statement, Mapping):
            raise PolicyError(f"{where} must be an object")
        if statement.get("Effect") not in ("Allow", "Deny"):
            raise PolicyError(f"{where}: Effect must be 'Allow' or 'Deny'")
        for plain, negated in ((required, f"Not{required}"), ("Action", "NotAction")):
            if (plain in statement) == (negated in statement):
                raise PolicyError(f"{where}: needs exactly one of {plain} or {negated}")
        if forbidden in statement or f"Not{forbidden}" in statement:
            kind = "a trust policy" if trust else "an identity-based policy"
            raise PolicyError(f"{where}: {kind} cannot have {forbidden} or Not{forbidden}")
        condition = statement.get("Condition", {})
        if not isinstance(condition, Mapping) or not all(isinstance(v, Mapping) for v in condition.values()):
            raise PolicyError(f"{where}: Condition must map operators to {{key: values}} objects")
    return statements


def _principal_matches(principal: Any, where: str) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, Mapping):
        raise PolicyError(f"{where}: Principal must be '*' or an object such as {{\"Service\": …}}")
    for kind, raw in principal.items():
        values = raw if isinstance(raw, list) else [raw]
        if kind == "Service" and ROLES_ANYWHERE_SERVICE in values:
            return True
        if kind == "AWS" and "*" in values:
            return True
    return False


def action_matches(actions: Any, action: str, where: str) -> bool:
    """Whether an ``Action``/``NotAction`` list names ``action`` (IAM wildcards, case-insensitive)."""
    items = actions if isinstance(actions, list) else [actions]
    if not all(isinstance(item, str) for item in items):
        raise PolicyError(f"{where}: Action must be a string or a list of strings")
    return any(glob_match(pattern, action, ignore_case=True) for pattern in items)


def _statement(
    index: int, statement: Mapping[str, Any], action: str, context: Mapping[str, Sequence[str]], source: str
) -> StatementResult:
    where = f"{source}: Statement[{index}]"
    if "Principal" in statement:
        principal = _principal_matches(statement["Principal"], where)
    else:
        principal = not _principal_matches(statement["NotPrincipal"], where)
    if "Action" in statement:
        action_ok = action_matches(statement["Action"], action, where)
    else:
        action_ok = not action_matches(statement["NotAction"], action, where)
    return StatementResult(
        index=index,
        sid=statement.get("Sid"),
        effect=statement["Effect"],
        principal_matches=principal,
        action_matches=action_ok,
        conditions=condition_results(statement, context, where),
    )


def condition_results(
    statement: Mapping[str, Any], context: Mapping[str, Sequence[str]], where: str
) -> tuple[ConditionResult, ...]:
    """Each operator/key pair of ``statement``'s Condition, evaluated against ``context``."""
    results = []
    for operator_text, keys in statement.get("Condition", {}).items():
        operator = parse_operator(operator_text)
        for key, raw in keys.items():
            values = policy_values(raw, f"{where}.Condition.{operator_text}.{key}")
            actual = lookup(context, key)
            results.append(
                ConditionResult(
                    operator=operator_text,
                    key=key,
                    values=tuple(values),
                    actual=None if actual is None else tuple(actual),
                    holds=condition_holds(operator, values, actual),
                )
            )
    return tuple(results)


def _reason(action: ActionDecision) -> str:
    if action.decision == "explicit-deny":
        deny = next(r for r in action.statements if r.applies and r.effect == "Deny")
        return f"explicitly denied by {deny.label}"
    allows = [
        r for r in action.statements if r.effect == "Allow" and r.principal_matches and r.action_matches
    ]
    if not allows:
        return f"no Allow statement names the principal {ROLES_ANYWHERE_SERVICE} and this action"
    failed = [
        f"{r.label}: {c.operator} {c.key} {list(c.values)} but the request has "
        + ("no such key" if c.actual is None else repr(c.actual[0] if len(c.actual) == 1 else list(c.actual)))
        for r in allows
        for c in r.conditions
        if not c.holds
    ]
    return "no Allow statement's conditions hold — " + "; ".join(failed)
