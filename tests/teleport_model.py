"""A small, executable model of Teleport's "may this principal get an X.509-SVID for this SPIFFE ID".

Tests use it to check rendered Teleport resources against Teleport's real decision rather than
against our own reading of the docs. Every function names the Teleport source it mirrors
(github.com/gravitational/teleport); anything the model does not cover raises instead of guessing.

Two issuance paths exist:

* WorkloadIdentity (Teleport 17+), ``lib/auth/machineid/workloadidentityv1/issuer_service.go``
  ``IssueWorkloadIdentity``: ``CheckAccessToKind(workload_identity, read)`` (plus ``list`` for
  ``IssueWorkloadIdentities`` by label selector), then ``Checker.CheckAccess`` on the resource's
  labels (``workload_identity_labels``), then ``decide`` in ``decision.go`` (rules, templating).
* Legacy ``spec.allow.spiffe`` role conditions (Teleport 15.2-18),
  ``lib/auth/machineid/machineidv1/workload_identity_service.go`` ``SignX509SVIDs`` ->
  ``RoleSet.CheckSPIFFESVID`` in ``lib/services/role.go`` (deny entries first, then allow).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

WILDCARD = "*"
DEFAULT_NAMESPACE = "default"
KIND_WORKLOAD_IDENTITY = "workload_identity"

# lib/services/presets.go NewPresetWildcardWorkloadIdentityIssuerRole: RO() is [list, read]
# (lib/services/role.go); the label is types.TeleportInternalResourceType = types.PresetResource.
WILDCARD_ISSUER: dict[str, Any] = {
    "kind": "role",
    "version": "v7",
    "metadata": {
        "name": "wildcard-workload-identity-issuer",
        "namespace": "default",
        "description": "Issue workload identities",
        "labels": {"teleport.internal/resource-type": "preset"},
    },
    "spec": {
        "allow": {
            "workload_identity_labels": {"*": ["*"]},
            "rules": [{"resources": ["workload_identity"], "verbs": ["list", "read"]}],
        },
    },
}

# The user.* attributes a WorkloadIdentity rule may compare (api/proto/teleport/workloadidentity/v1/
# attrs.proto UserAttrs). labels and traits are maps: decision.go getFieldStringValue rejects them.
_STRING_ATTRIBUTES = ("user.name", "user.is_bot", "user.bot_name")
_MAP_ATTRIBUTES = ("user.labels", "user.traits")
_OPERATORS = ("eq", "not_eq", "in", "not_in")
# expression/template.go reInterpolation.
_TEMPLATE = re.compile(r"\{\{([^{}]+?)\}\}")


class NotModelledError(Exception):
    """The resource uses a Teleport feature this model does not evaluate; it refuses rather than guesses."""


@dataclass(frozen=True)
class Principal:
    """A Teleport identity that asks for credentials: a bot or a human user."""

    name: str
    is_bot: bool
    roles: tuple[str, ...]

    def attributes(self) -> dict[str, str]:
        """The user.* attributes as issuer_service.go deriveAttrs builds them, stringified.

        A bot's certificate carries the username ``bot-<name>`` with spaces turned into hyphens
        (lib/auth/machineid/machineidv1/bot_service.go BotResourceName) and BotName ``<name>``;
        bools stringify as protoreflect does.
        """
        return {
            "user.name": "bot-" + self.name.replace(" ", "-") if self.is_bot else self.name,
            "user.is_bot": "true" if self.is_bot else "false",
            "user.bot_name": self.name if self.is_bot else "",
        }


@dataclass
class Cluster:
    """The resources that decide issuance, as plain dicts shaped like Teleport YAML."""

    roles: dict[str, dict[str, Any]] = field(default_factory=dict)
    workload_identities: dict[str, dict[str, Any]] = field(default_factory=dict)
    bots: dict[str, list[str]] = field(default_factory=dict)
    users: dict[str, list[str]] = field(default_factory=dict)

    def principals(self) -> list[Principal]:
        """Every bot and user, so a test can check a resource set against all of them."""
        bots = [Principal(name, True, tuple(roles)) for name, roles in sorted(self.bots.items())]
        users = [Principal(name, False, tuple(roles)) for name, roles in sorted(self.users.items())]
        return bots + users

    def role_set(self, principal: Principal) -> list[dict[str, Any]]:
        """The principal's roles; a missing role is an error, as Teleport refuses to log such a user in."""
        try:
            return [self.roles[name] for name in principal.roles]
        except KeyError as missing:
            raise KeyError(f"{principal.name}: role {missing} is not defined") from None

    @classmethod
    def from_resources(cls, documents: Iterable[Mapping[str, Any]]) -> Cluster:
        """Build a cluster from rendered documents (kinds role, workload_identity, bot, user)."""
        cluster = cls()
        for document in documents:
            kind = document.get("kind")
            name = document["metadata"]["name"]
            spec = document.get("spec") or {}
            if kind == "role":
                cluster.roles[name] = dict(document)
            elif kind == KIND_WORKLOAD_IDENTITY:
                cluster.workload_identities[name] = dict(document)
            elif kind == "bot":
                cluster.bots[name] = list(spec.get("roles") or [])
            elif kind == "user":
                cluster.users[name] = list(spec.get("roles") or [])
        return cluster


