"""The Teleport issuance model agrees with Teleport's own tests, presets and documented examples."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from .teleport_model import (
    WILDCARD_ISSUER,
    Cluster,
    NotModelledError,
    Principal,
    can_issue_workload_identity,
    can_obtain_legacy,
    labels_match,
    obtainable_ids,
    render_template,
    rules_allow,
)


def workload_identity(
    name: str,
    spiffe_id: str,
    *,
    allow: list[dict[str, Any]] | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"spiffe": {"id": spiffe_id}}
    if allow is not None:
        spec["rules"] = {"allow": allow}
    return {
        "kind": "workload_identity",
        "version": "v1",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": spec,
    }


def role(
    name: str, allow: dict[str, Any] | None = None, deny: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "kind": "role",
        "version": "v7",
        "metadata": {"name": name},
        "spec": {"allow": allow or {}, "deny": deny or {}},
    }


def cond(attribute: str, operator: str, value: str | list[str]) -> dict[str, Any]:
    body = {"values": value} if isinstance(value, list) else {"value": value}
    return {"attribute": attribute, operator: body}


READ_WI = {"resources": ["workload_identity"], "verbs": ["read", "list"]}
FOO = {"user.name": "foo", "user.is_bot": "false", "user.bot_name": ""}


# --- rules: lib/auth/machineid/workloadidentityv1/decision_test.go Test_evaluateRules (attrs user.name=foo)


@pytest.mark.parametrize(
    ("allow", "expected"),
    [
        pytest.param([], True, id="no rules: pass"),
        pytest.param([{"conditions": [cond("user.name", "eq", "foo")]}], True, id="eq: pass"),
        pytest.param([{"conditions": [cond("user.name", "eq", "not-foo")]}], False, id="eq: fail"),
        pytest.param([{"conditions": [cond("user.name", "not_eq", "bar")]}], True, id="not_eq: pass"),
        pytest.param([{"conditions": [cond("user.name", "not_eq", "foo")]}], False, id="not_eq: fail"),
        pytest.param([{"conditions": [cond("user.name", "in", ["bar", "foo"])]}], True, id="in: pass"),
        pytest.param([{"conditions": [cond("user.name", "in", ["bar", "fizz"])]}], False, id="in: fail"),
        pytest.param(
            [{"conditions": [cond("user.name", "not_in", ["bar", "fizz"])]}], True, id="not_in: pass"
        ),
        pytest.param(
            [{"conditions": [cond("user.name", "not_in", ["bar", "foo"])]}], False, id="not_in: fail"
        ),
    ],
)
def test_evaluate_rules_cases_from_teleport(allow: list[dict[str, Any]], expected: bool) -> None:
    assert rules_allow(workload_identity("test", "/test", allow=allow), FOO) is expected


# decision.go evaluateRules: rules are ORed (ruleLoop returns on the first passing rule), a rule's
# conditions are ANDed (any failing condition continues ruleLoop).
@pytest.mark.parametrize(
    ("allow", "expected"),
    [
        pytest.param(
            [
                {"conditions": [cond("user.name", "eq", "x")]},
                {"conditions": [cond("user.name", "eq", "foo")]},
            ],
            True,
            id="second rule passes",
        ),
        pytest.param(
            [{"conditions": [cond("user.name", "eq", "x")]}, {"conditions": [cond("user.name", "eq", "y")]}],
            False,
            id="no rule passes",
        ),
        pytest.param(
            [{"conditions": [cond("user.name", "eq", "foo"), cond("user.is_bot", "eq", "false")]}],
            True,
            id="all conditions pass",
        ),
        pytest.param(
            [{"conditions": [cond("user.name", "eq", "foo"), cond("user.is_bot", "eq", "true")]}],
            False,
            id="one condition fails",
        ),
    ],
)
def test_rules_or_conditions_and(allow: list[dict[str, Any]], expected: bool) -> None:
    assert rules_allow(workload_identity("test", "/test", allow=allow), FOO) is expected


# decision.go getFieldStringValue: unknown attributes and map fields (labels, traits) are errors;
# expression rules are Teleport predicate language, which the model refuses; ValidateWorkloadIdentity
# (lib/services/workload_identity.go) rejects rules without conditions.
@pytest.mark.parametrize(
    ("rule", "error"),
    [
        pytest.param({"conditions": [cond("user.nickname", "eq", "x")]}, ValueError, id="unknown attribute"),
        pytest.param({"conditions": [cond("user.labels", "eq", "x")]}, ValueError, id="map attribute"),
        pytest.param({"conditions": [cond("user.traits", "eq", "x")]}, ValueError, id="traits attribute"),
        pytest.param({"expression": 'user.name == "foo"'}, NotModelledError, id="expression"),
        pytest.param({"conditions": []}, ValueError, id="empty conditions"),
        pytest.param(
            {"conditions": [{"attribute": "user.name", "eq": {"value": "a"}, "in": {"values": ["a"]}}]},
            ValueError,
            id="two operators",
        ),
    ],
)
def test_unsupported_rules_raise(rule: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        rules_allow(workload_identity("test", "/test", allow=[rule]), FOO)


# docs/pages/reference/workload-identity/workload-identity-resource.mdx "Operators" examples, with the
# workload's namespace passed in as an attribute.
@pytest.mark.parametrize(
    ("operator", "value", "namespace", "expected"),
    [
        ("eq", "default", "default", True),
        ("eq", "default", "prod", False),
        ("not_eq", "default", "default", False),
        ("in", ["default", "kube-system"], "kube-system", True),
        ("in", ["default", "kube-system"], "prod", False),
        ("not_in", ["foo", "bar"], "default", True),
        ("not_in", ["foo", "bar"], "bar", False),
    ],
)
def test_docs_operator_examples(
    operator: str, value: str | list[str], namespace: str, expected: bool
) -> None:
    wi = workload_identity(
        "rules-example",
        "/my-awesome-workload",
        allow=[{"conditions": [cond("workload.kubernetes.namespace", operator, value)]}],
    )
    attributes = {**FOO, "workload.kubernetes.namespace": namespace}
    assert rules_allow(wi, attributes) is expected


# --- principals: issuer_service.go deriveAttrs (Name = identity Username, IsBot = BotName != "");
# machineidv1/bot_service.go BotResourceName gives a bot's username "bot-<name>".


def test_bot_attributes() -> None:
    bot = Principal("ci runner", True, ())
    assert bot.attributes() == {
        "user.name": "bot-ci-runner",
        "user.is_bot": "true",
        "user.bot_name": "ci runner",
    }
    assert Principal("alice", False, ()).attributes() == {
        "user.name": "alice",
        "user.is_bot": "false",
        "user.bot_name": "",
    }


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        pytest.param(cond("user.name", "eq", "bot-x"), True, id="user.name is bot-x"),
        pytest.param(cond("user.name", "eq", "x"), False, id="user.name is not the bare bot name"),
        pytest.param(cond("user.bot_name", "eq", "x"), True, id="bot_name is bare"),
        pytest.param(cond("user.is_bot", "eq", "true"), True, id="is_bot true"),
        pytest.param(cond("user.is_bot", "eq", "false"), False, id="is_bot false excludes bots"),
    ],
)
def test_bot_x_against_rules(condition: dict[str, Any], expected: bool) -> None:
    wi = workload_identity("x", "/svc/x", allow=[{"conditions": [condition]}])
    assert rules_allow(wi, Principal("x", True, ()).attributes()) is expected


# --- label matching: lib/services/role.go MatchLabelGetter + lib/utils SliceMatchesRegex / GlobToRegexp.


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        pytest.param({}, {"env": "prod"}, False, id="empty selector matches nothing"),
        pytest.param({"*": "*"}, {}, True, id="wildcard matches no labels"),
        pytest.param({"*": ["*"]}, {"env": "prod"}, True, id="wildcard matches anything"),
        pytest.param({"*": ["prod"]}, {"env": "prod"}, False, id="wildcard key needs wildcard value"),
        pytest.param(
            {"*": ["*", "x"]}, {"env": "prod"}, False, id="wildcard shortcut needs exactly one value"
        ),
        pytest.param({"env": "prod"}, {"env": "prod"}, True, id="exact"),
        pytest.param({"env": "prod"}, {"env": "production"}, False, id="plain value is whole-value"),
        pytest.param({"env": "prod"}, {}, False, id="missing key"),
        pytest.param({"env": "*"}, {"env": "anything"}, True, id="value wildcard needs key"),
        pytest.param({"env": "*"}, {"team": "a"}, False, id="value wildcard without key"),
        pytest.param({"env": ["test", "staging"]}, {"env": "staging"}, True, id="any of values"),
        pytest.param({"env": "prod-*"}, {"env": "prod-eu"}, True, id="glob"),
        pytest.param({"env": "prod-*"}, {"env": "xprod-eu"}, False, id="glob anchored"),
        pytest.param({"env": "prod.eu"}, {"env": "prodXeu"}, False, id="dot is literal in globs"),
        pytest.param({"env": "^prod-(eu|us)$"}, {"env": "prod-us"}, True, id="regexp"),
        pytest.param({"env": "^prod-(eu|us)$"}, {"env": "prod-ap"}, False, id="regexp miss"),
        pytest.param({"env": "prod", "team": "a"}, {"env": "prod", "team": "b"}, False, id="every key"),
    ],
)
def test_labels_match(selector: dict[str, Any], labels: dict[str, str], expected: bool) -> None:
    assert labels_match(selector, labels) is expected


# --- full issuance: issuer_service.go IssueWorkloadIdentity (CheckAccessToKind read, CheckAccess
# labels with deny first in role.go checkAccess, then decide), presets.go wildcard issuer.


def preset_cluster() -> Cluster:
    wis = [
        workload_identity("open", "/svc/open"),
        workload_identity("for-x", "/svc/x", allow=[{"conditions": [cond("user.name", "eq", "bot-x")]}]),
        workload_identity("for-y", "/svc/y", allow=[{"conditions": [cond("user.bot_name", "eq", "y")]}]),
        workload_identity("humans", "/svc/h", allow=[{"conditions": [cond("user.is_bot", "eq", "false")]}]),
    ]
    return Cluster.from_resources(
        [
            copy.deepcopy(WILDCARD_ISSUER),
            *wis,
            {
                "kind": "bot",
                "version": "v1",
                "metadata": {"name": "x"},
                "spec": {"roles": [WILDCARD_ISSUER["metadata"]["name"]]},
            },
            {
                "kind": "user",
                "version": "v2",
                "metadata": {"name": "alice"},
                "spec": {"roles": ["wildcard-workload-identity-issuer"]},
            },
        ]
    )


def test_wildcard_issuer_preset_shape() -> None:
    assert WILDCARD_ISSUER["metadata"]["name"] == "wildcard-workload-identity-issuer"
    assert WILDCARD_ISSUER["spec"]["allow"] == {
        "workload_identity_labels": {"*": ["*"]},
        "rules": [{"resources": ["workload_identity"], "verbs": ["list", "read"]}],
    }


@pytest.mark.parametrize(
    ("principal", "expected"),
    [
        pytest.param(
            Principal("x", True, ("wildcard-workload-identity-issuer",)), {"open", "for-x"}, id="bot x"
        ),
        pytest.param(
            Principal("alice", False, ("wildcard-workload-identity-issuer",)), {"open", "humans"}, id="alice"
        ),
    ],
)
def test_wildcard_issuer_issues_exactly_what_rules_allow(principal: Principal, expected: set[str]) -> None:
    cluster = preset_cluster()
    issuable = {
        name for name in cluster.workload_identities if can_issue_workload_identity(cluster, principal, name)
    }
    assert issuable == expected
    assert {
        name
        for name in cluster.workload_identities
        if can_issue_workload_identity(cluster, principal, name, by_labels=True)
    } == expected


def test_from_resources_and_principals() -> None:
    cluster = preset_cluster()
    assert cluster.principals() == [
        Principal("x", True, ("wildcard-workload-identity-issuer",)),
        Principal("alice", False, ("wildcard-workload-identity-issuer",)),
    ]
    assert sorted(cluster.workload_identities) == ["for-x", "for-y", "humans", "open"]


LABELLED = workload_identity("svc", "/svc/a", labels={"env": "prod", "team": "a"})


@pytest.mark.parametrize(
    ("roles", "by_labels", "expected"),
    [
        pytest.param(
            [role("r", {"workload_identity_labels": {"env": "prod"}, "rules": [READ_WI]})],
            False,
            True,
            id="allowed",
        ),
        pytest.param(
            [role("r", {"workload_identity_labels": {"env": "dev"}, "rules": [READ_WI]})],
            False,
            False,
            id="labels miss",
        ),
        pytest.param([role("r", {"rules": [READ_WI]})], False, False, id="no labels at all"),
        pytest.param(
            [
                role(
                    "r",
                    {
                        "workload_identity_labels": {"*": "*"},
                        "rules": [{"resources": ["workload_identity"], "verbs": ["list"]}],
                    },
                )
            ],
            False,
            False,
            id="missing read verb",
        ),
        pytest.param(
            [
                role(
                    "r",
                    {
                        "workload_identity_labels": {"*": "*"},
                        "rules": [{"resources": ["workload_identity"], "verbs": ["read"]}],
                    },
                )
            ],
            True,
            False,
            id="label selector also needs list",
        ),
        pytest.param(
            [
                role(
                    "r",
                    {"workload_identity_labels": {"*": "*"}, "rules": [{"resources": ["*"], "verbs": ["*"]}]},
                )
            ],
            True,
            True,
            id="wildcard resources and verbs",
        ),
        pytest.param(
            [
                role(
                    "r",
                    {"workload_identity_labels": {"*": "*"}, "rules": [READ_WI]},
                    {"workload_identity_labels": {"team": "a"}},
                )
            ],
            False,
            False,
            id="deny labels beat allow",
        ),
        pytest.param(
            [
                role("r", {"workload_identity_labels": {"*": "*"}, "rules": [READ_WI]}),
                role("d", deny={"workload_identity_labels": {"team": "b"}}),
            ],
            False,
            True,
            id="deny labels that miss",
        ),
        pytest.param(
            [
                role("r", {"workload_identity_labels": {"*": "*"}, "rules": [READ_WI]}),
                role("d", deny={"rules": [{"resources": ["workload_identity"], "verbs": ["read"]}]}),
            ],
            False,
            False,
            id="deny read rule in another role",
        ),
        pytest.param(
            [
                role("labels", {"workload_identity_labels": {"env": "prod"}}),
                role("verbs", {"rules": [READ_WI]}),
            ],
            False,
            True,
            id="verbs and labels from different roles",
        ),
    ],
)
def test_role_checks(roles: list[dict[str, Any]], by_labels: bool, expected: bool) -> None:
    cluster = Cluster.from_resources([*roles, LABELLED])
    bot = Principal("x", True, tuple(r["metadata"]["name"] for r in roles))
    assert can_issue_workload_identity(cluster, bot, "svc", by_labels=by_labels) is expected


def test_unknown_workload_identity_is_not_issued() -> None:
    cluster = preset_cluster()
    assert can_issue_workload_identity(cluster, cluster.principals()[0], "nope") is False


# --- templating: expression/template.go RenderTemplate and template_test.go; an unset attribute
# (TestTemplate_UnsetValue) means decide() refuses to issue.


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("/bots/{{ user.bot_name }}", "/bots/x"),
        ("/u/{{user.name}}/{{ user.bot_name }}", "/u/bot-x/x"),
        ("/plain{{ }}", "/plain"),
        ("look at my mustache :-{{)", "look at my mustache :-{{)"),
    ],
)
def test_render_template(template: str, expected: str) -> None:
    assert render_template(template, Principal("x", True, ()).attributes()) == expected


def test_templated_id_for_human_with_bot_name_is_not_issued() -> None:
    wi = workload_identity("per-bot", "/bots/{{ user.bot_name }}")
    cluster = Cluster.from_resources([copy.deepcopy(WILDCARD_ISSUER), wi])
    issuer = ("wildcard-workload-identity-issuer",)
    assert can_issue_workload_identity(cluster, Principal("alice", False, issuer), "per-bot") is False
    assert obtainable_ids(cluster, Principal("x", True, issuer), []) == {"/bots/x"}


def test_unmodelled_template_raises() -> None:
    with pytest.raises(NotModelledError):
        render_template("/k8s/{{ workload.kubernetes.namespace }}", FOO)


# --- legacy spec.allow.spiffe: lib/services/role.go CheckSPIFFESVID / matchSPIFFESVIDConditions
# (deny first; path via utils.MatchString; every requested DNS SAN must match one of the entry's).


def legacy_cluster(
    allow: list[dict[str, Any]], deny: list[dict[str, Any]] | None = None
) -> tuple[Cluster, Principal]:
    r = role("legacy", {"spiffe": allow}, {"spiffe": deny or []})
    return Cluster(roles={"legacy": r}, bots={"x": ["legacy"]}), Principal("x", True, ("legacy",))


@pytest.mark.parametrize(
    ("path", "dns_sans", "expected"),
    [
        ("/svc/foo", (), True),
        ("/svc/foo/bar", (), True),
        ("/svc", (), False),
        ("/other/foo", (), False),
        ("/svc/foo", ("foo.svc.example.com",), True),
        ("/svc/foo", ("foo.svc.example.com", "other.example.com"), False),
        ("/exact", (), True),
        ("/exact/sub", (), False),
    ],
)
def test_legacy_path_and_dns_globs(path: str, dns_sans: tuple[str, ...], expected: bool) -> None:
    cluster, bot = legacy_cluster([{"path": "/svc/*", "dns_sans": ["*.svc.example.com"]}, {"path": "/exact"}])
    assert can_obtain_legacy(cluster, bot, path, dns_sans) is expected


@pytest.mark.parametrize(
    ("deny", "dns_sans", "expected"),
    [
        pytest.param([{"path": "/svc/secret"}], (), False, id="deny path wins"),
        pytest.param([{"path": "/svc/other"}], (), True, id="deny path misses"),
        pytest.param(
            [{"path": "/svc/*", "dns_sans": ["bad.example.com"]}],
            ("good.svc.example.com",),
            True,
            id="deny SANs miss",
        ),
        pytest.param(
            [{"path": "/svc/*", "dns_sans": ["bad.example.com"]}], (), False, id="deny with no SANs requested"
        ),
    ],
)
def test_legacy_deny(deny: list[dict[str, Any]], dns_sans: tuple[str, ...], expected: bool) -> None:
    cluster, bot = legacy_cluster([{"path": "/svc/*", "dns_sans": ["*"]}], deny)
    assert can_obtain_legacy(cluster, bot, "/svc/secret", dns_sans) is expected


def test_obtainable_ids_union() -> None:
    cluster = preset_cluster()
    cluster.roles["legacy"] = role("legacy", {"spiffe": [{"path": "/legacy/*"}]})
    bot = Principal("x", True, ("wildcard-workload-identity-issuer", "legacy"))
    assert obtainable_ids(cluster, bot, ["/legacy/a", "/svc/y", "/nope"]) == {
        "/svc/open",
        "/svc/x",
        "/legacy/a",
    }
