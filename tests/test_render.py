"""Rendered artefacts: golden files, Teleport's schemas, and round trips through the tools' own parsers."""

from __future__ import annotations

import configparser
import copy
import hashlib
import json
import os
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from roles_anywhere import PROJECT
from roles_anywhere.config.stack_file import read_stack_file
from roles_anywhere.errors import ConfigError
from roles_anywhere.plan.run import Plan, plan_stack_file
from roles_anywhere.render.artifacts import _environment, render_artifacts
from roles_anywhere.render.quoting import RenderError
from roles_anywhere.stack.deployment import Deployment, load_deployment

from .conftest import ROOT, write_stack
from .teleport_schemas import spec_errors, spec_validator

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = bool(os.environ.get("UPDATE_GOLDEN"))
ARN = re.compile(r"arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:\d{12}:[A-Za-z0-9/+=,.@_-]+")

VARIANTS: dict[str, dict[str, Any]] = {
    "workload-identity": {},
    "legacy": {"teleport": {"mode": "legacy"}},
    "tbot-credentials": {"aws": {"credentials": "tbot"}},
}


def example_config(**project: Any) -> dict[str, Any]:
    """Pulumi.example.yaml's config with project keys replaced, the CA file made absolute."""
    config = copy.deepcopy(yaml.safe_load((ROOT / "Pulumi.example.yaml").read_text())["config"])
    config[f"{PROJECT}:caBundle"] = {"file": str(ROOT / "examples" / "spiffe-ca.pem")}
    for key, value in project.items():
        full = f"{PROJECT}:{key}"
        if isinstance(value, dict) and isinstance(config.get(full), dict):
            config[full] = {**config[full], **value}
        else:
            config[full] = value
    return config


def plan_of(tmp_path: Path, config: dict[str, Any]) -> Plan:
    return plan_stack_file(write_stack(tmp_path, config, stack="example"))


@pytest.fixture(scope="module")
def plans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Plan]:
    return {
        name: plan_of(tmp_path_factory.mktemp(name), example_config(**changes))
        for name, changes in VARIANTS.items()
    }


def rendered(plan: Plan) -> tuple[Deployment, dict[str, str]]:
    deployment = load_deployment(plan.outputs, source="plan")
    return deployment, render_artifacts(deployment)


@pytest.mark.parametrize("variant", VARIANTS)
def test_golden_files(plans: dict[str, Plan], variant: str) -> None:
    _, files = rendered(plans[variant])
    # apply.py is this package's teleport/apply.py verbatim (checked below), not a rendering: no copy here.
    assert files.pop("teleport/apply.py") == (ROOT / "roles_anywhere" / "teleport" / "apply.py").read_text()
    folder = GOLDEN / variant
    if UPDATE:
        for path, text in files.items():
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_text(text, encoding="utf-8")
    expected = {
        str(p.relative_to(folder)): p.read_text(encoding="utf-8")
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }
    assert sorted(files) == sorted(expected), "rendered file set changed (UPDATE_GOLDEN=1 to accept)"
    for path, text in files.items():
        assert text == expected[path], f"{path} differs from tests/golden/{variant}/{path}"


def test_the_example_itself_renders_like_the_golden_variant(plans: dict[str, Plan]) -> None:
    _, from_example = rendered(plan_stack_file(ROOT / "Pulumi.example.yaml"))
    assert from_example == rendered(plans["workload-identity"])[1]


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_teleport_resource_matches_teleports_schema(plans: dict[str, Plan], variant: str) -> None:
    _, files = rendered(plans[variant])
    resources = [
        yaml.safe_load(text)
        for path, text in files.items()
        if path.startswith("teleport/") and path.endswith(".yaml")
    ]
    kinds = sorted(r["kind"] for r in resources)
    if variant == "legacy":
        assert kinds == ["role", "role"]
    else:
        assert kinds == ["role", "role", "workload_identity", "workload_identity"]
    for resource in resources:
        assert set(resource) == {"kind", "version", "metadata", "spec"}
        assert spec_errors(resource) == [], resource["metadata"]["name"]


def test_the_strict_schema_catches_a_misspelt_key() -> None:
    """The schema check can fail: a typo Kubernetes would silently prune is an error here."""
    role = {"kind": "role", "version": "v7", "spec": {"allow": {"workload_identity_label": {"a": ["b"]}}}}
    assert spec_errors(role) == [
        "allow: Additional properties are not allowed ('workload_identity_label' was unexpected)"
    ]
    identity = {"kind": "workload_identity", "version": "v1", "spec": {"spiffe": {"id": 7}}}
    assert spec_errors(identity) == ["spiffe/id: 7 is not of type 'string'"]
    assert spec_validator("role", "v8") is not None


