"""Issue 11: an SVID goes only to the bots and users the stack names — per stack, revoked on removal.

Each test renders with the real templates, runs the real ``teleport/apply.sh`` under ``/bin/sh`` against
a fake cluster (``fake_tctl``), and asks the issuance model (``teleport_model``, tested against
Teleport's own examples) who can obtain which SPIFFE ID. Principals hold Teleport's preset
``wildcard-workload-identity-issuer`` too: labels alone must never be enough.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roles_anywhere.cli import main
from roles_anywhere.output.artifact_writer import OutputFolderError
from roles_anywhere.plan.run import plan_stack_file
from roles_anywhere.render.artifacts import render_artifacts
from roles_anywhere.stack.deployment import load_deployment

from .conftest import stack_config, write_stack
from .teleport_cluster import FakeCluster, deployment_of, render_to, stack_outputs
from .teleport_model import can_obtain_legacy, obtainable_ids
from .teleport_schemas import spec_errors

MODES = ("workload-identity", "legacy")
ORDERS_BY_CI = {"orders": {"path": "/svc/orders", "bots": ["prod-ci"]}}


def orders_by(bot: str) -> dict[str, dict[str, Any]]:
    return {"orders": {"path": "/svc/orders", "bots": [bot]}}


def obtainable(cluster: FakeCluster, kind: str, name: str, paths: list[str]) -> set[str]:
    return obtainable_ids(cluster.model(), cluster.principal(kind, name), paths)


def deploy(
    cluster: FakeCluster, folder: Path, namespace: str, workloads: dict[str, dict[str, Any]], mode: str
) -> dict[str, str]:
    """Render into ``folder`` and apply, as the admin would: bots created first, users given their roles."""
    files = render_to(folder, deployment_of(namespace, workloads, mode))
    for workload in workloads.values():
        for bot in workload.get("bots", []):
            cluster.add_bot(bot)
    result = cluster.apply(folder)
    assert result.returncode == 0, result.stderr
    for workload in workloads.values():
        for user in workload.get("users", []):
            cluster.grant_user(user, [f"{namespace}.user.{user}"])
    return files


@pytest.mark.parametrize("mode", MODES)
def test_finding_1_two_stacks_with_the_same_names_are_disjoint(tmp_path: Path, mode: str) -> None:
    """prod and staging both have `orders`: staging's bot must never get prod's SVID, whatever the order."""
    cluster = FakeCluster(tmp_path)
    prod = deploy(
        cluster,
        tmp_path / "prod",
        "prod",
        {"orders": {"path": "/prod/orders", "bots": ["prod-runner"]}},
        mode,
    )
    staging = deploy(
        cluster,
        tmp_path / "staging",
        "staging",
        {"orders": {"path": "/staging/orders", "bots": ["staging-runner"]}},
        mode,
    )
    teleport = {path for path in [*prod, *staging] if path.startswith("teleport/") and path.endswith(".yaml")}
    assert not {p for p in prod if p in teleport} & {p for p in staging if p in teleport}
    state = cluster.state()
    names = set(state["role"]) | set(state["workload_identity"])
    assert {"prod.bot.prod-runner", "staging.bot.staging-runner"} <= names
    assert all(not name.startswith("orders") for name in names)
    paths = ["/prod/orders", "/staging/orders"]
    assert obtainable(cluster, "bot", "prod-runner", paths) == {"/prod/orders"}
    assert obtainable(cluster, "bot", "staging-runner", paths) == {"/staging/orders"}
    for identity in state["workload_identity"].values():
        assert identity["metadata"]["labels"]["teleport-roles-anywhere/stack"] in ("prod", "staging")


@pytest.mark.parametrize("mode", MODES)
def test_finding_2_moving_a_workload_to_another_bot_revokes_the_old_one(tmp_path: Path, mode: str) -> None:
    cluster = FakeCluster(tmp_path)
    folder = tmp_path / "out"
    deploy(cluster, folder, "prod", {"orders": {"path": "/svc/orders", "bots": ["prod-old-ci"]}}, mode)
    assert obtainable(cluster, "bot", "prod-old-ci", ["/svc/orders"]) == {"/svc/orders"}
    files = deploy(
        cluster, folder, "prod", {"orders": {"path": "/svc/orders", "bots": ["prod-new-ci"]}}, mode
    )
    assert obtainable(cluster, "bot", "prod-new-ci", ["/svc/orders"]) == {"/svc/orders"}
    assert obtainable(cluster, "bot", "prod-old-ci", ["/svc/orders"]) == set()
    # old-ci still holds its (now empty) role: emptied, not taken away, so the bot keeps working.
    assert "prod.bot.prod-old-ci" in cluster.state()["bot"]["prod-old-ci"]["spec"]["roles"]
    assert cluster.state()["role"]["prod.bot.prod-old-ci"]["spec"] == {"allow": {}}
    assert json.loads(files["teleport/objects.json"])["retired"]["role"] == ["prod.bot.prod-old-ci"]


def test_finding_2_a_render_never_applied_loses_no_revocation(tmp_path: Path) -> None:
    """Render twice before applying: the second render still takes back what the first one dropped."""
    cluster = FakeCluster(tmp_path)
    folder = tmp_path / "out"
    mode = "workload-identity"
    deploy(cluster, folder, "prod", {"orders": {"path": "/svc/orders", "bots": ["prod-a"]}}, mode)
    render_to(folder, deployment_of("prod", {"orders": {"path": "/svc/orders", "bots": ["prod-b"]}}, mode))
    deploy(cluster, folder, "prod", {"reports": {"path": "/svc/reports", "bots": ["prod-c"]}}, mode)
    paths = ["/svc/orders", "/svc/reports"]
    assert obtainable(cluster, "bot", "prod-a", paths) == set()
    assert obtainable(cluster, "bot", "prod-c", paths) == {"/svc/reports"}
    assert "prod.orders" not in cluster.state()["workload_identity"]


def test_finding_3_a_wildcard_label_grant_is_not_enough(tmp_path: Path) -> None:
    """Every principal holds wildcard-workload-identity-issuer: only the rules' principals get the SVID."""
    cluster = FakeCluster(tmp_path)
    workloads = {
        "orders": {"path": "/svc/orders", "bots": ["prod-ci"], "users": ["alice"]},
        "idle": {"path": "/svc/idle"},
    }
    deploy(cluster, tmp_path / "out", "prod", workloads, "workload-identity")
    cluster.add_bot("prod-intruder")
    cluster.grant_user("mallory", [])
    cluster.grant_user("bot-prod-ci", [])  # a human named like the bot's user: the rules check user.is_bot
    paths = ["/svc/orders", "/svc/idle"]
    assert obtainable(cluster, "bot", "prod-ci", paths) == {"/svc/orders"}
    assert obtainable(cluster, "user", "alice", paths) == {"/svc/orders"}
    for kind, name in (("bot", "prod-intruder"), ("user", "mallory"), ("user", "bot-prod-ci")):
        assert obtainable(cluster, kind, name, paths) == set(), name
    idle = cluster.state()["workload_identity"]["prod.idle"]
    assert idle["spec"]["rules"]["allow"], "an empty allow list would issue to every label holder"


