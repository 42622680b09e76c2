"""`roles-anywhere simulate`: exit codes 0/1/2, human and JSON output, every input option."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from roles_anywhere.cli import main
from roles_anywhere.plan.run import plan_stack_file

from .certs import Issued, make_ca, make_intermediate, make_svid
from .conftest import CA, stack_config, write_stack

AT = "2026-11-21T12:00:00Z"
CLUSTER = "acme.teleport.sh"


@pytest.fixture
def stack(tmp_path: Path) -> Path:
    workloads = {
        "orders": {"spiffeId": "/svc/orders"},
        "billing": {"spiffeId": "/svc/billing", "sessionDuration": 7200},
    }
    return write_stack(tmp_path, stack_config(cluster=CLUSTER, workloads=workloads))


def svid_file(folder: Path, issued: Issued, name: str = "svid.pem") -> Path:
    path = folder / name
    path.write_text(issued.pem)
    return path


def simulate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["simulate", "--at", AT, *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_allowed_role_exits_0_and_walks_the_steps(stack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    svid = svid_file(stack.parent, make_svid(CA, f"spiffe://{CLUSTER}/svc/orders", common_name="orders"))
    code, out, err = simulate(capsys, "--config", str(stack), "--certificate", str(svid), "--role", "orders")
    assert (code, err) == (0, "")
    assert out.startswith(f"SVID spiffe://{CLUSTER}/svc/orders\n")
    for line in (
        "  ✓ 1. end-entity certificate",
        "  ✓ 2. chain to the trust anchor",
        "  ✓ 3. session tags",
        "  ✓ 4. role trust policy",
        "  ✓ 5. profile",
    ):
        assert line in out
    assert "orders: ALLOWED → arn:aws:iam::" in out
    assert out.endswith("Allowed: orders (1 of 1)\n")


def test_denied_role_exits_1_and_names_the_first_failing_step(
    stack: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    svid = svid_file(stack.parent, make_svid(CA, f"spiffe://{CLUSTER}/svc/orders"))
    code, out, _ = simulate(capsys, "--config", str(stack), "--certificate", str(svid), "--role", "billing")
    assert code == 1
    assert "billing: DENIED at step 4 (role trust policy)" in out
    assert "  AWS would answer: AccessDeniedException: Unable to assume role for the given role ARN" in out
    assert "fix: the role trusts another SPIFFE ID" in out


def test_without_role_every_workload_is_answered(stack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    svid = svid_file(stack.parent, make_svid(CA, f"spiffe://{CLUSTER}/svc/billing"))
    code, out, _ = simulate(capsys, "--config", str(stack), "--certificate", str(svid), "--json")
    assert code == 0  # at least one role allowed
    document = json.loads(out)
    assert document["allowed"] == ["billing"]
    verdicts = {r["workload"]: r for r in document["roles"]}
    assert verdicts["billing"]["allowed"] is True
    assert verdicts["orders"]["allowed"] is False
    assert verdicts["orders"]["failedStep"] == "trust-policy"
    assert verdicts["orders"]["reasons"]
    assert document["certificate"]["uriSans"] == [f"spiffe://{CLUSTER}/svc/billing"]
    assert document["sessionTags"]["x509SAN/URI"] == f"spiffe://{CLUSTER}/svc/billing"
    assert document["trustAnchorArn"].startswith("arn:aws:rolesanywhere:us-east-2:")


def test_no_role_allowed_exits_1(stack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    svid = svid_file(stack.parent, make_svid(make_ca(CLUSTER), f"spiffe://{CLUSTER}/svc/orders"))
    code, out, _ = simulate(capsys, "--config", str(stack), "--certificate", str(svid))
    assert code == 1
    assert out.endswith("Allowed: none (0 of 2)\n")


def test_intermediates_option(stack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    intermediate = make_intermediate(CA)
    svid = svid_file(stack.parent, make_svid(intermediate, f"spiffe://{CLUSTER}/svc/orders"))
    chain = svid_file(stack.parent, intermediate, "chain.pem")
    args = ["--config", str(stack), "--certificate", str(svid), "--role", "orders"]
    assert simulate(capsys, *args)[0] == 1
    assert simulate(capsys, *args, "--intermediates", str(chain))[0] == 0


def test_a_hand_written_trust_policy(stack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    svid = svid_file(stack.parent, make_svid(CA, f"spiffe://{CLUSTER}/svc/anything/else"))
    policy = stack.parent / "policy.json"
    policy.write_text(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "rolesanywhere.amazonaws.com"},
                        "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"],
                        "Condition": {
                            "StringLike": {"aws:PrincipalTag/x509SAN/URI": f"spiffe://{CLUSTER}/svc/*"}
                        },
                    }
                ],
            }
        )
    )
    args = ["--config", str(stack), "--certificate", str(svid), "--role", "orders"]
    assert simulate(capsys, *args)[0] == 1
    code, out, _ = simulate(capsys, *args, "--trust-policy", str(policy), "--json")
    assert code == 0
    assert json.loads(out)["roles"][0]["allowed"] is True


def test_stack_outputs_give_the_deployed_arns(stack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outputs = json.loads(json.dumps(plan_stack_file(stack).outputs))
    outputs["trustAnchorArn"] = outputs["trustAnchorArn"][:-12] + "000000000000"
    for workload in outputs["workloads"].values():
        workload["profileArn"] = workload["profileArn"][:-12] + "000000000000"
    path = stack.parent / "outputs.json"
    path.write_text(json.dumps(outputs))
    svid = svid_file(stack.parent, make_svid(CA, f"spiffe://{CLUSTER}/svc/orders"))
    code, out, err = simulate(
        capsys, "--config", str(stack), "--certificate", str(svid), "--stack-outputs", str(path), "--json"
    )
    assert (code, err) == (0, "")
    assert json.loads(out)["trustAnchorArn"] == outputs["trustAnchorArn"]


def test_a_config_bundle_that_differs_from_the_deployed_one_warns(
    stack: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs: dict[str, Any] = json.loads(json.dumps(plan_stack_file(stack).outputs))
    outputs["caCertificates"][0]["sha256Fingerprint"] = "00" * 32
    path = stack.parent / "outputs.json"
    path.write_text(json.dumps(outputs))
    svid = svid_file(stack.parent, make_svid(CA, f"spiffe://{CLUSTER}/svc/orders"))
    _, _, err = simulate(
        capsys, "--config", str(stack), "--certificate", str(svid), "--stack-outputs", str(path)
    )
    assert err.startswith("warning: caBundle differs from the deployed trust anchor's certificates")


@pytest.mark.parametrize(
    ("setup", "args", "error"),
    [
        (
            None,
            ["--certificate", "{dir}/missing.pem"],
            "error: --certificate {dir}/missing.pem: file not found",
        ),
        (
            "garbage",
            ["--certificate", "{dir}/bad.pem"],
            "error: --certificate {dir}/bad.pem: is neither a PEM nor a DER X.509 certificate",
        ),
        (
            "key",
            ["--certificate", "{dir}/bad.pem"],
            "error: --certificate {dir}/bad.pem: contains a private key; give the certificate file only "
            "(the key was not read)",
        ),
        (
            "pem-garbage",
            ["--certificate", "{dir}/bad.pem"],
            "error: --certificate {dir}/bad.pem: is not a PEM certificate file "
            "(no readable CERTIFICATE block)",
        ),
        (None, ["--role", "nope"], "error: --role: no workload 'nope' in the stack; it has: billing, orders"),
        (
            None,
            ["--at", "yesterday"],
            "error: --at: 'yesterday' is not an ISO-8601 time such as 2026-11-21T12:00:00Z",
        ),
        (
            "bad-policy",
            ["--trust-policy", "{dir}/bad.pem"],
            "error: {dir}/bad.pem: Statement[0]: needs exactly one of Principal or NotPrincipal",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    stack: Path, capsys: pytest.CaptureFixture[str], setup: str | None, args: list[str], error: str
) -> None:
    folder = stack.parent
    good = svid_file(folder, make_svid(CA, f"spiffe://{CLUSTER}/svc/orders"), "good.pem")
    bad = folder / "bad.pem"
    if setup == "garbage":
        bad.write_bytes(b"\x00\x01not a certificate")
    elif setup == "key":
        bad.write_text(CA.key_pem + CA.pem)
    elif setup == "pem-garbage":
        bad.write_text("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n")
    elif setup == "bad-policy":
        bad.write_text(json.dumps({"Statement": [{"Effect": "Allow", "Action": "*"}]}))
    filled = [a.format(dir=folder) for a in args]
    if "--certificate" not in filled:
        filled += ["--certificate", str(good)]
    code = main(
        ["simulate", "--config", str(stack), *filled]
        if "--at" in filled
        else ["simulate", "--at", AT, "--config", str(stack), *filled]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err == error.format(dir=folder) + "\n"
    assert "PRIVATE" not in err
    assert "MII" not in err


def test_the_profile_settings_of_the_stack_reach_simulate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A profile that accepts a session name gets the rendered one; one that requires instance
    properties refuses the rendered request, which sends none; an unaccepted name is refused."""
    workloads = {
        "orders": {"spiffeId": "/svc/orders", "profile": {"acceptRoleSessionName": True}},
        "billing": {"spiffeId": "/svc/billing", "profile": {"requireInstanceProperties": True}},
    }
    stack = write_stack(tmp_path, stack_config(cluster=CLUSTER, workloads=workloads))
    orders = svid_file(tmp_path, make_svid(CA, f"spiffe://{CLUSTER}/svc/orders"), "orders.pem")
    code, out, _ = simulate(capsys, "--config", str(stack), "--certificate", str(orders), "--role", "orders")
    assert code == 0
    assert "role session name 'teleport-" in out
    billing = svid_file(tmp_path, make_svid(CA, f"spiffe://{CLUSTER}/svc/billing"), "billing.pem")
    code, out, _ = simulate(
        capsys, "--config", str(stack), "--certificate", str(billing), "--role", "billing"
    )
    assert code == 1
    assert "billing: DENIED at step 5 (profile)" in out
    assert "the profile requires instance properties: the request sends none" in out
    code, out, _ = simulate(
        capsys,
        "--config",
        str(stack),
        "--certificate",
        str(billing),
        "--role",
        "billing",
        "--role-session-name",
        "x1",
    )
    assert "role session name 'x1' sent, but the profile does not accept one" in out
