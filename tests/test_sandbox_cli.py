"""The sandbox as users run it: a separate process, stopped by Ctrl-C; and the commands' bad-input paths."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pytest

from roles_anywhere.cli import main
from roles_anywhere.sandbox.server import Sandbox

from .sandbox_helpers import fresh_svid, make_world
from .test_sandbox_control_plane import listening_addresses
from .test_sandbox_sessions import process_args, write_svid

BIN = Path(sys.executable).parent


def wait_for(path: Path, process: subprocess.Popen[str], seconds: float = 60) -> dict[str, str]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists():
            return dict(json.loads(path.read_text()))
        if process.poll() is not None:
            pytest.fail(f"sandbox exited early: {process.stderr.read() if process.stderr else ''}")
        time.sleep(0.1)
    pytest.fail("sandbox did not write its endpoints file")


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_sandbox_process_serves_and_stops_cleanly(tmp_path: Path, stop_signal: signal.Signals) -> None:
    endpoints_file = tmp_path / "endpoints.json"
    process = subprocess.Popen(
        [
            str(BIN / "roles-anywhere"),
            "sandbox",
            "--endpoints-file",
            str(endpoints_file),
            "--state-dir",
            str(tmp_path / "state"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        endpoints = wait_for(endpoints_file, process)
        client = boto3.client(
            "rolesanywhere",
            region_name=endpoints["region"],
            endpoint_url=endpoints["rolesanywhere"],
            verify=endpoints["caFile"],
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )
        assert client.list_trust_anchors()["trustAnchors"] == []
        ports = [urlsplit(endpoints[s]).port for s in ("rolesanywhere", "iam")]
        process.send_signal(stop_signal)
        out, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert "Roles Anywhere sandbox (us-east-1, account 123456789012) on 127.0.0.1" in out
    assert not endpoints_file.exists()  # stale endpoints are not left behind
    for port in ports:
        assert port is not None
        assert listening_addresses(port) == set()
    assert (tmp_path / "state" / "iam.json").exists()


def test_sandbox_deploy_needs_a_sandbox(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "endpoints.json"
    args = [
        "sandbox-deploy",
        "--config",
        "Pulumi.example.yaml",
        "--endpoints",
        str(missing),
        "--out",
        str(tmp_path),
    ]
    assert main(args) == 2
    assert capsys.readouterr().err == f"error: --endpoints {missing}: file not found\n"
    missing.write_text('{"region": "us-east-1"}')
    assert main(args) == 2
    assert (
        "lacks accountId, caFile, iam, rolesanywhere, sts; is the sandbox running?" in capsys.readouterr().err
    )


def test_credential_process_tls_choices(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --ca-bundle the sandbox's certificate is not trusted; --no-verify-ssl skips the check."""
    with Sandbox() as sandbox:
        world = make_world(sandbox)
        orders = world.workload("/svc/orders")
        cert, key = write_svid(tmp_path, fresh_svid(world.ca, orders.spiffe_id))
        args = process_args(sandbox, world, cert, key, orders.role_arn, orders.profile_arn)
        without_ca = args[: args.index("--ca-bundle")]
        assert main(without_ca) == 2
        err = capsys.readouterr().err
        assert err.startswith(
            f"error: --endpoint: cannot reach {sandbox.endpoints['rolesanywhere']}/sessions"
        )
        assert "CERTIFICATE_VERIFY_FAILED" in err
        assert main([*without_ca, "--no-verify-ssl"]) == 0
        assert json.loads(capsys.readouterr().out)["Version"] == 1


@pytest.mark.parametrize("command", [["sandbox"], ["sandbox-deploy", "--config", "x.yaml", "--out", "o"]])
def test_without_the_sandbox_extra_one_line_names_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    monkeypatch.setitem(sys.modules, "moto", None)  # import moto fails, as without the extra
    assert main(command) == 2
    assert capsys.readouterr().err == (
        f"error: `roles-anywhere {command[0]}` needs the 'sandbox' extra (moto not installed): "
        "install this project with its 'sandbox' extra (in the checkout: pip install '.[sandbox]')\n"
    )


def test_the_demo_without_the_extra_or_the_aws_cli_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from roles_anywhere.sandbox import demo  # noqa: PLC0415

    monkeypatch.setitem(sys.modules, "awscli", None)
    assert demo.main([]) == 2
    assert capsys.readouterr().err == (
        "error: the demo drives the AWS CLI: pip install awscli (make demo installs it)\n"
    )
    monkeypatch.setitem(sys.modules, "flask", None)
    assert demo.main([]) == 2
    assert "needs the 'sandbox' extra (flask not installed)" in capsys.readouterr().err
