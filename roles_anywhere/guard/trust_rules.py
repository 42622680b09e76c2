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

from roles_anywhere.iam.conditions import PolicyError, glob_match, parse_operator
from roles_anywhere.iam.policy import ROLES_ANYWHERE_SERVICE, SPIFFE_ID_TAG_KEY, TRUST_ACTIONS
from roles_anywhere.iam.trust_evaluation import evaluate_trust_policy

from .documents import UnreadableError, is_intrinsic, read_document

SOURCE_ARN = "aws:SourceArn"
TRUST_ANCHOR_ARN = re.compile(
    r"arn:aws[a-z-]*:rolesanywhere:[a-z0-9-]{1,32}:\d{12}:trust-anchor/[0-9a-f-]{36}"
)
EXACT_ACTIONS = frozenset(action.lower() for action in TRUST_ACTIONS)
FIX_CONDITION = (
    f'use "Condition": {{"StringEquals": {{"{SPIFFE_ID_TAG_KEY}": "spiffe://<cluster>/<path>"}}, '
    f'"ArnEquals": {{"{SOURCE_ARN}": "<trust anchor ARN>"}}}}'
)
FIX_STATEMENT = (
    f'one statement {{"Effect": "Allow", "Principal": {{"Service": "{ROLES_ANYWHERE_SERVICE}"}}, '
    f'"Action": {json.dumps(list(TRUST_ACTIONS))}, "Condition": …}} with each element spelled exactly'
)
_SERVICE_NAMES = (ROLES_ANYWHERE_SERVICE, ROLES_ANYWHERE_SERVICE + ".cn")
_DOCUMENT_ELEMENTS = frozenset({"Version", "Id", "Statement"})
_STATEMENT_ELEMENTS = frozenset(
    {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource"}
    | {"Condition"}
)


@dataclass(frozen=True)
class Admitted:
    """The one SPIFFE ID and trust anchor an exact trust policy admits."""

    spiffe_id: str
    trust_anchor_arn: str


def trust_document(raw: Any) -> Mapping[str, Any] | None:
    """The trust policy as a plain document, or None when there is none; ``UnreadableError`` when unreadable.

    JSON text or an object (an aws-native role's ``assumeRolePolicyDocument``, or pulumi-policy's
    proxy of one). A policy that cannot be read exactly is not skipped: the caller refuses it.
    """
    if raw is None:
        return None
    document: Mapping[str, Any] = read_document(raw)
    return document


def trusts_roles_anywhere(document: Mapping[str, Any]) -> bool:
    """Whether any statement may let Roles Anywhere in (read fail-closed: what is unclear may)."""
    statements = _statements(document)
    return bool(_document_oddities(document)) or any(_may_admit(s) for s in statements if not _is_deny(s))


def trust_problems(document: Mapping[str, Any]) -> list[str]:
    """Why ``document`` is not exact, each with its fix; empty when it is.

    A role Roles Anywhere may assume is assumed through Roles Anywhere only: one Allow statement,
    for one SPIFFE ID through one anchor, and no other Allow statement for anyone else (statements
    are alternatives, so a second one would admit a second identity, anchor or principal).
    """
    problems = [
        f"has the element {key!r}, which is not exactly an IAM policy element; fix: spell the elements "
        '"Version" and "Statement" exactly'
        for key in _document_oddities(document)
    ]
    raw_statements = document.get("Statement")
    if raw_statements is not None and not isinstance(raw_statements, Mapping | list):
        problems.append(f"has a Statement that is {_kind(raw_statements)}; fix: a list of statement objects")
    statements = _statements(document)
    allows = [(i, s) for i, s in enumerate(statements) if not _is_deny(s)]
    ours = [(i, s) for i, s in allows if _may_admit(s)]
    if len(ours) > 1:
        problems.append(
            f"has {len(ours)} Allow statements for Roles Anywhere, and AWS admits what any of them admits; "
            "fix: one statement, one SPIFFE ID, one anchor (give other workloads their own role)"
        )
    for index, statement in allows:
        if not _may_admit(statement):
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
    ours = [s for s in _statements(document) if not _is_deny(s) and _may_admit(s)]
    if len(ours) != 1 or not isinstance(ours[0], Mapping):
        return None
    condition = ours[0].get("Condition")
    if not isinstance(condition, Mapping):
        return None
    spiffe = _single(condition.get("StringEquals"), SPIFFE_ID_TAG_KEY)
    anchor = _single(condition.get("ArnEquals"), SOURCE_ARN)
    return Admitted(spiffe, anchor) if spiffe is not None and anchor is not None else None


def may_admit_roles_anywhere(document: Any) -> bool:
    """Whether a trust policy found anywhere (a template, another resource type) may admit Roles Anywhere.

    Read fail-closed: a value the guard cannot know (a CloudFormation ``Fn::Join``, ``Ref`` or
    ``Fn::If`` where a principal or statement should be), an unreadable text, ``*`` or ``NotPrincipal``
    all may.
    """
    if is_intrinsic(document):
        return True
    if isinstance(document, str):
        try:
            document = read_document(document)
        except UnreadableError:
            return True
    if not isinstance(document, Mapping):
        return True
    return trusts_roles_anywhere(document)


def is_roles_anywhere_service(name: str) -> bool:
    """Whether ``name`` may be Roles Anywhere's service principal.

    Any case or padding, another partition's suffix, or a wildcard that matches it.
    """
    folded = name.strip().casefold()
    if "*" in folded or "?" in folded:
        return any(glob_match(folded, candidate) for candidate in _SERVICE_NAMES)
    return folded.startswith("rolesanywhere")


def _statement_problems(statement: Any) -> list[str]:
    if not isinstance(statement, Mapping):
        return [f"is {_kind(statement)}, not a statement object; fix: {FIX_STATEMENT}"]
    problems = [
        f"has the element {key!r}, which is not exactly an IAM policy element; fix: {FIX_STATEMENT}"
        for key in _oddities(statement, _STATEMENT_ELEMENTS)
    ]
    if statement.get("Effect") != "Allow":
        problems.append(f'has "Effect": {json.dumps(statement.get("Effect"))[:60]}; fix: "Effect": "Allow"')
    problems += _principal_problems(statement)
    return problems + _action_problems(statement) + _condition_problems(statement.get("Condition"))


def _action_problems(statement: Mapping[str, Any]) -> list[str]:
    fix = f'fix: "Action": {json.dumps(list(TRUST_ACTIONS))}'
    if "NotAction" in statement:
        return [f"uses NotAction; {fix}"]
    raw = statement.get("Action")
    actions = _values(raw)
    if len(actions) != len(raw if isinstance(raw, list) else [raw]):
        return [f"has an Action that is not text; {fix}"]
    if any("*" in a or "?" in a for a in actions):
        return [f"uses a wildcard action; {fix}"]
    if {a.lower() for a in actions} != EXACT_ACTIONS:
        return [f"allows {sorted(actions)}, not exactly the three Roles Anywhere needs; {fix}"]
    return []


def _principal_problems(statement: Mapping[str, Any]) -> list[str]:
    principal = statement.get("Principal")
    fix = f'fix: "Principal": {{"Service": "{ROLES_ANYWHERE_SERVICE}"}}'
    if "NotPrincipal" in statement:
        return [f"uses NotPrincipal, which admits everyone it does not name; {fix}"]
    if principal == "*" or (isinstance(principal, Mapping) and "*" in _stripped(principal.get("AWS"))):
        return [f"trusts every principal; {fix}"]
    if not isinstance(principal, Mapping) or is_intrinsic(principal):
        return [f'has a Principal that is {_kind(principal)}, not {{"Service": …}}; {fix}']
    others = sorted(str(kind) for kind in principal if kind != "Service")
    raw = principal.get("Service")
    services = raw if isinstance(raw, list) else [raw]
    problems = []
    if others:
        problems.append(
            f"also trusts {', '.join(others)[:120]} principals; {fix} (give the others their own role)"
        )
    texts = [s for s in services if isinstance(s, str)]
    if len(texts) != len(services):
        return [*problems, f"has a Service principal that is not text; {fix}"]
    misspelt = sorted({s for s in texts if s != ROLES_ANYWHERE_SERVICE and is_roles_anywhere_service(s)})
    if misspelt:
        problems.append(
            f"spells the service principal {', '.join(map(repr, misspelt))[:120]}; {fix} exactly as written"
        )
    strangers = sorted({s for s in texts if not is_roles_anywhere_service(s)})
    if strangers:
        problems.append(
            f"trusts more principals than {ROLES_ANYWHERE_SERVICE} ({', '.join(strangers)[:120]}); fix: "
            "give the others their own role"
        )
    return problems


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
        if not isinstance(keys, Mapping):
            problems.append(f"has {operator_text} with no {{key: values}} object; fix: {FIX_CONDITION}")
            continue
        if "Like" in operator.base or operator.set_operator:
            names = ", ".join(map(str, keys))[:120]
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


def _statements(document: Mapping[str, Any]) -> list[Any]:
    """The statements, each as found (a statement that is no object is kept: it may admit anyone)."""
    statements = document.get("Statement")
    if statements is None:
        return []
    if isinstance(statements, list):
        return statements
    return [statements]


def _is_deny(statement: Any) -> bool:
    return (
        isinstance(statement, Mapping)
        and statement.get("Effect") == "Deny"
        and not _oddities(statement, _STATEMENT_ELEMENTS)
    )


def _may_admit(statement: Any) -> bool:
    """Whether an Allow (or unclear) statement may admit ``rolesanywhere.amazonaws.com``."""
    if not isinstance(statement, Mapping) or _oddities(statement, _STATEMENT_ELEMENTS):
        return True
    if "NotPrincipal" in statement:
        return True
    if "Principal" not in statement:
        return False  # IAM refuses a trust policy statement without a principal
    return _principal_may_admit(statement["Principal"])


def _principal_may_admit(principal: Any) -> bool:
    if not isinstance(principal, Mapping) or is_intrinsic(principal):
        return True  # "*", or something the guard cannot read
    for kind, raw in principal.items():
        patterns = [value_pattern(v) for v in (raw if isinstance(raw, list) else [raw])]
        if kind in ("Federated", "CanonicalUser"):
            continue
        if kind == "Service":
            if any(p is None or is_roles_anywhere_service(p) for p in patterns):
                return True
        elif kind == "AWS":
            if any(p is None or not p.strip().strip("*") for p in patterns):
                return True  # "*", or a value built by a function that may come out as "*"
        else:
            return True  # "service", "Fn::Join": a principal type the guard cannot read
    return False


def value_pattern(value: Any) -> str | None:
    """A principal as an IAM wildcard pattern of what it may come out as; None when it cannot be read.

    Text is itself; a CloudFormation function has its unknown parts as ``*``
    (``!Sub "ec2.${AWS::URLSuffix}"`` → ``ec2.*``, ``!Ref P`` → ``*``).
    """
    if isinstance(value, str):
        return value
    if not is_intrinsic(value):
        return None
    (function, argument), *more = value.items()
    if more:
        return "*"
    if function == "Fn::Sub":
        text = argument[0] if isinstance(argument, list) and argument else argument
        return re.sub(r"\$\{[^}]*\}", "*", text) if isinstance(text, str) else "*"
    if function == "Fn::Join" and isinstance(argument, list) and len(argument) == 2:
        separator, parts = argument
        if isinstance(separator, str) and isinstance(parts, list):
            return separator.join(value_pattern(part) or "*" for part in parts)
    return "*"


def _document_oddities(document: Mapping[str, Any]) -> list[str]:
    return _oddities(document, _DOCUMENT_ELEMENTS)


def _oddities(element: Mapping[str, Any], known: frozenset[str]) -> list[str]:
    """Keys that are not exactly an element IAM knows here.

    ``statement``, ``Statement\u200b`` or ``Fn::If``: IAM refuses them or reads them as something the
    guard would not, so what they hold may admit anyone.
    """
    return [str(key) for key in element if key not in known]


def _values(raw: Any) -> list[str]:
    items = raw if isinstance(raw, list) else [raw] if raw is not None else []
    return [item for item in items if isinstance(item, str)]


def _stripped(raw: Any) -> list[str]:
    return [value.strip() for value in _values(raw)]


def _kind(value: Any) -> str:
    if isinstance(value, str):
        return f"the text {value[:40]!r}"
    if is_intrinsic(value):
        return "a CloudFormation function, unknown until deploy"
    if value is None:
        return "missing"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return f"a {type(value).__name__}"


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
