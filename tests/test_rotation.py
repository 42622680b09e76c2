"""A Teleport CA rotation end to end: the proxy's bundle changes, the anchor follows in place.

The "proxy" is the local TLS server; the program runs under the Pulumi mocks exactly as `pulumi up`
runs it. Replacement is the engine's decision, made from the resource's URN and from which inputs
changed: the URN must stay, and only ``source`` may change. ``source`` is updated in place by the
provider (UpdateTrustAnchor; the Terraform schema has no ForceNew on it), while a change to
``notificationSettings`` would replace the anchor (terraform-provider-aws PR #39108).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes

from roles_anywhere.cli import main
from roles_anywhere.plan.run import Plan, plan_stack_file

from .bundle_server import BundleServer, bundle_json, jwt_key, running_server
from .certs import NOW, make_ca
from .conftest import stack_config, write_stack

TRUST_ANCHOR = "aws:rolesanywhere/trustAnchor:TrustAnchor"
REPLACING_ANCHOR_INPUTS = {"notificationSettings"}

OLD = make_ca("acme.teleport.sh", serial=10, not_before=NOW - timedelta(days=500))
NEW = make_ca("acme.teleport.sh", serial=11, not_before=NOW - timedelta(days=2))


@pytest.fixture
def proxy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[BundleServer]:
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    yield from running_server(tmp_path)


def stack(tmp_path: Path, proxy: BundleServer) -> Path:
    workloads = {"orders": {"spiffeId": "/svc/orders"}, "billing": {"spiffeId": "/svc/billing"}}
    config = stack_config(
        caBundle={"proxy": proxy.address, "proxyCaFile": str(proxy.ca_file)}, workloads=workloads
    )
    return write_stack(tmp_path, config)


def anchor_of(plan: Plan) -> Any:
    (anchor,) = [r for r in plan.resources if r.type == TRUST_ANCHOR]
    return anchor


def others(plan: Plan) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    return {r.urn: (r.inputs, r.outputs) for r in plan.resources if r.type != TRUST_ANCHOR}


def changed_inputs(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    return {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}


def test_a_rotation_updates_the_anchor_in_place_and_leaves_every_role_alone(
    tmp_path: Path, proxy: BundleServer
) -> None:
    path = stack(tmp_path, proxy)
    proxy.serve(bundle_json(OLD, extra_keys=(jwt_key(OLD),)))
    standby = plan_stack_file(path)
    proxy.serve(bundle_json(NEW, OLD, extra_keys=(jwt_key(OLD),)))  # phase init: both trusted
    rotating = plan_stack_file(path)
    proxy.serve(bundle_json(NEW))  # back to standby: the old CA is gone
    rotated = plan_stack_file(path)

    plans = [standby, rotating, rotated]
    anchors = [anchor_of(plan) for plan in plans]
    assert len({a.urn for a in anchors}) == 1
    assert len({a.outputs["arn"] for a in anchors}) == 1
    assert all(a.protect for a in anchors)
    for before, after in itertools.pairwise(anchors):
        assert changed_inputs(before.inputs, after.inputs) == {"source"}
        assert not changed_inputs(before.inputs, after.inputs) & REPLACING_ANCHOR_INPUTS
    assert [a.inputs["source"]["sourceData"]["x509CertificateData"] for a in anchors] == [
        OLD.pem,
        OLD.pem + NEW.pem,
        NEW.pem,
    ]
    assert others(standby) == others(rotating) == others(rotated)  # roles, policies, profiles
    policies = [
        json.loads(r.inputs["assumeRolePolicy"]) for r in rotating.resources if r.type == "aws:iam/role:Role"
    ]
    assert len(policies) == 2
    for policy in policies:
        condition = policy["Statement"][0]["Condition"]
        assert condition["ArnEquals"]["aws:SourceArn"] == anchors[0].outputs["arn"]


def test_the_stack_outputs_follow_the_bundle(tmp_path: Path, proxy: BundleServer) -> None:
    proxy.serve(bundle_json(NEW, OLD))
    outputs = plan_stack_file(stack(tmp_path, proxy)).outputs
    assert [ca["sha256Fingerprint"] for ca in outputs["caCertificates"]] == [
        OLD.certificate.fingerprint(hashes.SHA256()).hex(),
        NEW.certificate.fingerprint(hashes.SHA256()).hex(),
    ]
    assert [ca["notAfter"] for ca in outputs["caCertificates"]] == [
        OLD.certificate.not_valid_after_utc.isoformat(),
        NEW.certificate.not_valid_after_utc.isoformat(),
    ]


# --- roles-anywhere bundle: the scheduled check ---------------------------------------------------------


def run_bundle(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["bundle", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def deployed(tmp_path: Path, path: Path, name: str) -> Path:
    """What `pulumi stack output --json` would print after `pulumi up` with what the proxy serves now."""
    outputs = tmp_path / name
    outputs.write_text(json.dumps(plan_stack_file(path).outputs))
    return outputs


def test_bundle_check_through_a_rotation(
    tmp_path: Path, proxy: BundleServer, capsys: pytest.CaptureFixture[str]
) -> None:
    path = stack(tmp_path, proxy)
    proxy.serve(bundle_json(OLD))
    before = deployed(tmp_path, path, "before.json")

    code, out, _ = run_bundle(capsys, "--config", str(path), "--stack-outputs", str(before))
    assert code == 0
    assert "caBundle.proxy serves 1 CA certificate (https://127.0.0.1:" in out
    assert "in anchor    yes" in out
    assert "holds exactly these CAs: nothing to do" in out

    proxy.serve(bundle_json(NEW, OLD))  # rotation phase init: the cluster trusts a second CA
    code, out, _ = run_bundle(capsys, "--config", str(path), "--stack-outputs", str(before))
    assert code == 1
    assert out.count("in anchor    yes") == 1
    assert out.count("in anchor    NO: run pulumi up") == 1
    assert "MISSING from the deployed trust anchor" in out
    assert "'Untrusted signing certificate'" in out

    during = deployed(tmp_path, path, "during.json")  # pulumi up ran
    assert run_bundle(capsys, "--config", str(path), "--stack-outputs", str(during))[0] == 0

    proxy.serve(bundle_json(NEW))  # rotation complete: the old CA is no longer trusted
    code, out, _ = run_bundle(capsys, "--config", str(path), "--stack-outputs", str(during))
    assert code == 1
    assert "NO LONGER SERVED but still trusted by" in out
    after = deployed(tmp_path, path, "after.json")
    assert run_bundle(capsys, "--config", str(path), "--stack-outputs", str(after))[0] == 0


def test_bundle_json_report(tmp_path: Path, proxy: BundleServer, capsys: pytest.CaptureFixture[str]) -> None:
    path = stack(tmp_path, proxy)
    proxy.serve(bundle_json(OLD))
    before = deployed(tmp_path, path, "before.json")
    proxy.serve(bundle_json(OLD, NEW))
    code, out, _ = run_bundle(capsys, "--config", str(path), "--stack-outputs", str(before), "--json")
    report = json.loads(out)
    assert code == 1
    assert report["source"] == {"key": "caBundle.proxy", "origin": proxy.url}
    assert [c["inDeployedAnchor"] for c in report["certificates"]] == [True, False]
    assert [c["key"] for c in report["certificates"]] == ["EC P-256", "EC P-256"]
    assert report["certificates"][1]["notBefore"] == NEW.certificate.not_valid_before_utc.isoformat()
    assert report["deployed"]["upToDate"] is False
    assert report["deployed"]["missing"] == [report["certificates"][1]["sha256Fingerprint"]]
    assert report["deployed"]["notServed"] == []
    assert report["deployed"]["trustAnchorArn"] == json.loads(before.read_text())["trustAnchorArn"]


def test_bundle_without_stack_outputs_only_reports(
    tmp_path: Path, proxy: BundleServer, capsys: pytest.CaptureFixture[str]
) -> None:
    proxy.serve(bundle_json(OLD, NEW))
    code, out, _ = run_bundle(capsys, "--config", str(stack(tmp_path, proxy)), "--json")
    report = json.loads(out)
    assert code == 0
    assert report["deployed"] is None
    assert [c["inDeployedAnchor"] for c in report["certificates"]] == [None, None]


def test_bundle_errors_are_one_line_exit_2(
    tmp_path: Path, proxy: BundleServer, capsys: pytest.CaptureFixture[str]
) -> None:
    path = stack(tmp_path, proxy)
    proxy.serve(bundle_json(OLD))
    outputs = json.loads(deployed(tmp_path, path, "ok.json").read_text())
    other = tmp_path / "other.json"
    other.write_text(json.dumps(outputs).replace("acme.teleport.sh", "other.teleport.sh"))
    code, _, err = run_bundle(capsys, "--config", str(path), "--stack-outputs", str(other))
    assert code == 2
    assert "are for cluster 'other.teleport.sh', but the config's cluster is 'acme.teleport.sh'" in err
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps({k: v for k, v in outputs.items() if k != "caCertificates"}))
    code, _, err = run_bundle(capsys, "--config", str(path), "--stack-outputs", str(bare))
    errors = [line for line in err.splitlines() if not line.startswith("warning: ")]
    assert (code, len(errors)) == (2, 1)
    assert "have no caCertificates output" in err
    proxy.serve("oops", status=503)
    code, out, err = run_bundle(capsys, "--config", str(path))
    assert (code, out) == (2, "")
    assert err == (
        f"error: caBundle.proxy: {proxy.url}: answered HTTP 503 Service Unavailable; "
        "expected 200 with the SPIFFE bundle\n"
    )