def test_finding_5_legacy_svids_get_a_subject_cn(tmp_path: Path) -> None:
    """Legacy issuance copies the first DNS SAN into the CN: tbot asks for one the role allows."""
    cluster = FakeCluster(tmp_path)
    files = deploy(
        cluster,
        tmp_path / "out",
        "prod",
        {"orders": {"path": "/svc/orders", "bots": ["prod-ci"], "users": ["alice"]}},
        "legacy",
    )
    output = yaml.safe_load(files["tbot/prod-ci.yaml"])["outputs"][0]
    requested = output["svid"]["sans"]["dns"]
    assert requested == ["orders"]  # the CN Teleport writes (SignX509SVIDs: CommonName = dnsSANs[0])
    model = cluster.model()
    assert can_obtain_legacy(model, cluster.principal("bot", "prod-ci"), output["svid"]["path"], requested)
    tsh = files["tsh/orders.sh"].splitlines()[-1]
    assert "--dns-san orders /svc/orders" in tsh
    assert can_obtain_legacy(model, cluster.principal("user", "alice"), "/svc/orders", ["orders"])


def apply_refused(cluster: FakeCluster, folder: Path, *args: str, fail: str = "") -> str:
    before = cluster.state()
    result = cluster.apply(folder, *args, fail=fail)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert cluster.state() == before, "a refusal must change nothing"
    return result.stderr


def test_apply_refuses_to_overwrite_another_stacks_object(tmp_path: Path) -> None:
    cluster = FakeCluster(tmp_path)
    cluster.add_bot("prod-ci")
    folder = tmp_path / "out"
    render_to(
        folder, deployment_of("prod", {"orders": {"path": "/svc/orders", "bots": ["prod-ci"]}}, MODES[0])
    )
    theirs = {
        "kind": "role",
        "version": "v7",
        "metadata": {"name": "prod.bot.prod-ci", "labels": {"teleport-roles-anywhere/stack": "other"}},
        "spec": {"allow": {}},
    }
    cluster.put("role", theirs)
    assert apply_refused(cluster, folder) == (
        "error: teleport/apply.sh: role/prod.bot.prod-ci exists but it belongs to stack 'other' "
        "(label teleport-roles-anywhere/stack); nothing was changed\n"
    )
    handmade = {"kind": "workload_identity", "version": "v1", "metadata": {"name": "prod.orders"}, "spec": {}}
    cluster.put("workload_identity", handmade)
    assert (
        "workload_identity/prod.orders exists but no teleport-roles-anywhere stack made it"
        in apply_refused(cluster, folder)
    )


def test_apply_never_echoes_a_hostile_label(tmp_path: Path) -> None:
    cluster = FakeCluster(tmp_path)
    cluster.add_bot("prod-ci")
    folder = tmp_path / "out"
    render_to(
        folder, deployment_of("prod", {"orders": {"path": "/svc/orders", "bots": ["prod-ci"]}}, MODES[0])
    )
    label = {"teleport-roles-anywhere/stack": "\x1b]0;pwned\x07prod"}
    cluster.put("role", {"kind": "role", "metadata": {"name": "prod.bot.prod-ci", "labels": label}})
    message = apply_refused(cluster, folder)
    assert "belongs to stack '?]0;pwned?prod'" in message
    assert "\x1b" not in message
    assert "\x07" not in message


def test_apply_refuses_a_missing_bot_before_changing_anything(tmp_path: Path) -> None:
    cluster = FakeCluster(tmp_path)
    folder = tmp_path / "out"
    render_to(
        folder, deployment_of("prod", {"orders": {"path": "/svc/orders", "bots": ["prod-ci"]}}, MODES[0])
    )
    assert apply_refused(cluster, folder) == (
        "error: teleport/apply.sh: bot prod-ci does not exist; create it with: "
        "tctl bots add prod-ci --roles=prod.bot.prod-ci (nothing was changed)\n"
    )


def test_apply_twice_changes_nothing_more(tmp_path: Path) -> None:
    cluster = FakeCluster(tmp_path)
    folder = tmp_path / "out"
    workloads = {"orders": {"path": "/svc/orders", "bots": ["prod-ci"], "users": ["alice"]}}
    deploy(cluster, folder, "prod", workloads, MODES[0])
    first = {k: v for k, v in cluster.state().items() if k != "log"}
    deploy(cluster, folder, "prod", workloads, MODES[0])
    assert {k: v for k, v in cluster.state().items() if k != "log"} == first