# --- matching primitives (lib/utils/utils.go MatchString / SliceMatchesRegex, GlobToRegexp) ---


@cache
def _compile(expression: str) -> re.Pattern[str]:
    """``^...$`` is a regexp as written; anything else is a glob whose ``*`` spans any text."""
    if not (expression.startswith("^") and expression.endswith("$")):
        expression = "^" + re.escape(expression).replace(r"\*", "(.*)") + "$"
    return re.compile(expression)


def match_string(value: str, expression: str) -> bool:
    """utils.MatchString: Go's MatchString searches, so ``^a|b$`` keeps its Go meaning."""
    return _compile(expression).search(value) is not None


def slice_matches(value: str, expressions: Iterable[str]) -> bool:
    """utils.SliceMatchesRegex: any expression matching is enough."""
    return any(match_string(value, expression) for expression in expressions)


def _as_list(value: str | Sequence[str]) -> list[str]:
    """Role YAML accepts a label value as one string or a list (types.Labels unmarshalling)."""
    return [value] if isinstance(value, str) else list(value)


def labels_match(selector: Mapping[str, str | list[str]], labels: Mapping[str, str]) -> bool:
    """lib/services/role.go MatchLabelGetter.

    An empty selector matches nothing; ``'*': ['*']`` matches everything (even no labels); otherwise
    every selector key must be present and its value must be ``*`` or match one value (glob/regexp).
    """
    if not selector:
        return False
    wildcard_values = selector.get(WILDCARD)
    if wildcard_values is not None and _as_list(wildcard_values) == [WILDCARD]:
        return True
    for key, values in selector.items():
        if key not in labels:
            return False
        wanted = _as_list(values)
        if WILDCARD in wanted:
            continue
        if not slice_matches(labels[key], wanted):
            return False
    return True


# --- role set checks ---


def _conditions(role: Mapping[str, Any], condition: str) -> Mapping[str, Any]:
    return ((role.get("spec") or {}).get(condition)) or {}


def _namespace_matches(role: Mapping[str, Any], condition: str) -> bool:
    """services.MatchNamespace; v7 roles default both allow and deny namespaces to ["default"]."""
    namespaces = _conditions(role, condition).get("namespaces") or [DEFAULT_NAMESPACE]
    return DEFAULT_NAMESPACE in namespaces or WILDCARD in namespaces


def _rules_match(role: Mapping[str, Any], condition: str, kind: str, verb: str) -> bool:
    """services.RuleSet.Match for a kind-level check (no resource in the rule context)."""
    if not _namespace_matches(role, condition):
        return False
    for rule in _conditions(role, condition).get("rules") or []:
        resources = rule.get("resources") or []
        if kind not in resources and WILDCARD not in resources:
            continue
        if rule.get("where"):
            raise NotModelledError(f"role {role['metadata']['name']}: rule 'where' is not modelled")
        verbs = rule.get("verbs") or []
        if WILDCARD in verbs or verb in verbs:
            return True
    return False


