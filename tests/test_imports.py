"""Adopting what exists: a hand-made anchor, roles and profiles via Pulumi's import option (issue 14)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from roles_anywhere.cli import main

from .conftest import stack_config, write_stack

ANCHOR_ID = "0b5c5a2e-6f3e-4c1f-9d7a-2f1b8e0c4d11"
PROFILE_ID = "1b5c5a2e-6f3e-4c1f-9d7a-2f1b8e0c4d11"
WORKLOADS = {
    "orders": {"spiffeId": "/svc/orders", "bots": ["dev-ci"]},
    "billing": {"spiffeId": "/svc/billing", "bots": ["dev-ci"]},
}


def plan_json(tmp_path: Path, capsys: pytest.CaptureFixture[str], **project: Any) -> dict[str, Any]:
    assert main(["plan", "--json", "--config", str(write_stack(tmp_path, stack_config(**project)))]) == 0
    return {r["name"]: r for r in json.loads(capsys.readouterr().out)["resources"]}


def test_the_import_option_is_set_exactly_where_configured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    resources = plan_json(
        tmp_path,
        capsys,
        profileSharing="perWorkload",
        workloads=WORKLOADS,
        **{
            "import": {
                "trustAnchor": ANCHOR_ID,
                "roles": {"orders": "orders"},
                "profiles": {"orders": PROFILE_ID},
            }
        },
    )
    adopted = {name: r["import"] for name, r in resources.items() if "import" in r}
    assert adopted == {
        "roles-anywhere-trust-anchor": ANCHOR_ID,
        "roles-anywhere-orders-role": "orders",
        "roles-anywhere-orders-profile": PROFILE_ID,
    }
    assert resources["roles-anywhere-trust-anchor"]["protect"] is True  # adopted and still protected


def test_a_shared_profile_is_adopted_by_its_name_and_plan_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    resources = plan_json(tmp_path, capsys, workloads=WORKLOADS)
    (shared,) = [r for r in resources.values() if r["type"] == "aws:rolesanywhere/profile:Profile"]
    name = shared["inputs"]["name"]
    config = stack_config(workloads=WORKLOADS, **{"import": {"profiles": {name: PROFILE_ID}}})
    path = write_stack(tmp_path, config)
    assert main(["plan", "--config", str(path)]) == 0
    assert f"[adopts existing {PROFILE_ID}]" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("imports", "message"),
    [
        (
            {"trustAnchor": "arn:aws:rolesanywhere:x"},
            "import.trustAnchor: 'arn:aws:rolesanywhere:x' is not a",
        ),
        ({"roles": {"nobody": "x"}}, "import.roles.nobody: names no workload of this stack"),
        ({"roles": {"orders": "bad name!"}}, "import.roles.orders: 'bad name!' is not an IAM role name"),
        ({"profiles": {"orders": PROFILE_ID}}, "import.profiles.orders: names no shared profile"),
    ],
    ids=["anchor-arn", "unknown-workload", "role-name", "shared-by-workload"],
)
def test_bad_import_keys_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], imports: dict[str, Any], message: str
) -> None:
    config = stack_config(workloads=WORKLOADS, **{"import": imports})
    assert main(["plan", "--config", str(write_stack(tmp_path, config))]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"error: {message}"), err
