"""`roles-anywhere render`, both sources; stack outputs re-validated; `pulumi up` writes the same files."""

from __future__ import annotations

import configparser
import copy
import json
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from roles_anywhere import PROJECT
from roles_anywhere.cli import main
from roles_anywhere.config import field_rules
from roles_anywhere.config.stack_file import read_stack_file
from roles_anywhere.errors import ConfigError, RolesAnywhereError
from roles_anywhere.plan.run import plan_stack_file, run_program
from roles_anywhere.render.artifacts import artifact_digests, render_artifacts
from roles_anywhere.stack.deployment import load_deployment

from .conftest import ROOT, stack_config, with_dotted, write_stack


@pytest.fixture(scope="module")
def example_outputs() -> dict[str, Any]:
    outputs = plan_stack_file(ROOT / "Pulumi.example.yaml").outputs
    return json.loads(json.dumps(outputs))  # exactly what `pulumi stack output --json` would hold


def tree(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): p.read_text(encoding="utf-8")
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".roles-anywhere-files"
    }


def test_render_from_config_and_from_stack_outputs_agree(
    tmp_path: Path, example_outputs: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["render", "--config", str(ROOT / "Pulumi.example.yaml"), "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Rendered 12 files into {tmp_path / 'a'} (ARNs predicted offline for ")
    assert f"  {tmp_path / 'a' / 'aws' / 'config'}\n" in out
    outputs_file = tmp_path / "outputs.json"
    outputs_file.write_text(json.dumps(example_outputs))
    assert main(["render", "--stack-outputs", str(outputs_file), "--out", str(tmp_path / "b")]) == 0
    assert tree(tmp_path / "a") == tree(tmp_path / "b")
    assert artifact_digests(tree(tmp_path / "a")) == example_outputs["artifacts"]


def test_rerender_reports_unchanged_and_removes_dropped_workloads(
    tmp_path: Path, example_outputs: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    outputs_file = tmp_path / "outputs.json"
    outputs_file.write_text(json.dumps(example_outputs))
    assert main(["render", "--stack-outputs", str(outputs_file), "--out", str(tmp_path / "out")]) == 0
    smaller = copy.deepcopy(example_outputs)
    del smaller["workloads"]["example-service"]
    outputs_file.write_text(json.dumps(smaller))
    capsys.readouterr()
    assert main(["render", "--stack-outputs", str(outputs_file), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert f"removed {tmp_path / 'out' / 'tsh' / 'example-service.sh'}" in out
    assert not (tmp_path / "out" / "teleport" / "workload_identity-tra.example-service.yaml").exists()
    # alice was named only by example-service: apply.sh takes back her role and the WorkloadIdentity.
    ledger = json.loads((tmp_path / "out" / "teleport" / "objects.json").read_text())
    assert ledger["retired"] == {
        "workload_identity": ["tra.example-service"],
        "role": ["tra.user.alice@example.com"],
    }
    script = (tmp_path / "out" / "teleport" / "apply.sh").read_text()
    assert "#   workload_identity/tra.example-service: retired\n" in script
    assert "#   role/tra.user.alice@example.com: retired\n" in script


@pytest.mark.parametrize(
    ("path", "value", "error"),
    [
        (
            "trustAnchorArn",
            None,
            "trustAnchorArn: is missing (were these outputs written by this project's `pulumi up`?)",
        ),
        (
            "trustAnchorArn",
            "arn:aws:iam::111122223333:role/x",
            "trustAnchorArn: 'arn:aws:iam::111122223333:role/x' is not a Roles Anywhere trust anchor ARN",
        ),
        (
            "workloads.ci-deployer.svidDirectory",
            "/opt/x\nrm -rf /",
            "workloads.ci-deployer.svidDirectory: contains the control character U+000A; "
            "a path must be printable text",
        ),
        (
            "workloads.ci-deployer.roleArn",
            "arn:aws:iam::111122223333:user/x",
            "workloads.ci-deployer.roleArn: 'arn:aws:iam::111122223333:user/x' is not an IAM role ARN",
        ),
        (
            "workloads.ci-deployer.profileArn",
            "arn:aws:rolesanywhere:us-east-1:111122223333:profile/8944db59-30fd-5246-828c-77992b49364d",
            "workloads.ci-deployer.profileArn: is not in the trust anchor's partition, region and account",
        ),
        (
            "workloads.ci-deployer.spiffeId",
            "spiffe://other.example.com/ci/deployer",
            "workloads.ci-deployer.spiffeId: is not in the trust domain 'example.teleport.sh'",
        ),
        (
            "workloads.ci-deployer.bots",
            ["ghost"],
            "workloads.ci-deployer.bots: bot 'ghost' has no entry in teleport.bots",
        ),
        (
            "workloads.ci-deployer.sessionDuration",
            "3600",
            "workloads.ci-deployer.sessionDuration: must be a valid integer",
        ),
        ("teleport.mode", "modern", "teleport.mode: must be 'workload-identity' or 'legacy'"),
        (
            "aws.signingHelper",
            "x y #z",
            "aws.signingHelper: contains a space followed by '#' or ';', which AWS SDKs read as the start "
            "of a comment in ~/.aws/config; rename it",
        ),
    ],
)
def test_tampered_stack_outputs_are_refused(
    tmp_path: Path, example_outputs: dict[str, Any], path: str, value: Any, error: str
) -> None:
    outputs = with_dotted(example_outputs, path, value)
    with pytest.raises(ConfigError) as raised:
        load_deployment(outputs, source="outputs.json")
    assert str(raised.value) == f"outputs.json: {error}"


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (None, "error: {file}: file not found"),
        (
            "{not json",
            "error: {file}: not JSON (line 1: Expecting property name enclosed in double quotes); "
            "save `pulumi stack output --json` to it",
        ),
        ("[1, 2]", "error: {file}: not a JSON object of stack outputs (`pulumi stack output --json`)"),
        (
            "{}",
            "error: {file}: cluster: is missing (were these outputs written by this project's `pulumi up`?)",
        ),
    ],
)
def test_bad_stack_outputs_file_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, error: str
) -> None:
    file = tmp_path / "outputs.json"
    if content is not None:
        file.write_text(content)
    assert main(["render", "--stack-outputs", str(file), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == error.format(file=file) + "\n"
    assert not (tmp_path / "out").exists()


def test_render_needs_exactly_one_source(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["render", "--config", "a.yaml", "--stack-outputs", "b.json", "--out", "x"])
    assert exited.value.code == 2
    assert capsys.readouterr().err == (
        "error: argument --stack-outputs: not allowed with argument --config "
        "(see 'roles-anywhere render --help')\n"
    )


def test_render_with_a_bad_config_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = stack_config(workloads={"orders": {"spiffeId": "/svc/orders", "svidTtl": "2d"}})
    path = write_stack(tmp_path, config)
    assert main(["render", "--config", str(path), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == (
        "error: workloads.orders.svidTtl: '2d' is not a duration such as 30m, 1h or 8h\n"
    )


def test_render_refuses_to_replace_a_strangers_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "README.md").write_text("mine")
    assert main(["render", "--config", str(ROOT / "Pulumi.example.yaml"), "--out", str(out)]) == 2
    assert "exists and was not written by roles-anywhere" in capsys.readouterr().err
    assert (out / "README.md").read_text() == "mine"


def run_up(tmp_path: Path, config: dict[str, Any], stack: str, *, write: bool = True) -> dict[str, Any]:
    """The program under the mocks as `pulumi up` runs it (``write``) or as a plan; its outputs."""
    stack_file = read_stack_file(write_stack(tmp_path, config, stack=stack))
    return run_program(
        config=stack_file.config,
        stack=stack,
        region="us-east-2",
        account_id="111122223333",
        config_dir=tmp_path,
        write_artifacts=write,
    ).outputs


def test_pulumi_up_writes_the_rendered_files_to_artifacts_dir(tmp_path: Path) -> None:
    """The program under the mocks as `pulumi up` runs it (not a preview, not a plan) writes the files."""
    config = stack_config(
        artifactsDir="rendered",
        workloads={"orders": {"spiffeId": "/svc/orders", "bots": ["prod-ci"]}},
    )
    planned = run_up(tmp_path, config, "prod", write=False)
    assert not (tmp_path / "rendered").exists()  # a plan writes nothing
    outputs = run_up(tmp_path, config, "prod")
    written = tree(tmp_path / "rendered")
    assert artifact_digests(written) == outputs["artifacts"] == planned["artifacts"]
    assert written == render_artifacts(load_deployment(outputs, source="outputs"))
    assert sorted(written) == [
        "README.md",
        "aws/config",
        "tbot/prod-ci.yaml",
        "teleport/apply.py",
        "teleport/apply.sh",
        "teleport/objects.json",
        "teleport/role-prod.bot.prod-ci.yaml",
        "teleport/workload_identity-prod.orders.yaml",
        "tsh/orders.sh",
    ]


def test_default_artifacts_dir_is_out_slash_stack(tmp_path: Path) -> None:
    run_up(tmp_path, stack_config(), "staging")
    assert (tmp_path / "out" / "staging" / "aws" / "config").is_file()
    assert f"{PROJECT}" in (tmp_path / "out" / "staging" / "README.md").read_text()


SEGMENT = st.text(
    st.characters(exclude_categories=("Cs", "Cc", "Cf", "Zl", "Zp"), exclude_characters="/"),
    min_size=1,
    max_size=12,
).filter(lambda s: s not in (".", ".."))
PATHS = st.lists(SEGMENT, min_size=1, max_size=4).map(lambda parts: "/" + "/".join(parts))
USERS = st.text(
    st.characters(exclude_categories=("Cs", "Cc", "Cf", "Zl", "Zp", "Zs"), exclude_characters="/"),
    min_size=1,
    max_size=20,
)


def _valid(rule: Any, value: str) -> bool:
    try:
        rule(value)
    except ValueError:
        return False
    return True


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(directory=PATHS, helper=PATHS, storage=PATHS, token=PATHS, user=USERS)
def test_any_accepted_value_comes_back_exactly_from_every_parser(
    example_outputs: dict[str, Any], directory: str, helper: str, storage: str, token: str, user: str
) -> None:
    assume(_valid(field_rules.absolute_path, directory) and _valid(field_rules.command_path, helper))
    assume(_valid(lambda p: field_rules.absolute_path(p, in_aws_config=False), storage))
    assume(_valid(lambda p: field_rules.absolute_path(p, in_aws_config=False), token))
    assume(_valid(field_rules.user_name, user))
    outputs = copy.deepcopy(example_outputs)
    workload = outputs["workloads"]["example-service"]
    workload.update(svidDirectory=directory, users=[user])
    outputs["aws"]["signingHelper"] = helper
    outputs["teleport"]["bots"]["tra-ci-runner"] = {
        "joinMethod": "token",
        "token": token,
        "storagePath": storage,
    }
    files = render_artifacts(load_deployment(outputs, source="outputs"))

    bot = yaml.safe_load(files["tbot/tra-ci-runner.yaml"])
    assert bot["onboarding"]["token"] == token
    assert bot["storage"]["path"] == storage
    assert bot["services"][1]["destination"]["path"] == directory
    parser = configparser.RawConfigParser()
    parser.read_string(files["aws/config"])
    argv = shlex.split(parser["profile example-service"]["credential_process"])
    assert argv[:4] == [helper, "credential-process", "--certificate", f"{directory}/svid.pem"]
    assert argv[5] == f"{directory}/svid_key.pem"
    command = shlex.split(files["tsh/example-service.sh"].splitlines()[-1])
    assert command[-2:] == ["--output", directory]
    assert json.loads(files["teleport/objects.json"])["users"] == {user: f"tra.user.{user}"}
    for path, text in files.items():
        if path.endswith(".yaml"):
            assert yaml.safe_load(text)  # every YAML file still parses


def test_pulumi_up_refuses_to_overwrite_a_strangers_file_in_artifacts_dir(tmp_path: Path) -> None:
    (tmp_path / "out" / "prod").mkdir(parents=True)
    (tmp_path / "out" / "prod" / "README.md").write_text("mine")
    with pytest.raises(RolesAnywhereError, match="exists and was not written by roles-anywhere"):
        run_up(tmp_path, stack_config(), "prod")
    assert (tmp_path / "out" / "prod" / "README.md").read_text() == "mine"
