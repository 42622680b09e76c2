"""Two stacks in one account (issue 22), for real: the sandbox's Roles Anywhere and moto's IAM.

``sandbox-deploy`` runs the program with mocks that create, and read, every resource in the sandbox, so
the ownership check judges the tags the sandbox actually holds. A stack adopting another stack's anchor,
role or profile is refused in one line, and the other stack's objects are left exactly as they were; a
hand-made anchor and role are adopted under their own ARNs; an AWS refusal is one line naming the
resource, never an internal error.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from roles_anywhere import PROJECT
from roles_anywhere.cli import main
from roles_anywhere.sandbox.server import Sandbox

from .sandbox_helpers import CLUSTER, fresh_ca

CA = fresh_ca(serial=2201)


def stack(namespace: str, **project: Any) -> dict[str, Any]:
    """A stack whose Teleport namespace (and name prefix) is ``namespace``, one workload per profile."""
    project.setdefault("namePrefix", f"{namespace}-")
    project.setdefault("profileSharing", "perWorkload")
    project.setdefault(
        "workloads", {"orders": {"spiffeId": f"/{namespace}/orders", "bots": [f"{namespace}-ci"]}}
    )
    return {
        "aws:region": "us-east-1",
        f"{PROJECT}:cluster": CLUSTER,
        f"{PROJECT}:caBundle": {"file": "ca.pem"},
        f"{PROJECT}:teleport": {"namespace": namespace},
        **{f"{PROJECT}:{key}": value for key, value in project.items()},
    }


def deploy(sandbox: Sandbox, folder: Path, name: str, config: dict[str, Any]) -> list[str]:
    """`roles-anywhere sandbox-deploy` the stack ``name`` from its own folder: its exit code's argv."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ca.pem").write_text(CA.pem)
    (folder / f"Pulumi.{name}.yaml").write_text(json.dumps({"config": config}))
    (folder / "endpoints.json").write_text(json.dumps(sandbox.endpoints))
    return [
        "sandbox-deploy",
        "--config",
        str(folder / f"Pulumi.{name}.yaml"),
        "--endpoints",
        str(folder / "endpoints.json"),
        "--out",
        str(folder / "out"),
    ]


