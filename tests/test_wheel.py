"""The distribution on its own: a wheel built from this repository, installed into a clean venv in an
empty folder, runs every command without the checkout (the program and templates ship inside).

Slow by nature (it installs the runtime requirements, ~390 MB, from the package index), so the venv is
built once per session.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from roles_anywhere.credentials import cache
from roles_anywhere.entry import parsed_flags

from .certs import make_ca, make_svid
from .conftest import ROOT
from .test_credential_fast_path import FAST_PATH_MODULES, imported


def _run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), cwd=cwd, capture_output=True, text=True, check=False, timeout=900, env=env
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The venv's bin folder, with only the wheel and its runtime requirements installed."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"  # a copy without build/ or .venv, as a fresh clone has it
    shutil.copytree(
        ROOT,
        source,
        symlinks=True,
        ignore=shutil.ignore_patterns(
            ".venv", "build", "out", ".git", "*.egg-info", "__pycache__", ".*_cache"
        ),
    )
    built = _run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "-q",
        str(source),
        "-w",
        str(root / "dist"),
        cwd=root,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (root / "dist").glob("*.whl")
    venv = root / "venv"
    assert _run(sys.executable, "-m", "venv", str(venv), cwd=root).returncode == 0
    installed = _run(str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel), cwd=root)
    assert installed.returncode == 0, installed.stderr[-2000:]
    return venv / "bin"


def cli(bin_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin", "HOME": str(cwd)}
    return _run(str(bin_dir / "roles-anywhere"), *args, cwd=cwd, env=env)


def test_the_runtime_requirements_bring_no_test_or_sandbox_tools(installed: Path) -> None:
    top_level = list(
        installed.parent.glob("lib/python*/site-packages/teleport_roles_anywhere-*.dist-info/top_level.txt")
    )
    assert [path.read_text().split() for path in top_level] == [["roles_anywhere"]]  # no generic name
    listed = _run(str(installed / "python"), "-m", "pip", "list", "--format=json", cwd=installed)
    names = {package["name"].lower().replace("_", "-") for package in json.loads(listed.stdout)}
    assert {"pulumi", "pulumi-aws", "teleport-roles-anywhere"} <= names
    assert not names & {"moto", "flask", "boto3", "botocore", "pytest", "hypothesis"}


def test_every_command_runs_from_the_wheel_in_an_empty_folder(installed: Path, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    ca = make_ca("example.teleport.sh", not_before=now - timedelta(days=1))
    (tmp_path / "ca.pem").write_text(ca.pem)
    config = yaml.safe_load((ROOT / "Pulumi.example.yaml").read_text())
    config["config"]["teleport-roles-anywhere:caBundle"] = {"file": "ca.pem"}
    (tmp_path / "Pulumi.example.yaml").write_text(yaml.safe_dump(config))
    stack = str(tmp_path / "Pulumi.example.yaml")

    version = cli(installed, "--version", cwd=tmp_path)
    assert version.stdout.startswith("roles-anywhere 0.")
    plan = cli(installed, "plan", "--config", stack, "--json", cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    assert len(json.loads(plan.stdout)["resources"]) == 8  # anchor; 2 roles, 2 profiles, 3 policies
    render = cli(installed, "render", "--config", stack, "--out", "out", cwd=tmp_path)
    assert render.returncode == 0, render.stderr
    assert (tmp_path / "out" / "teleport" / "apply.py").is_file()
    assert "[profile ci-deployer]" in (tmp_path / "out" / "aws" / "config").read_text()

    svid = make_svid(
        ca,
        "spiffe://example.teleport.sh/ci/deployer",
        common_name="ci-deployer",
        not_before=now - timedelta(minutes=1),
        not_after=now + timedelta(hours=1),
    )
    (tmp_path / "svid.pem").write_text(svid.pem)
    simulate = cli(
        installed,
        "simulate",
        "--config",
        stack,
        "--certificate",
        "svid.pem",
        "--role",
        "ci-deployer",
        cwd=tmp_path,
    )
    assert simulate.returncode == 0, simulate.stdout + simulate.stderr
    bundle = cli(installed, "bundle", "--config", stack, cwd=tmp_path)
    assert bundle.returncode == 0, bundle.stderr

    (tmp_path / "svid_key.pem").write_text(svid.key_pem)
    process = cli(
        installed,
        "credential-process",
        "--certificate", "svid.pem",
        "--private-key", "svid_key.pem",
        "--trust-anchor-arn", json.loads(plan.stdout)["outputs"]["trustAnchorArn"],
        "--profile-arn", json.loads(plan.stdout)["outputs"]["workloads"]["ci-deployer"]["profileArn"],
        "--role-arn", json.loads(plan.stdout)["outputs"]["workloads"]["ci-deployer"]["roleArn"],
        "--endpoint", "https://127.0.0.1:9",
        cwd=tmp_path,
    )  # fmt: skip
    assert process.returncode == 2
    assert process.stderr.startswith("error: ")
    assert process.stderr.count("\n") == 1

    for command in (["sandbox"], ["sandbox-deploy", "--config", stack, "--out", "sb"]):
        result = cli(installed, *command, cwd=tmp_path)
        assert (result.returncode, result.stdout) == (2, "")
        assert "needs the 'sandbox' extra" in result.stderr
        assert "pip install '.[sandbox]'" in result.stderr


def test_the_command_is_a_plain_script_and_a_cached_answer_needs_only_the_standard_library(
    installed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bin/roles-anywhere is the shipped script (no console-script wrapper importing re), and a cached
    credential-process imports nothing beyond what `python -c pass` does but the fast path's modules."""
    script = (installed / "roles-anywhere").read_text()
    assert script.startswith(f"#!{installed / 'python'}\n")
    assert script.endswith("from roles_anywhere.entry import main\n\nsys.exit(main())\n")
    now = datetime.now(UTC)
    ca = make_ca("example.teleport.sh", not_before=now - timedelta(days=1))
    svid = make_svid(ca, "spiffe://example.teleport.sh/svc/orders", not_after=now + timedelta(hours=2))
    (tmp_path / "svid.pem").write_text(svid.pem)
    (tmp_path / "svid_key.pem").write_text(svid.key_pem)
    flags = [
        "--certificate", "svid.pem",
        "--private-key", "svid_key.pem",
        "--trust-anchor-arn",
        "arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/0f0e0d0c-1111-2222-3333-444455556666",
        "--profile-arn",
        "arn:aws:rolesanywhere:eu-west-1:111122223333:profile/1f0e0d0c-1111-2222-3333-444455556666",
        "--role-arn", "arn:aws:iam::111122223333:role/orders",
    ]  # fmt: skip
    # The entry, stored as the command's environment (cli: PATH and HOME only) will look for it.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("ROLES_ANYWHERE_CACHE_DIR", "XDG_CACHE_HOME", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
    values = parsed_flags(flags)
    assert values is not None
    key = cache.cache_key(**{name: values[name] for name in cache.KEY_ARGUMENTS})
    assert key is not None
    expiration = (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    answer = {"accessKeyId": "ASIAWHEELWHEELWHEEL1", "secretAccessKey": "s", "sessionToken": "t"}
    assert cache.store(key, {**answer, "expiration": expiration}, now + timedelta(hours=2))
    env = {"PATH": f"{installed}{os.pathsep}/usr/bin:/bin", "HOME": str(tmp_path)}
    python = str(installed / "python")
    cached = _run(python, "-X", "importtime", str(installed / "roles-anywhere"), "credential-process", *flags,
                  cwd=tmp_path, env=env)  # fmt: skip
    assert cached.returncode == 0, cached.stderr[-2000:]
    assert json.loads(cached.stdout)["AccessKeyId"] == "ASIAWHEELWHEELWHEEL1"
    baseline = _run(python, "-X", "importtime", "-c", "pass", cwd=tmp_path, env=env)
    extra = imported(cached.stderr) - imported(baseline.stderr)
    assert extra <= FAST_PATH_MODULES, extra
