"""Decide a role session's request as IAM does: identity policies, permissions boundary, session policies.

For a role session in its own account, IAM allows a request only when nothing denies it explicitly
and each layer that is present allows it: the role's identity-based policies, the role's permissions
boundary (if it has one) and the session policies (if the session was given any: the inline
``Policy`` and the ``PolicyArns`` together form one layer, any of them may allow). A Roles Anywhere
profile's ``sessionPolicy`` and ``managedPolicyArns`` become exactly those session policies, so
they can only narrow what the role allows, never widen it.

The request's resource may be unknown (``*``): then an Allow counts only when its ``Resource`` is
``*``, and a Deny that names any resource counts (the answer errs towards refusing).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from roles_anywhere.iam.conditions import PolicyError, glob_match
from roles_anywhere.iam.trust_evaluation import action_matches, condition_results, policy_statements

UNKNOWN_RESOURCE = "*"
IDENTITY, BOUNDARY, SESSION = "identity-based policy", "permissions boundary", "session policy"
Effect = Literal["Allow", "Deny"]


@dataclass(frozen=True)
class PolicySource:
    """One policy document and the layer it belongs to (``IDENTITY``, ``BOUNDARY`` or ``SESSION``)."""

    layer: str
    name: str
    document: Mapping[str, Any]


@dataclass(frozen=True)
class PermissionDecision:
    """Whether the request is allowed and, when not, AWS's ``because …`` clause."""

    allowed: bool
    reason: str


def decide(
    action: str,
    policies: Sequence[PolicySource],
    *,
    resource: str = UNKNOWN_RESOURCE,
    context: Mapping[str, Sequence[str]] | None = None,
    layers: Sequence[str] = (IDENTITY,),
) -> PermissionDecision:
    """Decide ``action`` on ``resource``; ``layers`` names every layer in force, even an empty one.

    A layer in force with no policy that allows (a boundary whose policy is missing, say) denies.
    """
    context = context or {}
    effects: dict[str, set[Effect]] = {layer: set() for layer in layers}
    for source in policies:
        found = document_effects(source.document, action, resource, context, f"{source.layer} {source.name}")
        if "Deny" in found:
            return PermissionDecision(False, f"with an explicit deny in a {source.layer}")
        effects.setdefault(source.layer, set()).update(found)
    for layer in layers:
        if "Allow" not in effects[layer]:
            return PermissionDecision(False, f"because no {layer} allows the {action} action")
    return PermissionDecision(True, "allowed")


def document_effects(
    document: Mapping[str, Any],
    action: str,
    resource: str,
    context: Mapping[str, Sequence[str]],
    source: str,
) -> set[Effect]:
    """The effects of ``document``'s statements that apply to this request."""
    found: set[Effect] = set()
    for index, statement in enumerate(policy_statements(document, source, trust=False)):
        where = f"{source}: Statement[{index}]"
        effect: Effect = statement["Effect"]
        if "Action" in statement:
            named = action_matches(statement["Action"], action, where)
        else:
            named = not action_matches(statement["NotAction"], action, where)
        if not named or not _resource_applies(statement, resource, effect, where):
            continue
        if all(c.holds for c in condition_results(statement, context, where)):
            found.add(effect)
    return found


def _resource_applies(statement: Mapping[str, Any], resource: str, effect: Effect, where: str) -> bool:
    negated = "NotResource" in statement
    raw = statement["NotResource" if negated else "Resource"]
    patterns = raw if isinstance(raw, list) else [raw]
    if not patterns or not all(isinstance(p, str) for p in patterns):
        raise PolicyError(f"{where}: Resource must be a string or a non-empty list of strings")
    if resource == UNKNOWN_RESOURCE:
        # Unknown: an Allow must cover every resource; a Deny that names any resource may hit it.
        return effect == "Deny" or (not negated and "*" in patterns)
    matched = any(glob_match(pattern, resource) for pattern in patterns)
    return not matched if negated else matched
