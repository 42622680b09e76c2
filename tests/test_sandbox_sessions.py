"""CreateSession end to end: iam-rolesanywhere-session and the AWS CLI (not ours), ours, tampering."""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from iam_rolesanywhere_session import IAMRolesAnywhereSession
from iam_rolesanywhere_session.exceptions import CredentialsRetrievalError

from roles_anywhere import PROJECT
from roles_anywhere.cli import main
from roles_anywhere.credentials.x509_sigv4 import sign_request
from roles_anywhere.sandbox.server import Sandbox

from .certs import Issued, make_intermediate, make_key
from .sandbox_helpers import World, fresh_ca, fresh_svid, make_world

ROOT = Path(__file__).resolve().parent.parent


def caller_arn(sandbox: Sandbox, credentials: dict[str, Any]) -> str:
    sts = boto3.client(
        "sts",
        endpoint_url=sandbox.endpoints["sts"],
        region_name="us-east-1",
        aws_access_key_id=credentials["accessKeyId"],
        aws_secret_access_key=credentials["secretAccessKey"],
        aws_session_token=credentials["sessionToken"],
    )
    return str(sts.get_caller_identity()["Arn"])


# --- iam-rolesanywhere-session: AWS's Python client, unchanged ---------------------------------------


def library_session(
    sandbox: Sandbox, world: World, svid: Issued, role_arn: str, profile_arn: str, **extra: Any
) -> Any:
    return IAMRolesAnywhereSession(
        profile_arn=profile_arn,
        role_arn=role_arn,
        trust_anchor_arn=world.anchor_arn,
        certificate=svid.pem.encode(),
        private_key=svid.key_pem.encode(),
        region="us-east-1",
        endpoint=sandbox.endpoints["rolesanywhere"].removeprefix("https://"),
        verify=sandbox.endpoints["caFile"],
        **extra,
    )


@pytest.mark.parametrize("key_kind", ["ec-p256", "rsa-2048"])
def test_iam_rolesanywhere_session_gets_credentials(sandbox: Sandbox, world: World, key_kind: str) -> None:
    orders = world.workload("/svc/orders")
    svid = fresh_svid(world.ca, orders.spiffe_id, key_kind=key_kind, common_name="orders")
    session = library_session(sandbox, world, svid, orders.role_arn, orders.profile_arn).get_session()
    identity = session.client("sts", endpoint_url=sandbox.endpoints["sts"]).get_caller_identity()
    role_name = orders.role_arn.rsplit("/", 1)[1]
    assert identity["Arn"].startswith(f"arn:aws:sts::123456789012:assumed-role/{role_name}/")


def test_iam_rolesanywhere_session_with_an_intermediate_chain(sandbox: Sandbox) -> None:
    root = fresh_ca(serial=501)
    world = make_world(sandbox, root)
    intermediate = make_intermediate(root, "issuing CA")
    payments = world.workload("/svc/payments")
    svid = fresh_svid(intermediate, payments.spiffe_id)
    session = library_session(
        sandbox,
        world,
        svid,
        payments.role_arn,
        payments.profile_arn,
        certificate_chain=intermediate.pem.encode(),
    )
    assert (
        session.get_session()
        .client("sts", endpoint_url=sandbox.endpoints["sts"])
        .get_caller_identity()["Arn"]
    )
    without_chain = library_session(sandbox, world, svid, payments.role_arn, payments.profile_arn)
    with pytest.raises(CredentialsRetrievalError, match="Untrusted signing certificate"):
        without_chain.get_session().client("sts", endpoint_url=sandbox.endpoints["sts"]).get_caller_identity()


def test_iam_rolesanywhere_session_is_refused_another_workloads_role(sandbox: Sandbox, world: World) -> None:
    orders, billing = world.workload("/svc/orders"), world.workload("/svc/billing")
    svid = fresh_svid(world.ca, orders.spiffe_id)
    session = library_session(sandbox, world, svid, billing.role_arn, billing.profile_arn).get_session()
    with pytest.raises(
        CredentialsRetrievalError, match=r"HTTP 403.*Unable to assume role for the given role ARN"
    ):
        session.client("sts", endpoint_url=sandbox.endpoints["sts"]).get_caller_identity()


