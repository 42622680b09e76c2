"""Shared profiles: equal settings share, at most 250 roles each, and no workload moves (issues 14, 22)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roles_anywhere.cli import main
from roles_anywhere.stack.profiles import (
    MAX_ROLES_PER_PROFILE,
    TARGET_ROLES_PER_PROFILE,
    Placement,
    SharedProfile,
    jump_hash,
    placements,
    settings_digest,
    share_profiles,
)
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


def workload(name: str, settings: ProfileSettings) -> Workload:
    return Workload(
        name=name,
        spiffe_id=None,  # type: ignore[arg-type] - not read by the assignment
        role_name=name,
        profile_name=name,
        managed_policy_arns=(),
        inline_policy_json=None,
        session_duration=settings.duration_seconds,
        profile=settings,
    )


def sticky_step(
    fleet: dict[str, int], previous: dict[str, Placement] | None
) -> tuple[tuple[SharedProfile, ...], dict[str, Placement]]:
    """Share ``fleet`` (name -> settings index) against ``previous``; check what must always hold."""
    profiles = share_profiles([workload(n, SETTINGS[s]) for n, s in sorted(fleet.items())], "p-", previous)
    assert max((len(p.workloads) for p in profiles), default=0) <= MAX_ROLES_PER_PROFILE
    assert sorted(m for p in profiles for m in p.workloads) == sorted(fleet)
    for profile in profiles:
        assert {SETTINGS[fleet[m]] for m in profile.workloads} == {profile.settings}
    return profiles, placements(profiles)


@given(
    st.lists(
        st.tuples(st.sampled_from(["add", "remove", "retune"]), st.integers(min_value=1, max_value=260)),
        min_size=1,
        max_size=6,
    ),
    st.randoms(use_true_random=False),
)
def test_with_previous_placements_no_workload_with_unchanged_settings_ever_moves(
    steps: list[tuple[str, int]], random: Any
) -> None:
    """Any sequence of adds, removals and settings changes, each deploy against the previous one:
    a workload whose settings did not change keeps its profile, and no profile lists over 250 roles."""
    fleet: dict[str, int] = {}
    previous: dict[str, Placement] | None = None
    serial = 0
    for action, count in steps:
        before = dict(fleet)
        if action == "add":
            for _ in range(count):
                fleet[f"w{serial}"] = random.randrange(3)
                serial += 1
        elif action == "remove":
            for name in random.sample(sorted(fleet), min(count, len(fleet))):
                del fleet[name]
        else:
            for name in random.sample(sorted(fleet), min(count, len(fleet))):
                fleet[name] = (fleet[name] + 1) % 3
        if not fleet:
            continue
        _, current = sticky_step(fleet, previous)
        if previous is not None:
            kept = [n for n in fleet if n in before and before[n] == fleet[n]]
            assert {n: current[n] for n in kept} == {n: previous[n] for n in kept}
        previous = current


@given(st.lists(st.integers(min_value=1, max_value=450), min_size=1, max_size=5))
def test_growing_with_previous_placements_needs_no_more_profiles_than_ceil_n_over_200(
    additions: list[int],
) -> None:
    """Only adding workloads to one group: every deploy has at most ceil(n / 200) profiles."""
    fleet: dict[str, int] = {}
    previous: dict[str, Placement] | None = None
    for count in additions:
        fleet.update({f"w{len(fleet) + i}": 0 for i in range(count)})
        profiles, previous = sticky_step(fleet, previous)
        assert len(profiles) <= -(-len(fleet) // TARGET_ROLES_PER_PROFILE)


def test_a_shrinking_group_keeps_its_profiles_rather_than_move_anyone() -> None:
    """401 -> 150 workloads: the three profiles stay (merging them would move roles); none is empty."""
    fleet = {f"w{i:03d}": 0 for i in range(401)}
    _, previous = sticky_step(dict.fromkeys(list(fleet)[:199], 0), None)
    for size in (200, 201, 400, 401):
        _, previous = sticky_step(dict.fromkeys(list(fleet)[:size], 0), previous)
    assert len({place.bucket for place in previous.values()}) == 3
    survivors = {n: 0 for n in sorted(fleet) if int(n[1:]) % 8 < 3}  # 150, from every bucket
    profiles, after = sticky_step(survivors, previous)
    assert len(profiles) == 3
    assert after == {n: previous[n] for n in survivors}


def test_previous_placements_claiming_too_many_roles_keep_250_and_place_the_rest() -> None:
    fleet = {f"w{i:03d}": 0 for i in range(300)}
    digest = settings_digest(SETTINGS[0])
    profiles, after = sticky_step(fleet, dict.fromkeys(fleet, Placement(digest, 0)))
    assert sorted(len(p.workloads) for p in profiles) == [50, 250]
    assert [n for n in sorted(fleet) if after[n].bucket == 0] == sorted(fleet)[:250]


def test_a_previous_placement_in_another_settings_group_is_ignored() -> None:
    """The digest must match the workload's settings now: a stale or forged placement cannot put a
    role into a profile with other session settings."""
    other = Placement(settings_digest(SETTINGS[1]), 7)
    _, after = sticky_step({"a": 0, "b": 0}, {"a": other})
    assert after["a"].digest == settings_digest(SETTINGS[0])
    assert after["a"].bucket == 0


def test_a_profile_lists_its_roles_in_the_same_order_whatever_the_history() -> None:
    """Newcomers placed after kept members must not make the next deploy (all kept) reorder roleArns."""
    fleet = {f"w{i:03d}": 0 for i in range(202)}
    _, previous = sticky_step({n: 0 for n in fleet if n != "w000"}, None)  # 201: two of ~100
    grown, placed = sticky_step(fleet, previous)
    again, _ = sticky_step(fleet, placed)
    assert [p.workloads for p in grown] == [p.workloads for p in again]
    assert all(list(p.workloads) == sorted(p.workloads) for p in grown)