STACKS = ("prod", "staging")
WORKLOADS = ("orders", "reports")
USERS = ("alice", "bob", "bot-prod-ci")


@st.composite
def stack_configs(draw: st.DrawFn, namespace: str) -> tuple[str, dict[str, dict[str, Any]], bool]:
    """One stack's config: a mode, workloads (shared names across stacks) with bots and users, and
    whether it is rendered into a fresh folder (no record of earlier renders, as in a CI checkout)."""
    bots = [f"{namespace}-ci", f"{namespace}-deploy"]
    workloads = {
        name: {
            "path": f"/{namespace}/{name}",
            "bots": draw(st.lists(st.sampled_from(bots), unique=True, max_size=2)),
            "users": draw(st.lists(st.sampled_from(USERS), unique=True, max_size=2)),
        }
        for name in draw(st.lists(st.sampled_from(WORKLOADS), unique=True, min_size=1))
    }
    return draw(st.sampled_from(MODES)), workloads, draw(st.booleans())


@settings(max_examples=8, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=st.lists(st.tuples(*(stack_configs(ns) for ns in STACKS)), min_size=1, max_size=3))
def test_a_principal_obtains_an_svid_iff_the_current_config_names_it(
    tmp_path_factory: pytest.TempPathFactory,
    steps: list[tuple[tuple[str, dict[str, dict[str, Any]], bool], ...]],
) -> None:
    """Several stacks, shared workload names, principals moving and leaving, modes switching, fresh
    folders: after each apply, exactly the (principal, SPIFFE ID) pairs the current configs name are
    obtainable."""
    root = tmp_path_factory.mktemp("cluster")
    cluster = FakeCluster(root)
    universe_paths = [f"/{ns}/{w}" for ns, w in itertools.product(STACKS, WORKLOADS)]
    principals = [("bot", f"{ns}-{b}") for ns in STACKS for b in ("ci", "deploy")] + [
        ("user", user) for user in USERS
    ]
    for bot in (name for kind, name in principals if kind == "bot"):
        cluster.add_bot(bot)
    for index, step in enumerate(steps):
        expected: set[tuple[str, str, str]] = set()
        for namespace, (mode, workloads, fresh) in zip(STACKS, step, strict=True):
            deploy(cluster, root / f"{namespace}-{index if fresh else 'kept'}", namespace, workloads, mode)
            for workload in workloads.values():
                expected |= {("bot", bot, workload["path"]) for bot in workload["bots"]}
                expected |= {("user", user, workload["path"]) for user in workload["users"]}
        for kind, name in principals:
            got = obtainable(cluster, kind, name, universe_paths)
            assert got == {path for k, n, path in expected if (k, n) == (kind, name)}, (kind, name, step)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def cli_stack(tmp_path: Path, stack: str = "prod", **project: Any) -> Path:
    defaults = {"cluster": "example.teleport.sh", "workloads": {"api": {"spiffeId": "/svc/api"}}}
    return write_stack(tmp_path, stack_config(**(defaults | project)), stack=stack)


@pytest.mark.parametrize(
    ("project", "stack", "line"),
    [
        (
            {"teleport": {"namespace": "a" * 33}},
            "prod",
            f"error: teleport.namespace: {'a' * 33!r} is not a namespace: use 1-32 lowercase letters, "
            "digits and '-', starting and ending with a letter or digit",
        ),
        (
            {"teleport": {"namespace": "prod.eu"}},
            "prod",
            "error: teleport.namespace: 'prod.eu' is not a namespace: use 1-32 lowercase letters, digits "
            "and '-', starting and ending with a letter or digit",
        ),
        (
            {},
            "Prod_EU",
            "error: teleport.namespace: is not set, and the stack name 'Prod_EU' gives no valid one "
            "('Prod_EU' is not a namespace: use 1-32 lowercase letters, digits and '-', starting and "
            "ending with a letter or digit); set it",
        ),
        (
            {"namePrefix": "x" * 33 + "-"},
            "prod",
            "error: namePrefix: must be at most 32 lowercase letters, digits, '-' or '_'",
        ),
        (
            {"workloads": {"api": {"spiffeId": "/svc/api", "bots": ["staging-runner"]}}},
            "prod",
            "error: workloads.api.bots: bot 'staging-runner' is outside this stack's Teleport namespace "
            "'prod': name it 'prod-…' (a bot serves one stack: its role and tbot config come from one stack)",
        ),
        (
            {
                "workloads": {
                    "admin": {"spiffeId": "/svc/reports"},
                    "reader": {"spiffeId": "spiffe://example.teleport.sh/svc/reports"},
                }
            },
            "prod",
            "error: workloads.reader.spiffeId: resolves to spiffe://example.teleport.sh/svc/reports, the "
            "SPIFFE ID of workload 'admin' too; each workload needs its own (one SVID would assume both "
            "AWS roles)",
        ),
        (
            {"workloads": {"api": {"spiffeId": "/svc/api", "users": ["u" * 250]}}},
            "prod",
            f"error: workloads.api.users: user {'u' * 40!r}… makes the Teleport role name 260 characters "
            "long; at most 253",
        ),
        (
            {"workloads": {"api": {"spiffeId": "/svc/api", "users": ["alice,bob"]}}},
            "prod",
            "error: workloads.api.users: 'alice,bob' is not a Teleport user name: use 1-255 printable "
            "characters without whitespace, '/' or ','",
        ),
    ],
)
def test_bad_teleport_input_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], project: dict[str, Any], stack: str, line: str
) -> None:
    code, out, err = cli(capsys, "plan", "--config", str(cli_stack(tmp_path, stack, **project)))
    assert (code, out) == (2, "")
    assert err == line + "\n"


