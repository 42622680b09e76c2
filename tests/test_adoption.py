"""Adopting existing resources safely (issue 22): whose they are, under which name, with which ARN.

The ownership check runs on what AWS says the resource holds. Under ``pulumi up`` that is a read
(``Resource.get``) before the import; here the same program runs under mocks whose reads answer with the
tags a test gives each resource, as AWS would, so another stack's anchor, role or profile is refused
exactly as ``pulumi up`` refuses it, and nothing is registered for import.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from roles_anywhere.cli import main
from roles_anywhere.config.stack_file import read_stack_file
from roles_anywhere.errors import ConfigError
from roles_anywhere.plan.mocks import PROFILE, ROLE, TRUST_ANCHOR, DeterministicAwsMocks
from roles_anywhere.plan.run import Plan, run_program

from .conftest import stack_config, write_stack

ANCHOR_ID = "0b5c5a2e-6f3e-4c1f-9d7a-2f1b8e0c4d11"
PROFILE_ID = "1b5c5a2e-6f3e-4c1f-9d7a-2f1b8e0c4d11"
ANCHOR_ARN = f"arn:aws:rolesanywhere:us-east-2:123456789012:trust-anchor/{ANCHOR_ID}"
PROFILE_ARN = f"arn:aws:rolesanywhere:us-east-2:123456789012:profile/{PROFILE_ID}"
ORDERS_ID = "spiffe://acme.teleport.sh/svc/orders"
OURS = {
    "ManagedBy": "teleport-roles-anywhere",
    "TeleportCluster": "acme.teleport.sh",
    "TeleportNamespace": "dev",
}
WORKLOADS = {
    "orders": {"spiffeId": "/svc/orders", "bots": ["dev-ci"]},
    "billing": {"spiffeId": "/svc/billing", "bots": ["dev-ci"]},
}


class ExistingWorld(DeterministicAwsMocks):
    """AWS as a test sets it up: each existing resource (by ID) holds the tags and path given to it."""

    def __init__(self, existing: dict[str, dict[str, Any]]) -> None:
        super().__init__(region="us-east-2", account_id="123456789012")
        self.existing = existing
        self.reads: list[tuple[str, str]] = []

    def read(self, token: str, resource_id: str) -> dict[str, Any]:
        self.reads.append((token, resource_id))
        return {**super().read(token, resource_id), **self.existing.get(resource_id, {})}

    def registered(self, token: str) -> set[str]:
        return {name for (t, name) in self.inputs if t == token}


def adopt(
    tmp_path: Path, existing: dict[str, dict[str, Any]], **project: Any
) -> tuple[Plan | ConfigError, ExistingWorld]:
    """Run the program for a stack config against ``existing``; the plan, or the error it stopped with."""
    path = write_stack(tmp_path, stack_config(workloads=WORKLOADS, **project))
    stack_file = read_stack_file(path)
    world = ExistingWorld(existing)
    try:
        plan: Plan | ConfigError = run_program(
            config=stack_file.config,
            stack=stack_file.stack,
            region="us-east-2",
            account_id="123456789012",
            config_dir=tmp_path,
            mocks=world,
        )
    except ConfigError as err:
        plan = err
    return plan, world


def imports(**keys: Any) -> dict[str, Any]:
    return {"import": keys}


@pytest.mark.parametrize(
    ("project", "existing", "message"),
    [
        (
            imports(trustAnchor=ANCHOR_ID),
            {ANCHOR_ID: {"tags": {**OURS, "TeleportNamespace": "payments"}}},
            f"import.trustAnchor: trust anchor {ANCHOR_ID} is tagged TeleportNamespace='payments': it "
            "belongs to the stack whose Teleport namespace is 'payments', not to this one ('dev'), and "
            "adopting it would rewrite its CA bundle, so every role that trusts it would trust this stack's "
            "CA; remove import.trustAnchor (if that stack is gone, delete its TeleportNamespace tag in AWS "
            "first)",
        ),
        (
            imports(trustAnchor=ANCHOR_ID),
            {
                ANCHOR_ID: {"tags": {}, "tagsAll": {"TeleportNamespace": "payments"}}
            },  # the provider's default_tags
            f"import.trustAnchor: trust anchor {ANCHOR_ID} is tagged TeleportNamespace='payments'",
        ),
        (
            imports(trustAnchor=ANCHOR_ID),
            {ANCHOR_ID: {"tags": {"TeleportCluster": "other.teleport.sh"}}},
            f"import.trustAnchor: trust anchor {ANCHOR_ID} is tagged TeleportCluster='other.teleport.sh': it "
            "belongs to a stack of the Teleport cluster 'other.teleport.sh', not to this one "
            "('acme.teleport.sh'), and adopting it would rewrite its CA bundle",
        ),
        (
            imports(roles={"orders": "payments-orders"}),
            {"payments-orders": {"tags": {"teleportnamespace": "payments"}}},  # IAM keys ignore case
            "import.roles.orders: role payments-orders is tagged TeleportNamespace='payments': it belongs "
            "to the stack whose Teleport namespace is 'payments', not to this one ('dev'), and adopting it "
            "would rewrite its trust policy, so this stack's identities would assume it; remove "
            "import.roles.orders",
        ),
        (
            imports(roles={"orders": "dev-billing-old"}),
            {"dev-billing-old": {"tags": {**OURS, "SpiffeId": "spiffe://acme.teleport.sh/svc/billing"}}},
            "import.roles.orders: role dev-billing-old is tagged SpiffeId='spiffe://acme.teleport.sh/svc/"
            f"billing': it is another workload's, and adopting it for {ORDERS_ID} would rewrite its trust "
            "policy, so this stack's identities would assume it; adopt that workload's own role or none",
        ),
        (
            imports(roles={"orders": "LegacyOrders"}),
            {"LegacyOrders": {"path": "/legacy/"}},
            "import.roles.orders: role LegacyOrders has the IAM path '/legacy/', and this stack gives it "
            "'/': IAM cannot move a role to another path, so the import would have to replace it; set the "
            "workload's path (or iam.path) to '/legacy/'",
        ),
        (
            imports(roles={"orders": "legacyorders"}),
            {"legacyorders": {"name": "LegacyOrders"}},  # IAM finds a role whatever the case
            "import.roles.orders: role legacyorders is spelt 'LegacyOrders' in IAM, which matches names "
            "without regard to case but keeps them as made: set import.roles.orders to 'LegacyOrders' "
            "exactly",
        ),
        (
            {"profileSharing": "perWorkload", **imports(profiles={"billing": PROFILE_ID})},
            {PROFILE_ID: {"tags": {**OURS, "teleportnamespace": "payments"}}},  # both spellings: case counts
            f"import.profiles.billing: profile {PROFILE_ID} is tagged TeleportNamespace='payments'",
        ),
        (
            {"profileSharing": "perWorkload", **imports(profiles={"billing": PROFILE_ID})},
            {PROFILE_ID: {"tags": {**OURS, "TeleportNamespace": "payments"}}},
            f"import.profiles.billing: profile {PROFILE_ID} is tagged TeleportNamespace='payments': it "
            "belongs to the stack whose Teleport namespace is 'payments', not to this one ('dev'), and "
            "adopting it would rewrite the roles it vends and their session policies",
        ),
    ],
    ids=[
        "anchor-namespace",
        "anchor-namespace-in-tags-all",
        "anchor-cluster",
        "role-namespace",
        "role-spiffe-id",
        "role-path",
        "role-name-case",
        "profile-second-spelling",
        "profile",
    ],
)
def test_another_stacks_resource_is_refused_before_anything_is_imported(
    tmp_path: Path, project: dict[str, Any], existing: dict[str, dict[str, Any]], message: str
) -> None:
    result, world = adopt(tmp_path, existing, **project)
    assert isinstance(result, ConfigError)
    assert str(result).startswith(message), str(result)
    assert "\n" not in str(result)
    assert world.reads  # it looked before it leapt
    refused = {
        "import.trustAnchor": (TRUST_ANCHOR, "roles-anywhere-trust-anchor"),
        "import.roles.orders": (ROLE, "roles-anywhere-orders-role"),
        "import.profiles.billing": (PROFILE, "roles-anywhere-billing-profile"),
    }[result.key]
    assert refused not in world.inputs  # never registered, so never imported
    if result.key == "import.trustAnchor":  # nothing can trust an anchor that was never adopted
        assert not world.registered(ROLE)


def test_a_shared_profile_of_another_stack_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["plan", "--json", "--config", str(write_stack(tmp_path, stack_config(workloads=WORKLOADS)))])
        == 0
    )
    (shared,) = [
        r["inputs"]["name"] for r in json.loads(capsys.readouterr().out)["resources"] if r["type"] == PROFILE
    ]
    result, _ = adopt(
        tmp_path,
        {PROFILE_ID: {"tags": {**OURS, "TeleportNamespace": "payments"}}},
        **imports(profiles={shared: PROFILE_ID}),
    )
    assert isinstance(result, ConfigError)
    assert str(result).startswith(
        f"import.profiles.{shared}: profile {PROFILE_ID} is tagged TeleportNamespace"
    )


def test_this_stacks_own_and_hand_made_resources_are_adopted(tmp_path: Path) -> None:
    """Tags naming this stack (a repeated `pulumi up` with the import keys kept) or no tags: adopted."""
    result, world = adopt(
        tmp_path,
        {
            ANCHOR_ID: {"tags": OURS},
            "LegacyOrders": {"tags": {**OURS, "SpiffeId": ORDERS_ID}, "path": "/"},
            PROFILE_ID: {"tags": {}},  # hand-made
        },
        profileSharing="perWorkload",
        **imports(trustAnchor=ANCHOR_ID, roles={"orders": "LegacyOrders"}, profiles={"orders": PROFILE_ID}),
    )
    assert isinstance(result, Plan)
    assert sorted(world.reads) == sorted(
        [(PROFILE, PROFILE_ID), (ROLE, "LegacyOrders"), (TRUST_ANCHOR, ANCHOR_ID)]
    )
    adopted = {r.name: r.import_id for r in result.resources if r.import_id}
    assert adopted == {
        "roles-anywhere-trust-anchor": ANCHOR_ID,
        "roles-anywhere-orders-role": "LegacyOrders",
        "roles-anywhere-orders-profile": PROFILE_ID,
    }
    assert not any("ManagedBy" in w for w in result.warnings)


def test_a_resource_from_before_namespace_tags_is_adopted_with_a_warning(tmp_path: Path) -> None:
    result, _ = adopt(
        tmp_path,
        {
            ANCHOR_ID: {
                "tags": {"ManagedBy": "teleport-roles-anywhere", "TeleportCluster": "acme.teleport.sh"}
            }
        },
        **imports(trustAnchor=ANCHOR_ID),
    )
    assert isinstance(result, Plan)
    assert (
        f"import.trustAnchor: trust anchor {ANCHOR_ID} was made by a release of teleport-roles-anywhere from "
        "before TeleportNamespace tags, so its stack cannot be told; adopt it only if no other stack still "
        "manages it"
    ) in result.warnings


def plan_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str, **project: Any
) -> dict[str, Any]:
    path = write_stack(tmp_path, stack_config(**project))
    assert main(["plan", "--json", "--config", str(path), *extra]) == 0
    return dict(json.loads(capsys.readouterr().out))


def test_adopted_anchor_and_profiles_keep_the_arns_their_ids_give(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Trust policies, stack outputs and rendered files name the adopted anchor, not an invented one."""
    project = {
        "workloads": WORKLOADS,
        "profileSharing": "perWorkload",
        **imports(trustAnchor=ANCHOR_ID, profiles={"orders": PROFILE_ID}),
    }
    document = plan_json(tmp_path, capsys, **project)
    resources = {r["name"]: r for r in document["resources"]}
    assert resources["roles-anywhere-trust-anchor"]["outputs"]["arn"] == ANCHOR_ARN
    assert resources["roles-anywhere-trust-anchor"]["outputs"]["id"] == ANCHOR_ID
    assert resources["roles-anywhere-orders-profile"]["outputs"]["arn"] == PROFILE_ARN
    for workload in ("orders", "billing"):
        policy = json.loads(resources[f"roles-anywhere-{workload}-role"]["inputs"]["assumeRolePolicy"])
        assert policy["Statement"][0]["Condition"]["ArnEquals"] == {"aws:SourceArn": ANCHOR_ARN}
    assert document["outputs"]["trustAnchorArn"] == ANCHOR_ARN
    assert document["outputs"]["workloads"]["orders"]["profileArn"] == PROFILE_ARN
    out = tmp_path / "out"
    assert main(["render", "--config", str(tmp_path / "Pulumi.dev.yaml"), "--out", str(out)]) == 0
    capsys.readouterr()
    aws_config = (out / "aws" / "config").read_text()
    assert aws_config.count(f"--trust-anchor-arn {ANCHOR_ARN}") == 2
    assert f"--profile-arn {PROFILE_ARN}" in aws_config


