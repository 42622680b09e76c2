"""The offline plan: the real __main__ program under deterministic mocks."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from roles_anywhere import PROJECT
from roles_anywhere.errors import ConfigError
from roles_anywhere.plan.mocks import PROFILE, ROLE, ROLE_POLICY, ROLE_POLICY_ATTACHMENT, TRUST_ANCHOR
from roles_anywhere.plan.run import PLACEHOLDER_ACCOUNT_ID, Plan, plan_stack_file

from .conftest import CA, ROOT, stack_config, write_stack

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


@pytest.fixture(scope="module")
def example() -> Plan:
    return plan_stack_file(ROOT / "Pulumi.example.yaml")


def of_type(plan: Plan, token: str) -> list[Any]:
    return [r for r in plan.resources if r.type == token]


def test_example_creates_the_documented_resources(example: Plan) -> None:
    assert [r.type for r in example.resources] == [
        TRUST_ANCHOR,
        ROLE,
        ROLE_POLICY_ATTACHMENT,
        ROLE,
        ROLE_POLICY_ATTACHMENT,
        ROLE_POLICY,
        PROFILE,  # shared profiles, one per distinct settings: the two workloads' durations differ
        PROFILE,
    ]
    assert [c.type for c in example.components] == [
        f"{PROJECT}:index:Federation",
        f"{PROJECT}:index:TrustAnchor",
        f"{PROJECT}:index:Workload",
        f"{PROJECT}:index:Workload",
    ]


def test_arns_are_realistic(example: Plan) -> None:
    (anchor,) = of_type(example, TRUST_ANCHOR)
    assert re.fullmatch(
        rf"arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/{UUID}", anchor.outputs["arn"]
    )
    assert anchor.outputs["id"] == anchor.outputs["arn"].rsplit("/", 1)[1]
    assert {r.outputs["arn"] for r in of_type(example, ROLE)} == {
        "arn:aws:iam::111122223333:role/tra-ci-deployer",
        "arn:aws:iam::111122223333:role/tra-example-service",
    }
    for profile in of_type(example, PROFILE):
        assert re.fullmatch(
            rf"arn:aws:rolesanywhere:eu-west-1:111122223333:profile/{UUID}", profile.outputs["arn"]
        )
    for resource in example.resources:
        assert {"arn", "id", "name"} <= resource.outputs.keys()


def test_only_the_trust_anchor_is_protected(example: Plan) -> None:
    assert [r.type for r in example.resources if r.protect] == [TRUST_ANCHOR]


def test_every_trust_policy_names_the_planned_anchor_and_its_own_spiffe_id(example: Plan) -> None:
    anchor_arn = example.outputs["trustAnchorArn"]
    assert anchor_arn == of_type(example, TRUST_ANCHOR)[0].outputs["arn"]
    roles = {r.outputs["name"]: r for r in of_type(example, ROLE)}
    for name, workload in example.outputs["workloads"].items():
        role = roles[workload["roleName"]]
        assert role.outputs["arn"] == workload["roleArn"]
        condition = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Condition"]
        assert condition == {
            "StringEquals": {"aws:PrincipalTag/x509SAN/URI": workload["spiffeId"]},
            "ArnEquals": {"aws:SourceArn": anchor_arn},
        }, name
        assert role.inputs["maxSessionDuration"] >= workload["sessionDuration"]


def test_profiles_vend_their_own_role(example: Plan) -> None:
    profiles = {p.outputs["arn"]: p for p in of_type(example, PROFILE)}
    for workload in example.outputs["workloads"].values():
        profile = profiles[workload["profileArn"]]
        assert profile.inputs["roleArns"] == [workload["roleArn"]]
        assert profile.inputs["durationSeconds"] == workload["sessionDuration"]
        assert profile.inputs["enabled"] is True


def test_stack_outputs(example: Plan) -> None:
    assert example.outputs["cluster"] == "example.teleport.sh"
    assert set(example.outputs["workloads"]) == {"ci-deployer", "example-service"}
    assert (
        example.outputs["workloads"]["ci-deployer"]["spiffeId"] == "spiffe://example.teleport.sh/ci/deployer"
    )
    (certificate,) = example.outputs["caCertificates"]
    assert certificate["key"] == "EC P-256"
    assert len(certificate["sha256Fingerprint"]) == 64


def test_same_config_gives_the_same_plan(tmp_path: Path) -> None:
    path = write_stack(tmp_path, stack_config())
    first, second = plan_stack_file(path).to_json(), plan_stack_file(path).to_json()
    assert json.dumps(first) == json.dumps(second)


def test_placeholder_account_and_region_from_config(tmp_path: Path) -> None:
    plan = plan_stack_file(write_stack(tmp_path, stack_config()))
    assert plan.account_id == PLACEHOLDER_ACCOUNT_ID
    assert plan.outputs["trustAnchorArn"].startswith(
        f"arn:aws:rolesanywhere:us-east-2:{PLACEHOLDER_ACCOUNT_ID}:"
    )
    china = stack_config(accountId="000011112222") | {"aws:region": "cn-north-1"}
    arn = plan_stack_file(write_stack(tmp_path, china)).outputs["trustAnchorArn"]
    assert arn.startswith("arn:aws-cn:rolesanywhere:cn-north-1:000011112222:trust-anchor/")


def test_anchor_identity_does_not_depend_on_its_settings(tmp_path: Path) -> None:
    """Changing the anchor's name or thresholds must never yield a new URN (which would replace it)."""
    plain = plan_stack_file(write_stack(tmp_path, stack_config()))
    tuned = plan_stack_file(
        write_stack(
            tmp_path,
            stack_config(trustAnchor={"name": "renamed", "caExpiryNotificationDays": 90}, namePrefix="x-"),
        )
    )
    (before,), (after,) = of_type(plain, TRUST_ANCHOR), of_type(tuned, TRUST_ANCHOR)
    assert before.urn == after.urn
    assert before.outputs["arn"] == after.outputs["arn"]
    assert after.protect is True
    assert after.inputs["name"] == "renamed"