def test_the_namespace_comes_from_the_key_then_name_prefix_then_stack(tmp_path: Path) -> None:
    def namespace(stack: str, **project: Any) -> str:
        return plan_stack_file(cli_stack(tmp_path, stack, **project)).outputs["teleport"]["namespace"]

    assert namespace("prod") == "prod"
    assert namespace("prod", namePrefix="team-a-") == "team-a"
    assert namespace("prod", namePrefix="team-a-", teleport={"namespace": "payments"}) == "payments"


def test_duplicate_spiffe_ids_in_stack_outputs_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = stack_outputs(
        "prod", {"admin": {"path": "/svc/reports"}, "reader": {"path": "/svc/x"}}, MODES[0]
    )
    outputs["workloads"]["reader"]["spiffeId"] = outputs["workloads"]["admin"]["spiffeId"]
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))
    code, _, err = cli(capsys, "render", "--stack-outputs", str(path), "--out", str(tmp_path / "out"))
    assert code == 2
    assert err.startswith(f"error: {path}: workloads.reader.spiffeId: resolves to spiffe://acme.teleport.sh/")
    assert not (tmp_path / "out").exists()


def test_plan_lists_who_can_obtain_which_aws_role(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    workloads = {
        "orders": {"spiffeId": "/svc/orders", "bots": ["prod-ci"], "users": ["alice"]},
        "idle": {"spiffeId": "/svc/idle"},
    }
    path = cli_stack(tmp_path, workloads=workloads)
    code, out, err = cli(capsys, "plan", "--config", str(path))
    assert code == 0
    assert err == (
        "warning: workloads.idle: names no bot and no user, so Teleport issues its SVID to nobody and its "
        "AWS role cannot be used; add bots or users to grant it\n"
    )
    section = out[out.index("Who can obtain") : out.index("Stack outputs:")].strip().splitlines()
    assert section == [
        "Who can obtain which AWS role (Teleport namespace 'prod'; bound by WorkloadIdentity rules and role "
        "labels):",
        "  idle: spiffe://example.teleport.sh/svc/idle -> arn:aws:iam::123456789012:role/idle",
        "      nobody: the config names no bot and no user",
        "  orders: spiffe://example.teleport.sh/svc/orders -> arn:aws:iam::123456789012:role/orders",
        "      bot prod-ci (Teleport role prod.bot.prod-ci)",
        "      user alice (Teleport role prod.user.alice)",
    ]
    code, out, _ = cli(capsys, "plan", "--config", str(path), "--json")
    access = json.loads(out)["access"]
    assert access[1] == {
        "workload": "orders",
        "spiffeId": "spiffe://example.teleport.sh/svc/orders",
        "roleArn": "arn:aws:iam::123456789012:role/orders",
        "workloadIdentity": "prod.orders",
        "principals": [
            {"kind": "bot", "name": "prod-ci", "teleportRole": "prod.bot.prod-ci"},
            {"kind": "user", "name": "alice", "teleportRole": "prod.user.alice"},
        ],
    }
    assert access[0]["principals"] == []
    readme = render_artifacts(load_deployment(plan_stack_file(path).outputs, source="plan"))["README.md"]
    assert (
        "| `orders` | `spiffe://example.teleport.sh/svc/orders` | `prod.orders` | `prod-ci` | `alice` |"
        in readme
    )
    assert "**`idle`** is issued to nobody" in readme or "**`idle` is issued to nobody**" in readme


def test_every_teleport_resource_validates_including_retired_and_unissued(tmp_path: Path) -> None:
    """What apply.sh leaves in the cluster: rendered resources, and the emptied role it writes itself."""
    cluster = FakeCluster(tmp_path)
    folder = tmp_path / "out"
    workloads = {"orders": {"path": "/svc/orders", "bots": ["prod-ci"]}, "idle": {"path": "/svc/idle"}}
    deploy(cluster, folder, "prod", workloads, MODES[0])
    deploy(cluster, folder, "prod", {"idle": {"path": "/svc/idle"}}, MODES[0])
    state = cluster.state()
    assert state["role"]["prod.bot.prod-ci"]["spec"] == {"allow": {}}  # the bot still holds it: emptied
    resources = [*state["workload_identity"].values(), state["role"]["prod.bot.prod-ci"]]
    assert sorted(r["metadata"]["name"] for r in resources) == ["prod.bot.prod-ci", "prod.idle"]
    for resource in resources:
        assert spec_errors(resource) == [], resource["metadata"]["name"]


def planted_ledger(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "out"
    render_to(folder, deployment_of("prod", {"orders": {"path": "/svc/orders"}}, MODES[0]))
    (folder / "teleport" / "objects.json").write_text(text)
    return folder


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not a record this project wrote (not JSON)"),
        (
            json.dumps({"stack": "staging", "current": {}, "retired": {}}),
            "records the Teleport objects of stack 'staging', not 'prod'",
        ),
        (
            json.dumps({"stack": "prod", "current": {"role": ["staging.bot.x"]}, "retired": {}}),
            "'staging.bot.x' is outside the namespace 'prod'",
        ),
        (
            json.dumps({"stack": "prod", "current": {}, "retired": {"role": ["prod.x; rm -rf /"]}}),
            "not a record this project wrote",
        ),
    ],
)
def test_a_planted_or_foreign_record_is_refused(tmp_path: Path, text: str, message: str) -> None:
    folder = planted_ledger(tmp_path, text)
    with pytest.raises(OutputFolderError, match=re.escape(message)):
        render_to(folder, deployment_of("prod", {"orders": {"path": "/svc/orders"}}, MODES[0]))


