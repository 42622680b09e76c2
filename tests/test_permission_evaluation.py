"""IAM's decision for a role session: identity policies, permissions boundary, session policies."""

from __future__ import annotations

from typing import Any

import pytest

from roles_anywhere.iam.conditions import PolicyError
from roles_anywhere.iam.permission_evaluation import BOUNDARY, IDENTITY, SESSION, PolicySource, decide


def allow(*actions: str, resource: Any = "*", effect: str = "Allow", **extra: Any) -> dict[str, Any]:
    statement = {"Effect": effect, "Action": list(actions), "Resource": resource, **extra}
    return {"Version": "2012-10-17", "Statement": [statement]}


def deny(*actions: str, resource: Any = "*") -> dict[str, Any]:
    return allow(*actions, resource=resource, effect="Deny")


ROLE = PolicySource(IDENTITY, "ReadOnly", allow("iam:Get*", "iam:List*", "dynamodb:List*"))
ALL_LAYERS = (IDENTITY, BOUNDARY, SESSION)


def test_the_role_alone_decides_without_boundary_or_session_policy() -> None:
    assert decide("iam:ListUsers", [ROLE]).allowed
    refused = decide("iam:CreateUser", [ROLE])
    assert not refused.allowed
    assert refused.reason == "because no identity-based policy allows the iam:CreateUser action"


def test_a_session_policy_narrows_what_the_role_allows() -> None:
    session = PolicySource(SESSION, "inline", allow("iam:ListRoles"))
    layers = (IDENTITY, SESSION)
    assert decide("iam:ListRoles", [ROLE, session], layers=layers).allowed
    refused = decide("iam:ListUsers", [ROLE, session], layers=layers)
    assert (refused.allowed, refused.reason) == (
        False,
        "because no session policy allows the iam:ListUsers action",
    )


def test_a_session_policy_never_widens_the_role() -> None:
    session = PolicySource(SESSION, "inline", allow("*"))
    refused = decide("iam:CreateUser", [ROLE, session], layers=(IDENTITY, SESSION))
    assert refused.reason == "because no identity-based policy allows the iam:CreateUser action"


def test_managed_session_policies_and_the_inline_one_form_one_layer() -> None:
    inline = PolicySource(SESSION, "inline", allow("iam:ListRoles"))
    managed = PolicySource(SESSION, "arn:aws:iam::aws:policy/X", allow("iam:ListUsers"))
    layers = (IDENTITY, SESSION)
    assert decide("iam:ListUsers", [ROLE, inline, managed], layers=layers).allowed
    assert decide("iam:ListRoles", [ROLE, inline, managed], layers=layers).allowed
    assert not decide("iam:GetRole", [ROLE, inline, managed], layers=layers).allowed


def test_an_explicit_deny_anywhere_wins() -> None:
    session = PolicySource(SESSION, "inline", deny("iam:List*"))
    refused = decide(
        "iam:ListUsers", [ROLE, PolicySource(SESSION, "a", allow("*")), session], layers=ALL_LAYERS
    )
    assert refused.reason == "with an explicit deny in a session policy"


def test_the_permissions_boundary_caps_the_role() -> None:
    boundary = PolicySource(BOUNDARY, "IAMReadOnlyAccess", allow("iam:Get*", "iam:List*"))
    layers = (IDENTITY, BOUNDARY)
    assert decide("iam:ListUsers", [ROLE, boundary], layers=layers).allowed
    refused = decide("dynamodb:ListTables", [ROLE, boundary], layers=layers)
    assert refused.reason == "because no permissions boundary allows the dynamodb:ListTables action"


def test_a_layer_in_force_without_any_policy_denies() -> None:
    assert not decide("iam:ListUsers", [ROLE], layers=(IDENTITY, SESSION)).allowed


def test_actions_match_case_insensitively_and_not_action_inverts() -> None:
    assert decide("IAM:listusers", [ROLE]).allowed
    everything_but_iam = PolicySource(
        IDENTITY, "x", {"Statement": {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}}
    )
    assert decide("s3:ListBuckets", [everything_but_iam]).allowed
    assert not decide("iam:ListUsers", [everything_but_iam]).allowed


def test_an_unknown_resource_needs_an_allow_on_every_resource_and_heeds_any_deny() -> None:
    one_bucket = PolicySource(IDENTITY, "x", allow("s3:GetObject", resource="arn:aws:s3:::b/*"))
    assert not decide("s3:GetObject", [one_bucket]).allowed
    assert decide("s3:GetObject", [one_bucket], resource="arn:aws:s3:::b/k").allowed
    assert not decide("s3:GetObject", [one_bucket], resource="arn:aws:s3:::c/k").allowed
    deny_one = PolicySource(SESSION, "d", deny("iam:ListUsers", resource="arn:aws:iam::1:user/x"))
    assert not decide("iam:ListUsers", [ROLE, deny_one]).allowed
    assert decide("iam:ListUsers", [ROLE, deny_one], resource="arn:aws:iam::1:user/y").allowed


def test_conditions_read_the_sessions_principal_tags() -> None:
    tagged = PolicySource(
        SESSION,
        "inline",
        allow(
            "iam:ListRoles",
            Condition={"StringEquals": {"aws:PrincipalTag/x509SAN/URI": "spiffe://c/svc/orders"}},
        ),
    )
    layers = (IDENTITY, SESSION)
    orders = {"aws:PrincipalTag/x509SAN/URI": ["spiffe://c/svc/orders"]}
    billing = {"aws:PrincipalTag/x509SAN/URI": ["spiffe://c/svc/billing"]}
    assert decide("iam:ListRoles", [ROLE, tagged], context=orders, layers=layers).allowed
    assert not decide("iam:ListRoles", [ROLE, tagged], context=billing, layers=layers).allowed


@pytest.mark.parametrize(
    ("statement", "says"),
    [
        ({"Effect": "Allow", "Action": "*"}, "needs exactly one of Resource or NotResource"),
        ({"Effect": "Allow", "Action": "*", "Resource": "*", "Principal": "*"}, "cannot have Principal"),
        ({"Effect": "Maybe", "Action": "*", "Resource": "*"}, "Effect must be"),
        ({"Effect": "Allow", "Action": "*", "Resource": []}, "Resource must be"),
    ],
)
def test_a_malformed_policy_is_an_error_not_a_decision(statement: dict[str, Any], says: str) -> None:
    with pytest.raises(PolicyError, match=says):
        decide("iam:ListUsers", [PolicySource(IDENTITY, "bad", {"Statement": [statement]})])
