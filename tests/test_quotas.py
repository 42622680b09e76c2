"""Quota checks in plan: a warning from 80 %, an error above, each quota raisable in config (issue 14)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from roles_anywhere.cli import main

from .conftest import stack_config, write_stack


def workloads(count: int, **extra: Any) -> dict[str, Any]:
    return {f"w{i}": {"spiffeId": f"/svc/w{i}", "bots": ["dev-ci"], **extra} for i in range(count)}


def plan(tmp_path: Path, capsys: pytest.CaptureFixture[str], **project: Any) -> tuple[int, str]:
    code = main(["plan", "--config", str(write_stack(tmp_path, stack_config(**project)))])
    return code, capsys.readouterr().err


def test_profiles_per_workload_over_the_quota_are_refused_and_sharing_fits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    many = workloads(260)
    code, err = plan(tmp_path, capsys, profileSharing="perWorkload", workloads=many)
    assert code == 2
    assert err == (
        "error: workloads: needs 260 Roles Anywhere profiles in the region, over the quota of 250; if the "
        "account's quota was raised, set quotas.profiles to it, otherwise split the stack or ask AWS to "
        "raise it\n"
    )
    code, err = plan(tmp_path, capsys, profileSharing="perWorkload", workloads=many, quotas={"profiles": 300})
    assert code == 0
    assert (
        "warning: quotas.profiles: this stack uses 260 of 300 Roles Anywhere profiles in the region (86 %)"
        in err
    )
    code, err = plan(tmp_path, capsys, workloads=many)  # shared: two profiles
    assert code == 0
    assert "quotas.profiles" not in err


def test_roles_near_the_account_quota_warn(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = plan(tmp_path, capsys, workloads=workloads(81), quotas={"iamRoles": 100})
    assert code == 0
    assert "warning: quotas.iamRoles: this stack uses 81 of 100 IAM roles in the account (81 %)" in err
    code, err = plan(tmp_path, capsys, workloads=workloads(101), quotas={"iamRoles": 100})
    assert code == 2
    assert err.startswith("error: workloads: needs 101 IAM roles in the account, over the quota of 100;")


def test_managed_policies_past_the_default_need_the_raised_quota(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arns = [f"arn:aws:iam::123456789012:policy/P{i}" for i in range(12)]
    code, err = plan(
        tmp_path, capsys, workloads={"orders": {"spiffeId": "/svc/o", "managedPolicyArns": arns}}
    )
    assert code == 2
    assert err.startswith(
        "error: workloads.orders.managedPolicyArns: needs 12 managed policies on one role, over the quota "
        "of 10;"
    )
    code, err = plan(
        tmp_path,
        capsys,
        quotas={"managedPoliciesPerRole": 15},
        workloads={"orders": {"spiffeId": "/svc/o", "managedPolicyArns": arns, "bots": ["dev-ci"]}},
    )
    assert code == 0
    assert "warning: quotas.managedPoliciesPerRole: this stack uses 12 of 15" in err


def test_a_quota_cannot_be_raised_past_what_aws_allows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = plan(tmp_path, capsys, quotas={"managedPoliciesPerRole": 25})
    assert code == 2
    assert "managedPoliciesPerRole must be between 1 and 20 (AWS's maximum), got 25" in err


def test_tags_near_the_limit_warn(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = plan(
        tmp_path, capsys, iam={"tags": {f"t{i}": "v" for i in range(40)}}, workloads=workloads(1)
    )
    assert code == 0
    assert "warning: quotas.tags: this stack uses 44 of 50 tags on one role or profile (88 %)" in err
