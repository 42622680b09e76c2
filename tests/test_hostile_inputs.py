"""Stack files and other inputs written by someone else: refused in one line, fast, never a hang.

(Issue 13, first part: YAML aliases, repeated keys, deep nesting, and files that are not regular
files or never end.)
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roles_anywhere.cli import main
from roles_anywhere.config.stack_file import MAX_STACK_FILE_BYTES

from .conftest import ROOT, stack_config, write_stack


def run_cli(*args: str, **options: object) -> subprocess.CompletedProcess[str]:
    """The CLI as its own process, with a time limit: a hang fails the test instead of the suite."""
    return subprocess.run(
        [sys.executable, "-m", "roles_anywhere", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        **options,
    )


def plan_error(capsys: pytest.CaptureFixture[str], path: Path) -> str:
    code = main(["plan", "--config", str(path)])
    captured = capsys.readouterr()
    assert (code, captured.out) == (2, "")
    assert captured.err.count("\n") == 1, captured.err
    return captured.err


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bomb = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    bomb += [
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]" for i in range(9)
    ]
    path = tmp_path / "Pulumi.bomb.yaml"
    path.write_text("config:\n" + "\n".join("  " + line for line in bomb) + "\n")
    assert plan_error(capsys, path) == (
        f"error: {path}: refused: line 2: this node is reused through a YAML alias (*name); aliases are not "
        "accepted\n"
    )


def test_a_repeated_key_is_refused_with_both_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_stack(tmp_path, stack_config())
    text = path.read_text()
    path.write_text(text + "  teleport-roles-anywhere:workloads:\n    evil: {spiffeId: /svc/evil}\n")
    first = 1 + next(
        i for i, line in enumerate(text.splitlines()) if "teleport-roles-anywhere:workloads" in line
    )
    last = len(text.splitlines()) + 1
    assert plan_error(capsys, path) == (
        f"error: {path}: refused: line {last}: key 'teleport-roles-anywhere:workloads' repeats line {first} "
        "(a repeated key would silently replace the first)\n"
    )


def test_deep_nesting_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "Pulumi.deep.yaml"
    path.write_text("config:\n  x: " + "[" * 20_000 + "]" * 20_000 + "\n")
    assert "nest" in plan_error(capsys, path)  # libyaml stops at 1,000 levels, our check at 64
    path.write_text("config:\n  x: " + "[" * 65 + "]" * 65 + "\n")
    assert "nested deeper than 64 levels" in plan_error(capsys, path)


def test_an_oversized_stack_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "Pulumi.big.yaml"
    path.write_text("config:\n" + "#" * (MAX_STACK_FILE_BYTES + 1) + "\n")
    assert plan_error(capsys, path) == f"error: {path}: larger than {MAX_STACK_FILE_BYTES} bytes\n"


@pytest.mark.parametrize("special", ["fifo", "/dev/zero", "folder"])
def test_inputs_that_never_end_or_are_not_files_are_refused(tmp_path: Path, special: str) -> None:
    """A FIFO would block a plain open(); /dev/zero never ends. Run as a process with a time limit."""
    if special == "fifo":
        path = tmp_path / "Pulumi.fifo.yaml"
        os.mkfifo(path)
    elif special == "folder":
        path = tmp_path / "Pulumi.dir.yaml"
        path.mkdir()
    else:
        path = Path(special)
    for args in (
        ["plan", "--config", str(path)],
        ["render", "--stack-outputs", str(path), "--out", str(tmp_path / "out")],
    ):
        result = run_cli(*args)
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1
        assert "not a regular file" in result.stderr or "cannot read" in result.stderr
    assert not (tmp_path / "out").exists()


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400) | st.text(alphabet="ab:&*[]{}-\n #!'\"?|>", max_size=200).map(str.encode))
def test_any_bytes_give_a_stack_file_or_one_config_error(tmp_path: Path, data: bytes) -> None:
    from roles_anywhere.config.stack_file import read_stack_file  # noqa: PLC0415
    from roles_anywhere.errors import ConfigError  # noqa: PLC0415

    path = tmp_path / "Pulumi.fuzz.yaml"
    path.write_bytes(data)
    message = ""
    try:
        read_stack_file(path)
    except ConfigError as err:
        message = str(err)
    assert "\n" not in message


def command_stack(tmp_path: Path, argv: list[str]) -> Path:
    return write_stack(tmp_path, stack_config(caBundle={"command": argv}))


REFUSED_COMMAND = (
    "error: caBundle.command: runs a program named by the stack file, so it is refused unless allowed for "
    "this run: pass --allow-commands to roles-anywhere, or set ROLES_ANYWHERE_ALLOW_COMMANDS=1 for pulumi "
    "preview/up. Review a stack file that uses it as code\n"
)


def test_a_command_in_the_stack_file_needs_consent_for_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pull request that adds caBundle.command must not run code on the CI runner that plans it."""
    from .certs import make_svid  # noqa: PLC0415
    from .conftest import CA  # noqa: PLC0415

    monkeypatch.delenv("ROLES_ANYWHERE_ALLOW_COMMANDS", raising=False)
    marker = tmp_path / "ran"
    path = command_stack(tmp_path, ["sh", "-c", f"touch {marker}"])
    (tmp_path / "svid.pem").write_text(make_svid(CA, "spiffe://acme.teleport.sh/svc/orders").pem)
    for command in (
        ["plan", "--config", str(path)],
        ["simulate", "--config", str(path), "--certificate", str(tmp_path / "svid.pem")],
        ["bundle", "--config", str(path)],
        ["render", "--config", str(path), "--out", str(tmp_path / "out")],
    ):
        assert main(command) == 2
        assert capsys.readouterr().err == REFUSED_COMMAND
    assert not marker.exists()