# --- raw requests, signed by our signer, then tampered with ----------------------------------------------


def signed(
    sandbox: Sandbox,
    world: World,
    svid: Issued,
    role_arn: str,
    profile_arn: str,
    *,
    duration: int = 3600,
    key: Any = None,
    now: datetime | None = None,
    region: str = "us-east-1",
    extra: dict[str, Any] | None = None,
) -> tuple[str, dict[str, str], bytes]:
    url = f"{sandbox.endpoints['rolesanywhere']}/sessions"
    body = json.dumps(
        {
            "durationSeconds": duration,
            "profileArn": profile_arn,
            "roleArn": role_arn,
            "trustAnchorArn": world.anchor_arn,
            **(extra or {}),
        }
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Amz-X509": base64.b64encode(svid.certificate.public_bytes(serialization.Encoding.DER)).decode(),
    }
    return (
        url,
        sign_request(
            method="POST",
            url=url,
            headers=headers,
            body=body,
            certificate=svid.certificate,
            key=key or svid.key,
            region=region,
            now=now,
        ),
        body,
    )


def post(sandbox: Sandbox, url: str, headers: dict[str, str], body: bytes) -> httpx.Response:
    context = ssl.create_default_context(cafile=sandbox.endpoints["caFile"])
    return httpx.post(url, headers=headers, content=body, verify=context, timeout=30)


def answer(response: httpx.Response) -> tuple[int, str, str]:
    return (
        response.status_code,
        response.headers.get("x-amzn-ErrorType", ""),
        response.json().get("message", ""),
    )


def test_a_signed_request_gets_aws_shaped_credentials(sandbox: Sandbox, world: World) -> None:
    orders = world.workload("/svc/orders", duration=7200, max_session=7200)
    svid = fresh_svid(world.ca, orders.spiffe_id, common_name="orders")
    response = post(
        sandbox, *signed(sandbox, world, svid, orders.role_arn, orders.profile_arn, duration=7200)
    )
    assert response.status_code == 201
    document = response.json()
    (credential_set,) = document["credentialSet"]
    assert credential_set["roleArn"] == orders.role_arn
    assert credential_set["sourceIdentity"] == "CN=orders"
    assert set(credential_set["credentials"]) == {
        "accessKeyId",
        "secretAccessKey",
        "sessionToken",
        "expiration",
    }
    expires = datetime.fromisoformat(credential_set["credentials"]["expiration"].replace("Z", "+00:00"))
    assert timedelta(minutes=115) < expires - datetime.now(UTC) <= timedelta(hours=2)
    assert document["subjectArn"].startswith("arn:aws:rolesanywhere:us-east-1:123456789012:subject/")
    assert caller_arn(sandbox, credential_set["credentials"]).endswith(
        credential_set["assumedRoleUser"]["arn"].split("/", 1)[1]
    )


def tamper_header(request: tuple[str, dict[str, str], bytes]) -> tuple[str, dict[str, str], bytes]:
    url, headers, body = request
    return url, {**headers, "Content-Type": "application/x-amz-json-1.0"}, body


def tamper_body(request: tuple[str, dict[str, str], bytes]) -> tuple[str, dict[str, str], bytes]:
    url, headers, body = request
    return url, headers, body.replace(b'"durationSeconds": 3600', b'"durationSeconds": 3601')


def swap_certificate(other: Issued) -> Any:
    def swap(request: tuple[str, dict[str, str], bytes]) -> tuple[str, dict[str, str], bytes]:
        url, headers, body = request
        der = base64.b64encode(other.certificate.public_bytes(serialization.Encoding.DER)).decode()
        return url, {**headers, "X-Amz-X509": der}, body

    return swap


