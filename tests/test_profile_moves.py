"""Profile moves without an outage (issue 22): a workload keeps its shared profile across deploys.

Each plan here runs the real program under the mocks with the previous plan's outputs as the deployed
stack's (``plan --stack-outputs``), which the program reads back exactly as under ``pulumi up``. The
mocks derive a profile's ARN from its logical name, so an unchanged ARN between two plans is the
same profile resource, as it would be in AWS.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pulumi
import pytest

from roles_anywhere import PROJECT
from roles_anywhere.cli import main
from roles_anywhere.components import previous_outputs
from roles_anywhere.components.previous_outputs import PREVIOUS_OUTPUTS_ENV
from roles_anywhere.errors import ConfigError
from roles_anywhere.plan import run as plan_run
from roles_anywhere.plan.mocks import PROFILE, DeterministicAwsMocks
from roles_anywhere.plan.run import PreviousOutputsMocks, mocked_runtime, plan_stack_file
from roles_anywhere.render.artifacts import render_artifacts
from roles_anywhere.stack.deployment import load_deployment
from roles_anywhere.stack.profiles import MAX_ROLES_PER_PROFILE, SHARED_PROFILES

from .conftest import stack_config, write_stack

_PAIR = re.compile(r"--profile-arn (\S+) --role-arn (\S+)")


def fleet(count: int, **extra: Any) -> dict[str, Any]:
    """``count`` workloads with equal profile settings: one settings group."""
    return {f"w{i:04d}": {"spiffeId": f"/svc/w{i:04d}", "bots": ["dev-ci"], **extra} for i in range(count)}


def plan_json(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    config: dict[str, Any],
    previous: dict[str, Any] | None,
    *extra: str,
) -> tuple[int, dict[str, Any], str]:
    """``plan --json`` of ``config``, against ``previous`` outputs when given: (status, document, stderr)."""
    path = write_stack(tmp_path, config)
    argv = ["plan", "--json", "--config", str(path), *extra]
    if previous is not None:
        outputs = tmp_path / "outputs.json"
        outputs.write_text(json.dumps(previous))
        argv += ["--stack-outputs", str(outputs)]
    code = main(argv)
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if captured.out else {}), captured.err


def vended(document: dict[str, Any]) -> set[tuple[str, str]]:
    """Every (profile ARN, role ARN) pair the planned profiles vend."""
    return {
        (resource["outputs"]["arn"], role)
        for resource in document["resources"]
        if resource["type"] == PROFILE
        for role in resource["inputs"]["roleArns"]
    }


def rendered_pairs(outputs: dict[str, Any]) -> set[tuple[str, str]]:
    """The (profile ARN, role ARN) pairs in the aws/config rendered from ``outputs``."""
    aws_config = render_artifacts(load_deployment(outputs, source="outputs"))["aws/config"]
    return {(match.group(1), match.group(2)) for match in _PAIR.finditer(aws_config)}


def test_199_200_201_400_401_workloads_move_nobody_and_old_configs_keep_working(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's sequence in one settings group, each plan against the previous one's outputs.

    Before, 201 moved 98 of 200 workloads to a new profile. Now: no workload's profile ARN changes,
    plan names no move, and every profile/role pair of the aws/config rendered at the previous step
    is still vended by the next deployment (a host that was not redeployed keeps working).
    """
    previous: dict[str, Any] | None = None
    profiles_per_step = []
    for count in (199, 200, 201, 400, 401):
        code, document, err = plan_json(tmp_path, capsys, stack_config(workloads=fleet(count)), previous)
        assert code == 0, err
        assert "profiles:" not in err  # no move warning
        workloads = document["outputs"]["workloads"]
        profiles = [r for r in document["resources"] if r["type"] == PROFILE]
        profiles_per_step.append(len(profiles))
        assert max(len(p["inputs"]["roleArns"]) for p in profiles) <= MAX_ROLES_PER_PROFILE
        assert {(w["profileArn"], w["roleArn"]) for w in workloads.values()} <= vended(document)
        if previous is not None:
            assert document["profileMoves"] == []
            assert "profileMovesUnchecked" not in document
            kept = {name: previous["workloads"][name]["profileArn"] for name in previous["workloads"]}
            assert {name: workloads[name]["profileArn"] for name in kept} == kept
            assert rendered_pairs(previous) <= vended(document)  # the old aws/config still works
        previous = document["outputs"]
    assert profiles_per_step == [1, 1, 2, 2, 3]  # ceil(n / 200): no more profiles than before