def test_with_consent_the_command_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from .conftest import CA  # noqa: PLC0415

    (tmp_path / "ca.pem").write_text(CA.pem)
    path = command_stack(tmp_path, ["cat", "ca.pem"])
    assert main(["plan", "--config", str(path), "--allow-commands"]) == 0
    capsys.readouterr()


def test_a_command_that_never_stops_printing_is_stopped_at_the_cap(tmp_path: Path) -> None:
    """`cat /dev/zero` is read as it streams and killed past 1 MiB, not buffered whole."""
    path = command_stack(tmp_path, ["cat", "/dev/zero"])
    one_gib = 1024 * 1024 * 1024
    result = run_cli(
        "plan",
        "--config",
        str(path),
        "--allow-commands",
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (one_gib, one_gib)),
    )
    assert result.returncode == 2
    assert result.stderr == (
        "error: caBundle.command: `cat /dev/zero` printed more than 1048576 bytes and was stopped; "
        "not a CA bundle\n"
    )


@pytest.mark.parametrize("special", ["/dev/zero", "fifo"])
def test_credential_and_certificate_files_that_never_end_are_refused(tmp_path: Path, special: str) -> None:
    """Every file the tool reads is a bounded regular file: SVID, key, intermediates, CA files."""
    if special == "fifo":
        os.mkfifo(tmp_path / "fifo")
        special = str(tmp_path / "fifo")
    config = write_stack(tmp_path, stack_config(caBundle={"file": special}))
    arn = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/0b5c5a2e-6f3e-4c1f-9d7a-2f1b8e0c4d11"
    role = "arn:aws:iam::123456789012:role/x"
    profile = "arn:aws:rolesanywhere:us-east-1:123456789012:profile/0b5c5a2e-6f3e-4c1f-9d7a-2f1b8e0c4d11"
    process = ["credential-process", "--trust-anchor-arn", arn, "--profile-arn", profile, "--role-arn", role]
    for args in (
        [*process, "--certificate", special, "--private-key", special],
        ["simulate", "--config", str(config), "--certificate", special],
        ["plan", "--config", str(config)],
    ):
        result = run_cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.count("\n") == 1
        assert "not a regular file" in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"cluster": "example.teleport.sh."},
            "cluster: 'example.teleport.sh.' has an empty label (a leading, trailing or doubled '.'); a "
            "Teleport cluster name never does, so no SVID would match it",
        ),
        (
            {
                "workloads": {
                    "orders": {
                        "spiffeId": "/svc/orders",
                        "inlinePolicy": {
                            "Version": "2012-10-17",
                            "Statement": [
                                {
                                    "Effect": "Allow",
                                    "Action": "s3:GetObject",
                                    "Resource": f"arn:aws:s3:::b/{'x' * 20_000}",
                                }
                            ],
                        },
                    }
                }
            },
            "workloads.orders.inlinePolicy: is 20110 characters without whitespace; IAM allows 10240 for a "
            "role's inline policies (deploying would fail): use a managed policy",
        ),
        (
            {
                "workloads": {
                    "orders": {
                        "spiffeId": "/svc/orders",
                        "inlinePolicy": {
                            "Version": "2012-10-17",
                            "Statement": [
                                {
                                    "Sid": "read all",
                                    "Effect": "Allow",
                                    "Action": "s3:GetObject",
                                    "Resource": "*",
                                }
                            ],
                        },
                    }
                }
            },
            "workloads.orders.inlinePolicy.Statement[0].Sid: String should match pattern '^[A-Za-z0-9]*$'",
        ),
    ],
    ids=["trailing-dot", "inline-policy-size", "sid-characters"],
)
def test_what_aws_would_refuse_at_deploy_is_refused_at_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], changes: dict[str, object], message: str
) -> None:
    assert plan_error(capsys, write_stack(tmp_path, stack_config(**changes))) == f"error: {message}\n"