def test_tampering_and_wrong_keys_are_refused(sandbox: Sandbox, world: World) -> None:
    orders = world.workload("/svc/orders")
    svid = fresh_svid(world.ca, orders.spiffe_id)
    request = signed(sandbox, world, svid, orders.role_arn, orders.profile_arn)
    assert post(sandbox, *request).status_code == 201
    invalid = (403, "AccessDeniedException", "Invalid signature")
    assert answer(post(sandbox, *tamper_header(request))) == invalid
    assert answer(post(sandbox, *tamper_body(request))) == invalid
    wrong_key = signed(sandbox, world, svid, orders.role_arn, orders.profile_arn, key=make_key("ec-p256"))
    assert answer(post(sandbox, *wrong_key)) == invalid
    other = fresh_svid(world.ca, orders.spiffe_id)  # same identity, another key: the serial no longer matches
    assert answer(post(sandbox, *swap_certificate(other)(request))) == invalid
    wrong_region = signed(sandbox, world, svid, orders.role_arn, orders.profile_arn, region="eu-west-1")
    assert answer(post(sandbox, *wrong_region)) == invalid
    url, headers, body = request
    unsigned = {k: v for k, v in headers.items() if k != "Authorization"}
    assert answer(post(sandbox, url, unsigned, body)) == (
        403,
        "AccessDeniedException",
        "Missing Authentication Token",
    )


@pytest.mark.parametrize(
    ("skew", "message"),
    [(timedelta(minutes=-6), "Signature expired: "), (timedelta(minutes=6), "Signature not yet current: ")],
)
def test_date_skew_beyond_five_minutes(sandbox: Sandbox, world: World, skew: timedelta, message: str) -> None:
    orders = world.workload("/svc/orders")
    svid = fresh_svid(world.ca, orders.spiffe_id)
    request = signed(sandbox, world, svid, orders.role_arn, orders.profile_arn, now=datetime.now(UTC) + skew)
    status, code, text = answer(post(sandbox, *request))
    assert (status, code) == (403, "AccessDeniedException")
    assert text.startswith(message)
    within = signed(
        sandbox, world, svid, orders.role_arn, orders.profile_arn, now=datetime.now(UTC) + skew / 3
    )
    assert post(sandbox, *within).status_code == 201


def test_certificates_aws_would_not_trust(sandbox: Sandbox, world: World) -> None:
    orders = world.workload("/svc/orders")
    untrusted = (403, "AccessDeniedException", "Untrusted signing certificate")
    now = datetime.now(UTC)
    expired = fresh_svid(
        world.ca, orders.spiffe_id, not_before=now - timedelta(hours=2), not_after=now - timedelta(hours=1)
    )
    assert (
        answer(post(sandbox, *signed(sandbox, world, expired, orders.role_arn, orders.profile_arn)))
        == untrusted
    )
    foreign = fresh_svid(fresh_ca(), orders.spiffe_id)  # same cluster name, another key: a foreign CA
    assert (
        answer(post(sandbox, *signed(sandbox, world, foreign, orders.role_arn, orders.profile_arn)))
        == untrusted
    )


def test_role_and_profile_rules(sandbox: Sandbox, world: World) -> None:
    orders, billing = world.workload("/svc/orders"), world.workload("/svc/billing")
    svid = fresh_svid(world.ca, orders.spiffe_id)
    assert answer(post(sandbox, *signed(sandbox, world, svid, billing.role_arn, billing.profile_arn))) == (
        403,
        "AccessDeniedException",
        "Unable to assume role for the given role ARN",
    )
    not_listed = world.workload("/svc/orders", role_arns=[billing.role_arn])
    status, code, text = answer(
        post(sandbox, *signed(sandbox, world, svid, not_listed.role_arn, not_listed.profile_arn))
    )
    assert (status, code) == (403, "AccessDeniedException")
    assert "profile does not allow" in text
    too_long = world.workload("/svc/orders", duration=7200, max_session=3600)
    request = signed(sandbox, world, svid, too_long.role_arn, too_long.profile_arn, duration=7200)
    assert answer(post(sandbox, *request))[:2] == (403, "AccessDeniedException")
    shorter = signed(sandbox, world, svid, too_long.role_arn, too_long.profile_arn, duration=3600)
    assert post(sandbox, *shorter).status_code == 201


# --- our credential-process, in-process and through the AWS CLI ---------------------------------------------


