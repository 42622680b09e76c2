"""How long apply.py's checks take on a large cluster, against only parsing tctl's JSON.

For N workloads the script renders one stack (one bot per 10 workloads, one user each) and builds a
cluster that already holds another stack of N workloads (its WorkloadIdentities, one templated per 100,
and its roles, some with legacy spec.allow.spiffe globs). It then times, in one process:
`checks` = apply.py's listings and every check (ownership, other issuers of our SPIFFE IDs, bots),
with tctl answered from memory; `parse` = only json.loads of the same listings (the baseline).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from roles_anywhere.render.artifacts import render_artifacts
from roles_anywhere.stack.deployment import load_deployment
from roles_anywhere.teleport import apply as teleport_apply
from tests.teleport_cluster import stack_outputs


def other_stack(count: int) -> dict[str, list[dict[str, Any]]]:
    labels = {teleport_apply.STACK_LABEL: "other", teleport_apply.ANCHOR_LABEL: "arn:other"}
    templated = "/other/{{ user.bot_name }}/"
    identities = [
        {
            "kind": "workload_identity",
            "metadata": {"name": f"other.w{i}", "labels": labels},
            "spec": {"spiffe": {"id": f"{templated}{i}" if i % 100 == 0 else f"/other/w{i}"}},
        }
        for i in range(count)
    ]
    roles = [
        {
            "kind": "role",
            "metadata": {"name": f"other.role{i}", "labels": labels},
            "spec": {"allow": {"spiffe": [{"path": f"/other/w{i}/*" if i % 10 == 0 else f"/other/w{i}"}]}},
        }
        for i in range(count)
    ]
    return {"workload_identity": identities, "roles": roles}


def main() -> None:
    print(f"# apply_scale  python {sys.version.split()[0]}")
    print(f"{'workloads':>10} {'checks s':>10} {'parse s':>10} {'ratio':>8}")
    for count in (100, 1_000, 5_000):
        workloads = {
            f"w{i}": {"path": f"/prod/w{i}", "bots": [f"prod-bot{i // 10}"], "users": [f"user{i}"]}
            for i in range(count)
        }
        files = render_artifacts(
            load_deployment(stack_outputs("prod", workloads, "workload-identity"), source="b")
        )
        plan = json.loads(files["teleport/objects.json"])
        cluster = other_stack(count)
        cluster["bots"] = [
            {"kind": "bot", "metadata": {"name": bot}, "spec": {"roles": [role]}}
            for bot, role in plan["bots"].items()
        ]
        answers = {kind: json.dumps(items) for kind, items in cluster.items()}

        def fake_tctl(*args: str, answers: dict[str, str] = answers) -> str:
            return answers[args[1]]

        teleport_apply.tctl_read = fake_tctl  # type: ignore[assignment]
        with tempfile.TemporaryDirectory() as folder:
            applier = teleport_apply.Applier(
                Path(folder), teleport_apply.Plan(plan), take_over=False, no_workload_identities=False
            )
            start = time.perf_counter()
            listed = {"role": teleport_apply.listing("roles"), "bot": teleport_apply.listing("bots")}
            listed["workload_identity"] = teleport_apply.listing("workload_identity")
            retired = applier._retired(listed)
            applier._check_ownership(listed, retired)
            applier._check_other_issuers(listed, retired)
            applier._check_bots(listed)
            checks = time.perf_counter() - start
        start = time.perf_counter()
        for text in answers.values():
            json.loads(text)
        parse = time.perf_counter() - start
        print(f"{count:>10} {checks:>10.3f} {parse:>10.3f} {checks / parse:>8.1f}")


if __name__ == "__main__":
    main()