def test_a_record_that_is_a_link_or_a_fifo_is_refused(tmp_path: Path) -> None:
    folder = planted_ledger(tmp_path, "{}")
    ledger = folder / "teleport" / "objects.json"
    ledger.unlink()
    (tmp_path / "elsewhere.json").write_text(json.dumps({"stack": "prod", "current": {}, "retired": {}}))
    ledger.symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(OutputFolderError, match="a link is never followed"):
        render_to(folder, deployment_of("prod", {"orders": {"path": "/svc/orders"}}, MODES[0]))
    ledger.unlink()
    os.mkfifo(ledger)
    with pytest.raises(OutputFolderError, match="not a regular file"):
        render_to(folder, deployment_of("prod", {"orders": {"path": "/svc/orders"}}, MODES[0]))


@pytest.mark.parametrize("mode", MODES)
def test_another_stack_issuing_the_same_spiffe_id_is_refused(tmp_path: Path, mode: str) -> None:
    """Staging's bot must not become prod's AWS role because both stacks chose /svc/orders."""
    cluster = FakeCluster(tmp_path)
    deploy(cluster, tmp_path / "prod", "prod", orders_by("prod-ci"), mode)
    cluster.add_bot("staging-ci")
    folder = tmp_path / "staging"
    render_to(
        folder, deployment_of("staging", {"orders": {"path": "/svc/orders", "bots": ["staging-ci"]}}, mode)
    )
    message = apply_refused(cluster, folder)
    ref = "role/prod.bot.prod-ci" if mode == "legacy" else "workload_identity/prod.orders"
    assert message.startswith(
        f"error: teleport/apply.sh: {ref} can also issue the SPIFFE ID path /svc/orders of this stack "
        "(it belongs to stack 'prod' (label teleport-roles-anywhere/stack))"
    )
    assert obtainable(cluster, "bot", "staging-ci", ["/svc/orders"]) == set()


def test_a_templated_or_globbed_issuer_of_our_path_is_refused(tmp_path: Path) -> None:
    cluster = FakeCluster(tmp_path)
    cluster.add_bot("prod-ci")
    folder = tmp_path / "out"
    render_to(folder, deployment_of("prod", ORDERS_BY_CI, MODES[0]))
    templated = {
        "kind": "workload_identity",
        "version": "v1",
        "metadata": {"name": "per-bot"},
        "spec": {"spiffe": {"id": "/svc/{{ user.bot_name }}"}},
    }
    cluster.put("workload_identity", templated)
    assert "workload_identity/per-bot can also issue the SPIFFE ID path /svc/orders" in apply_refused(
        cluster, folder
    )
    cluster.put("workload_identity", {**templated, "spec": {"spiffe": {"id": "/other/{{ user.name }}"}}})
    legacy = {
        "kind": "role",
        "version": "v7",
        "metadata": {"name": "old"},
        "spec": {"allow": {"spiffe": [{"path": "/*"}]}},
    }
    cluster.put("role", legacy)
    assert "role/old can also issue the SPIFFE ID path /svc/orders" in apply_refused(cluster, folder)
    cluster.put("role", {**legacy, "spec": {"allow": {"spiffe": [{"path": "/svc/orders-*"}]}}})
    assert cluster.apply(folder).returncode == 0


def test_objects_from_before_namespaces_are_found_not_left_live(tmp_path: Path) -> None:
    """An upgrade: the previous release's WorkloadIdentity `orders` (no rules) still issues /svc/orders."""
    cluster = FakeCluster(tmp_path)
    cluster.add_bot("prod-ci")
    old = {
        "kind": "workload_identity",
        "version": "v1",
        "metadata": {"name": "orders", "labels": {"teleport-roles-anywhere/workload": "orders"}},
        "spec": {"spiffe": {"id": "/svc/orders"}},
    }
    cluster.put("workload_identity", old)
    folder = tmp_path / "out"
    render_to(folder, deployment_of("prod", ORDERS_BY_CI, MODES[0]))
    assert apply_refused(cluster, folder).startswith(
        "error: teleport/apply.sh: workload_identity/orders can also issue the SPIFFE ID path /svc/orders "
        "of this stack (no teleport-roles-anywhere stack made it"
    )


def test_a_second_stack_with_the_same_namespace_is_refused(tmp_path: Path) -> None:
    """Two stacks both called `prod` (one namePrefix in two accounts): told apart by their trust anchors."""
    cluster = FakeCluster(tmp_path)
    deploy(cluster, tmp_path / "a", "prod", ORDERS_BY_CI, MODES[0])
    outputs = stack_outputs("prod", {"reports": {"path": "/svc/reports", "bots": ["prod-ci"]}}, MODES[0])
    outputs["trustAnchorArn"] = outputs["trustAnchorArn"].replace("0b5c5a2e", "99999999")
    folder = tmp_path / "b"
    render_to(folder, load_deployment(outputs, source="test"))
    message = apply_refused(cluster, folder)
    assert "exists but another stack with the namespace 'prod' made it (trust anchor" in message
    assert "give each stack its own teleport.namespace, or pass --take-over" in message
    result = cluster.apply(folder, "--take-over")  # after a deliberate trust anchor replacement
    assert result.returncode == 0, result.stderr
    assert obtainable(cluster, "bot", "prod-ci", ["/svc/orders", "/svc/reports"]) == {"/svc/reports"}