def write_svid(folder: Path, svid: Issued) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "svid.pem").write_text(svid.pem)
    (folder / "svid_key.pem").write_text(svid.key_pem)
    return folder / "svid.pem", folder / "svid_key.pem"


def process_args(sandbox: Sandbox, world: World, cert: Path, key: Path, role: str, profile: str) -> list[str]:
    return [
        "credential-process",
        "--certificate",
        str(cert),
        "--private-key",
        str(key),
        "--trust-anchor-arn",
        world.anchor_arn,
        "--profile-arn",
        profile,
        "--role-arn",
        role,
        "--endpoint",
        sandbox.endpoints["rolesanywhere"],
        "--ca-bundle",
        sandbox.endpoints["caFile"],
    ]


def test_credential_process_prints_version_1(
    sandbox: Sandbox, world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    orders, billing = world.workload("/svc/orders"), world.workload("/svc/billing")
    cert, key = write_svid(tmp_path, fresh_svid(world.ca, orders.spiffe_id, key_kind="rsa-2048"))
    assert main(process_args(sandbox, world, cert, key, orders.role_arn, orders.profile_arn)) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["Version"] == 1
    assert set(document) == {"Version", "AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"}
    assert main(process_args(sandbox, world, cert, key, billing.role_arn, billing.profile_arn)) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "error: CreateSession refused (HTTP 403 AccessDeniedException): "
        "Unable to assume role for the given role ARN\n"
    )


