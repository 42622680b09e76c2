"""IAM settings an enterprise account requires: boundary, path, tags, profile session settings (issue 14)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from roles_anywhere.cli import main

from .conftest import stack_config, write_stack

BOUNDARY = "arn:aws:iam::123456789012:policy/TeamBoundary"
OTHER_BOUNDARY = "arn:aws:iam::123456789012:policy/StrictBoundary"
SESSION_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::reports/*"}],
}


def planned(tmp_path: Path, capsys: pytest.CaptureFixture[str], **project: Any) -> dict[str, dict[str, Any]]:
    """The plan's resources by name (inputs only)."""
    assert main(["plan", "--json", "--config", str(write_stack(tmp_path, stack_config(**project)))]) == 0
    document = json.loads(capsys.readouterr().out)
    return {resource["name"]: resource["inputs"] for resource in document["resources"]}


def test_stack_wide_settings_reach_every_role_and_profile_and_a_workload_overrides_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    resources = planned(
        tmp_path,
        capsys,
        profileSharing="perWorkload",
        iam={
            "permissionsBoundary": BOUNDARY,
            "path": "/teleport/",
            "tags": {"CostCenter": "42", "Team": "a"},
        },
        profile={"sessionPolicy": SESSION_POLICY, "acceptRoleSessionName": True},
        workloads={
            "orders": {"spiffeId": "/svc/orders", "bots": ["dev-ci"]},
            "billing": {
                "spiffeId": "/svc/billing",
                "bots": ["dev-ci"],
                "permissionsBoundary": OTHER_BOUNDARY,
                "path": "/teleport/billing/",
                "tags": {"Team": "b"},
                "profile": {"acceptRoleSessionName": False, "requireInstanceProperties": True},
            },
        },
    )
    orders, billing = resources["roles-anywhere-orders-role"], resources["roles-anywhere-billing-role"]
    assert (orders["permissionsBoundary"], orders["path"]) == (BOUNDARY, "/teleport/")
    assert (billing["permissionsBoundary"], billing["path"]) == (OTHER_BOUNDARY, "/teleport/billing/")
    assert orders["tags"]["CostCenter"] == "42"
    assert orders["tags"]["Team"] == "a"
    assert billing["tags"]["Team"] == "b"
    assert billing["tags"]["ManagedBy"] == "teleport-roles-anywhere"
    orders_profile = resources["roles-anywhere-orders-profile"]
    billing_profile = resources["roles-anywhere-billing-profile"]
    assert json.loads(orders_profile["sessionPolicy"]) == SESSION_POLICY
    assert orders_profile["acceptRoleSessionName"] is True
    assert "requireInstanceProperties" not in orders_profile
    assert billing_profile["requireInstanceProperties"] is True
    assert "acceptRoleSessionName" not in billing_profile
    assert orders_profile["tags"]["CostCenter"] == "42"


def test_role_session_name_is_rendered_only_where_the_profile_accepts_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = stack_config(
        workloads={
            "orders": {
                "spiffeId": "/svc/orders",
                "bots": ["dev-ci"],
                "profile": {"acceptRoleSessionName": True},
            },
            "billing": {"spiffeId": "/svc/billing", "bots": ["dev-ci"]},
        }
    )
    assert (
        main(["render", "--config", str(write_stack(tmp_path, config)), "--out", str(tmp_path / "out")]) == 0
    )
    capsys.readouterr()
    aws_config = (tmp_path / "out" / "aws" / "config").read_text()
    orders, billing = aws_config.split("[profile billing]")[1].split("[profile orders]")[::-1]
    assert "--role-session-name teleport-orders" in orders
    assert "--role-session-name" not in billing


@pytest.mark.parametrize(
    ("project", "message"),
    [
        (
            {"iam": {"permissionsBoundary": "arn:aws:iam::123456789012:role/NotAPolicy"}},
            "iam.permissionsBoundary: 'arn:aws:iam::123456789012:role/NotAPolicy' is not an IAM policy ARN",
        ),
        ({"iam": {"path": "teleport"}}, "iam.path: 'teleport' is not an IAM path"),
        ({"iam": {"tags": {f"k{i}": "v" for i in range(51)}}}, "iam.tags: 51 tags; AWS allows 50"),
        ({"iam": {"tags": {"ManagedBy": "me"}}}, "iam.tags: tag key 'ManagedBy' is set by this project"),
        (
            {"iam": {"tags": {"aws:owner": "me"}}},
            "iam.tags: tag key 'aws:owner': the 'aws:' prefix is reserved",
        ),
        ({"iam": {"tags": {"Team": "a;b"}}}, "iam.tags: tag 'Team': the value must be at most 256"),
        (
            {
                "profile": {
                    "sessionPolicy": {
                        "Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "x" * 2_100}],
                    }
                }
            },
            "profile.sessionPolicy: is 2",
        ),
        (
            {"profile": {"managedPolicyArns": [f"arn:aws:iam::aws:policy/P{i}" for i in range(11)]}},
            "profile.managedPolicyArns: lists 11 policies; STS applies at most 10 to a session",
        ),
        (
            {
                "iam": {"tags": {f"s{i}": "v" for i in range(40)}},
                "workloads": {
                    "orders": {"spiffeId": "/svc/orders", "tags": {f"w{i}": "v" for i in range(10)}}
                },
            },
            "workloads.orders.tags: with the stack's iam.tags: 50 tags; AWS allows 50",
        ),
    ],
    ids=[
        "boundary",
        "path",
        "51-tags",
        "our-tag",
        "aws-prefix",
        "tag-value",
        "session-policy-size",
        "session-managed",
        "merged-tags",
    ],
)
def test_bad_iam_settings_are_one_line_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], project: dict[str, Any], message: str
) -> None:
    code = main(["plan", "--config", str(write_stack(tmp_path, stack_config(**project)))])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(f"error: {message}"), captured.err