def test_a_bot_serving_another_stack_is_refused(tmp_path: Path) -> None:
    """Namespaces `prod` and `prod-eu` both accept bot `prod-eu-ci`: the cluster shows it serves one."""
    cluster = FakeCluster(tmp_path)
    deploy(cluster, tmp_path / "eu", "prod-eu", {"a": {"path": "/eu/a", "bots": ["prod-eu-ci"]}}, MODES[0])
    folder = tmp_path / "prod"
    render_to(folder, deployment_of("prod", {"b": {"path": "/prod/b", "bots": ["prod-eu-ci"]}}, MODES[0]))
    assert apply_refused(cluster, folder) == (
        "error: teleport/apply.sh: bot prod-eu-ci also holds role prod-eu.bot.prod-eu-ci, and it belongs "
        "to stack 'prod-eu' (label teleport-roles-anywhere/stack); a bot serves one stack (nothing was "
        "changed)\n"
    )


@pytest.mark.parametrize("failing", ["roles", "bots", "workload_identity"])
def test_an_unreadable_cluster_changes_nothing(tmp_path: Path, failing: str) -> None:
    cluster = FakeCluster(tmp_path)
    cluster.add_bot("prod-ci")
    folder = tmp_path / "out"
    render_to(folder, deployment_of("prod", ORDERS_BY_CI, MODES[0]))
    assert apply_refused(cluster, folder, fail=failing) == (
        f"error: teleport/apply.sh: `tctl get {failing}` failed: ERROR: connection reset by peer\n"
    )


@pytest.mark.parametrize("mode", MODES)
def test_a_fresh_folder_still_takes_back_what_the_cluster_says_this_stack_granted(
    tmp_path: Path, mode: str
) -> None:
    """CI renders into a clean checkout: the cluster labels, not only the record, say what to take back."""
    cluster = FakeCluster(tmp_path)
    deploy(
        cluster, tmp_path / "first", "prod", {"orders": {"path": "/svc/orders", "bots": ["prod-old"]}}, mode
    )
    deploy(
        cluster, tmp_path / "fresh", "prod", {"orders": {"path": "/svc/orders", "bots": ["prod-new"]}}, mode
    )
    assert obtainable(cluster, "bot", "prod-old", ["/svc/orders"]) == set()
    assert obtainable(cluster, "bot", "prod-new", ["/svc/orders"]) == {"/svc/orders"}


def test_a_retired_role_nobody_holds_is_deleted(tmp_path: Path) -> None:
    cluster = FakeCluster(tmp_path)
    folder = tmp_path / "out"
    deploy(cluster, folder, "prod", {"orders": {"path": "/svc/orders", "bots": ["prod-ci"]}}, MODES[0])
    state = cluster.state()
    state["bot"]["prod-ci"]["spec"]["roles"].remove("prod.bot.prod-ci")  # an admin took it away
    cluster.state_file.write_text(json.dumps(state))
    deploy(cluster, folder, "prod", {"orders": {"path": "/svc/orders"}}, MODES[0])
    assert "prod.bot.prod-ci" not in cluster.state()["role"]


def test_user_names_no_file_can_tell_apart_are_refused(tmp_path: Path) -> None:
    from roles_anywhere.render.quoting import RenderError  # noqa: PLC0415

    workloads = {"orders": {"path": "/svc/orders", "users": ["Alice", "alice"]}}
    with pytest.raises(RenderError, match="would be the same file"):
        render_to(tmp_path / "out", deployment_of("prod", workloads, MODES[0]))