def test_credential_process_bad_input_is_one_line_exit_2(
    sandbox: Sandbox, world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    orders = world.workload("/svc/orders")
    svid = fresh_svid(world.ca, orders.spiffe_id)
    cert, key = write_svid(tmp_path, svid)
    other_key = tmp_path / "other.pem"
    other_key.write_text(fresh_svid(world.ca, orders.spiffe_id).key_pem)
    cases = [
        (
            process_args(sandbox, world, cert, other_key, orders.role_arn, orders.profile_arn),
            "is not the key of the certificate",
        ),
        (
            process_args(sandbox, world, key, key, orders.role_arn, orders.profile_arn),
            "contains a private key",
        ),
        (
            process_args(sandbox, world, cert, cert, orders.role_arn, orders.profile_arn),
            "is not a PEM private key",
        ),
        (process_args(sandbox, world, cert, key, "arn:aws:iam::1:role/x", orders.profile_arn), "--role-arn"),
        (
            [
                *process_args(sandbox, world, cert, key, orders.role_arn, orders.profile_arn),
                "--session-duration",
                "60",
            ],
            "900-43200",
        ),
    ]
    for args, expected in cases:
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert expected in err
        assert "PRIVATE KEY-----\nMI" not in err


def sandbox_config(prefix: str, **project: Any) -> dict[str, Any]:
    """A stack config for the sandbox's cluster with the CA in ca.pem; ``prefix`` starts every name."""
    return {
        "aws:region": "us-east-1",
        f"{PROJECT}:cluster": "sandbox.teleport.sh",
        f"{PROJECT}:caBundle": {"file": "ca.pem"},
        f"{PROJECT}:namePrefix": prefix,
        **{f"{PROJECT}:{key}": value for key, value in project.items()},
    }


def sandbox_deploy(
    sandbox: Sandbox, tmp_path: Path, config: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> tuple[Path, dict[str, Any]]:
    """`roles-anywhere sandbox-deploy` a stack config: the rendered folder and the stack outputs."""
    (tmp_path / "Pulumi.cli.yaml").write_text(json.dumps({"config": config}))
    endpoints = tmp_path / "endpoints.json"
    endpoints.write_text(json.dumps(sandbox.endpoints))
    out = tmp_path / "out"
    args = ["--config", str(tmp_path / "Pulumi.cli.yaml"), "--endpoints", str(endpoints), "--out", str(out)]
    assert main(["sandbox-deploy", *args]) == 0
    capsys.readouterr()
    return out, json.loads((out / "outputs.json").read_text())


def aws_cli(tmp_path: Path, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The AWS CLI (awscli from PyPI, not ours) with the rendered aws/config and nothing else."""
    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(out / "aws/config"),
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    return subprocess.run(
        [sys.executable, "-m", "awscli", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_the_aws_cli_uses_the_rendered_config_and_our_credential_process(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Deploy a stack into the sandbox, render its files, issue SVIDs, run `aws sts get-caller-identity`."""
    ca = fresh_ca(serial=900)
    (tmp_path / "ca.pem").write_text(ca.pem)
    svids = tmp_path / "svids"
    config = sandbox_config(
        "cli-",
        workloads={
            "orders": {"spiffeId": "/svc/orders", "svidDirectory": str(svids / "orders")},
            "billing": {"spiffeId": "/svc/billing", "svidDirectory": str(svids / "billing")},
        },
    )
    out, outputs = sandbox_deploy(sandbox, tmp_path, config, capsys)
    for name in ("orders", "billing"):
        write_svid(svids / name, fresh_svid(ca, outputs["workloads"][name]["spiffeId"]))
    for name in ("orders", "billing"):
        result = aws_cli(tmp_path, out, "sts", "get-caller-identity", "--profile", name, "--output", "json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["Arn"].startswith(
            f"arn:aws:sts::123456789012:assumed-role/cli-{name}/"
        )
    # a workload whose SVID file holds another workload's identity is refused, through the CLI too
    write_svid(svids / "billing", fresh_svid(ca, outputs["workloads"]["orders"]["spiffeId"]))
    result = aws_cli(tmp_path, out, "sts", "get-caller-identity", "--profile", "billing")
    assert result.returncode != 0
    assert "Unable to assume role for the given role ARN" in result.stderr


def test_legacy_mode_svids_as_teleport_issues_them_get_credentials(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Legacy mode end to end: each SVID is issued as Teleport 15.2.2-18 issues it for the rendered
    tbot `outputs:` entry (URI SAN from svid.path, CN = the first DNS SAN), and the AWS CLI gets the role."""
    ca = fresh_ca(serial=901)
    (tmp_path / "ca.pem").write_text(ca.pem)
    svids = tmp_path / "svids"
    config = sandbox_config(
        "old-",
        teleport={"mode": "legacy"},
        workloads={
            name: {"spiffeId": f"/svc/{name}", "svidDirectory": str(svids / name), "bots": ["old-ci"]}
            for name in ("orders", "billing")
        },
    )
    out, _ = sandbox_deploy(sandbox, tmp_path, config, capsys)
    tbot = yaml.safe_load((out / "tbot" / "old-ci.yaml").read_text())
    assert "services" not in tbot
    for entry in tbot["outputs"]:
        dns = entry["svid"]["sans"]["dns"]
        spiffe_id = f"spiffe://sandbox.teleport.sh{entry['svid']['path']}"
        write_svid(
            Path(entry["destination"]["path"]), fresh_svid(ca, spiffe_id, common_name=dns[0], dns=tuple(dns))
        )
    for name in ("orders", "billing"):
        result = aws_cli(tmp_path, out, "sts", "get-caller-identity", "--profile", name, "--output", "json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["Arn"].startswith(
            f"arn:aws:sts::123456789012:assumed-role/old-{name}/"
        )
    capsys.readouterr()
    certificate = str(svids / "orders" / "svid.pem")
    assert (
        main(["simulate", "--config", str(tmp_path / "Pulumi.cli.yaml"), "--certificate", certificate]) == 0
    )
    assert "x509Subject/CN = orders" in capsys.readouterr().out


def test_profile_session_settings(sandbox: Sandbox, world: World) -> None:
    client = sandbox.client("rolesanywhere")
    orders = world.workload("/svc/orders")
    svid = fresh_svid(world.ca, orders.spiffe_id)
    named = signed(sandbox, world, svid, orders.role_arn, orders.profile_arn, extra={"roleSessionName": "me"})
    assert answer(post(sandbox, *named)) == (
        400,
        "ValidationException",
        "roleSessionName is not accepted by this profile",
    )
    profile_id = orders.profile_arn.rsplit("/", 1)[1]
    client.update_profile(profileId=profile_id, acceptRoleSessionName=True)
    response = post(
        sandbox,
        *signed(sandbox, world, svid, orders.role_arn, orders.profile_arn, extra={"roleSessionName": "me"}),
    )
    assert response.status_code == 201
    assert response.json()["credentialSet"][0]["assumedRoleUser"]["arn"].endswith("/me")
    strict = client.create_profile(
        name="strict", roleArns=[orders.role_arn], enabled=True, requireInstanceProperties=True
    )
    request = signed(sandbox, world, svid, orders.role_arn, strict["profile"]["profileArn"])
    assert answer(post(sandbox, *request)) == (
        403,
        "AccessDeniedException",
        "Instance properties are required by this profile",
    )
    client.disable_profile(profileId=profile_id)
    status, code, _ = answer(
        post(sandbox, *signed(sandbox, world, svid, orders.role_arn, orders.profile_arn))
    )
    assert (status, code) == (403, "AccessDeniedException")


def test_sandbox_deploy_again_updates_in_place_and_deletes_what_the_config_dropped(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ca = fresh_ca(serial=902)
    (tmp_path / "ca.pem").write_text(ca.pem)
    workloads = {
        "orders": {
            "spiffeId": "/svc/orders",
            "managedPolicyArns": ["arn:aws:iam::aws:policy/ReadOnlyAccess"],
            "svidDirectory": "/opt/svid/orders",
        },
        "billing": {"spiffeId": "/svc/billing", "svidDirectory": "/opt/svid/billing"},
    }
    config = sandbox_config(
        "again-",
        profileSharing="perWorkload",  # one profile each, updated in place
        workloads=workloads,
    )
    _, first = sandbox_deploy(sandbox, tmp_path, config, capsys)
    del workloads["billing"]
    workloads["orders"].update(sessionDuration=7200, managedPolicyArns=[])
    (tmp_path / "Pulumi.cli.yaml").write_text(json.dumps({"config": config}))
    endpoints = tmp_path / "endpoints.json"
    args = [
        "--config",
        str(tmp_path / "Pulumi.cli.yaml"),
        "--endpoints",
        str(endpoints),
        "--out",
        str(tmp_path / "out"),
    ]
    assert main(["sandbox-deploy", *args]) == 0
    out = capsys.readouterr().out
    assert "  deleted role again-billing (no longer in the config)\n" in out
    assert "  deleted profile again-billing (no longer in the config)\n" in out
    second = json.loads((tmp_path / "out" / "outputs.json").read_text())
    assert second["trustAnchorArn"] == first["trustAnchorArn"]
    orders = first["workloads"]["orders"]
    assert (second["workloads"]["orders"]["roleArn"], second["workloads"]["orders"]["profileArn"]) == (
        orders["roleArn"],
        orders["profileArn"],
    )
    ra, iam = sandbox.client("rolesanywhere"), sandbox.client("iam")
    assert ra.get_profile(profileId=orders["profileArn"])["profile"]["durationSeconds"] == 7200
    assert iam.get_role(RoleName="again-orders")["Role"]["MaxSessionDuration"] == 7200
    assert iam.list_attached_role_policies(RoleName="again-orders")["AttachedPolicies"] == []
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_role(RoleName="again-billing")
    assert "again-billing" not in {p["name"] for p in ra.list_profiles()["profiles"]}
    assert main(["sandbox-deploy", *args]) == 0  # unchanged: nothing to delete
    assert "deleted" not in capsys.readouterr().out
    other = [*args[:-1], str(tmp_path / "other-stack")]  # same role names, but not this stack's state
    assert main(["sandbox-deploy", *other]) == 2
    assert capsys.readouterr().err == (
        "error: role again-orders already exists in the sandbox and is not in this --out folder's "
        "outputs.json (another stack's?); deploy into that stack's folder or rename\n"
    )


def test_an_enterprise_stack_deploys_into_the_sandbox_and_the_cli_gets_its_named_session(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Boundary, path, tags and profile settings reach the sandbox; the AWS CLI's session carries the
    rendered --role-session-name where the profile accepts one, and a shared profile serves two roles."""
    ca = fresh_ca(serial=903)
    (tmp_path / "ca.pem").write_text(ca.pem)
    svids = tmp_path / "svids"
    boundary = "arn:aws:iam::aws:policy/ReadOnlyAccess"
    session_policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"}],
    }
    config = sandbox_config(
        "ent-",
        iam={
            "permissionsBoundary": boundary,
            "path": "/teleport/",
            "tags": {"Team": "a"},
        },
        profile={"sessionPolicy": session_policy, "acceptRoleSessionName": True},
        workloads={
            name: {"spiffeId": f"/svc/{name}", "svidDirectory": str(svids / name)}
            for name in ("orders", "billing")
        },
    )
    out, outputs = sandbox_deploy(sandbox, tmp_path, config, capsys)
    assert outputs["workloads"]["orders"]["profileArn"] == outputs["workloads"]["billing"]["profileArn"]
    role = sandbox.client("iam").get_role(RoleName="ent-orders")["Role"]
    assert role["Path"] == "/teleport/"
    assert role["PermissionsBoundary"]["PermissionsBoundaryArn"] == boundary
    assert {"Key": "Team", "Value": "a"} in role["Tags"]
    profile_id = outputs["workloads"]["orders"]["profileArn"].rsplit("/", 1)[1]
    profile = sandbox.client("rolesanywhere").get_profile(profileId=profile_id)["profile"]
    assert json.loads(profile["sessionPolicy"]) == session_policy
    assert profile["acceptRoleSessionName"] is True
    for name in ("orders", "billing"):
        write_svid(svids / name, fresh_svid(ca, outputs["workloads"][name]["spiffeId"]))
        result = aws_cli(tmp_path, out, "sts", "get-caller-identity", "--profile", name, "--output", "json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["Arn"] == (
            f"arn:aws:sts::123456789012:assumed-role/ent-{name}/teleport-ent-{name}"
        )


def test_effective_permissions_follow_the_session_policy_and_the_boundary(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Both roles may read everything (ReadOnlyAccess) under an IAM-only boundary; orders' profile
    has a session policy for iam:ListRoles. The AWS CLI's calls are decided as AWS would decide them."""
    ca = fresh_ca(serial=904)
    (tmp_path / "ca.pem").write_text(ca.pem)
    svids = tmp_path / "svids"
    only_list_roles = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iam:ListRoles", "Resource": "*"}],
    }
    workload = {"managedPolicyArns": ["arn:aws:iam::aws:policy/ReadOnlyAccess"]}
    config = sandbox_config(
        "eff-",
        iam={"permissionsBoundary": "arn:aws:iam::aws:policy/IAMReadOnlyAccess"},
        workloads={
            "orders": {
                **workload,
                "spiffeId": "/svc/orders",
                "svidDirectory": str(svids / "orders"),
                "profile": {"sessionPolicy": only_list_roles},
            },
            "billing": {**workload, "spiffeId": "/svc/billing", "svidDirectory": str(svids / "billing")},
        },
    )
    out, outputs = sandbox_deploy(sandbox, tmp_path, config, capsys)
    for name in ("orders", "billing"):
        write_svid(svids / name, fresh_svid(ca, outputs["workloads"][name]["spiffeId"]))
    endpoint = ("--endpoint-url", sandbox.endpoints["iam"])

    def call(name: str, *command: str) -> subprocess.CompletedProcess[str]:
        return aws_cli(tmp_path, out, *command, "--profile", name, *endpoint, "--output", "json")

    allowed = call("orders", "iam", "list-roles")
    assert allowed.returncode == 0, allowed.stderr
    assert "eff-orders" in allowed.stdout
    refused = call("orders", "iam", "list-users")
    assert refused.returncode != 0
    assert "(AccessDenied)" in refused.stderr
    assert "because no session policy allows the iam:ListUsers action" in refused.stderr
    # the same role without the session policy may list users: the session policy made the difference
    assert call("billing", "iam", "list-users").returncode == 0
    # ReadOnlyAccess allows dynamodb:ListTables, the IAM-only boundary does not
    beyond = call("billing", "dynamodb", "list-tables", "--region", "us-east-1")
    assert beyond.returncode != 0
    assert "because no permissions boundary allows the dynamodb:ListTables action" in beyond.stderr