def test_an_adopted_shared_profile_keeps_its_arn_for_every_member(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = plan_json(tmp_path, capsys, workloads=WORKLOADS)
    (shared,) = [r["inputs"]["name"] for r in first["resources"] if r["type"] == PROFILE]
    document = plan_json(tmp_path, capsys, workloads=WORKLOADS, **imports(profiles={shared: PROFILE_ID}))
    assert {w["profileArn"] for w in document["outputs"]["workloads"].values()} == {PROFILE_ARN}


def test_an_adopted_role_is_planned_under_its_own_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """IAM imports a role by name, and a name change would be a replacement: the role keeps its name."""
    document = plan_json(
        tmp_path,
        capsys,
        namePrefix="wh-",
        workloads={"packer": {"spiffeId": "/svc/packer", "bots": ["wh-ci"]}},
        profileSharing="perWorkload",
        **imports(roles={"packer": "LegacyPackerRole"}),
    )
    resources = {r["name"]: r for r in document["resources"]}
    role = resources["roles-anywhere-packer-role"]
    assert (role["import"], role["inputs"]["name"]) == ("LegacyPackerRole", "LegacyPackerRole")
    assert role["outputs"]["arn"] == "arn:aws:iam::123456789012:role/LegacyPackerRole"
    assert resources["roles-anywhere-packer-profile"]["inputs"]["name"] == "wh-packer"  # the profile is ours
    assert document["outputs"]["workloads"]["packer"]["roleName"] == "LegacyPackerRole"
    assert document["outputs"]["workloads"]["packer"]["roleArn"] == role["outputs"]["arn"]


def test_every_import_is_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = stack_config(
        workloads=WORKLOADS,
        profileSharing="perWorkload",
        **imports(trustAnchor=ANCHOR_ID, roles={"orders": "LegacyOrders"}, profiles={"billing": PROFILE_ID}),
    )
    assert main(["plan", "--config", str(write_stack(tmp_path, config))]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: import.")]
    checked = (
        "pulumi up refuses it if its TeleportNamespace tag names another stack, but plan cannot read its "
        "tags: be sure it is this stack's (plan --stack-outputs FILE checks another stack's outputs)"
    )
    assert warnings == [
        f"warning: import.trustAnchor: adopts the existing trust anchor {ANCHOR_ID}, then rewrites its CA "
        f"bundle, name and tags to this config's, and every role trusting it follows; {checked}",
        "warning: import.roles.orders: adopts the existing role LegacyOrders (planned under that name), then "
        f"rewrites its trust policy, permissions, boundary and tags to this config's; {checked}",
        f"warning: import.profiles.billing: adopts the existing profile {PROFILE_ID}, then rewrites its "
        f"roles, session settings and tags to this config's; {checked}",
    ]
    assert main(["plan", "--strict", "--config", str(tmp_path / "Pulumi.dev.yaml")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"error: import.trustAnchor: adopts the existing trust anchor {ANCHOR_ID}")
    assert err.endswith("(plan --strict: 3 warning(s), each an error)\n")


@pytest.mark.parametrize(
    ("project", "message"),
    [
        (
            {"namePrefix": "dev-", **imports(roles={"orders": "DEV-BILLING"})},
            "import.roles.orders: 'DEV-BILLING' is also the role of workload 'billing' (IAM role names "
            "ignore case); one role cannot serve two workloads: adopt another role or none",
        ),
        (
            imports(roles={"orders": "Legacy", "billing": "legacy"}),
            "import.roles.orders: 'Legacy' is also the role of workload 'billing'",
        ),
        (
            {
                "profileSharing": "perWorkload",
                **imports(profiles={"orders": PROFILE_ID, "billing": PROFILE_ID}),
            },
            f"import.profiles.orders: {PROFILE_ID} is also import.profiles.billing: one profile cannot be "
            "adopted twice",
        ),
    ],
    ids=["role-of-another-workload", "one-role-twice", "one-profile-twice"],
)
def test_one_existing_resource_cannot_serve_two_workloads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], project: dict[str, Any], message: str
) -> None:
    config = stack_config(workloads=WORKLOADS, **project)
    assert main(["plan", "--config", str(write_stack(tmp_path, config))]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"error: {message}"), err


def deployed_outputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], namespace: str
) -> tuple[Path, dict[str, Any]]:
    """The outputs of a stack whose Teleport namespace is ``namespace`` (`pulumi stack output --json`)."""
    folder = tmp_path / namespace
    folder.mkdir()
    document = plan_json(
        folder,
        capsys,
        namePrefix=f"{namespace}-",
        profileSharing="perWorkload",
        workloads={"orders": {"spiffeId": f"/{namespace}/orders", "bots": [f"{namespace}-ci"]}},
    )
    path = folder / "outputs.json"
    path.write_text(json.dumps(document["outputs"]))
    return path, document["outputs"]


