"""What makes a Roles Anywhere trust policy exact, checked on any role, hand-written or ours.

A role that trusts ``rolesanywhere.amazonaws.com`` is assumed by whoever holds a certificate its
conditions admit, so it must name exactly one SPIFFE ID and one trust anchor: ``StringEquals`` on
``aws:PrincipalTag/x509SAN/URI`` and ``ArnEquals`` on ``aws:SourceArn``, for exactly the three
actions Roles Anywhere needs. The structure is checked first (each problem says how to fix it);
then the document is evaluated with this project's condition evaluator for the identity it names,
a sibling identity and another anchor, so a policy that admits more than it seems to is caught too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from roles_anywhere.iam.conditions import PolicyError, parse_operator
from roles_anywhere.iam.policy import ROLES_ANYWHERE_SERVICE, SPIFFE_ID_TAG_KEY, TRUST_ACTIONS
from roles_anywhere.iam.trust_evaluation import evaluate_trust_policy

SOURCE_ARN = "aws:SourceArn"
TRUST_ANCHOR_ARN = re.compile(
    r"arn:aws[a-z-]*:rolesanywhere:[a-z0-9-]{1,32}:\d{12}:trust-anchor/[0-9a-f-]{36}"
)
EXACT_ACTIONS = frozenset(action.lower() for action in TRUST_ACTIONS)
FIX_CONDITION = (
    f'use "Condition": {{"StringEquals": {{"{SPIFFE_ID_TAG_KEY}": "spiffe://<cluster>/<path>"}}, '
    f'"ArnEquals": {{"{SOURCE_ARN}": "<trust anchor ARN>"}}}}'
)


@dataclass(frozen=True)
class Admitted:
    """The one SPIFFE ID and trust anchor an exact trust policy admits."""

    spiffe_id: str
    trust_anchor_arn: str


def trust_document(raw: Any) -> Mapping[str, Any] | None:
    """The trust policy as a document: JSON text or an object; None when unknown (a preview)."""
    if isinstance(raw, Mapping):
        return raw
    if isinstance(raw, str):
        try:
            document = json.loads(raw)
        except (ValueError, RecursionError):  # not JSON, a number past 4,300 digits, nesting too deep
            return None
        return document if isinstance(document, Mapping) else None
    return None


def trusts_roles_anywhere(document: Mapping[str, Any]) -> bool:
    """Whether any Allow statement lets Roles Anywhere (or everyone) in."""
    return any(_admits_service(s) for s in _statements(document) if s.get("Effect") == "Allow")


def trust_problems(document: Mapping[str, Any]) -> list[str]:
    """Why ``document`` is not exact, each with its fix; empty when it is.

    A role Roles Anywhere may assume is assumed through Roles Anywhere only: one Allow statement,
    for one SPIFFE ID through one anchor, and no other Allow statement for anyone else (statements
    are alternatives, so a second one would admit a second identity, anchor or principal).
    """
    allows = [(i, s) for i, s in enumerate(_statements(document)) if s.get("Effect") == "Allow"]
    ours = [(i, s) for i, s in allows if _admits_service(s)]
    problems: list[str] = []
    if len(ours) > 1:
        problems.append(
            f"has {len(ours)} Allow statements for Roles Anywhere, and AWS admits what any of them admits; "
            "fix: one statement, one SPIFFE ID, one anchor (give other workloads their own role)"
        )
    for index, statement in allows:
        if not _admits_service(statement):
            principal = json.dumps(statement.get("Principal"))[:120]
            problems.append(
                f"Statement[{index}]: also lets {principal} assume the role; fix: a role for Roles "
                "Anywhere is assumed through Roles Anywhere only (use another role)"
            )
    for index, statement in ours:
        problems += [f"Statement[{index}]: {p}" for p in _statement_problems(statement)]
    if problems:
        return problems
    admitted = admitted_identity(document)
    if admitted is None:
        return ["no statement names exactly one SPIFFE ID and one trust anchor; " + FIX_CONDITION]
    return _evaluated_problems(ours[0][1], admitted)


def admitted_identity(document: Mapping[str, Any]) -> Admitted | None:
    """The SPIFFE ID and anchor of the Roles Anywhere statement, if there is exactly one."""
    ours = [s for s in _statements(document) if s.get("Effect") == "Allow" and _admits_service(s)]
    if len(ours) != 1:
        return None
    condition = ours[0].get("Condition")
    if not isinstance(condition, Mapping):
        return None
    spiffe = _single(condition.get("StringEquals"), SPIFFE_ID_TAG_KEY)
    anchor = _single(condition.get("ArnEquals"), SOURCE_ARN)
    return Admitted(spiffe, anchor) if spiffe is not None and anchor is not None else None


def _statement_problems(statement: Mapping[str, Any]) -> list[str]:
    problems = []
    principal = statement.get("Principal")
    services = _values(principal.get("Service")) if isinstance(principal, Mapping) else []
    if principal == "*" or (isinstance(principal, Mapping) and "*" in _values(principal.get("AWS"))):
        problems.append(
            f'trusts every principal; fix: "Principal": {{"Service": "{ROLES_ANYWHERE_SERVICE}"}}'
        )
    elif "NotPrincipal" in statement:
        problems.append("uses NotPrincipal; fix: name the principal with Principal")
    elif set(services) != {ROLES_ANYWHERE_SERVICE} or set(principal or {}) != {"Service"}:
        problems.append(
            f"trusts more principals than {ROLES_ANYWHERE_SERVICE}; fix: give the others their own role"
        )
    if "NotAction" in statement:
        problems.append(f'uses NotAction; fix: "Action": {json.dumps(list(TRUST_ACTIONS))}')
    else:
        actions = _values(statement.get("Action"))
        if any("*" in a or "?" in a for a in actions):
            problems.append(f'uses a wildcard action; fix: "Action": {json.dumps(list(TRUST_ACTIONS))}')
        elif {a.lower() for a in actions} != EXACT_ACTIONS:
            problems.append(
                f"allows {sorted(actions)}, not exactly the three Roles Anywhere needs; "
                f'fix: "Action": {json.dumps(list(TRUST_ACTIONS))}'
            )
    return problems + _condition_problems(statement.get("Condition"))


def _condition_problems(condition: Any) -> list[str]:
    if not condition:
        return [
            "has no condition, so any certificate from any trust anchor in the account can assume it; fix: "
            + FIX_CONDITION
        ]
    if not isinstance(condition, Mapping):
        return ["has a Condition that is not an object; fix: " + FIX_CONDITION]
    problems = []
    for operator_text, keys in condition.items():
        try:
            operator = parse_operator(operator_text)
        except PolicyError as err:
            problems.append(f"{err}; fix: {FIX_CONDITION}")
            continue
        if "Like" in operator.base or operator.set_operator:
            names = ", ".join(keys) if isinstance(keys, Mapping) else "?"
            problems.append(f"uses {operator_text} on {names}, which admits patterns; fix: {FIX_CONDITION}")
        elif (
            operator.if_exists and isinstance(keys, Mapping) and _has_key(keys, SPIFFE_ID_TAG_KEY, SOURCE_ARN)
        ):
            problems.append(
                f"uses {operator_text}, which holds when the key is missing; fix: {FIX_CONDITION}"
            )
    spiffe = _single(condition.get("StringEquals"), SPIFFE_ID_TAG_KEY)
    anchor = _single(condition.get("ArnEquals"), SOURCE_ARN)
    if spiffe is None:
        problems.append(
            f"does not pin one SPIFFE ID with StringEquals on {SPIFFE_ID_TAG_KEY}; fix: {FIX_CONDITION}"
        )
    elif "*" in spiffe or "?" in spiffe or "${" in spiffe or not spiffe.startswith("spiffe://"):
        problems.append(
            f"pins {spiffe!r}, not one exact SPIFFE ID (no wildcards or ${{…}} policy variables, which IAM "
            f"fills in from the request); fix: {FIX_CONDITION}"
        )
    if anchor is None:
        problems.append(f"does not pin one trust anchor with ArnEquals on {SOURCE_ARN}; fix: {FIX_CONDITION}")
    elif "${" in anchor or not TRUST_ANCHOR_ARN.fullmatch(anchor):
        problems.append(f"pins {anchor!r}, which is not a trust anchor ARN; fix: {FIX_CONDITION}")
    return problems


def _evaluated_problems(statement: Mapping[str, Any], admitted: Admitted) -> list[str]:
    """Evaluate the statement as STS would: a sibling identity and another anchor must not get in.

    Only the Roles Anywhere statement is evaluated: Deny statements can only narrow it, and extra
    conditions on keys the probe request lacks make it stricter, never looser.
    """
    document = {"Version": "2012-10-17", "Statement": [statement]}
    try:
        sibling = _allowed(document, admitted.spiffe_id + "-other", admitted.trust_anchor_arn)
        elsewhere = _allowed(document, admitted.spiffe_id, _other_anchor(admitted.trust_anchor_arn))
    except PolicyError as err:
        return [f"cannot be checked: {err}; fix: {FIX_CONDITION}, with nothing the guard cannot evaluate"]
    problems = []
    if sibling:
        problems.append(f"also admits {admitted.spiffe_id}-other; fix: {FIX_CONDITION}")
    if elsewhere:
        problems.append(f"admits {admitted.spiffe_id} through other trust anchors; fix: {FIX_CONDITION}")
    return problems


def _allowed(document: Mapping[str, Any], spiffe_id: str, anchor_arn: str) -> bool:
    context = {
        SOURCE_ARN: [anchor_arn],
        "aws:SourceAccount": [anchor_arn.split(":")[4]],
        SPIFFE_ID_TAG_KEY: [spiffe_id],
    }
    return evaluate_trust_policy(document, context, source="trust policy").allowed


def _other_anchor(arn: str) -> str:
    prefix, _, _ = arn.rpartition("/")
    return f"{prefix}/00000000-0000-0000-0000-000000000000"


def _statements(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    statements = document.get("Statement")
    if isinstance(statements, Mapping):
        statements = [statements]
    if not isinstance(statements, list):
        return []
    return [statement for statement in statements if isinstance(statement, Mapping)]


def _admits_service(statement: Mapping[str, Any]) -> bool:
    principal = statement.get("Principal")
    if principal == "*":
        return True
    if not isinstance(principal, Mapping):
        return "NotPrincipal" in statement
    services = _values(principal.get("Service"))
    return ROLES_ANYWHERE_SERVICE in services or "*" in _values(principal.get("AWS"))


def _values(raw: Any) -> list[str]:
    items = raw if isinstance(raw, list) else [raw] if raw is not None else []
    return [item for item in items if isinstance(item, str)]


def _single(keys: Any, wanted: str) -> str | None:
    """The one value of ``wanted`` (key names are case-insensitive) under an operator, else None."""
    if not isinstance(keys, Mapping):
        return None
    found = [v for k, v in keys.items() if isinstance(k, str) and k.casefold() == wanted.casefold()]
    if len(found) != 1:
        return None
    value = found[0]
    if isinstance(value, list):
        value = value[0] if len(value) == 1 else None
    return value if isinstance(value, str) else None


def _has_key(keys: Mapping[str, Any], *wanted: str) -> bool:
    folded = {w.casefold() for w in wanted}
    return any(isinstance(k, str) and k.casefold() in folded for k in keys)