def test_protection_can_be_turned_off_explicitly(tmp_path: Path) -> None:
    plan = plan_stack_file(write_stack(tmp_path, stack_config(trustAnchor={"protect": False})))
    assert not any(r.protect for r in plan.resources)


def test_warnings_reach_the_plan(tmp_path: Path) -> None:
    arns = [f"arn:aws:iam::aws:policy/P{i}" for i in range(12)]
    workloads = {"orders": {"spiffeId": "/svc/orders", "managedPolicyArns": arns}}
    config = stack_config(workloads=workloads, quotas={"managedPoliciesPerRole": 14})
    plan = plan_stack_file(write_stack(tmp_path, config))
    assert any(w.startswith("quotas.managedPoliciesPerRole: this stack uses 12 of 14") for w in plan.warnings)
    assert len(of_type(plan, ROLE_POLICY_ATTACHMENT)) == 12


def test_relative_bundle_path_resolves_against_the_stack_file(tmp_path: Path) -> None:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.pem").write_text(CA.pem)
    plan = plan_stack_file(write_stack(tmp_path, stack_config(caBundle={"file": "certs/ca.pem"})))
    (anchor,) = of_type(plan, TRUST_ANCHOR)
    assert anchor.inputs["source"]["sourceData"]["x509CertificateData"] == CA.pem


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"aws:region": None}, "aws:region: is required"),
        ({"aws:region": "Europe"}, "aws:region: 'Europe' is not an AWS region name"),
        ({f"{PROJECT}:clustr": "x"}, "clustr: unknown key (did you mean 'cluster'?)"),
        (
            {f"{PROJECT}:caBundle": {"secure": "v1:abc"}},
            f"{PROJECT}:caBundle: is an encrypted (secure) value",
        ),
        ({"cluster": "x"}, "cluster: config keys must be namespaced"),
    ],
)
def test_stack_file_mistakes(tmp_path: Path, change: dict[str, Any], error: str) -> None:
    config = stack_config()
    for key, value in change.items():
        if value is None:
            config.pop(key)
        else:
            config[key] = value
    with pytest.raises(ConfigError) as raised:
        plan_stack_file(write_stack(tmp_path, config))
    assert str(raised.value).startswith(error)


def test_unreadable_stack_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"Pulumi\.nope\.yaml: file not found"):
        plan_stack_file(tmp_path / "Pulumi.nope.yaml")
    broken = tmp_path / "Pulumi.broken.yaml"
    broken.write_text("config:\n  a: [\n")
    with pytest.raises(ConfigError, match=r"Pulumi\.broken\.yaml: not valid YAML at line 3"):
        plan_stack_file(broken)
    empty = tmp_path / "Pulumi.empty.yaml"
    empty.write_text("")
    with pytest.raises(ConfigError, match="expected a top-level 'config:' mapping"):
        plan_stack_file(empty)