@pytest.mark.parametrize("what", ["trustAnchor", "roles", "profiles"])
def test_plan_with_another_stacks_outputs_refuses_adopting_its_objects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], what: str
) -> None:
    """Two stacks, each adopting the other's objects: `plan --stack-outputs` catches it offline."""
    outputs_path, theirs = deployed_outputs(tmp_path, capsys, "payments")
    their = theirs["workloads"]["orders"]
    keys = {
        "trustAnchor": (theirs["trustAnchorArn"].rsplit("/", 1)[-1], "import.trustAnchor", "trust anchor"),
        "roles": (
            {"orders": "PAYMENTS-orders"},
            "import.roles.orders",
            "role PAYMENTS-orders (its workload 'orders')",
        ),
        "profiles": ({"orders": their["profileArn"].rsplit("/", 1)[-1]}, "import.profiles.orders", "profile"),
    }
    value, key, named = keys[what]
    config = stack_config(
        namePrefix="web-",
        profileSharing="perWorkload",
        workloads={"orders": {"spiffeId": "/web/orders", "bots": ["web-ci"]}},
        **imports(**{what: value}),
    )
    path = write_stack(tmp_path, config)
    assert main(["plan", "--config", str(path), "--stack-outputs", str(outputs_path)]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(f"error: {key}: {named}"), captured.err
    assert (
        f"belongs to the stack whose Teleport namespace is 'payments' (cluster 'acme.teleport.sh', per "
        f"{outputs_path}); adopting it would rewrite"
    ) in captured.err
    assert captured.err.endswith(f"for this stack's identities: remove {key}\n")


def test_plan_with_its_own_outputs_accepts_its_own_imports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs_path, ours = deployed_outputs(tmp_path, capsys, "payments")
    config = stack_config(
        namePrefix="payments-",
        profileSharing="perWorkload",
        workloads={"orders": {"spiffeId": "/payments/orders", "bots": ["payments-ci"]}},
        **imports(trustAnchor=ours["trustAnchorArn"].rsplit("/", 1)[-1], roles={"orders": "payments-orders"}),
    )
    assert (
        main(["plan", "--config", str(write_stack(tmp_path, config)), "--stack-outputs", str(outputs_path)])
        == 0
    )