def test_workload_identity_mode_resources(plans: dict[str, Plan]) -> None:
    deployment, files = rendered(plans["workload-identity"])
    identity = yaml.safe_load(files["teleport/workload_identity-tra.example-service.yaml"])
    assert identity["metadata"]["name"] == "tra.example-service"
    assert identity["metadata"]["labels"] == {
        "teleport-roles-anywhere/stack": "tra",
        "teleport-roles-anywhere/trust-anchor": deployment.trust_anchor_arn,
        "teleport-roles-anywhere/workload": "tra.example-service",
    }
    assert identity["spec"]["spiffe"]["id"] == "/svc/example-service"
    assert identity["spec"]["spiffe"]["x509"]["subject_template"]["common_name"] == "example-service"
    assert identity["spec"]["rules"] == {
        "allow": [
            {
                "conditions": [
                    {"attribute": "user.is_bot", "eq": {"value": "true"}},
                    {"attribute": "user.bot_name", "eq": {"value": "tra-ci-runner"}},
                ]
            },
            {
                "conditions": [
                    {"attribute": "user.is_bot", "eq": {"value": "false"}},
                    {"attribute": "user.name", "eq": {"value": "alice@example.com"}},
                ]
            },
        ]
    }
    role = yaml.safe_load(files["teleport/role-tra.user.alice@example.com.yaml"])
    assert role["metadata"]["name"] == "tra.user.alice@example.com"
    assert role["spec"]["allow"]["workload_identity_labels"] == {
        "teleport-roles-anywhere/stack": ["tra"],
        "teleport-roles-anywhere/workload": ["tra.example-service"],
    }
    assert role["spec"]["allow"]["rules"] == [{"resources": ["workload_identity"], "verbs": ["list", "read"]}]
    assert "spiffe" not in role["spec"]["allow"]
    bot_role = yaml.safe_load(files["teleport/role-tra.bot.tra-ci-runner.yaml"])
    assert bot_role["spec"]["allow"]["workload_identity_labels"]["teleport-roles-anywhere/workload"] == [
        "tra.ci-deployer",
        "tra.example-service",
    ]
    spiffe = f"spiffe://{deployment.cluster}{identity['spec']['spiffe']['id']}"
    assert spiffe == deployment.workloads["example-service"].spiffe_id


def test_legacy_mode_resources(plans: dict[str, Plan]) -> None:
    _, files = rendered(plans["legacy"])
    assert not any(path.startswith("teleport/workload_identity-") for path in files)
    role = yaml.safe_load(files["teleport/role-tra.bot.tra-ci-runner.yaml"])
    assert role["spec"]["allow"] == {
        "spiffe": [
            {"path": "/ci/deployer", "dns_sans": ["ci-deployer"]},
            {"path": "/svc/example-service", "dns_sans": ["example-service"]},
        ]
    }
    user_role = yaml.safe_load(files["teleport/role-tra.user.alice@example.com.yaml"])
    assert user_role["spec"]["allow"] == {
        "spiffe": [{"path": "/svc/example-service", "dns_sans": ["example-service"]}]
    }
    bot = yaml.safe_load(files["tbot/tra-ci-runner.yaml"])
    # The form tbot 15.2-18 all read: `outputs:` (spiffe-svid under `services:` needs 15.4.9/16.1).
    assert "services" not in bot
    assert [s["type"] for s in bot["outputs"]] == ["spiffe-svid", "spiffe-svid"]
    # A DNS SAN, which legacy issuance copies into the subject CN: AWS does not support empty subjects.
    assert bot["outputs"][0]["svid"] == {"path": "/ci/deployer", "sans": {"dns": ["ci-deployer"]}}
    words = shlex.split(files["tsh/ci-deployer.sh"].splitlines()[-1])
    assert words[2:4] == ["svid", "issue"]
    assert words[words.index("--dns-san") + 1] == "ci-deployer"