def test_quoted_user_names_render_again_and_again(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    for users in (["o'brien", 'say"hi', "back\\slash"], ["o'brien"]):
        files = render_to(folder, deployment_of("prod", {"orders": {"path": "/o", "users": users}}, MODES[0]))
    assert json.loads(files["teleport/objects.json"])["retired"]["role"] == [
        "prod.user.back\\slash",
        'prod.user.say"hi',
    ]


def test_a_manifest_that_is_a_fifo_is_refused_not_waited_on(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    os.mkfifo(folder / ".roles-anywhere-files")
    with pytest.raises(OutputFolderError, match="not a regular file"):
        render_to(folder, deployment_of("prod", ORDERS_BY_CI, MODES[0]))


@pytest.mark.parametrize(
    ("kind", "issuer"),
    [
        ("role", {"allow": {"spiffe": [{"path": "^/nope|rders$"}]}}),  # Go searches; never run, feared
        ("role", {"allow": {"spiffe": [{"path": "^/svc/[[:alpha:]]+$"}]}}),
        ("role", {"allow": {"spiffe": [{"path": "^(/?[a-z]*)*Z$"}]}}),  # would backtrack for ever
        ("role", {"allow": {"spiffe": [{"path": "/s*c/*"}]}}),
        ("workload_identity", {"spiffe": {"id": "/svc/ord{{ }}ers"}}),  # renders to nothing
        ("workload_identity", {"spiffe": {"id": "/svc/{{\nuser.bot_name\n}}"}}),
        ("workload_identity", {"spiffe": {"id": "/" + "{{ user.name }}" * 25 + "s"}}),
    ],
)
def test_every_way_another_object_could_issue_our_id_is_refused(
    tmp_path: Path, kind: str, issuer: dict[str, Any]
) -> None:
    cluster = FakeCluster(tmp_path)
    cluster.add_bot("prod-ci")
    folder = tmp_path / "out"
    render_to(folder, deployment_of("prod", ORDERS_BY_CI, MODES[0]))
    cluster.put(kind, {"kind": kind, "version": "v1", "metadata": {"name": "theirs"}, "spec": issuer})
    assert f"{kind}/theirs can also issue the SPIFFE ID path /svc/orders" in apply_refused(cluster, folder)


@settings(max_examples=300)
@given(
    pieces=st.lists(st.text("ab/", max_size=3), min_size=1, max_size=4),
    path=st.text("ab/", max_size=8),
)
def test_pieces_match_equals_a_glob_regex(pieces: list[str], path: str) -> None:
    """The linear matcher apply.py uses agrees with a plain regular expression where gaps are `.*`."""
    from roles_anywhere.teleport.apply import pieces_match  # noqa: PLC0415

    reference = re.fullmatch(".*".join(re.escape(p) for p in pieces), path, flags=re.DOTALL)
    assert pieces_match(pieces, path) == (reference is not None)


def test_legacy_needs_the_workload_identity_listing_unless_told_the_cluster_has_none(tmp_path: Path) -> None:
    """A failing listing must not skip deleting this stack's WorkloadIdentities after a switch to legacy."""
    cluster = FakeCluster(tmp_path)
    folder = tmp_path / "out"
    deploy(cluster, folder, "prod", orders_by("prod-old"), "workload-identity")
    render_to(folder, deployment_of("prod", orders_by("prod-new"), "legacy"))
    cluster.add_bot("prod-new")
    assert "`tctl get workload_identity` failed" in apply_refused(cluster, folder, fail="workload_identity")
    message = apply_refused(cluster, folder, "--no-workload-identities", fail="workload_identity")
    assert message == (
        "error: teleport/apply.sh: --no-workload-identities: objects.json records WorkloadIdentities to "
        "delete\n"
    )
    assert cluster.apply(folder).returncode == 0
    assert obtainable(cluster, "bot", "prod-old", ["/svc/orders"]) == set()
    fresh = FakeCluster(tmp_path / "old-cluster")  # a 15.x/16.x cluster: no WorkloadIdentity kind at all
    fresh.add_bot("prod-new")
    render_to(tmp_path / "legacy", deployment_of("prod", orders_by("prod-new"), "legacy"))
    result = fresh.apply(tmp_path / "legacy", "--no-workload-identities", fail="workload_identity")
    assert result.returncode == 0, result.stderr


def without_workload_identities(cluster: FakeCluster) -> None:
    """The cluster (or the admin's tctl) predates the kind: listing and creating it fail (see fake_tctl)."""
    state = cluster.state()
    state["unsupported"] = ["workload_identity"]
    cluster.state_file.write_text(json.dumps(state))


def switched_to_legacy_in_a_fresh_folder(tmp_path: Path) -> tuple[FakeCluster, Path]:
    """Issue 22: prod-old held orders' SVID through a WorkloadIdentity; the config now names prod-new, in
    legacy mode, rendered into a fresh folder (a CI checkout), so no record lists the WorkloadIdentity."""
    cluster = FakeCluster(tmp_path)
    deploy(cluster, tmp_path / "before", "prod", orders_by("prod-old"), "workload-identity")
    assert obtainable(cluster, "bot", "prod-old", ["/svc/orders"]) == {"/svc/orders"}
    cluster.add_bot("prod-new")
    folder = tmp_path / "fresh"
    render_to(folder, deployment_of("prod", orders_by("prod-new"), "legacy"))
    return cluster, folder


def test_no_workload_identities_is_refused_where_the_cluster_lists_them(tmp_path: Path) -> None:
    """With the flag the WorkloadIdentity would stay live and prod-old (wildcard preset) keep the SVID."""
    cluster, folder = switched_to_legacy_in_a_fresh_folder(tmp_path)
    assert apply_refused(cluster, folder, "--no-workload-identities") == (
        "error: teleport/apply.sh: --no-workload-identities: this cluster lists WorkloadIdentities "
        "(`tctl get workload_identity` works), so they are checked and this stack's taken back: run "
        "apply.sh without it (nothing was changed)\n"
    )
    result = cluster.apply(folder)
    assert result.returncode == 0, result.stderr
    assert "prod.orders" not in cluster.state()["workload_identity"]
    assert obtainable(cluster, "bot", "prod-old", ["/svc/orders"]) == set()
    assert can_obtain_legacy(cluster.model(), cluster.principal("bot", "prod-new"), "/svc/orders", ["orders"])


@pytest.mark.parametrize(
    ("break_listing", "error"),
    [
        ("failing", "ERROR: connection reset by peer"),
        ("old tctl", 'ERROR: getting "workload_identity" is not supported'),
    ],
)
def test_no_workload_identities_is_refused_while_a_role_of_the_namespace_grants_them(
    tmp_path: Path, break_listing: str, error: str
) -> None:
    """The listing fails, but prod's roles still select WorkloadIdentities: some may be live."""
    cluster, folder = switched_to_legacy_in_a_fresh_folder(tmp_path)
    fail = "workload_identity" if break_listing == "failing" else ""
    if break_listing == "old tctl":
        without_workload_identities(cluster)
    assert apply_refused(cluster, folder, "--no-workload-identities", fail=fail) == (
        "error: teleport/apply.sh: --no-workload-identities: role/prod.bot.prod-old of namespace 'prod' "
        "grants WorkloadIdentities, so this stack's may be live, but `tctl get workload_identity` failed "
        f"({error}); use a tctl that lists them (Teleport >= 17.2.7, read on workload_identity) and run "
        "apply.sh without the flag (nothing was changed)\n"
    )
    assert obtainable(cluster, "bot", "prod-old", ["/svc/orders"]) == {"/svc/orders"}  # still: refused


def test_no_workload_identities_on_a_cluster_without_them_applies_again_and_revokes(tmp_path: Path) -> None:
    """What the flag is for: a legacy stack on a cluster without the kind, applied again and again from
    fresh folders (its own legacy roles, and other namespaces' roles, do not count against it)."""
    cluster = FakeCluster(tmp_path)
    without_workload_identities(cluster)
    for bot in ("prod-a", "prod-b", "staging-ci"):
        cluster.add_bot(bot)
    cluster.put(
        "role",
        {
            "kind": "role",
            "version": "v7",
            "metadata": {
                "name": "staging.bot.staging-ci",
                "labels": {"teleport-roles-anywhere/stack": "staging"},
            },
            "spec": {"allow": {"workload_identity_labels": {"*": ["*"]}}},
        },
    )
    both = {"orders": {"path": "/svc/orders", "bots": ["prod-a", "prod-b"]}}
    for index, workloads in enumerate((both, both, orders_by("prod-a"))):
        folder = tmp_path / f"fresh-{index}"
        render_to(folder, deployment_of("prod", workloads, "legacy"))
        result = cluster.apply(folder, "--no-workload-identities")
        assert result.returncode == 0, result.stderr
    model = cluster.model()
    assert can_obtain_legacy(model, cluster.principal("bot", "prod-a"), "/svc/orders", ["orders"])
    assert not can_obtain_legacy(model, cluster.principal("bot", "prod-b"), "/svc/orders", ["orders"])
    assert cluster.state()["role"]["prod.bot.prod-b"]["spec"] == {"allow": {}}  # emptied: prod-b holds it
    assert cluster.apply(folder).returncode == 2  # without the flag the listing is required, and fails


@pytest.mark.parametrize(
    ("kind", "name", "role"),
    [("bot", "prod-intruder", "prod.bot.prod-ci"), ("user", "mallory", "prod.user.alice")],
)
def test_legacy_roles_held_by_anyone_else_are_refused(
    tmp_path: Path, kind: str, name: str, role: str
) -> None:
    """Legacy roles cannot name who holds them: a role of the stack held by another principal is refused."""
    cluster = FakeCluster(tmp_path)
    folder = tmp_path / "out"
    workloads = {"orders": {"path": "/svc/orders", "bots": ["prod-ci"], "users": ["alice"]}}
    deploy(cluster, folder, "prod", workloads, "legacy")
    if kind == "bot":
        cluster.add_bot(name, [role])
    else:
        cluster.grant_user(name, [role])
    assert apply_refused(cluster, folder) == (
        f"error: teleport/apply.sh: {kind} {name} holds role {role}, which is not its own; in legacy mode a "
        "role of this stack issues its SPIFFE IDs to whoever holds it: take it away (nothing was changed)\n"
    )


def hostile_plan(tmp_path: Path, change: Any) -> tuple[FakeCluster, Path]:
    cluster = FakeCluster(tmp_path)
    cluster.add_bot("prod-ci")
    folder = tmp_path / "out"
    render_to(folder, deployment_of("prod", ORDERS_BY_CI, MODES[0]))
    ledger = folder / "teleport" / "objects.json"
    change(ledger)
    return cluster, folder


def edit_plan(**changes: Any) -> Any:
    """Set keys of objects.json; a key is a path whose parts are separated by `|`."""

    def change(ledger: Path) -> None:
        document = json.loads(ledger.read_text())
        for key, value in changes.items():
            *parents, last = key.split("|")
            node = document
            for part in parents:
                node = node[part]
            node[last] = value
        ledger.write_text(json.dumps(document))

    return change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            edit_plan(**{"files|role/prod.bot.prod-ci": "/etc/passwd"}),
            "objects.json: files holds '/etc/passwd', not a file render writes",
        ),
        (
            edit_plan(**{"current|role": ["editor"], "bots": {}, "files": {}}),
            "objects.json: current.role holds 'editor', not a name of stack prod",
        ),
        (edit_plan(**{"retired|role": [1]}), "objects.json: role must be a list of text"),
        (edit_plan(bots={"prod-ci": "editor"}), "objects.json: bots gives prod-ci a role render never made"),
        (lambda ledger: ledger.write_text("[" * 100_000), "objects.json: not JSON; render again"),
        (
            lambda ledger: (ledger.unlink(), os.mkfifo(ledger)),
            "objects.json: not a regular file",
        ),
    ],
)
def test_a_hostile_objects_json_is_refused_in_one_line(tmp_path: Path, change: Any, message: str) -> None:
    cluster, folder = hostile_plan(tmp_path, change)
    assert apply_refused(cluster, folder) == f"error: teleport/apply.sh: {message}\n"