def check_access_to_kind(roles: Sequence[Mapping[str, Any]], kind: str, verb: str) -> bool:
    """lib/services/role.go RoleSet.CheckAccessToRule: any deny rule wins, else one allow rule must match."""
    if any(_rules_match(role, "deny", kind, verb) for role in roles):
        return False
    return any(_rules_match(role, "allow", kind, verb) for role in roles)


def _label_matchers(role: Mapping[str, Any], condition: str) -> Mapping[str, Any]:
    conditions = _conditions(role, condition)
    if conditions.get("workload_identity_labels_expression"):
        raise NotModelledError(
            f"role {role['metadata']['name']}: workload_identity_labels_expression is not modelled"
        )
    return conditions.get("workload_identity_labels") or {}


def check_access_labels(roles: Sequence[Mapping[str, Any]], labels: Mapping[str, str]) -> bool:
    """lib/services/role.go RoleSet.checkAccess with an empty AccessState and no extra matchers.

    Deny ``workload_identity_labels`` are checked first and win; then some role's allow labels must
    match (CheckLabelsMatch: no matchers at all is no match).
    """
    for role in roles:
        if _namespace_matches(role, "deny") and labels_match(_label_matchers(role, "deny"), labels):
            return False
    return any(
        _namespace_matches(role, "allow") and labels_match(_label_matchers(role, "allow"), labels)
        for role in roles
    )


# --- WorkloadIdentity rules and templating (decision.go) ---


def _attribute(attributes: Mapping[str, str], name: str) -> str:
    """decision.go getFieldStringValue: only scalar attributes can be compared."""
    if name in _MAP_ATTRIBUTES:
        raise ValueError(f"attribute {name!r} is a map and cannot be converted to string")
    if name not in attributes:
        raise ValueError(f"attribute {name!r} not found")
    return attributes[name]


def _condition_passes(condition: Mapping[str, Any], attributes: Mapping[str, str]) -> bool:
    operators = [operator for operator in _OPERATORS if operator in condition]
    if len(operators) != 1:
        raise ValueError(f"condition {dict(condition)!r}: exactly one of {_OPERATORS} is required")
    if not condition.get("attribute"):
        raise ValueError(f"condition {dict(condition)!r}: attribute must be non-empty")
    value = _attribute(attributes, condition["attribute"])
    operator = operators[0]
    body = condition[operator] or {}
    if operator == "eq":
        return value == str(body.get("value", ""))
    if operator == "not_eq":
        return value != str(body.get("value", ""))
    values = [str(item) for item in body.get("values") or []]
    return (value in values) if operator == "in" else (value not in values)


def rules_allow(workload_identity: Mapping[str, Any], attributes: Mapping[str, str]) -> bool:
    """decision.go evaluateRules: no allow rules passes; rules are ORed, a rule's conditions ANDed.

    Rules are evaluated in order and the first passing rule stops evaluation, so a bad attribute in
    a later rule is only an error when that rule is reached (as in Teleport). ``expression`` rules
    (Teleport predicate language) are not modelled and raise.
    """
    allow = ((workload_identity.get("spec") or {}).get("rules") or {}).get("allow") or []
    if not allow:
        return True
    for index, rule in enumerate(allow):
        if rule.get("expression"):
            raise NotModelledError(f"spec.rules.allow[{index}].expression is not modelled")
        conditions = rule.get("conditions") or []
        if not conditions:
            # lib/services/workload_identity.go ValidateWorkloadIdentity rejects such a resource.
            raise ValueError(f"spec.rules.allow[{index}].conditions: must be non-empty")
        if all(_condition_passes(condition, attributes) for condition in conditions):
            return True
    return False


def render_template(template: str, attributes: Mapping[str, str]) -> str | None:
    """expression/template.go RenderTemplate for ``{{ user.name }}`` and ``{{ user.bot_name }}``.

    Returns None when a referenced attribute is unset (empty): Teleport then refuses to issue.
    Whitespace-only braces render as nothing; any other expression raises as not modelled.
    """
    rendered: list[str] = []
    position = 0
    for match in _TEMPLATE.finditer(template):
        rendered.append(template[position : match.start()])
        position = match.end()
        expression = match.group(1).strip()
        if not expression:
            continue
        if expression not in ("user.name", "user.bot_name"):
            raise NotModelledError(f"template expression {expression!r} is not modelled")
        value = attributes.get(expression, "")
        if not value:
            return None
        rendered.append(value)
    rendered.append(template[position:])
    return "".join(rendered)


