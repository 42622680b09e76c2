"""Loosening and holes (issue 22): a workload widening the stack's bounds, a profile nobody can use.

A stack-wide permissions boundary or session policy is usually an account rule; a workload that swaps
it for something wider gets a warning naming both, and ``plan --strict`` makes every warning an error
(exit 1, one line). ``requireInstanceProperties: true`` refuses every request the rendered clients send.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from roles_anywhere.cli import main

from .conftest import stack_config, write_stack

BOUNDARY = "arn:aws:iam::123456789012:policy/TeamBoundary"
WIDE_BOUNDARY = "arn:aws:iam::123456789012:policy/Wide"
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
READ_ONLY = "arn:aws:iam::aws:policy/ReadOnlyAccess"
GET_REPORTS = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::reports/*"}
LIST_REPORTS = {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::reports"}
NO_DELETE = {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"}
EVERYTHING = {"Effect": "Allow", "Action": "*", "Resource": "*"}


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [dict(s) for s in statements]}  # copies: no YAML aliases


def orders(**settings: Any) -> dict[str, Any]:
    return {"orders": {"spiffeId": "/svc/orders", "bots": ["dev-ci"], **settings}}


def plan_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], *flags: str, **project: Any
) -> list[str]:
    code = main(["plan", *flags, "--config", str(write_stack(tmp_path, stack_config(**project)))])
    err = capsys.readouterr().err
    assert code == 0, err
    return [line.removeprefix("warning: ") for line in err.splitlines()]


LOOSENING = [
    (
        {"iam": {"permissionsBoundary": BOUNDARY}, "workloads": orders(permissionsBoundary=ADMIN)},
        f"workloads.orders.permissionsBoundary: replaces the stack's iam.permissionsBoundary {BOUNDARY} with "
        f"{ADMIN}, which allows every action: this role is then not bounded as the stack's roles are; remove "
        "the override, or use a boundary no wider than the stack's",
    ),
    (
        {"iam": {"permissionsBoundary": BOUNDARY}, "workloads": orders(permissionsBoundary=WIDE_BOUNDARY)},
        f"workloads.orders.permissionsBoundary: replaces the stack's iam.permissionsBoundary {BOUNDARY} with "
        f"{WIDE_BOUNDARY}, which plan cannot compare (it cannot read a managed policy) and which may allow "
        "more: this role is then not bounded",
    ),
    (
        {
            "profile": {"sessionPolicy": policy(GET_REPORTS)},
            "workloads": orders(profile={"managedPolicyArns": [ADMIN]}),
        },
        f"workloads.orders.profile.managedPolicyArns: adds {ADMIN} to the stack's profile.sessionPolicy "
        "(AdministratorAccess, which allows every action): session policies are one layer, so an action any "
        "of them allows is allowed and its sessions may do more; remove the override or list only the "
        "stack's policies",
    ),
    (
        {
            "profile": {"sessionPolicy": policy(GET_REPORTS)},
            "workloads": orders(profile={"sessionPolicy": policy(EVERYTHING)}),
        },
        "workloads.orders.profile.sessionPolicy: replaces the stack's profile.sessionPolicy with a document "
        "that allows what the stack's does not (plan proves a session policy narrower only when each Allow "
        "is one of the stack's statements and every Deny is kept): its sessions may do more; remove the "
        "override or narrow it",
    ),
    (
        {
            "profile": {"sessionPolicy": policy(GET_REPORTS, NO_DELETE)},
            "workloads": orders(profile={"sessionPolicy": policy(GET_REPORTS)}),  # drops the Deny
        },
        "workloads.orders.profile.sessionPolicy: replaces the stack's profile.sessionPolicy with a document",
    ),
    (
        {
            "profile": {"managedPolicyArns": [READ_ONLY]},
            "workloads": orders(profile={"sessionPolicy": policy(EVERYTHING)}),
        },
        "workloads.orders.profile.sessionPolicy: adds a session policy to the stack's "
        f"profile.managedPolicyArns ({READ_ONLY}) with a document that allows what the stack's does not",
    ),
    (
        {
            "profile": {"managedPolicyArns": [READ_ONLY]},
            "workloads": orders(profile={"managedPolicyArns": []}),
        },
        f"workloads.orders.profile.managedPolicyArns: [] removes the stack's profile.managedPolicyArns "
        f"({READ_ONLY}), so its sessions may do all its role allows; remove the override",
    ),
]


@pytest.mark.parametrize(("project", "warning"), LOOSENING)
def test_a_workload_widening_the_stacks_bounds_is_a_warning_and_strict_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], project: dict[str, Any], warning: str
) -> None:
    warnings = plan_warnings(tmp_path, capsys, **project)
    assert [w for w in warnings if w.startswith(warning)] != [], warnings
    assert main(["plan", "--strict", "--config", str(tmp_path / "Pulumi.dev.yaml")]) == 1
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(f"error: {warning}"), captured.err
    assert captured.err.endswith(", each an error)\n")


@pytest.mark.parametrize(
    "project",
    [
        {"iam": {"permissionsBoundary": BOUNDARY}, "workloads": orders(permissionsBoundary=BOUNDARY)},
        {"workloads": orders(permissionsBoundary=ADMIN)},  # no stack boundary: a workload's own is tighter
        {"profile": {"sessionPolicy": policy(GET_REPORTS)}, "workloads": orders()},
        {
            "profile": {"sessionPolicy": policy(GET_REPORTS, LIST_REPORTS, NO_DELETE)},
            "workloads": orders(profile={"sessionPolicy": policy(LIST_REPORTS, NO_DELETE, NO_DELETE)}),
        },
        {
            "profile": {"managedPolicyArns": [READ_ONLY, ADMIN]},
            "workloads": orders(profile={"managedPolicyArns": [READ_ONLY]}),
        },
        {
            "profile": {"sessionPolicy": policy(GET_REPORTS), "managedPolicyArns": [READ_ONLY]},
            "workloads": orders(profile={"managedPolicyArns": []}),  # the stack's inline policy still bounds
        },
        {"workloads": orders(profile={"sessionPolicy": policy(EVERYTHING), "managedPolicyArns": [ADMIN]})},
    ],
    ids=[
        "same-boundary",
        "boundary-without-stack-one",
        "inherits",
        "subset-keeping-denies",
        "fewer-managed",
        "inline-still-bounds",
        "no-stack-session-policy",
    ],
)
def test_what_provably_does_not_widen_is_quiet_even_under_strict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], project: dict[str, Any]
) -> None:
    assert plan_warnings(tmp_path, capsys, "--strict", **project) == []


def test_strict_without_warnings_and_warnings_without_strict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert plan_warnings(tmp_path, capsys, "--strict", "--json", workloads=orders()) == []
    warnings = plan_warnings(tmp_path, capsys, workloads={"orders": {"spiffeId": "/svc/orders"}})
    assert len(warnings) == 1  # issued to nobody: a warning, exit 0 without --strict
    assert main(["plan", "--strict", "--config", str(tmp_path / "Pulumi.dev.yaml")]) == 1
    assert capsys.readouterr().err == (
        "error: workloads.orders: names no bot and no user, so Teleport issues its SVID to nobody and its "
        "AWS role cannot be used; add bots or users to grant it (plan --strict: 1 warning(s), each an "
        "error)\n"
    )


NEVER = (
    ": true makes Roles Anywhere refuse every CreateSession without instance properties, and no client this "
    "stack renders sends any (aws_signing_helper hard-codes none; nor do roles-anywhere credential-process "
    "and serve, or tbot): "
)
HOW = (
    " can never get credentials as rendered. Set it to false, or have each host call CreateSession itself "
    "with an instanceProperties map (1-50 string pairs, 1-200 characters each) in its signed request body"
)


def test_require_instance_properties_says_nobody_gets_credentials_and_how_the_host_must_send_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workloads = {
        **orders(),
        "billing": {
            "spiffeId": "/svc/billing",
            "bots": ["dev-ci"],
            "profile": {"requireInstanceProperties": False},
        },
        "reports": {"spiffeId": "/svc/reports", "bots": ["dev-ci"]},
    }
    warnings = plan_warnings(
        tmp_path, capsys, profile={"requireInstanceProperties": True}, workloads=workloads
    )
    assert warnings == [f"profile.requireInstanceProperties{NEVER}workloads orders, reports{HOW}"]
    workloads["billing"]["profile"] = {"requireInstanceProperties": True}
    warnings = plan_warnings(tmp_path, capsys, workloads=workloads)
    assert warnings == [f"workloads.billing.profile.requireInstanceProperties{NEVER}workload billing{HOW}"]