def test_broad_permissions_are_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    workload = {
        "spiffeId": "/svc/orders",
        "managedPolicyArns": ["arn:aws:iam::aws:policy/AdministratorAccess"],
        "inlinePolicy": {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "*", "Resource": "*"},
                {"Effect": "Allow", "Action": ["iam:PassRole"], "Resource": "*"},
            ],
        },
        "bots": ["dev-ci"],
    }
    assert (
        main(["plan", "--config", str(write_stack(tmp_path, stack_config(workloads={"orders": workload})))])
        == 0
    )
    assert capsys.readouterr().err.splitlines() == [
        "warning: workloads.orders.managedPolicyArns: AdministratorAccess makes whoever obtains the SVID "
        "an admin",
        'warning: workloads.orders.inlinePolicy: a statement allows Action "*" (every action)',
        'warning: workloads.orders.inlinePolicy: iam:PassRole on Resource "*" lets the role pass any role',
    ]


@pytest.mark.parametrize("folder", ["/tmp/elsewhere", "../../outside", "out/../../x", "~/out"])
def test_artifacts_dir_stays_inside_the_stack_folder_unless_the_runner_opts_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, folder: str
) -> None:
    monkeypatch.delenv("ROLES_ANYWHERE_ARTIFACTS_ANYWHERE", raising=False)
    path = write_stack(tmp_path, stack_config(artifactsDir=folder))
    assert plan_error(capsys, path) == (
        f"error: artifactsDir: {folder!r} leaves the stack's folder; use a relative path without '..', or "
        "set ROLES_ANYWHERE_ARTIFACTS_ANYWHERE=1 for this run to write there on purpose\n"
    )
    monkeypatch.setenv("ROLES_ANYWHERE_ARTIFACTS_ANYWHERE", "1")
    assert main(["plan", "--config", str(path)]) == 0
    capsys.readouterr()


def test_nothing_printed_on_stderr_carries_terminal_escapes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A command's stderr (or a server's error text) with escape sequences is printed inert."""
    script = tmp_path / "ca.sh"
    script.write_text("#!/bin/sh\nprintf 'bad\\033]0;pwned\\007 \\033[2J\\n' >&2\nexit 3\n")
    script.chmod(0o755)
    path = command_stack(tmp_path, [str(script)])
    assert main(["plan", "--config", str(path), "--allow-commands"]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err
    assert "\x07" not in err
    assert "bad?]0;pwned? ?[2J" in err


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_linked_folder_under_the_output_folder_is_never_written_or_deleted_through(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`out/teleport` planted as a link to another folder, and a manifest naming a file there."""
    config = write_stack(
        tmp_path, stack_config(workloads={"orders": {"spiffeId": "/svc/orders", "bots": ["dev-ci"]}})
    )
    out = tmp_path / "out"
    assert main(["render", "--config", str(config), "--out", str(out)]) == 0
    capsys.readouterr()
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.yaml").write_text("keep me")
    for path in sorted((out / "teleport").iterdir()):
        path.unlink()
    (out / "teleport").rmdir()
    (out / "teleport").symlink_to(victim)
    manifest = out / ".roles-anywhere-files"
    manifest.write_text(manifest.read_text() + "teleport/precious.yaml\n")
    before = snapshot(victim)
    assert main(["render", "--config", str(config), "--out", str(out)]) == 2
    assert capsys.readouterr().err == (
        f"error: {out / 'teleport'}: is a link or not a folder; nothing under the output folder is reached "
        "through a link (nothing was written)\n"
    )
    assert snapshot(victim) == before


def test_only_regular_files_we_wrote_are_removed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A manifest entry that is now a link (to a file elsewhere) or a folder is left alone."""
    config = write_stack(tmp_path, stack_config())
    out = tmp_path / "out"
    assert main(["render", "--config", str(config), "--out", str(out)]) == 0
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    (out / "tsh" / "linked.sh").symlink_to(outside)
    (out / "tsh" / "folder.sh").mkdir()
    manifest = out / ".roles-anywhere-files"
    manifest.write_text(manifest.read_text() + "tsh/folder.sh\ntsh/linked.sh\n")
    assert main(["render", "--config", str(config), "--out", str(out)]) == 0
    capsys.readouterr()
    assert outside.read_text() == "keep me"
    assert (out / "tsh" / "linked.sh").is_symlink()
    assert (out / "tsh" / "folder.sh").is_dir()


def test_a_repeated_key_in_stack_outputs_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`json` keeps the last of two keys: a second `workloads` would replace the reviewed outputs."""
    config = write_stack(tmp_path, stack_config())
    assert main(["plan", "--config", str(config), "--json"]) == 0
    outputs = json.loads(capsys.readouterr().out)["outputs"]
    text = json.dumps(outputs)
    path = tmp_path / "outputs.json"
    path.write_text(text[:-1] + ', "workloads": {}}')
    assert main(["render", "--stack-outputs", str(path), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == f"error: {path}: refused: key 'workloads' appears twice in one object\n"
    assert not (tmp_path / "out").exists()
    path.write_text("[" * 100_000)
    assert main(["render", "--stack-outputs", str(path), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == f"error: {path}: refused: nested too deeply\n"
