"""Credentials that last, against the sandbox: the cache (one CreateSession for many callers, never a
planted answer), ``serve`` (IMDSv2 for boto3 and the AWS CLI, across an SVID rotation) and ``update``."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from roles_anywhere.cli import main
from roles_anywhere.credentials import cache
from roles_anywhere.entry import parsed_flags
from roles_anywhere.sandbox.server import Sandbox

from .certs import make_ca
from .sandbox_helpers import World, fresh_ca, fresh_svid

BIN = Path(sys.executable).parent


@pytest.fixture
def sessions(caplog: pytest.LogCaptureFixture) -> Any:
    """How many CreateSession calls the sandbox answered with credentials so far (its log)."""
    caplog.set_level(logging.INFO, logger="roles_anywhere.sandbox")
    return lambda: sum(1 for r in caplog.records if r.getMessage().startswith("CreateSession: "))


def write_svid(folder: Path, svid: Any) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (("svid.pem", svid.pem), ("svid_key.pem", svid.key_pem)):
        temporary = folder / f".{name}.tmp"
        temporary.write_text(text)
        temporary.replace(folder / name)  # as tbot replaces them: whole files, atomically
    return folder / "svid.pem", folder / "svid_key.pem"


def flags(sandbox: Sandbox, world: World, folder: Path, workload: Any, *extra: str) -> list[str]:
    return [
        "--certificate",
        str(folder / "svid.pem"),
        "--private-key",
        str(folder / "svid_key.pem"),
        "--trust-anchor-arn",
        world.anchor_arn,
        "--profile-arn",
        workload.profile_arn,
        "--role-arn",
        workload.role_arn,
        "--endpoint",
        sandbox.endpoints["rolesanywhere"],
        "--ca-bundle",
        sandbox.endpoints["caFile"],
        *extra,
    ]


def aws_cli(sandbox: Sandbox, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    """`aws sts get-caller-identity` (the AWS CLI, not ours) against the sandbox's STS."""
    argv = [
        "sts",
        "get-caller-identity",
        *extra,
        "--endpoint-url",
        sandbox.endpoints["sts"],
        "--region",
        "us-east-1",
    ]
    return subprocess.run(
        [sys.executable, "-m", "awscli", *argv, "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def command(*args: str, **popen: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BIN / "roles-anywhere"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def test_twenty_concurrent_callers_make_one_create_session(
    sandbox: Sandbox, world: World, tmp_path: Path, sessions: Any
) -> None:
    workload = world.workload("/svc/concurrent")
    write_svid(tmp_path / "svid", fresh_svid(world.ca, workload.spiffe_id))
    args = ["credential-process", *flags(sandbox, world, tmp_path / "svid", workload)]
    callers = [command(*args) for _ in range(20)]
    answers = [caller.communicate(timeout=120) for caller in callers]
    assert [c.returncode for c in callers] == [0] * 20, [err for _, err in answers]
    keys = {json.loads(out)["AccessKeyId"] for out, _ in answers}
    assert len(keys) == 1
    assert sessions() == 1
    # the next call is answered from the cache, by the fast path, without AWS; --no-cache asks again
    again = command(*args)
    out, _ = again.communicate(timeout=60)
    assert json.loads(out)["AccessKeyId"] in keys
    assert sessions() == 1
    fresh = command(*args, "--no-cache")
    out, _ = fresh.communicate(timeout=60)
    assert json.loads(out)["AccessKeyId"] not in keys
    assert sessions() == 2


def test_a_rotated_svid_is_never_answered_from_the_old_cache(
    sandbox: Sandbox, world: World, tmp_path: Path, sessions: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    workload = world.workload("/svc/rotating-process")
    folder = tmp_path / "svid"
    write_svid(folder, fresh_svid(world.ca, workload.spiffe_id))
    args = ["credential-process", *flags(sandbox, world, folder, workload)]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)["AccessKeyId"]
    write_svid(folder, fresh_svid(world.ca, workload.spiffe_id))  # tbot rotated it
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["AccessKeyId"] != first
    assert sessions() == 2


def test_a_planted_cache_entry_is_never_used(
    sandbox: Sandbox, world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workload = world.workload("/svc/planted")
    folder = tmp_path / "svid"
    write_svid(folder, fresh_svid(world.ca, workload.spiffe_id))
    args = ["credential-process", *flags(sandbox, world, folder, workload)]
    planted = {
        "accessKeyId": "ASIAPLANTEDPLANTED01",
        "secretAccessKey": "planted",
        "sessionToken": "planted",
        "expiration": (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    values = parsed_flags(args[1:])
    assert values is not None
    key_for = cache.cache_key(**{name: values[name] for name in cache.KEY_ARGUMENTS})
    assert key_for is not None
    assert cache.store(key_for, planted, datetime.now(UTC) + timedelta(hours=1))
    entry = Path(cache.cache_dir()) / f"{key_for.name}.entry"
    entry.write_bytes(b"0" * 64 + entry.read_bytes()[64:])  # written by someone without the SVID's key
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["AccessKeyId"] != planted["accessKeyId"]
    entry.chmod(0o666)  # and a file others could have written is not even read
    assert main(args) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["AccessKeyId"] != planted["accessKeyId"]
    assert captured.err.startswith("warning: credential cache not used: ")
    assert "open to other users" in captured.err


def test_an_answer_serves_only_calls_that_trust_the_endpoint_as_it_was_trusted(
    sandbox: Sandbox, world: World, tmp_path: Path, sessions: Any
) -> None:
    """An answer fetched with --no-verify-ssl never reaches a call that verifies; each CA bundle its own."""
    workload = world.workload("/svc/tls-modes")
    folder = tmp_path / "svid"
    write_svid(folder, fresh_svid(world.ca, workload.spiffe_id))
    verified = ["credential-process", *flags(sandbox, world, folder, workload)]
    bundle = tmp_path / "bundle.pem"  # trusts the sandbox too, and one CA more
    bundle.write_text(Path(sandbox.endpoints["caFile"]).read_text() + make_ca("other.example").pem)
    other_bundle = [*verified[:-1], str(bundle)]
    assert verified[-2] == "--ca-bundle"

    def key_id(arguments: list[str]) -> str:
        caller = command(*arguments)
        out, err = caller.communicate(timeout=120)
        assert caller.returncode == 0, err
        return str(json.loads(out)["AccessKeyId"])

    unverified = key_id([*verified, "--no-verify-ssl"])
    assert key_id([*verified, "--no-verify-ssl"]) == unverified  # cached, for unverified calls
    assert sessions() == 1
    answer = key_id(verified)
    assert answer != unverified
    assert sessions() == 2
    assert key_id(other_bundle) not in {unverified, answer}
    assert sessions() == 3
    assert key_id(verified) == answer
    assert key_id([*verified, "--no-verify-ssl"]) == unverified
    assert sessions() == 3


@pytest.fixture
def imds_env(monkeypatch: pytest.MonkeyPatch) -> Any:
    def point(port: int) -> dict[str, str]:
        env = {
            "AWS_EC2_METADATA_SERVICE_ENDPOINT": f"http://127.0.0.1:{port}/",
            "AWS_METADATA_SERVICE_TIMEOUT": "5",
            "AWS_METADATA_SERVICE_NUM_ATTEMPTS": "3",
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_CONFIG_FILE": os.devnull,
        }
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv("AWS_EC2_METADATA_DISABLED", raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return env

    return point


def test_serve_keeps_an_sdk_working_across_an_svid_rotation(
    sandbox: Sandbox, world: World, tmp_path: Path, sessions: Any, imds_env: Any
) -> None:
    workload = world.workload("/svc/served")
    folder = tmp_path / "svid"
    soon = datetime.now(UTC) + timedelta(seconds=8)
    write_svid(folder, fresh_svid(world.ca, workload.spiffe_id, not_after=soon))  # expires mid-run
    server = command(
        "serve", "--port", "0", "--session-duration", "900", *flags(sandbox, world, folder, workload)
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert line.startswith("export AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:"), line
        env = imds_env(int(line.rsplit(":", 1)[1].strip().rstrip("/")))
        sts = boto3.Session(region_name="us-east-1").client("sts", endpoint_url=sandbox.endpoints["sts"])
        role_name = workload.role_arn.rsplit("/", 1)[1]
        assert f"assumed-role/{role_name}/" in sts.get_caller_identity()["Arn"]
        write_svid(folder, fresh_svid(world.ca, workload.spiffe_id))  # tbot rotates the SVID
        calls = 0
        while datetime.now(UTC) < soon + timedelta(seconds=2) or calls < 3:  # and past the old one's end
            assert f"assumed-role/{role_name}/" in sts.get_caller_identity()["Arn"]
            calls += 1
            time.sleep(0.5)
        assert sessions() == 2  # one per SVID: the rotation was followed, no call was refused
        later = boto3.Session(region_name="us-east-1").client("sts", endpoint_url=sandbox.endpoints["sts"])
        assert f"assumed-role/{role_name}/" in later.get_caller_identity()["Arn"]
        cli = aws_cli(sandbox, {**os.environ, **env})
        assert cli.returncode == 0, cli.stderr
        assert f"assumed-role/{role_name}/" in json.loads(cli.stdout)["Arn"]
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert "credentials refreshed" in err


def test_serve_answers_as_imdsv2_does(sandbox: Sandbox, world: World, tmp_path: Path) -> None:
    import httpx  # noqa: PLC0415

    workload = world.workload("/svc/imds-rules")
    folder = tmp_path / "svid"
    write_svid(folder, fresh_svid(world.ca, workload.spiffe_id))
    server = command("serve", "--port", "0", *flags(sandbox, world, folder, workload))
    try:
        assert server.stdout is not None
        base = server.stdout.readline().split("=", 1)[1].strip().rstrip("/")
        token_url, creds = f"{base}/latest/api/token", f"{base}/latest/meta-data/iam/security-credentials/"
        assert httpx.get(creds).status_code == 401  # no token
        assert httpx.get(creds, headers={"X-aws-ec2-metadata-token": "guess"}).status_code == 401
        assert httpx.put(token_url, headers={"X-aws-ec2-metadata-token-ttl-seconds": "0"}).status_code == 400
        assert httpx.put(token_url, headers={"X-Forwarded-For": "10.0.0.1"}).status_code == 400
        token = httpx.put(token_url, headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"}).text
        role = httpx.get(creds, headers={"X-aws-ec2-metadata-token": token}).text
        assert role == workload.role_arn.rsplit("/", 1)[1]
        document = httpx.get(creds + role, headers={"X-aws-ec2-metadata-token": token}).json()
        assert document["Code"] == "Success"
        assert set(document) == {
            "Code",
            "LastUpdated",
            "Type",
            "AccessKeyId",
            "SecretAccessKey",
            "Token",
            "Expiration",
        }
        assert (
            httpx.get(
                f"{base}/latest/meta-data/other", headers={"X-aws-ec2-metadata-token": token}
            ).status_code
            == 404
        )
    finally:
        server.terminate()
        server.communicate(timeout=30)


def test_update_keeps_a_profile_fresh_and_every_other_line(
    sandbox: Sandbox, world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workload = world.workload("/svc/updated")
    folder = tmp_path / "svid"
    write_svid(folder, fresh_svid(world.ca, workload.spiffe_id))
    credentials_file = tmp_path / "aws" / "credentials"
    credentials_file.parent.mkdir()
    credentials_file.write_text(
        "# mine\n[other]\naws_access_key_id = AKIAOTHER\n\n[orders]\nregion = eu-west-1\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials_file))
    assert main(["update", "--once", "--profile", "orders", *flags(sandbox, world, folder, workload)]) == 0
    text = credentials_file.read_text()
    assert text.startswith("# mine\n[other]\naws_access_key_id = AKIAOTHER\n\n[orders]\nregion = eu-west-1\n")
    assert "aws_session_token = " in text
    assert credentials_file.stat().st_mode & 0o777 == 0o600
    env = {**os.environ, "AWS_CONFIG_FILE": os.devnull, "AWS_EC2_METADATA_DISABLED": "true"}
    result = aws_cli(sandbox, env, "--profile", "orders")
    assert result.returncode == 0, result.stderr
    assert workload.role_arn.rsplit("/", 1)[1] in json.loads(result.stdout)["Arn"]


@pytest.mark.parametrize(
    ("extra", "flag"),
    [
        (["--cert-selector", "file://selector.json"], "--cert-selector"),
        (["--pkcs11-lib", "/usr/lib/opensc-pkcs11.so"], "--pkcs11-lib"),
        (["--reuse-pin"], "--reuse-pin"),
        (["--tpm-key-password", "x"], "--tpm-key-password"),
        (["--no-tpm-key-password"], "--no-tpm-key-password"),
        (["--use-latest-expiring-certificate"], "--use-latest-expiring-certificate"),
        (["--system-store-name", "MY"], "--system-store-name"),
    ],
)
def test_hardware_key_flags_are_one_line(
    sandbox: Sandbox,
    world: World,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    flag: str,
) -> None:
    workload = world.workload("/svc/orders")
    write_svid(tmp_path / "svid", fresh_svid(world.ca, workload.spiffe_id))
    args = ["credential-process", *flags(sandbox, world, tmp_path / "svid", workload, *extra), "--no-cache"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"error: {flag}: selects a key in a certificate store, PKCS#11 token or TPM")


def test_with_proxy_and_debug_work_and_debug_shows_no_secret(
    sandbox: Sandbox,
    world: World,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    workload = world.workload("/svc/orders")
    write_svid(tmp_path / "svid", fresh_svid(world.ca, workload.spiffe_id))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    args = [
        "credential-process",
        *flags(sandbox, world, tmp_path / "svid", workload, "--with-proxy", "--debug"),
    ]
    assert main(args) == 0
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert "debug: CreateSession https://127.0.0.1:" in captured.err
    for secret in (document["SecretAccessKey"], document["SessionToken"]):
        assert secret not in captured.err
    assert main(args) == 0  # the second call: from the cache
    assert "debug: answered from the cache" in capsys.readouterr().err


def test_update_refuses_a_credentials_file_that_never_ends(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A FIFO where the credentials file should be: one line, exit 2, nothing asked of AWS or replaced."""
    fifo = tmp_path / "credentials"
    os.mkfifo(fifo)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(fifo))
    args = [
        "update",
        "--once",
        "--certificate",
        str(tmp_path / "svid.pem"),
        "--private-key",
        str(tmp_path / "svid_key.pem"),
        "--trust-anchor-arn",
        "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/0b5c5a2e-6f3e-4c1f-9d7a-2f1b8e0c4d11",
        "--profile-arn",
        "arn:aws:rolesanywhere:us-east-1:123456789012:profile/0b5c5a2e-6f3e-4c1f-9d7a-2f1b8e0c4d11",
        "--role-arn",
        "arn:aws:iam::123456789012:role/x",
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err == f"error: {fifo}: is not a regular file of at most 1 MiB, so it is not rewritten\n"
    assert fifo.is_fifo()


@pytest.mark.parametrize("variant", ["MLDSA44", "MLDSA65", "MLDSA87"])
def test_an_ml_dsa_key_is_one_line_pointing_at_the_go_helper(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], variant: str
) -> None:
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import mldsa  # noqa: PLC0415

    key = getattr(mldsa, f"{variant}PrivateKey").generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "svid_key.pem").write_bytes(pem)
    (tmp_path / "svid.pem").write_text(fresh_svid(fresh_ca(), "spiffe://acme.teleport.sh/svc/pq").pem)
    anchor = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/0b5c5a2e-6f3e-4c1f-9d7a-2f1b8e0c4d11"
    args = [
        "credential-process",
        "--no-cache",
        "--certificate",
        str(tmp_path / "svid.pem"),
        "--private-key",
        str(tmp_path / "svid_key.pem"),
        "--trust-anchor-arn",
        anchor,
        "--profile-arn",
        anchor.replace("trust-anchor", "profile"),
        "--role-arn",
        "arn:aws:iam::123456789012:role/pq",
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: --private-key {tmp_path / 'svid_key.pem'}: is an ML-DSA key; roles-anywhere signs with "
        "RSA and EC keys (what Teleport issues), aws_signing_helper 1.8.0 or later with ML-DSA: "
        "use it for this key\n"
    )
    assert "PRIVATE KEY" not in err


def _lock_path(args: list[str]) -> Path:
    """Where credential-process keeps the lock for these flags (the key the command computes)."""
    from roles_anywhere.cli import build_parser  # noqa: PLC0415
    from roles_anywhere.credentials.command import _cache_key  # noqa: PLC0415

    key = _cache_key(build_parser().parse_args(args))
    return Path(cache.cache_dir()) / f"{key.name}{cache.LOCK_SUFFIX}"


@pytest.mark.parametrize(
    "problem", ["folder-under-a-file", "lock-is-a-link", "lock-is-a-folder", "disk-full"]
)
def test_a_cache_that_cannot_be_used_never_costs_the_credentials(
    sandbox: Sandbox,
    world: World,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    problem: str,
) -> None:
    """A service account without a writable HOME, a planted lock, a full disk: one warning, exit 0."""
    workload = world.workload("/svc/cache-trouble")
    write_svid(tmp_path / "svid", fresh_svid(world.ca, workload.spiffe_id))
    args = ["credential-process", *flags(sandbox, world, tmp_path / "svid", workload)]
    folder = Path(cache.cache_dir())
    if problem == "folder-under-a-file":
        (tmp_path / "not-a-folder").write_text("")
        monkeypatch.setenv("ROLES_ANYWHERE_CACHE_DIR", str(tmp_path / "not-a-folder" / "cache"))
    elif problem == "disk-full":

        def full(*_args: Any, **_kwargs: Any) -> None:
            raise OSError(28, "No space left on device", str(folder / "x.entry"))

        monkeypatch.setattr(cache, "store", full)
    else:
        folder.mkdir(mode=0o700)
        lock = _lock_path(args)
        if problem == "lock-is-a-link":
            lock.symlink_to(tmp_path / "elsewhere")
        else:
            lock.mkdir()
    assert main(args) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["AccessKeyId"].startswith("ASIA")
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("warning: credential cache not used: ")
    if problem == "lock-is-a-link":
        assert not (tmp_path / "elsewhere").exists()
