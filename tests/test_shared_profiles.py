"""Shared profiles: equal settings share, at most 250 roles each, and assignment does not churn (issue 14)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roles_anywhere.cli import main
from roles_anywhere.stack.profiles import MAX_ROLES_PER_PROFILE, jump_hash, share_profiles
from roles_anywhere.stack.spec import ProfileSettings, Workload

from .conftest import stack_config, write_stack

SETTINGS = (
    ProfileSettings(),
    ProfileSettings(duration_seconds=7_200),
    ProfileSettings(accept_role_session_name=True),
)


def workloads(count: int, *, start: int = 0) -> list[Workload]:
    """``count`` workloads spread over the three settings; only name and profile matter here."""
    return [
        Workload(
            name=f"w{i}",
            spiffe_id=None,  # type: ignore[arg-type] - not read by the assignment
            role_name=f"w{i}",
            profile_name=f"w{i}",
            managed_policy_arns=(),
            inline_policy_json=None,
            session_duration=SETTINGS[i % 3].duration_seconds,
            profile=SETTINGS[i % 3],
        )
        for i in range(start, start + count)
    ]


def assignment(items: list[Workload]) -> dict[str, str]:
    return {member: profile.name for profile in share_profiles(items, "tra-") for member in profile.workloads}


def test_a_thousand_workloads_with_three_settings_need_six_profiles() -> None:
    profiles = share_profiles(workloads(1_000), "tra-")
    assert len(profiles) == 6
    assert max(len(profile.workloads) for profile in profiles) <= MAX_ROLES_PER_PROFILE
    assert sorted(m for p in profiles for m in p.workloads) == sorted(f"w{i}" for i in range(1_000))
    for profile in profiles:  # every member has the profile's settings
        assert {SETTINGS[int(m[1:]) % 3] for m in profile.workloads} == {profile.settings}


def test_adding_or_removing_a_workload_moves_no_other() -> None:
    before = assignment(workloads(1_000))
    for changed in (workloads(1_001), workloads(999), workloads(999, start=1)):
        after = assignment(changed)
        common = before.keys() & after.keys()
        assert {name for name in common if before[name] != after[name]} == set()


def test_growing_past_a_bucket_boundary_moves_only_the_new_buckets_share() -> None:
    before = assignment(workloads(600))  # 200 per settings group: one profile each
    after = assignment(workloads(603))  # 201 per group: two profiles each
    moved = [name for name in before if before[name] != after[name]]
    assert 0 < len(moved) < 0.6 * 600  # about half of each group (1/b with b = 2), never all of it
    assert {after[name].rsplit("-", 1)[1] for name in moved} == {"1"}  # only into the new profile


@given(st.integers(min_value=0, max_value=2**64 - 1), st.integers(min_value=1, max_value=50))
def test_jump_hash_moves_a_key_only_to_the_new_bucket(key: int, buckets: int) -> None:
    before, after = jump_hash(key, buckets), jump_hash(key, buckets + 1)
    assert 0 <= before < buckets
    assert after in (before, buckets)


def test_the_plan_lists_each_role_in_exactly_one_shared_profile_and_aws_config_points_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = stack_config(
        profileSharing="shared",
        workloads={
            "a": {"spiffeId": "/svc/a", "bots": ["dev-ci"]},
            "b": {"spiffeId": "/svc/b", "bots": ["dev-ci"]},
            "c": {"spiffeId": "/svc/c", "bots": ["dev-ci"], "sessionDuration": 7200},
        },
    )
    path = write_stack(tmp_path, config)
    assert main(["plan", "--json", "--config", str(path)]) == 0
    document: dict[str, Any] = json.loads(capsys.readouterr().out)
    profiles = [r for r in document["resources"] if r["type"] == "aws:rolesanywhere/profile:Profile"]
    assert len(profiles) == 2
    by_role = {arn: p["outputs"]["arn"] for p in profiles for arn in p["inputs"]["roleArns"]}
    outputs = document["outputs"]["workloads"]
    assert {name: by_role[w["roleArn"]] for name, w in outputs.items()} == {
        name: w["profileArn"] for name, w in outputs.items()
    }
    assert outputs["a"]["profileArn"] == outputs["b"]["profileArn"] != outputs["c"]["profileArn"]
    assert main(["render", "--config", str(path), "--out", str(tmp_path / "out")]) == 0
    capsys.readouterr()
    aws_config = (tmp_path / "out" / "aws" / "config").read_text()
    for workload in outputs.values():
        assert f"--profile-arn {workload['profileArn']} --role-arn {workload['roleArn']}" in aws_config


def thousand(count: int) -> dict[str, Any]:
    """``count`` workloads in 3 profile settings (durations 1 h, 2 h, 3 h), as the issue's stack."""
    return {
        f"w{i:04d}": {"spiffeId": f"/svc/w{i:04d}", "sessionDuration": (3_600, 7_200, 10_800)[i % 3]}
        for i in range(count)
    }


def test_a_thousand_workload_stack_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Plan: 6 profiles, a warning at the role quota; render: every aws/config profile names the
    profile that holds its role; one more workload moves nobody else's profile ARN."""
    path = write_stack(tmp_path, stack_config(workloads=thousand(1_000)))
    assert main(["plan", "--json", "--config", str(path)]) == 0
    captured = capsys.readouterr()
    document: dict[str, Any] = json.loads(captured.out)
    profiles = [r for r in document["resources"] if r["type"] == "aws:rolesanywhere/profile:Profile"]
    assert len(profiles) == 6  # sum of ceil(334 / 200), ceil(333 / 200), ceil(333 / 200)
    assert "warning: quotas.iamRoles: this stack uses 1000 of 1000 IAM roles in the account" in captured.err
    holder = {arn: p["outputs"]["arn"] for p in profiles for arn in p["inputs"]["roleArns"]}
    assert len(holder) == 1_000
    workloads = document["outputs"]["workloads"]
    assert main(["render", "--config", str(path), "--out", str(tmp_path / "out")]) == 0
    capsys.readouterr()
    aws_config = (tmp_path / "out" / "aws" / "config").read_text()
    for name, workload in workloads.items():
        assert workload["profileArn"] == holder[workload["roleArn"]], name
        assert f"--profile-arn {holder[workload['roleArn']]} --role-arn {workload['roleArn']}" in aws_config

    grown = stack_config(workloads=thousand(1_001), quotas={"iamRoles": 1_100})
    (tmp_path / "grown").mkdir()
    assert main(["plan", "--json", "--config", str(write_stack(tmp_path / "grown", grown))]) == 0
    after = json.loads(capsys.readouterr().out)["outputs"]["workloads"]
    assert {name: after[name]["profileArn"] for name in workloads} == {
        name: workload["profileArn"] for name, workload in workloads.items()
    }
