"""How large a stack file may be, sized from the largest stack supported (issue 22), and what else limits it.

5,000 workloads (``MAX_WORKLOADS``) must fit: the 1 MiB cap refused a realistic 5,000-workload file.
A bigger cap must not make hostile YAML ten times cheaper to send, so YAML events are budgeted too.
And the Pulumi CLI hands the config to the program in one environment variable, which Linux caps.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from roles_anywhere import PROJECT
from roles_anywhere.cli import main
from roles_anywhere.config.model import MAX_WORKLOADS
from roles_anywhere.config.stack_file import (
    LANGUAGE_HOST_CONFIG_BYTES,
    MAX_STACK_FILE_BYTES,
    MAX_STACK_FILE_EVENTS,
    read_stack_file,
)
from roles_anywhere.plan.run import plan_stack_file
from roles_anywhere.stack.spec import load_spec

from .conftest import ROOT, stack_config, write_stack


def realistic(count: int) -> dict[str, Any]:
    """The issue's workload: two managed policies and a bot each (~226 bytes of YAML)."""
    return {
        f"service-{i:04d}": {
            "spiffeId": f"/svc/team-{i % 50}/service-{i:04d}",
            "managedPolicyArns": [
                "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess",
                f"arn:aws:iam::123456789012:policy/team-{i % 50}-base",
            ],
            "bots": [f"dev-runner-{i % 20}"],
        }
        for i in range(count)
    }


def rich(count: int) -> dict[str, Any]:
    """A fuller workload (~1,064 bytes): three policies, an inline policy, bots, a user, tags."""
    return {
        name: {
            **settings,
            "managedPolicyArns": [
                *settings["managedPolicyArns"],
                "arn:aws:iam::aws:policy/CloudWatchAgentPolicy",
            ],
            "inlinePolicy": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "ReadOwnBucket",
                        "Effect": "Allow",
                        "Action": ["s3:GetObject", "s3:ListBucket", "s3:PutObject"],
                        "Resource": [f"arn:aws:s3:::{name}-data", f"arn:aws:s3:::{name}-data/*"],
                    },
                    {
                        "Sid": "Queue",
                        "Effect": "Allow",
                        "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:SendMessage"],
                        "Resource": f"arn:aws:sqs:eu-west-1:123456789012:{name}",
                    },
                ],
            },
            "sessionDuration": 7200,
            "bots": [*settings["bots"], f"dev-deployer-{index % 7}"],
            "users": [f"oncall-{index % 30}@example.com"],
            "tags": {"Team": f"team-{index % 50}", "CostCenter": f"cc-{index % 13:04d}", "Service": name},
            "svidDirectory": f"/opt/machine-id/{name}",
        }
        for index, (name, settings) in enumerate(realistic(count).items())
    }


def test_the_issues_5000_workload_stack_is_read_and_validated(tmp_path: Path) -> None:
    """1.13 MB here (1.2 MB as the issue wrote it): over the old 1 MiB cap, far under the new one."""
    path = write_stack(tmp_path, stack_config(workloads=realistic(MAX_WORKLOADS), quotas={"iamRoles": 5_000}))
    assert 1024 * 1024 < path.stat().st_size < MAX_STACK_FILE_BYTES
    stack_file = read_stack_file(path)
    spec = load_spec(stack_file.project_values(), base_dir=tmp_path, stack=stack_file.stack)
    assert len(spec.workloads) == MAX_WORKLOADS