def test_apply_script_names_every_object_and_runs_the_shipped_program(plans: dict[str, Plan]) -> None:
    _, files = rendered(plans["workload-identity"])
    script = files["teleport/apply.sh"]
    assert script.splitlines()[-1] == 'exec python3 -I -- "$(dirname -- "$0")/apply.py" "$@"'
    role = "tra.user.alice@example.com"
    assert f"#   role/{role} (role-{role}.yaml), for user alice@example.com\n" in script
    assert files["teleport/apply.py"] == (ROOT / "roles_anywhere" / "teleport" / "apply.py").read_text()
    plan = json.loads(files["teleport/objects.json"])
    for ref, file in plan["files"].items():
        kind, name = ref.split("/", 1)
        resource = yaml.safe_load(files[f"teleport/{file}"])
        assert (resource["kind"], resource["metadata"]["name"]) == (kind, name)
    by_hand = [shlex.split(line) for line in files["README.md"].splitlines() if line.startswith("    tctl ")]
    assert by_hand == [
        *(["tctl", "create", "-f", file] for file in plan["files"].values() if file.startswith("workload")),
        *(["tctl", "create", "-f", file] for file in plan["files"].values() if file.startswith("role")),
        ["tctl", "bots", "update", "tra-ci-runner", "--add-roles", "tra.bot.tra-ci-runner"],
    ]
    assert plan["bots"] == {"tra-ci-runner": "tra.bot.tra-ci-runner"}
    assert plan["users"] == {"alice@example.com": "tra.user.alice@example.com"}
    assert plan["spiffePaths"] == ["/ci/deployer", "/svc/example-service"]


def test_tbot_credentials_mode(plans: dict[str, Plan]) -> None:
    deployment, files = rendered(plans["tbot-credentials"])
    bot = yaml.safe_load(files["tbot/tra-ci-runner.yaml"])
    services = {s["selector"]["name"].removeprefix("tra."): s for s in bot["services"]}
    deployer = services["ci-deployer"]
    expected = deployment.workloads["ci-deployer"]
    assert deployer["type"] == "workload-identity-aws-roles-anywhere"
    assert (deployer["role_arn"], deployer["profile_arn"], deployer["trust_anchor_arn"]) == (
        expected.role_arn,
        expected.profile_arn,
        deployment.trust_anchor_arn,
    )
    assert (deployer["session_duration"], deployer["session_renewal_interval"]) == ("2h", "1h")
    assert (
        services["example-service"]["session_duration"],
        services["example-service"]["session_renewal_interval"],
    ) == ("1h", "30m")
    assert deployer["region"] == "eu-west-1"
    assert deployer["credential_profile_name"] == "ci-deployer"
    config = configparser.RawConfigParser()
    config.read_string(files["aws/config"])
    assert dict(config["profile ci-deployer"]) == {"region": "eu-west-1"}
    assert "AWS_SHARED_CREDENTIALS_FILE=/opt/machine-id/ci-deployer/aws_credentials" in files["aws/config"]


def arns_in(files: dict[str, str]) -> set[str]:
    return {match.rstrip(".") for text in files.values() for match in ARN.findall(text)}


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_arn_in_every_file_is_one_the_plan_created(plans: dict[str, Plan], variant: str) -> None:
    plan = plans[variant]
    _, files = rendered(plan)
    planned = {r.outputs["arn"] for r in plan.resources if r.outputs.get("arn")}
    found = arns_in(files)
    assert found, "no ARN found: the regex or the templates are broken"
    assert found <= planned
    roles_and_profiles = {a for a in planned if ":role/" in a or ":profile/" in a or ":trust-anchor/" in a}
    assert roles_and_profiles <= found


def credential_process(files: dict[str, str], profile: str) -> tuple[str, list[str]]:
    config = configparser.RawConfigParser()
    config.read_string(files["aws/config"])
    section = config[f"profile {profile}"]
    return section["region"], shlex.split(section["credential_process"])


def test_credential_process_carries_the_exact_arns_and_files(plans: dict[str, Plan]) -> None:
    deployment, files = rendered(plans["workload-identity"])
    for name, workload in deployment.workloads.items():
        region, argv = credential_process(files, name)
        assert region == deployment.region
        expected = [
            "/usr/local/bin/aws_signing_helper",
            "credential-process",
            "--certificate",
            f"{workload.svid_directory}/svid.pem",
            "--private-key",
            f"{workload.svid_directory}/svid_key.pem",
            "--trust-anchor-arn",
            deployment.trust_anchor_arn,
            "--profile-arn",
            workload.profile_arn,
            "--role-arn",
            workload.role_arn,
        ]
        if workload.session_duration != 3600:
            expected += ["--session-duration", str(workload.session_duration)]
        assert argv == expected
        assert files["aws/config"].count("credential_process") == 2


