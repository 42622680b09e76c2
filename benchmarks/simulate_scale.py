"""How `simulate` scales with the number of roles, against a bare baseline.

For each size N the script builds a deployment of N workloads, issues one SVID from a throwaway CA,
and times, in this same process:
  ours      certificate_findings (leaf rules, chain with signature verification, tag mapping) once,
            then a full verdict per role (trust policy evaluated for three actions, profile rules);
  baseline  for each role, a dict lookup comparing the SVID's first URI SAN with the role's SPIFFE ID
            (what a naive checker would do: no chain, no policy semantics).
Usage: python benchmarks/simulate_scale.py [N ...]   (default: 100 1000 5000)
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.render_scale import CLUSTER, outputs_for, timed  # noqa: E402
from roles_anywhere.simulate.evaluate import certificate_findings, simulate  # noqa: E402
from roles_anywhere.simulate.inputs import role_targets  # noqa: E402
from roles_anywhere.simulate.principal_tags import uri_sans  # noqa: E402
from roles_anywhere.stack.deployment import load_deployment  # noqa: E402
from tests.certs import NOW, make_ca, make_svid  # noqa: E402


def main(sizes: list[int]) -> None:
    print(f"python {platform.python_version()} on {platform.machine()}, {platform.system()}")
    heads = ("roles", "ours s", "ms/role", "base s", "ratio", "allowed")
    print(" ".join(f"{h:>9}" for h in heads))
    ca = make_ca(CLUSTER)
    svid = make_svid(ca, f"spiffe://{CLUSTER}/svc/w00007").certificate
    for count in sizes:
        deployment = load_deployment(outputs_for(count), source="bench")
        targets = role_targets(deployment, role=None)

        def ours(targets: Any = targets, deployment: Any = deployment) -> list[Any]:
            findings = certificate_findings(svid, [], [ca.certificate], NOW)
            return simulate(findings, targets, deployment.trust_anchor_arn)

        def baseline(deployment: Any = deployment) -> list[str]:
            first = uri_sans(svid)[0]
            return [name for name, w in deployment.workloads.items() if w.spiffe_id == first]

        ours_s, verdicts = timed(ours)
        base_s, naive = timed(baseline)
        granted = [v.target.workload for v in verdicts if v.allowed]
        if granted != naive:
            raise SystemExit(f"simulate and the baseline disagree: {granted} != {naive}")
        row = (
            count,
            f"{ours_s:.3f}",
            f"{1000 * ours_s / count:.3f}",
            f"{base_s:.5f}",
            f"{ours_s / base_s:.0f}",
        )
        print(" ".join(f"{v:>9}" for v in (*row, len(granted))))


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [100, 1000, 5000])
