"""The CLI contract: exit codes, one-line errors on stderr, no tracebacks, no key material."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from roles_anywhere.cli import main

from .certs import make_ca
from .conftest import ROOT, stack_config, write_stack


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "roles_anywhere", *args], capture_output=True, text=True, cwd=ROOT, check=False
    )


def write_cli_stack(tmp_path: Path, **project: Any) -> Path:
    defaults = {"cluster": "example.teleport.sh", "workloads": {"api": {"spiffeId": "/svc/api"}}}
    return write_stack(tmp_path, stack_config(**(defaults | project)), stack="cli")


def test_plan_json_contract() -> None:
    result = run("plan", "--config", "Pulumi.example.yaml", "--json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert set(plan) >= {"resources", "outputs"}
    for resource in plan["resources"]:
        assert set(resource) >= {"type", "name", "inputs", "outputs"}
        assert set(resource["outputs"]) >= {"arn", "id", "name"}
    role = next(r for r in plan["resources"] if r["type"] == "aws:iam/role:Role")
    assert {"assumeRolePolicy", "maxSessionDuration", "name"} <= role["inputs"].keys()
    assert plan["outputs"]["trustAnchorArn"].startswith("arn:aws:rolesanywhere:eu-west-1:111122223333:")


def test_plan_text_shows_tree_and_trust_policies(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--config", str(ROOT / "Pulumi.example.yaml")]) == 0
    out = capsys.readouterr().out
    assert "aws:rolesanywhere/trustAnchor:TrustAnchor  roles-anywhere-trust-anchor  [protected]" in out
    assert '"aws:PrincipalTag/x509SAN/URI": "spiffe://example.teleport.sh/svc/example-service"' in out
    assert "Stack outputs:" in out


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["plan"],
            "error: the following arguments are required: --config (see 'roles-anywhere plan --help')",
        ),
        (["nonsense"], "error: argument COMMAND: invalid choice: 'nonsense'"),
        (["plan", "--config", "missing.yaml"], "error: missing.yaml: file not found"),
    ],
)
def test_usage_errors_are_one_line_with_status_2(args: list[str], line: str) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert result.stderr.startswith(line)
    assert result.stderr.count("\n") == 1
    assert result.stdout == ""


def test_a_private_key_in_the_bundle_is_refused_without_echoing_it(tmp_path: Path) -> None:
    leaked = make_ca()
    stack = write_cli_stack(tmp_path, caBundle={"pem": leaked.pem + leaked.key_pem})
    result = run("plan", "--config", str(stack))
    assert result.returncode == 2
    assert result.stderr.startswith("error: caBundle.pem: contains a private key; refusing it")
    assert result.stderr.count("\n") == 1
    for line in leaked.key_pem.splitlines()[1:-1]:
        assert line not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("project", "line"),
    [
        ({"cluster": "Bad"}, "error: cluster: not a SPIFFE trust domain"),
        (
            {"workloads": {"api": {"spiffeId": "/svc/a b"}}},
            "error: workloads.api.spiffeId: path segment characters",
        ),
        ({"workloads": {"a\nb": {"spiffeId": "/x"}}}, "error: workloads['a\\nb']: invalid workload name"),
        ({"caBundle": {"file": "nowhere.pem"}}, "error: caBundle.file: nowhere.pem: file not found"),
        (
            {"workloads": {"api": {"spiffeId": "/x", "sessionDuration": 60}}},
            "error: workloads.api.sessionDuration",
        ),
    ],
)
def test_config_errors_in_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], project: dict[str, Any], line: str
) -> None:
    assert main(["plan", "--config", str(write_cli_stack(tmp_path, **project))]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(line)
    assert captured.err.count("\n") == 1
    assert captured.out == ""


def test_warnings_go_to_stderr_and_the_plan_still_succeeds(tmp_path: Path) -> None:
    soon = make_ca(not_after=datetime.now(UTC) + timedelta(days=20))
    result = run("plan", "--config", str(write_cli_stack(tmp_path, caBundle={"pem": soon.pem})), "--json")
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("warning: caBundle.pem: CA CN=example.teleport.sh")
    json.loads(result.stdout)


def test_the_pure_core_does_not_import_pulumi() -> None:
    code = (
        "import sys, roles_anywhere.stack.spec, roles_anywhere.iam.policy, roles_anywhere.bundle.ca_bundle, "
        "roles_anywhere.config.spiffe, roles_anywhere.stack.outputs, roles_anywhere.config.naming, "
        "roles_anywhere.stack.anchor_settings, roles_anywhere.cli; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pulumi', 'pulumi_aws')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert result.stdout.strip() == "[]"


def test_version_and_help_name_every_command() -> None:
    version = run("--version")
    assert version.returncode == 0
    assert version.stdout.startswith("roles-anywhere ")
    help_text = run("--help").stdout
    for command in (
        "plan",
        "render",
        "simulate",
        "bundle",
        "sandbox",
        "sandbox-deploy",
        "credential-process",
    ):
        assert f"\n    {command}" in help_text
    description = help_text.split("positional arguments")[0]
    assert "credential-process" in description
    assert "sandbox" in description


def test_every_option_has_help_text() -> None:
    import argparse  # noqa: PLC0415

    from roles_anywhere.cli import build_parser  # noqa: PLC0415

    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    missing = [
        f"{name} {'/'.join(action.option_strings)}"
        for name, sub in commands.choices.items()
        for action in sub._actions
        if action.option_strings and not action.help
    ]
    assert missing == []


def test_errors_raised_through_pulumi_are_not_prefixed_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pulumi prints `error: ` before a RunError; ours must not add a second one."""
    import pulumi  # noqa: PLC0415

    from roles_anywhere.components import stack_config  # noqa: PLC0415

    monkeypatch.setattr(stack_config, "project_config_values", lambda: {"cluster": "Bad Cluster"})
    monkeypatch.setattr(pulumi, "get_stack", lambda: "dev")
    from roles_anywhere.components.federation import Federation  # noqa: PLC0415

    with pytest.raises(pulumi.RunError) as raised:
        Federation("fed", stack_config.read_args())
    assert str(raised.value).startswith("cluster: not a SPIFFE trust domain")


def test_plan_warns_when_a_notification_threshold_differs_from_the_deployed_stack(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed_config = write_cli_stack(tmp_path)
    assert main(["plan", "--config", str(deployed_config), "--json"]) == 0
    outputs = json.loads(capsys.readouterr().out)["outputs"]
    assert outputs["trustAnchor"]["caExpiryNotificationDays"] == 45
    (tmp_path / "outputs.json").write_text(json.dumps(outputs))
    (tmp_path / "changed").mkdir()
    changed = write_cli_stack(tmp_path / "changed", trustAnchor={"caExpiryNotificationDays": 30})
    assert main(["plan", "--config", str(changed), "--stack-outputs", str(tmp_path / "outputs.json")]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "trustAnchor." in line]
    assert warnings == [
        f"warning: trustAnchor.caExpiryNotificationDays: 30 in the config, 45 in the deployed stack "
        f"({tmp_path / 'outputs.json'}); changing a notification threshold replaces the trust anchor (a new "
        "ARN breaks every trust policy), which protect: true refuses: keep 45, or plan the replacement"
    ]
    assert (
        main(["plan", "--config", str(deployed_config), "--stack-outputs", str(tmp_path / "outputs.json")])
        == 0
    )
    assert "trustAnchor." not in capsys.readouterr().err