HOSTILE_DIR = '/srv/my svids/it\'s "quoted"/ünï:cødé#1;x/$(rm -rf ~)/`id`'
HOSTILE_HELPER = "/opt/AWS Tools/aws_signing_helper"
HOSTILE_TOKEN = "/etc/tbot/the token's file"
HOSTILE_STORAGE = '/var/lib/tbot/state: "x" #1'


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Plan, dict[str, Any]]:
    config = example_config(
        teleport={
            "mode": "workload-identity",
            "proxy": "[2001:db8::7]:3080",
            "bots": {
                "tra-ci-runner": {
                    "joinMethod": "token",
                    "token": HOSTILE_TOKEN,
                    "storagePath": HOSTILE_STORAGE,
                }
            },
        },
        aws={"signingHelper": HOSTILE_HELPER},
    )
    workloads = config[f"{PROJECT}:workloads"]
    workloads["example-service"]["svidDirectory"] = HOSTILE_DIR
    workloads["example-service"]["users"] = ["o'brien@example.com", "zoë"]
    return plan_of(tmp_path_factory.mktemp("hostile"), config), config


def test_hostile_values_come_back_exactly_from_every_parser(hostile: tuple[Plan, dict[str, Any]]) -> None:
    plan, _ = hostile
    deployment, files = rendered(plan)
    bot = yaml.safe_load(files["tbot/tra-ci-runner.yaml"])
    assert bot["proxy_server"] == "[2001:db8::7]:3080"
    assert bot["onboarding"] == {"join_method": "token", "token": HOSTILE_TOKEN}
    assert bot["storage"] == {"type": "directory", "path": HOSTILE_STORAGE}
    paths = {s["selector"]["name"]: s["destination"]["path"] for s in bot["services"]}
    assert paths == {"tra.ci-deployer": "/opt/machine-id/ci-deployer", "tra.example-service": HOSTILE_DIR}

    _, argv = credential_process(files, "example-service")
    assert argv[:4] == [HOSTILE_HELPER, "credential-process", "--certificate", f"{HOSTILE_DIR}/svid.pem"]
    assert argv[5] == f"{HOSTILE_DIR}/svid_key.pem"

    script = files["tsh/example-service.sh"].splitlines()
    assert shlex.split(script[-2]) == ["mkdir", "-p", "--", HOSTILE_DIR]
    assert shlex.split(script[-1]) == [
        "tsh",
        "--proxy=[2001:db8::7]:3080",
        "workload-identity",
        "issue-x509",
        "--name-selector",
        "tra.example-service",
        "--credential-ttl",
        "8h",
        "--output",
        HOSTILE_DIR,
    ]
    assert "for user o'brien@example.com\n" in files["teleport/apply.sh"]
    assert (
        json.loads(files["teleport/objects.json"])["users"]["o'brien@example.com"]
        == "tra.user.o'brien@example.com"
    )
    role_files = [path for path in files if path.startswith("teleport/role-tra.user.o_brien@example.com-")]
    assert len(role_files) == 1, "a name a file cannot carry gets a readable part and a hash"
    assert yaml.safe_load(files[role_files[0]])["metadata"]["name"] == "tra.user.o'brien@example.com"
    assert "| `o'brien@example.com, zoë` |" in files["README.md"]
    assert deployment.workloads["example-service"].svid_directory == HOSTILE_DIR


def test_hostile_scripts_run_in_a_real_shell_without_side_effects(
    hostile: tuple[Plan, dict[str, Any]], tmp_path: Path
) -> None:
    """sh itself parses the tsh script: with tsh and mkdir replaced by echo, it prints the exact argv."""
    import subprocess  # noqa: PLC0415

    plan, _ = hostile
    _, files = rendered(plan)
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    for tool in ("tsh", "mkdir"):
        (fake_bin / tool).write_text('#!/bin/sh\nprintf "%s\\0" "$0" "$@"\n')
        (fake_bin / tool).chmod(0o755)
    script = tmp_path / "issue.sh"
    script.write_text(files["tsh/example-service.sh"])
    result = subprocess.run(
        ["/bin/sh", str(script)], capture_output=True, check=True, env={"PATH": str(fake_bin)}, cwd=tmp_path
    )
    printed = result.stdout.decode().split("\0")[:-1]
    assert printed[:4] == [str(fake_bin / "mkdir"), "-p", "--", HOSTILE_DIR]
    assert printed[4:][-1] == HOSTILE_DIR
    assert not (tmp_path / "~").exists()