def test_project_level_config_in_pulumi_yaml_is_a_default_the_stack_overrides(tmp_path: Path) -> None:
    """Pulumi.yaml's `config:` (plain values, `value:`, schema `default:`) applies to every stack."""
    import yaml  # noqa: PLC0415

    (tmp_path / "Pulumi.yaml").write_text(
        yaml.safe_dump(
            {
                "name": PROJECT,
                "runtime": "python",
                "config": {
                    "aws:region": "eu-central-1",
                    "namePrefix": {"type": "string", "default": "team-"},
                    "accountId": {"value": "444455556666"},
                    f"{PROJECT}:trustAnchor": {"value": {"name": "from-project"}},
                    "unset": {"type": "string"},
                },
            }
        )
    )
    config = stack_config()
    del config["aws:region"]
    config[f"{PROJECT}:trustAnchor"] = {"name": "from-stack"}
    (tmp_path / "stacks").mkdir()
    plan = plan_stack_file(write_stack(tmp_path / "stacks", config, stack="dev"))
    assert (plan.region, plan.account_id) == ("eu-central-1", "444455556666")
    (role,) = of_type(plan, ROLE)
    assert role.inputs["name"] == "team-orders"
    (anchor,) = of_type(plan, TRUST_ANCHOR)
    assert anchor.inputs["name"] == "from-stack"


def test_keys_under_another_projects_namespace_are_named_in_the_error(tmp_path: Path) -> None:
    config = {key.replace(f"{PROJECT}:", "my-infra:"): value for key, value in stack_config().items()}
    with pytest.raises(ConfigError) as raised:
        plan_stack_file(write_stack(tmp_path, config))
    assert str(raised.value) == (
        f"cluster: is required under '{PROJECT}:'; the config has 'my-infra:cluster', in another "
        f"namespace. This program reads only '{PROJECT}:' keys: keep 'name: {PROJECT}' in Pulumi.yaml or "
        "rename the keys"
    )


@pytest.mark.parametrize(
    "entry",
    [{"cluster": "example.teleport.sh", "workloads": {}}, {"secure": "AAABAC..."}],
    ids=["object-without-value", "encrypted"],
)
def test_a_project_config_entry_plan_cannot_read_is_named(tmp_path: Path, entry: dict[str, Any]) -> None:
    import yaml  # noqa: PLC0415

    (tmp_path / "Pulumi.yml").write_text(yaml.safe_dump({"name": PROJECT, "config": {"teleport": entry}}))
    with pytest.raises(ConfigError) as raised:
        plan_stack_file(write_stack(tmp_path, stack_config()))
    assert str(raised.value) == (
        f"{tmp_path / 'Pulumi.yml'}: config.teleport: an object value must sit under 'value:' (otherwise "
        "Pulumi reads it as a schema); encrypted values cannot be read offline"
    )


def test_the_repository_entry_point_plans_as_the_packaged_program_and_tunes_the_collector() -> None:
    """`pulumi up` runs ``__main__.py``; it must register what ``plan`` shows, with rare cycle collection."""
    import gc  # noqa: PLC0415

    from roles_anywhere.components.program import COLLECTOR_THRESHOLDS  # noqa: PLC0415
    from roles_anywhere.config.stack_file import read_stack_file  # noqa: PLC0415
    from roles_anywhere.plan.run import run_program  # noqa: PLC0415

    path = ROOT / "Pulumi.example.yaml"
    stack_file = read_stack_file(path)
    settings = {
        "config": stack_file.config,
        "stack": stack_file.stack,
        "region": stack_file.aws_region(),
        "account_id": PLACEHOLDER_ACCOUNT_ID,
        "config_dir": ROOT,
    }
    before = gc.get_threshold()
    try:
        entry = run_program(**settings, program=ROOT / "__main__.py")
        assert gc.get_threshold() == COLLECTOR_THRESHOLDS
    finally:
        gc.set_threshold(*before)
    packaged = run_program(**settings)
    assert entry.to_json() == packaged.to_json()
    assert len(entry.resources) > 3