def test_a_resource_file_that_declares_another_object_is_refused(tmp_path: Path) -> None:
    cluster = FakeCluster(tmp_path)
    cluster.add_bot("prod-ci")
    folder = tmp_path / "out"
    render_to(folder, deployment_of("prod", ORDERS_BY_CI, MODES[0]))
    role_file = folder / "teleport" / "role-prod.bot.prod-ci.yaml"
    role_file.write_text(role_file.read_text().replace('name: "prod.bot.prod-ci"', 'name: "editor"'))
    assert apply_refused(cluster, folder) == (
        "error: teleport/apply.sh: role-prod.bot.prod-ci.yaml does not declare role/prod.bot.prod-ci as "
        "render wrote it; render again\n"
    )
    role_file.write_text(
        role_file.read_text().replace('name: "editor"', 'name: "prod.bot.prod-ci"') + "---\nkind: role\n"
    )
    assert "does not declare role/prod.bot.prod-ci" in apply_refused(cluster, folder)


def test_names_from_the_cluster_are_printed_without_escapes(tmp_path: Path) -> None:
    cluster = FakeCluster(tmp_path)
    folder = tmp_path / "out"
    deploy(cluster, folder, "prod", ORDERS_BY_CI, MODES[0])
    ours = cluster.state()["workload_identity"]["prod.orders"]
    planted = json.loads(json.dumps(ours))
    planted["metadata"]["name"] = "prod.\x1b]0;pwned\x07"
    cluster.put("workload_identity", planted)
    result = cluster.apply(folder)
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout
    assert "workload_identity/prod.?]0;pwned?: deleted" in result.stdout