def test_values_that_cannot_be_carried_are_refused_before_rendering(tmp_path: Path) -> None:
    config = example_config()
    config[f"{PROJECT}:workloads"]["ci-deployer"]["svidDirectory"] = "/opt/a\nb"
    from roles_anywhere.errors import ConfigError  # noqa: PLC0415

    with pytest.raises(
        ConfigError, match=r"workloads.ci-deployer.svidDirectory: contains the control character U\+000A"
    ):
        plan_of(tmp_path, config)


def test_rendering_is_byte_identical(plans: dict[str, Plan]) -> None:
    deployment, first = rendered(plans["workload-identity"])
    assert render_artifacts(deployment) == first
    again = load_deployment(plans["workload-identity"].outputs, source="plan")
    assert render_artifacts(again) == first


def test_every_interpolation_must_go_through_a_quoting_filter() -> None:
    template = _environment().from_string("value: {{ x }}")
    with pytest.raises(RenderError, match="without a quoting filter"):
        template.render(x="plain")
    assert _environment().from_string("value: {{ x | yaml }}").render(x="a: b") == 'value: "a: b"'


def test_templates_are_strict_about_undefined_names() -> None:
    import jinja2  # noqa: PLC0415

    with pytest.raises(jinja2.UndefinedError):
        _environment().from_string("{{ missing | yaml }}").render()


def test_plan_outputs_carry_a_digest_of_each_rendered_file_not_its_body(plans: dict[str, Plan]) -> None:
    """Stack state stays lean: one sha256 per file; rendering from the outputs gives those bytes."""
    plan = plans["workload-identity"]
    files = rendered(plan)[1]
    assert plan.outputs["artifacts"] == {
        path: "sha256:" + hashlib.sha256(text.encode()).hexdigest() for path, text in files.items()
    }
    assert len(json.dumps(plan.outputs["artifacts"])) * 5 < sum(len(text) for text in files.values())


def test_stack_file_round_trip_of_the_example_keys() -> None:
    """The example documents every new key; the stack file reader passes them as Pulumi would."""
    values = read_stack_file(ROOT / "Pulumi.example.yaml").project_values()
    assert {"teleport", "aws"} <= values.keys()


def test_python_signing_helper_and_endpoints(tmp_path: Path) -> None:
    aws = {
        "signingHelper": "python",
        "endpoint": "https://rolesanywhere.vpce.example.com:8443",
        "endpointCaFile": "/etc/ssl/private ca/endpoint.pem",
        "endpointUrl": "http://127.0.0.1:5000",
    }
    plan = plan_of(tmp_path, example_config(aws=aws))
    deployment, files = rendered(plan)
    assert plan.outputs["aws"] == {**aws, "credentials": "process"}
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(files["aws/config"])
    for name, workload in deployment.workloads.items():
        section = parser[f"profile {name}"]
        assert section["endpoint_url"] == "http://127.0.0.1:5000"
        argv = shlex.split(section["credential_process"])
        assert argv[:2] == ["roles-anywhere", "credential-process"]
        assert argv[argv.index("--endpoint") + 1] == aws["endpoint"]
        assert argv[argv.index("--ca-bundle") + 1] == aws["endpointCaFile"]
        assert argv[argv.index("--role-arn") + 1] == workload.role_arn
    assert "`roles-anywhere credential-process`" in files["README.md"]


@pytest.mark.parametrize(
    ("aws", "error"),
    [
        ({"endpointCaFile": "/ca.pem"}, "aws: 'endpointCaFile' needs signingHelper: python"),
        ({"endpoint": "http://rolesanywhere.example.com"}, "aws.endpoint: must be an https:// URL"),
        ({"endpoint": "https://h.example.com/path"}, "aws.endpoint: must be scheme://host[:port] only"),
        (
            {"endpointUrl": "http://10.0.0.1:4566"},
            "aws.endpointUrl: must be an https:// (http:// only on 127.0.0.1",
        ),
        (
            {"signingHelper": "python", "endpointCaFile": "ca.pem"},
            "aws.endpointCaFile: must be an absolute file path",
        ),
    ],
)
def test_endpoint_settings_are_validated(tmp_path: Path, aws: dict[str, str], error: str) -> None:
    with pytest.raises(ConfigError) as raised:
        plan_of(tmp_path, example_config(aws=aws))
    assert str(raised.value).startswith(error), str(raised.value)
