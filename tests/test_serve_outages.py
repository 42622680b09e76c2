"""``serve`` with clients we did not write (boto3, the AWS CLI) while the SVID rotates and the Roles
Anywhere endpoint stalls or is down (issue 21): no client waits a second while valid credentials are
held, the rotation is picked up once the endpoint is back, and nothing is served from an expired SVID."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from roles_anywhere.sandbox.server import Sandbox

from .relay import Relay
from .sandbox_helpers import World, fresh_svid
from .test_sandbox_credentials import aws_cli, command, flags, imds_env, sessions, write_svid

__all__ = ["imds_env", "sessions"]  # fixtures, used by name


@pytest.fixture
def relay(sandbox: Sandbox) -> Iterator[Relay]:
    port = int(sandbox.endpoints["rolesanywhere"].rsplit(":", 1)[1])
    running = Relay(port)
    yield running
    running.close()


def start_serve(sandbox: Sandbox, world: World, folder: Path, workload: Any, relay: Relay) -> Any:
    args = flags(sandbox, world, folder, workload)
    args[args.index("--endpoint") + 1] = f"https://127.0.0.1:{relay.port}"
    return command("serve", "--port", "0", "--session-duration", "900", *args)


def endpoint_of(server: Any) -> int:
    line = server.stdout.readline()
    assert line.startswith("export AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:"), line
    return int(line.rsplit(":", 1)[1].strip().rstrip("/"))


def boto3_key() -> tuple[float, str]:
    """How long boto3 took to resolve credentials from IMDS (a new session each time), and the key."""
    started = time.monotonic()
    credentials = boto3.Session(region_name="us-east-1").get_credentials()
    assert credentials is not None
    return time.monotonic() - started, credentials.get_frozen_credentials().access_key


def test_clients_never_wait_through_a_rotation_while_the_endpoint_stalls_then_fails(
    sandbox: Sandbox, world: World, tmp_path: Path, relay: Relay, sessions: Any, imds_env: Any
) -> None:
    workload = world.workload("/svc/served-through-outage")
    folder = tmp_path / "svid"
    write_svid(folder, fresh_svid(world.ca, workload.spiffe_id))
    server = start_serve(sandbox, world, folder, workload, relay)
    try:
        env = imds_env(endpoint_of(server))
        _, first = boto3_key()
        assert sessions() == 1
        relay.set_mode("stall")  # CreateSession now hangs...
        write_svid(folder, fresh_svid(world.ca, workload.spiffe_id))  # ...just as tbot rotates the SVID
        waits = []
        for _ in range(12):
            seconds, key = boto3_key()
            waits.append(seconds)
            assert key == first  # the held credentials, still valid
            time.sleep(0.25)
        cli = aws_cli(sandbox, {**os.environ, **env})
        assert cli.returncode == 0, cli.stderr
        relay.set_mode("refuse")  # the stalled refresh fails; then the endpoint is down
        for _ in range(8):
            seconds, key = boto3_key()
            waits.append(seconds)
            assert key == first
            time.sleep(0.25)
        assert max(waits) < 1.0, waits
        relay.set_mode("pass")
        deadline = time.monotonic() + 20  # within the back-off (1, 2, 4 ... s)
        while (answer := boto3_key())[1] == first:
            waits.append(answer[0])
            assert time.monotonic() < deadline
            time.sleep(0.25)
        assert max(waits) < 1.0, waits
        assert sessions() == 2  # the new SVID's session: one refresh succeeded, no storm of calls
        sts = boto3.Session(region_name="us-east-1").client("sts", endpoint_url=sandbox.endpoints["sts"])
        assert workload.role_arn.rsplit("/", 1)[1] in sts.get_caller_identity()["Arn"]
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert "refresh failed: " in err
    assert "next attempt in 1 s" in err


def test_nothing_is_served_from_an_expired_svid_until_tbot_writes_a_fresh_one(
    sandbox: Sandbox, world: World, tmp_path: Path, relay: Relay, imds_env: Any
) -> None:
    workload = world.workload("/svc/served-expiring")
    folder = tmp_path / "svid"
    ends = datetime.now(UTC) + timedelta(seconds=5)
    write_svid(folder, fresh_svid(world.ca, workload.spiffe_id, not_after=ends))
    server = start_serve(sandbox, world, folder, workload, relay)
    try:
        port = endpoint_of(server)
        env = imds_env(port)
        _, first = boto3_key()
        relay.set_mode("refuse")  # tbot is late and the endpoint is down
        time.sleep(max(0.0, (ends - datetime.now(UTC)).total_seconds()) + 1)
        base = f"http://127.0.0.1:{port}"
        token = httpx.put(f"{base}/latest/api/token").text
        role = workload.role_arn.rsplit("/", 1)[1]
        answer = httpx.get(
            f"{base}/latest/meta-data/iam/security-credentials/{role}",
            headers={"X-aws-ec2-metadata-token": token},
        )
        assert answer.status_code == 503
        assert answer.text == (
            f"the SVID these credentials came from expired at {ends:%Y-%m-%dT%H:%M:%SZ}; "
            "waiting for tbot to write a fresh one"
        )
        cli = aws_cli(sandbox, {**os.environ, **env, "AWS_METADATA_SERVICE_NUM_ATTEMPTS": "1"})
        assert cli.returncode != 0
        assert "Unable to locate credentials" in cli.stderr
        write_svid(folder, fresh_svid(world.ca, workload.spiffe_id))
        relay.set_mode("pass")
        deadline = time.monotonic() + 30
        while True:
            try:
                _, key = boto3_key()
                break
            except AssertionError:  # no credentials yet: the back-off has not passed
                assert time.monotonic() < deadline
                time.sleep(0.5)
        assert key != first
        cli = aws_cli(sandbox, {**os.environ, **env})
        assert cli.returncode == 0, cli.stderr
        assert role in json.loads(cli.stdout)["Arn"]
    finally:
        server.terminate()
        server.communicate(timeout=30)


@pytest.mark.parametrize("command_name", ["serve", "update"])
def test_a_refusal_or_an_outage_at_start_is_one_line_not_an_internal_error(
    sandbox: Sandbox,
    world: World,
    tmp_path: Path,
    relay: Relay,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command_name: str,
) -> None:
    from roles_anywhere.cli import main  # noqa: PLC0415

    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    workload = world.workload("/svc/refused-at-start")
    other = world.workload("/svc/someone-else")
    folder = tmp_path / "svid"
    write_svid(folder, fresh_svid(world.ca, other.spiffe_id))  # an SVID the role does not trust
    args = flags(sandbox, world, folder, workload)
    extra = ["--port", "0"] if command_name == "serve" else ["--once"]
    assert main([command_name, *extra, *args]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("error: CreateSession refused (HTTP 403 AccessDeniedException)")
    relay.set_mode("refuse")
    write_svid(folder, fresh_svid(world.ca, workload.spiffe_id))
    args[args.index("--endpoint") + 1] = f"https://127.0.0.1:{relay.port}"
    assert main([command_name, *extra, *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"error: --endpoint: cannot reach https://127.0.0.1:{relay.port}/sessions")
    assert not (tmp_path / "credentials").exists()


def test_a_port_someone_else_holds_is_one_line(
    sandbox: Sandbox, world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket  # noqa: PLC0415

    from roles_anywhere.cli import main  # noqa: PLC0415

    workload = world.workload("/svc/squatted")
    folder = tmp_path / "svid"
    write_svid(folder, fresh_svid(world.ca, workload.spiffe_id))
    with socket.create_server(("127.0.0.1", 0)) as squatter:
        port = squatter.getsockname()[1]
        assert main(["serve", "--port", str(port), *flags(sandbox, world, folder, workload)]) == 2
    assert capsys.readouterr().err == (
        f"error: --port: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    )