def issued_spiffe_id(workload_identity: Mapping[str, Any], attributes: Mapping[str, str]) -> str | None:
    """decision.go decide: the templated spec.spiffe.id if rules pass and templating succeeds, else None."""
    spiffe_id = str(((workload_identity.get("spec") or {}).get("spiffe") or {}).get("id") or "")
    if not spiffe_id.startswith("/"):
        raise ValueError(f"spec.spiffe.id {spiffe_id!r}: must start with a /")
    if not rules_allow(workload_identity, attributes):
        return None
    return render_template(spiffe_id, attributes)


def can_issue_workload_identity(
    cluster: Cluster, principal: Principal, name: str, *, by_labels: bool = False
) -> bool:
    """issuer_service.go IssueWorkloadIdentity (by name) / IssueWorkloadIdentities (by labels).

    Kind-level verbs first (read; plus list for label selectors), then the resource's labels against
    the role set's workload_identity_labels, then the resource's rules and spiffe.id templating.
    """
    roles = cluster.role_set(principal)
    verbs = ("read", "list") if by_labels else ("read",)
    if not all(check_access_to_kind(roles, KIND_WORKLOAD_IDENTITY, verb) for verb in verbs):
        return False
    workload_identity = cluster.workload_identities.get(name)
    if workload_identity is None:
        return False
    labels = (workload_identity.get("metadata") or {}).get("labels") or {}
    if not check_access_labels(roles, labels):
        return False
    return issued_spiffe_id(workload_identity, principal.attributes()) is not None


# --- legacy role spiffe conditions (lib/services/role.go matchSPIFFESVIDConditions) ---


def _spiffe_entry_matches(entry: Mapping[str, Any], path: str, dns_sans: Sequence[str]) -> bool:
    """The path must match; every requested DNS SAN must match one of the entry's dns_sans.

    IP SANs are not modelled (requests here never carry them).
    """
    if not match_string(path, str(entry.get("path") or "")):
        return False
    patterns = [str(pattern) for pattern in entry.get("dns_sans") or []]
    return all(slice_matches(san, patterns) for san in dns_sans)


def can_obtain_legacy(
    cluster: Cluster, principal: Principal, path: str, dns_sans: Sequence[str] = ()
) -> bool:
    """RoleSet.CheckSPIFFESVID: a matching deny.spiffe entry in any role denies; else an allow grants.

    Deny entries use the same matcher, so a deny entry with dns_sans only fires when every requested
    DNS SAN matches it (an unrequested SAN cannot trigger it).
    """
    roles = cluster.role_set(principal)
    if any(
        _spiffe_entry_matches(entry, path, dns_sans)
        for role in roles
        for entry in _conditions(role, "deny").get("spiffe") or []
    ):
        return False
    return any(
        _spiffe_entry_matches(entry, path, dns_sans)
        for role in roles
        for entry in _conditions(role, "allow").get("spiffe") or []
    )


def obtainable_ids(cluster: Cluster, principal: Principal, candidate_paths: Iterable[str]) -> set[str]:
    """Every SPIFFE ID path the principal can get: issuable WorkloadIdentities plus legacy paths.

    Legacy requests may omit DNS SANs, so only the path decides there.
    """
    attributes = principal.attributes()
    roles = cluster.role_set(principal)
    found: set[str] = set()
    if check_access_to_kind(roles, KIND_WORKLOAD_IDENTITY, "read"):
        for workload_identity in cluster.workload_identities.values():
            labels = (workload_identity.get("metadata") or {}).get("labels") or {}
            if not check_access_labels(roles, labels):
                continue
            issued = issued_spiffe_id(workload_identity, attributes)
            if issued is not None:
                found.add(issued)
    found.update(path for path in candidate_paths if can_obtain_legacy(cluster, principal, path))
    return found
