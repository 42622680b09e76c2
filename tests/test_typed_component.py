"""The typed component API: a user's own program (own project, own config namespace) creates
``Federation`` with typed args and a CA bundle from another resource's output (issue 15)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from pulumi.runtime import rpc

from roles_anywhere.components.federation_args import config_values, federation_args
from roles_anywhere.errors import RolesAnywhereError
from roles_anywhere.plan.mocks import ROLE, TRUST_ANCHOR
from roles_anywhere.plan.run import Plan, plan_stack_file, run_program

from .certs import make_ca
from .conftest import CA, ROOT, stack_config, write_stack

EXAMPLE = ROOT / "examples" / "typed-component"
PROJECT = "platform-infra"


def user_program(folder: Path, source: str | None = None) -> Path:
    """The example program copied into ``folder`` (a user's repository), optionally rewritten."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(EXAMPLE / "Pulumi.yaml", folder / "Pulumi.yaml")
    program = folder / "__main__.py"
    program.write_text(source if source is not None else (EXAMPLE / "__main__.py").read_text())
    (folder / "ca.pem").write_text(CA.pem)
    return program


def run_user_program(program: Path, **config: str) -> Plan:
    settings = {"cluster": "acme.teleport.sh", "caFile": str(program.parent / "ca.pem"), "team": "payments"}
    settings.update(config)
    return run_program(
        config={"aws:region": "eu-west-1", **{f"{PROJECT}:{k}": v for k, v in settings.items()}},
        stack="dev",
        region="eu-west-1",
        account_id="111122223333",
        config_dir=program.parent,
        program=program,
        project=PROJECT,
    )


def unsecret(value: Any) -> Any:
    """A value as the engine saw it, without Pulumi's secret wrapper."""
    if isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig:
        return value["value"]
    return value


def trust_policies(plan: Plan) -> dict[str, Any]:
    """Role name → trust policy, with the plan's own anchor ARN replaced (the two plans name it apart)."""
    (anchor,) = [r for r in plan.resources if r.type == TRUST_ANCHOR]
    return {
        r.inputs["name"]: json.loads(r.inputs["assumeRolePolicy"].replace(anchor.outputs["arn"], "ANCHOR"))
        for r in plan.resources
        if r.type == ROLE
    }


def test_a_user_program_gets_the_trust_policies_of_the_stack_config_path(tmp_path: Path) -> None:
    plan = run_user_program(user_program(tmp_path / "platform"))
    assert plan.outputs["roleArns"] == {
        "billing": "arn:aws:iam::111122223333:role/payments/payments-billing",
        "orders": "arn:aws:iam::111122223333:role/payments/payments-orders",
    }
    # the CA reached the anchor through the SSM parameter's output
    (anchor,) = [r for r in plan.resources if r.type == TRUST_ANCHOR]
    (parameter,) = [r for r in plan.resources if r.type == "aws:ssm/parameter:Parameter"]
    source = unsecret(anchor.inputs["source"])  # the parameter's value is a secret, and so is what it feeds
    assert source["sourceData"]["x509CertificateData"] == unsecret(parameter.inputs["value"]) == CA.pem
    assert plan.outputs["rolesAnywhere"]["caCertificates"][0]["sha256Fingerprint"]

    same_workloads = stack_config(
        cluster="acme.teleport.sh",
        region="eu-west-1",
        namePrefix="payments-",
        accountId="111122223333",
        iam={"path": "/payments/", "tags": {"Team": "payments"}},
        workloads={
            "orders": {
                "spiffeId": "/svc/orders",
                "managedPolicyArns": ["arn:aws:iam::aws:policy/AmazonDynamoDBReadOnlyAccess"],
                "bots": ["payments-ci"],
            },
            "billing": {
                "spiffeId": "/svc/billing",
                "inlinePolicy": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::invoices/*"}
                    ],
                },
                "sessionDuration": 7200,
                "bots": ["payments-ci"],
            },
        },
    )
    (tmp_path / "stack").mkdir()
    stack_plan = plan_stack_file(write_stack(tmp_path / "stack", same_workloads))
    assert trust_policies(plan) == trust_policies(stack_plan)
    assert len(trust_policies(plan)) == 2
    ours = plan.outputs["rolesAnywhere"]["workloads"]
    theirs = stack_plan.outputs["workloads"]
    for name in ("orders", "billing"):
        for key in ("spiffeId", "roleName", "roleArn", "sessionDuration", "path", "bots"):
            assert ours[name][key] == theirs[name][key], (name, key)


@pytest.fixture
def stack_dir(tmp_path: Path) -> Path:
    (tmp_path / "stack").mkdir()
    return tmp_path / "stack"


def test_bad_typed_args_get_the_stack_configs_one_line_error(tmp_path: Path, stack_dir: Path) -> None:
    source = (EXAMPLE / "__main__.py").read_text().replace('"/svc/orders"', '"svc orders"')
    with pytest.raises(RolesAnywhereError) as typed:
        run_user_program(user_program(tmp_path / "platform", source))
    config = stack_config(workloads={"orders": {"spiffeId": "svc orders"}})
    with pytest.raises(RolesAnywhereError) as stack:
        plan_stack_file(write_stack(stack_dir, config))
    assert str(typed.value) == str(stack.value)
    assert str(typed.value).startswith("workloads.orders.spiffeId:")
    assert "\n" not in str(typed.value)


def test_a_bundle_output_that_is_not_a_ca_is_refused_in_one_line(tmp_path: Path) -> None:
    program = user_program(tmp_path / "platform")
    (program.parent / "ca.pem").write_text(make_ca(ca=False).pem)
    with pytest.raises(RolesAnywhereError) as refused:
        run_user_program(program)
    assert str(refused.value).startswith("caBundle:")
    assert "\n" not in str(refused.value)


def test_both_bundle_arguments_are_refused(tmp_path: Path) -> None:
    source = (
        (EXAMPLE / "__main__.py")
        .read_text()
        .replace('"ca_bundle": ca.value,', '"ca_bundle": ca.value, "ca_bundle_source": {"file": "ca.pem"},')
    )
    with pytest.raises(RolesAnywhereError, match=r"^caBundle: give the CA bundle as caBundle"):
        run_user_program(user_program(tmp_path / "platform", source))


def test_stack_config_values_and_typed_args_convert_both_ways_and_keep_user_keys() -> None:
    values = {
        "cluster": "acme.teleport.sh",
        "caBundle": {"file": "ca.pem", "proxyCaFile": "proxy.pem"},
        "workloads": {
            "orders-api": {
                "spiffeId": "/svc/orders",
                "tags": {"CostCenter": "a", "lower_case": "b"},
                "inlinePolicy": {"Statement": [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]},
                "profile": {"acceptRoleSessionName": True},
            }
        },
        "teleport": {"bots": {"dev-ci": {"joinMethod": "github"}}},
        "import": {"roles": {"orders-api": "legacy-role"}},
        "typoKey": 1,
    }
    args = federation_args(values)
    assert args["ca_bundle_source"] == {"file": "ca.pem", "proxy_ca_file": "proxy.pem"}
    assert args["workloads"]["orders-api"]["tags"] == {"CostCenter": "a", "lower_case": "b"}
    assert args["workloads"]["orders-api"]["inline_policy"]["Statement"][0]["NotAction"] == "iam:*"
    assert args["teleport"]["bots"]["dev-ci"] == {"join_method": "github"}
    assert args["imports"] == {"roles": {"orders-api": "legacy-role"}}
    assert args["typoKey"] == 1  # unknown keys stay, so validation names them
    assert config_values(args) == values