def test_without_previous_outputs_the_assignment_is_the_stateless_one_deployed_before(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What made the outage: at 201 stateless hashing moves about half of the 200 (98 measured).

    A plan without outputs (a first deploy) still assigns that way, which is what earlier versions
    deployed, so upgrading moves nothing; with the outputs, nobody moves.
    """
    _, at_200, _ = plan_json(tmp_path, capsys, stack_config(workloads=fleet(200)), None)
    _, stateless, _ = plan_json(tmp_path, capsys, stack_config(workloads=fleet(201)), None)
    _, sticky, _ = plan_json(tmp_path, capsys, stack_config(workloads=fleet(201)), at_200["outputs"])
    before = at_200["outputs"]["workloads"]
    moved = [
        n for n in before if stateless["outputs"]["workloads"][n]["profileArn"] != before[n]["profileArn"]
    ]
    assert len(moved) == 97  # about half (the issue measured 98 of 200 with its names)
    assert [
        n for n in before if sticky["outputs"]["workloads"][n]["profileArn"] != before[n]["profileArn"]
    ] == []


def test_a_settings_change_is_named_with_its_old_and_new_profile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A move the design allows (settings changed: another group) is one warning line, and plan
    lists the workload with the deployed ARN it leaves and the profile it joins; --strict refuses it."""
    workloads = fleet(3)
    _, deployed, _ = plan_json(tmp_path, capsys, stack_config(workloads=workloads), None)
    old = deployed["outputs"]
    workloads["w0001"] = {**workloads["w0001"], "sessionDuration": 7200}
    code, document, err = plan_json(tmp_path, capsys, stack_config(workloads=workloads), old)
    assert code == 0
    (old_name,) = old[SHARED_PROFILES]
    new_name = next(name for name in document["outputs"][SHARED_PROFILES] if name != old_name)
    assert document["profileMoves"] == [
        {
            "workload": "w0001",
            "from": {"profile": old_name, "arn": old["workloads"]["w0001"]["profileArn"]},
            "to": {"profile": new_name, "arn": None},
            "reason": "its profile settings changed, so it joins the profile of its new settings",
        }
    ]
    (warning,) = [line for line in err.splitlines() if "profiles:" in line]
    assert warning.startswith(
        f"warning: profiles: 1 workload(s) move to another Roles Anywhere profile against the previous "
        f"outputs ({tmp_path / 'outputs.json'}) (w0001; plan --stack-outputs lists each with its reason): "
        "the profile ARN in their aws/config changes"
    )
    code, _, err = plan_json(tmp_path, capsys, stack_config(workloads=workloads), old, "--strict")
    assert code == 1
    assert len(err.splitlines()) == 1


def test_the_text_plan_lists_each_move_on_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workloads = fleet(2)
    _, deployed, _ = plan_json(tmp_path, capsys, stack_config(workloads=workloads), None)
    (tmp_path / "outputs.json").write_text(json.dumps(deployed["outputs"]))
    path = write_stack(tmp_path, stack_config(workloads=workloads))
    assert main(["plan", "--config", str(path), "--stack-outputs", str(tmp_path / "outputs.json")]) == 0
    out = capsys.readouterr().out
    assert (
        f"Profile changes against {tmp_path / 'outputs.json'}: none; every workload keeps its profile ARN."
        in out
    )

    swapped = {**workloads, "w0000": {**workloads["w0000"], "sessionDuration": 7200}}
    swapped["w0001"] = {**workloads["w0001"], "profile": {"acceptRoleSessionName": True}}
    path = write_stack(tmp_path, stack_config(workloads=swapped))
    assert main(["plan", "--config", str(path), "--stack-outputs", str(tmp_path / "outputs.json")]) == 0
    out = capsys.readouterr().out
    section = out[out.index("Profile changes against") :].splitlines()
    assert section[0].endswith(
        "2 workload(s) get another profile ARN; a host whose aws/config still names the old one gets "
        "AccessDenied until the new file reaches it:"
    )
    old_arn = deployed["outputs"]["workloads"]["w0000"]["profileArn"]
    assert section[1].startswith("  w0000: shared-")
    assert f"({old_arn}) -> shared-" in section[1]
    assert section[1].endswith(
        "(created by this deploy): its profile settings changed, so it joins the profile of its new settings"
    )
    assert section[2].startswith("  w0001: ")


def test_switching_profile_sharing_names_every_workload(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """perWorkload -> shared (the upgrade README describes) moves everyone; plan says so, per workload."""
    workloads = fleet(3)
    _, own, _ = plan_json(
        tmp_path, capsys, stack_config(workloads=workloads, profileSharing="perWorkload"), None
    )
    assert own["outputs"][SHARED_PROFILES] == {}
    _, shared, err = plan_json(tmp_path, capsys, stack_config(workloads=workloads), own["outputs"])
    assert [move["workload"] for move in shared["profileMoves"]] == ["w0000", "w0001", "w0002"]
    assert {move["reason"] for move in shared["profileMoves"]} == {
        "profileSharing changed: it had its own profile, and now shares one"
    }
    assert {move["from"]["profile"] for move in shared["profileMoves"]} == {None}
    assert "3 workload(s) move" in err
    _, back, _ = plan_json(
        tmp_path, capsys, stack_config(workloads=workloads, profileSharing="perWorkload"), shared["outputs"]
    )
    assert [move["to"] for move in back["profileMoves"]] == [
        {"profile": name, "arn": None} for name in ("w0000", "w0001", "w0002")
    ]


def test_a_new_name_prefix_renames_a_profile_in_place_which_is_no_move(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A profile is its settings digest and bucket (its logical name), not its name: renamed, same ARN."""
    _, before, _ = plan_json(tmp_path, capsys, stack_config(workloads=fleet(3)), None)
    config = stack_config(workloads=fleet(3), namePrefix="team-", teleport={"namespace": "dev"})
    _, after, _ = plan_json(tmp_path, capsys, config, before["outputs"])
    assert after["profileMoves"] == []
    assert [name.split("shared-")[1] for name in after["outputs"][SHARED_PROFILES]] == [
        name.split("shared-")[1] for name in before["outputs"][SHARED_PROFILES]
    ]


def test_outputs_from_before_shared_profiles_were_recorded_cannot_be_checked_and_say_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, deployed, _ = plan_json(tmp_path, capsys, stack_config(workloads=fleet(3)), None)
    older = {key: value for key, value in deployed["outputs"].items() if key != SHARED_PROFILES}
    code, document, err = plan_json(tmp_path, capsys, stack_config(workloads=fleet(4)), older)
    assert code == 0
    assert document["profileMoves"] == []
    assert document["profileMovesUnchecked"] == 3
    (warning,) = [line for line in err.splitlines() if "profiles:" in line]
    assert "has no sharedProfiles output (written before it was exported), so for 3 workload(s)" in warning
    assert warning.endswith(
        "run pulumi up once without adding, removing or changing workloads, then plan against the new outputs"
    )


@pytest.mark.parametrize(
    ("shared", "key", "says"),
    [
        ({"not-ours": "X"}, "sharedProfiles.not-ours", "is not a shared profile name"),
        (
            {"dev-shared-0123456789-99999": "X"},
            "sharedProfiles.dev-shared-0123456789-99999",
            "is not a shared",
        ),
        ({"dev-shared-0123456789-01": "X"}, "sharedProfiles.dev-shared-0123456789-01", "is not a shared"),
        ({"dev-shared-0123456789-0": 7}, "sharedProfiles.dev-shared-0123456789-0", "is not a shared"),
        (["dev-shared-0123456789-0"], "sharedProfiles", "must map at most 5000 profile names to ARNs"),
    ],
    ids=["other-name", "huge-bucket", "leading-zero", "arn-not-text", "a-list"],
)
def test_hand_edited_shared_profiles_are_one_line_naming_the_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], shared: Any, key: str, says: str
) -> None:
    _, deployed, _ = plan_json(tmp_path, capsys, stack_config(workloads=fleet(2)), None)
    code, _, err = plan_json(
        tmp_path, capsys, stack_config(workloads=fleet(2)), {**deployed["outputs"], SHARED_PROFILES: shared}
    )
    assert code == 2
    assert err.startswith(f"error: {tmp_path / 'outputs.json'}: {key}: {says}")
    assert len(err.splitlines()) == 1


def test_two_names_for_one_arn_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, deployed, _ = plan_json(tmp_path, capsys, stack_config(workloads=fleet(2)), None)
    outputs = deployed["outputs"]
    ((_, arn),) = outputs[SHARED_PROFILES].items()
    outputs[SHARED_PROFILES]["dev-shared-0123456789-1"] = arn
    code, _, err = plan_json(tmp_path, capsys, stack_config(workloads=fleet(2)), outputs)
    assert code == 2
    assert err.startswith(f"error: {tmp_path / 'outputs.json'}: sharedProfiles.dev-shared-0123456789-1:")


def test_outputs_claiming_an_overfull_profile_keep_250_and_name_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A hand-edited file puts all 300 workloads in bucket 0: no profile may list more than 250 roles."""
    _, deployed, _ = plan_json(tmp_path, capsys, stack_config(workloads=fleet(300)), None)
    outputs = deployed["outputs"]
    (first, arn), *_ = sorted(outputs[SHARED_PROFILES].items())
    outputs[SHARED_PROFILES] = {first: arn}
    for workload in outputs["workloads"].values():
        workload["profileArn"] = arn
    code, document, _ = plan_json(tmp_path, capsys, stack_config(workloads=fleet(300)), outputs)
    assert code == 0
    profiles = [r for r in document["resources"] if r["type"] == PROFILE]
    assert max(len(p["inputs"]["roleArns"]) for p in profiles) == MAX_ROLES_PER_PROFILE
    assert len(document["profileMoves"]) == 50
    assert {m["reason"] for m in document["profileMoves"]} == {
        "its previous profile lists more than 250 roles in the previous outputs"
    }


def test_outputs_of_another_cluster_keep_nothing_and_say_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = stack_config(workloads=fleet(2), cluster="other.teleport.sh")
    _, deployed, _ = plan_json(tmp_path, capsys, other, None)
    code, _, err = plan_json(tmp_path, capsys, stack_config(workloads=fleet(2)), deployed["outputs"])
    assert code == 0
    assert "hold no outputs of this federation (cluster 'acme.teleport.sh')" in err


def test_the_program_reads_its_own_stack_by_organization_project_and_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under `pulumi up` the engine answers readStackOutputs from the backend; the plan's mocks stand in."""
    path = write_stack(tmp_path, stack_config(workloads=fleet(2)))
    previous = plan_stack_file(path).outputs
    seen: list[PreviousOutputsMocks] = []

    class Spy(PreviousOutputsMocks):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            seen.append(self)

    monkeypatch.setattr(plan_run, "PreviousOutputsMocks", Spy)
    monkeypatch.setenv(PREVIOUS_OUTPUTS_ENV, str(tmp_path / "absent.json"))  # plan ignores the shell's
    plan = plan_stack_file(path, previous_outputs=previous, previous_source="prev.json")
    assert [mocks.asked for mocks in seen] == [[f"organization/{PROJECT}/dev"]]
    assert plan.outputs["workloads"] == previous["workloads"]


def test_without_an_answer_the_program_stops_with_one_line_naming_the_way_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Neither name readable (as a real engine might say): stop, rather than risk moving workloads."""

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("unknown stack\n(details)")

    monkeypatch.setattr(pulumi.runtime, "invoke", refuse)
    monkeypatch.setattr(previous_outputs, "MockMonitor", type("Engine", (), {}))  # not unit-test mocks
    with mocked_runtime(DeterministicAwsMocks(region="us-east-2", account_id="123456789012"), stack="prod"):
        with pytest.raises(ConfigError) as raised:
            previous_outputs.own_outputs()
        assert str(raised.value) == (
            f"previous stack outputs: cannot be read (organization/{PROJECT}/prod: unknown stack; prod: "
            "unknown stack); they keep each workload in its shared profile across deploys. Save them with "
            "`pulumi stack output --json > previous.json` and set "
            "ROLES_ANYWHERE_PREVIOUS_OUTPUTS=previous.json"
        )
        saved = tmp_path / "previous.json"
        saved.write_text(json.dumps({"cluster": "acme.teleport.sh", "workloads": {}}))
        monkeypatch.setenv(PREVIOUS_OUTPUTS_ENV, str(saved))
        assert previous_outputs.own_outputs() == (
            {"cluster": "acme.teleport.sh", "workloads": {}},
            str(saved),
        )
        saved.write_text('{"workloads": {}, "workloads": {}}')
        with pytest.raises(ConfigError, match="appears twice"):
            previous_outputs.own_outputs()


def test_unit_test_mocks_that_do_not_answer_the_read_are_a_stack_never_deployed() -> None:
    """A user's own unit tests (their mocks return nothing useful for our read) must keep working."""

    class Bare(pulumi.runtime.Mocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
            return f"{args.name}-id", dict(args.inputs)

        def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
            raise RuntimeError(f"no mock for {args.token}")

    monitor = pulumi.runtime.mocks.MockMonitor(Bare())
    pulumi.runtime.set_mocks(Bare(), project=PROJECT, stack="unit", monitor=monitor)
    try:
        outputs, source = previous_outputs.own_outputs()
    finally:
        pulumi.runtime.settings.SETTINGS.outputs.clear()
    assert (outputs, source) == ({}, "no previous outputs (unit-test mocks that do not answer the read)")


def test_the_federation_outputs_are_found_at_the_top_or_under_one_export() -> None:
    """The stack-config program exports at the top; a Federation user exports under a key of theirs."""
    ours = {"cluster": "acme.teleport.sh", "workloads": {"a": {}}}
    assert previous_outputs.federation_document(ours, "acme.teleport.sh") is ours
    assert previous_outputs.federation_document({"rolesAnywhere": ours, "x": 1}, "acme.teleport.sh") is ours
    assert previous_outputs.federation_document({"rolesAnywhere": ours}, "other.teleport.sh") is None
    two = {"a": ours, "b": dict(ours)}
    assert previous_outputs.federation_document(two, "acme.teleport.sh") is None  # ambiguous: none
    assert previous_outputs.federation_document({}, "acme.teleport.sh") is None