def test_5000_fuller_workloads_fit_the_cap_and_the_event_budget(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.dev.yaml"  # libyaml's emitter: PyYAML's own takes ~8 s for this one
    path.write_text(
        yaml.dump({"config": stack_config(workloads=rich(MAX_WORKLOADS))}, Dumper=yaml.CSafeDumper)
    )
    assert 5 * 1024 * 1024 < path.stat().st_size < MAX_STACK_FILE_BYTES
    assert len(read_stack_file(path).project_values()) == 3


def plan_error(path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["plan", "--config", str(path)]) == 2
    return capsys.readouterr().err


def test_a_file_over_the_cap_is_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "Pulumi.big.yaml"
    path.write_text("config:\n" + "#" * MAX_STACK_FILE_BYTES + "\n")
    assert plan_error(path, capsys) == f"error: {path}: larger than {MAX_STACK_FILE_BYTES} bytes\n"


@pytest.mark.parametrize(
    "body",
    [
        "  x:\n" + "  - a\n" * (MAX_STACK_FILE_EVENTS + 10),
        "  x: [" + "a," * (MAX_STACK_FILE_EVENTS + 10) + "]\n",
    ],
    ids=["block-list", "flow-list"],
)
def test_a_file_of_tiny_values_is_refused_before_any_tree_is_built(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str
) -> None:
    """Half a million one-letter values fit in 2 MiB: loading them as a tree took ~4 s and ~220 MB per
    MiB (a 6 MiB one, ~20 s and 1.3 GB); counting events stops at the budget, in constant memory."""
    path = tmp_path / "Pulumi.dense.yaml"
    path.write_text("config:\n" + body)
    assert path.stat().st_size < MAX_STACK_FILE_BYTES
    assert plan_error(path, capsys) == (
        f"error: {path}: holds more than {MAX_STACK_FILE_EVENTS:,} YAML events (values, keys and "
        f"collections); {MAX_WORKLOADS:,} workloads need at most about 96 each, so it is not a stack file "
        "we can plan\n"
    )


def test_the_densest_file_under_the_cap_fails_in_one_line_under_300_mib(tmp_path: Path) -> None:
    """As the hostile suite runs inputs: its own process, 300 MiB of address space, a CPU limit."""
    path = tmp_path / "Pulumi.dense.yaml"
    path.write_text("config:\n  x: [" + "a," * ((MAX_STACK_FILE_BYTES - 20) // 2) + "]\n")
    assert path.stat().st_size <= MAX_STACK_FILE_BYTES

    def limits() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (300 * 1024 * 1024,) * 2)
        resource.setrlimit(resource.RLIMIT_CPU, (60, 60))

    result = subprocess.run(
        [sys.executable, "-m", "roles_anywhere", "plan", "--config", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        preexec_fn=limits,
        check=False,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr[-500:]
    assert result.stderr.count("\n") == 1
    assert "YAML events" in result.stderr


def padded(tmp_path: Path, pad: int, **extra: str) -> Path:
    """A stack file with a value of ``pad`` characters in another namespace (Pulumi passes it too)."""
    config: dict[str, Any] = {**stack_config(), "other:pad": "a" * pad, **extra}
    return write_stack(tmp_path, config)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="MAX_ARG_STRLEN is Linux's")
def test_the_config_size_limit_is_where_linux_refuses_to_start_the_program(tmp_path: Path) -> None:
    """PULUMI_CONFIG as the CLI would set it: at the limit a process starts; one byte over, E2BIG."""
    base = len(read_stack_file(padded(tmp_path, 0)).language_host_config().encode())
    for pad, starts in (
        (LANGUAGE_HOST_CONFIG_BYTES - base, True),
        (LANGUAGE_HOST_CONFIG_BYTES - base + 1, False),
    ):
        stack_file = read_stack_file(padded(tmp_path, pad))
        environment = {"PULUMI_CONFIG": stack_file.language_host_config()}
        if starts:
            subprocess.run(["true"], env=environment, check=True)
        else:
            with pytest.raises(OSError, match="Argument list too long") as refused:
                subprocess.run(["true"], env=environment, check=True)
            assert refused.value.errno == errno.E2BIG
        assert (stack_file.language_host_warning() is None) is starts


def test_the_config_is_measured_as_go_encodes_it(tmp_path: Path) -> None:
    """Compact JSON, sorted keys, objects as compact JSON text, ``<``, ``>``, ``&`` as ``\\u003c``…"""
    path = write_stack(
        tmp_path, {**stack_config(), "other:html": "<a&b>", "other:obj": {"b": [1, 2], "a": "é"}}
    )
    text = read_stack_file(path).language_host_config()
    assert '"other:html":"\\u003ca\\u0026b\\u003e"' in text
    assert '"other:obj":"{\\"a\\":\\"é\\",\\"b\\":[1,2]}"' in text
    document = json.loads(text)
    assert list(document) == sorted(document)
    assert json.loads(document[f"{PROJECT}:caBundle"]) == stack_config()[f"{PROJECT}:caBundle"]


def test_plan_warns_in_one_line_when_pulumi_up_could_not_start_the_program(tmp_path: Path) -> None:
    plan = plan_stack_file(padded(tmp_path, LANGUAGE_HOST_CONFIG_BYTES))
    (warning,) = [w for w in plan.warnings if "PULUMI_CONFIG" in w]
    path = tmp_path / "Pulumi.dev.yaml"
    assert warning.startswith(
        f"{path}: the Pulumi CLI passes this config to the program as one environment variable "
        "(PULUMI_CONFIG) of about "
    )
    assert warning.endswith(
        f"bytes, over the {LANGUAGE_HOST_CONFIG_BYTES:,} Linux allows for one variable, so pulumi preview "
        "and pulumi up fail there with 'argument list too long' (pulumi/pulumi#8680; plan and render are not "
        "affected): split the stack, or declare the workloads in code with the Federation component"
    )
    assert not [w for w in plan_stack_file(padded(tmp_path, 10)).warnings if "PULUMI_CONFIG" in w]


def test_the_example_stack_is_far_from_every_limit() -> None:
    stack_file = read_stack_file(ROOT / "Pulumi.example.yaml")
    assert stack_file.language_host_warning() is None
    assert len(yaml.safe_load((ROOT / "Pulumi.example.yaml").read_text())) == 1
    assert os.path.getsize(ROOT / "Pulumi.example.yaml") < MAX_STACK_FILE_BYTES // 100