def deployed(
    sandbox: Sandbox, folder: Path, name: str, config: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> dict[str, Any]:
    assert main(deploy(sandbox, folder, name, config)) == 0, capsys.readouterr().err
    capsys.readouterr()
    return dict(json.loads((folder / "out" / "outputs.json").read_text()))


def refused(
    sandbox: Sandbox, folder: Path, name: str, config: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> str:
    code = main(deploy(sandbox, folder, name, config))
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1, err
    assert "internal error" not in err
    return err


def snapshot(sandbox: Sandbox, outputs: dict[str, Any]) -> dict[str, Any]:
    """Everything a stack owns in the sandbox that an adopter would rewrite."""
    ra, iam = sandbox.client("rolesanywhere"), sandbox.client("iam")
    anchor_arn = outputs["trustAnchorArn"]
    anchor = ra.get_trust_anchor(trustAnchorId=anchor_arn.rsplit("/", 1)[-1])["trustAnchor"]
    workload = outputs["workloads"]["orders"]
    role = iam.get_role(RoleName=workload["roleName"])["Role"]
    profile = ra.get_profile(profileId=workload["profileArn"].rsplit("/", 1)[-1])["profile"]
    return {
        "anchor": (anchor["name"], anchor["source"]),
        "anchor tags": ra.list_tags_for_resource(resourceArn=anchor_arn)["tags"],
        "role": (role["AssumeRolePolicyDocument"], role.get("Tags")),
        "profile": (profile["roleArns"], profile["name"]),
        "profile tags": ra.list_tags_for_resource(resourceArn=workload["profileArn"])["tags"],
    }


def test_two_stacks_adopting_each_others_objects_are_refused_and_nothing_changes(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pay = deployed(sandbox, tmp_path / "pay", "pay", stack("pay"), capsys)
    web = deployed(sandbox, tmp_path / "web", "web", stack("web"), capsys)
    before = {"pay": snapshot(sandbox, pay), "web": snapshot(sandbox, web)}
    anchor_id = pay["trustAnchorArn"].rsplit("/", 1)[-1]
    profile_id = pay["workloads"]["orders"]["profileArn"].rsplit("/", 1)[-1]
    rewrites = {
        "trustAnchor": (anchor_id, f"error: import.trustAnchor: trust anchor {anchor_id} is tagged "),
        "roles": ({"orders": "pay-orders"}, "error: import.roles.orders: role pay-orders is tagged "),
        "profiles": (
            {"orders": profile_id},
            f"error: import.profiles.orders: profile {profile_id} is tagged ",
        ),
    }
    for key, (value, start) in rewrites.items():
        err = refused(sandbox, tmp_path / "web", "web", stack("web", **{"import": {key: value}}), capsys)
        assert err.startswith(start + "TeleportNamespace='pay': it belongs to the stack whose Teleport "), err
    web_id = web["workloads"]["orders"]["profileArn"].rsplit("/", 1)[-1]
    err = refused(
        sandbox, tmp_path / "pay", "pay", stack("pay", **{"import": {"profiles": {"orders": web_id}}}), capsys
    )
    assert err.startswith(
        f"error: import.profiles.orders: profile {web_id} is tagged TeleportNamespace='web'"
    )
    assert {"pay": snapshot(sandbox, pay), "web": snapshot(sandbox, web)} == before


def test_hand_made_anchor_and_role_are_adopted_under_their_own_arns(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What Teleport's guide has people make by hand: no tags of ours, a name of their choosing."""
    ra, iam = sandbox.client("rolesanywhere"), sandbox.client("iam")
    anchor = ra.create_trust_anchor(
        name="hand-made",
        enabled=True,
        source={"sourceType": "CERTIFICATE_BUNDLE", "sourceData": {"x509CertificateData": CA.pem}},
    )["trustAnchor"]
    role = iam.create_role(RoleName="LegacyOpsRole", AssumeRolePolicyDocument=json.dumps({"Statement": []}))[
        "Role"
    ]
    config = stack(
        "ops", **{"import": {"trustAnchor": anchor["trustAnchorId"], "roles": {"orders": "LegacyOpsRole"}}}
    )
    outputs = deployed(sandbox, tmp_path / "ops", "ops", config, capsys)
    assert outputs["trustAnchorArn"] == anchor["trustAnchorArn"]
    assert outputs["workloads"]["orders"]["roleArn"] == role["Arn"]
    trust = iam.get_role(RoleName="LegacyOpsRole")["Role"]
    condition = trust["AssumeRolePolicyDocument"]["Statement"][0]["Condition"]
    assert condition["ArnEquals"] == {"aws:SourceArn": anchor["trustAnchorArn"]}
    assert {"Key": "TeleportNamespace", "Value": "ops"} in trust["Tags"]
    tags = ra.list_tags_for_resource(resourceArn=anchor["trustAnchorArn"])["tags"]
    assert {"key": "TeleportNamespace", "value": "ops"} in tags
    # adopted now: the same stack deploying again with the import keys kept is its own owner
    assert (
        deployed(sandbox, tmp_path / "ops", "ops", config, capsys)["trustAnchorArn"]
        == anchor["trustAnchorArn"]
    )


def test_a_role_at_another_path_is_refused_before_a_replacement(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sandbox.client("iam").create_role(
        RoleName="LegacyPathRole", Path="/legacy/", AssumeRolePolicyDocument=json.dumps({"Statement": []})
    )
    config = stack("paths", **{"import": {"roles": {"orders": "LegacyPathRole"}}})
    err = refused(sandbox, tmp_path / "paths", "paths", config, capsys)
    assert err == (
        "error: import.roles.orders: role LegacyPathRole has the IAM path '/legacy/', and this stack gives "
        "it '/': IAM cannot move a role to another path, so the import would have to replace it; set the "
        "workload's path (or iam.path) to '/legacy/'\n"
    )


def test_a_shared_profile_of_the_same_name_in_another_stack_is_not_taken_over(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Profile names are not unique in AWS: equal settings give two stacks the same shared name."""
    alpha = deployed(
        sandbox,
        tmp_path / "alpha",
        "alpha",
        stack(
            "alpha", namePrefix="", profileSharing="shared", workloads={"ledger": {"spiffeId": "/a/ledger"}}
        ),
        capsys,
    )
    beta = deployed(
        sandbox,
        tmp_path / "beta",
        "beta",
        stack("beta", namePrefix="", profileSharing="shared", workloads={"audit": {"spiffeId": "/b/audit"}}),
        capsys,
    )
    ra = sandbox.client("rolesanywhere")
    alpha_profile = alpha["workloads"]["ledger"]["profileArn"]
    assert beta["workloads"]["audit"]["profileArn"] != alpha_profile
    listed = ra.get_profile(profileId=alpha_profile.rsplit("/", 1)[-1])["profile"]["roleArns"]
    assert listed == [alpha["workloads"]["ledger"]["roleArn"]]


def test_an_aws_refusal_is_one_line_naming_the_resource(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = "arn:aws:iam::123456789012:policy/DoesNotExist"
    workloads = {
        "orders": {"spiffeId": "/refused/orders", "bots": ["refused-ci"], "managedPolicyArns": [missing]}
    }
    err = refused(sandbox, tmp_path / "refused", "refused", stack("refused", workloads=workloads), capsys)
    assert err.startswith(f"error: sandbox-deploy: policy attachment {missing} (roles-anywhere-orders-"), err
    assert ": AttachRolePolicy was refused: NoSuchEntity: " in err


def test_a_sandbox_that_is_gone_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gone = {
        "region": "us-east-1",
        "accountId": "123456789012",
        "iam": f"http://127.0.0.1:{port}",
        "sts": f"http://127.0.0.1:{port}",
        "rolesanywhere": f"https://127.0.0.1:{port}",
        "caFile": str(tmp_path / "ca.pem"),
    }
    args = deploy(cast(Sandbox, SimpleNamespace(endpoints=gone)), tmp_path, "gone", stack("gone"))
    assert main(args) == 2
    assert capsys.readouterr().err == (
        "error: sandbox-deploy: looking for roles another deploy made: Could not connect to the endpoint "
        f'URL: "http://127.0.0.1:{port}/"\n'
    )
