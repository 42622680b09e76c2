"""How `roles-anywhere plan` scales with the number of workloads, against a bare baseline.

For each size N the script plans a generated stack config with N workloads (one managed policy each:
role, attachment, profile per workload, plus the trust anchor), then runs a bare Pulumi program that
registers the same AWS resources with literal inputs — no config model, no validation, no components —
under the same deterministic mocks, in this same process. It prints seconds, ms per workload, and the
ratio ours/bare. Usage: python benchmarks/plan_scale.py [N ...]   (default: 100 1000 2000)
"""

from __future__ import annotations

import gc
import platform
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from roles_anywhere import PROJECT  # noqa: E402
from roles_anywhere.plan.run import plan_stack_file, run_program  # noqa: E402

REGION, ACCOUNT = "eu-west-1", "111122223333"
CA_FILE = ROOT / "examples" / "spiffe-ca.pem"
BARE_PROGRAM = """
import json
import pulumi
import pulumi_aws as aws

count = int(pulumi.Config("bench").require("count"))
pem = open(pulumi.Config("bench").require("pemFile")).read()
anchor = aws.rolesanywhere.TrustAnchor(
    "anchor",
    name="bench",
    enabled=True,
    source=aws.rolesanywhere.TrustAnchorSourceArgs(
        source_type="CERTIFICATE_BUNDLE",
        source_data=aws.rolesanywhere.TrustAnchorSourceSourceDataArgs(x509_certificate_data=pem),
    ),
)
for i in range(count):
    name = f"w{i:05d}"
    role = aws.iam.Role(
        f"{name}-role",
        name=name,
        assume_role_policy=anchor.arn.apply(lambda arn, name=name: json.dumps({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"Service": "rolesanywhere.amazonaws.com"},
                "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"],
                "Condition": {
                    "StringEquals": {"aws:PrincipalTag/x509SAN/URI": f"spiffe://bench.example/svc/{name}"},
                    "ArnEquals": {"aws:SourceArn": arn},
                },
            }],
        })),
        max_session_duration=3600,
    )
    aws.iam.RolePolicyAttachment(f"{name}-attach", role=role.name,
                                 policy_arn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    aws.rolesanywhere.Profile(f"{name}-profile", name=name, role_arns=[role.arn],
                              duration_seconds=3600, enabled=True)
"""


def stack_file(folder: Path, count: int) -> Path:
    workloads = {
        f"w{i:05d}": {
            "spiffeId": f"/svc/w{i:05d}",
            "managedPolicyArns": ["arn:aws:iam::aws:policy/ReadOnlyAccess"],
        }
        for i in range(count)
    }
    config = {
        "aws:region": REGION,
        f"{PROJECT}:cluster": "bench.example",
        f"{PROJECT}:accountId": ACCOUNT,
        f"{PROJECT}:caBundle": {"file": str(CA_FILE)},
        f"{PROJECT}:workloads": workloads,
    }
    path = folder / f"Pulumi.bench{count}.yaml"
    path.write_text(yaml.safe_dump({"config": config}))
    return path


def timed(action: object) -> tuple[float, int]:
    gc.collect()
    start = time.perf_counter()
    plan = action()  # type: ignore[operator]
    return time.perf_counter() - start, len(plan.resources)


def main(sizes: list[int]) -> None:
    print(f"# plan_scale  python {platform.python_version()}  {platform.machine()}  {platform.node()}")
    columns = ("workloads", "resources", "ours s", "bare s", "ours ms/wl", "bare ms/wl", "ratio")
    print(" ".join(f"{c:>10}" for c in columns))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        bare = folder / "bare_program.py"
        bare.write_text(BARE_PROGRAM)
        timed(lambda: plan_stack_file(stack_file(folder, 10)))  # warm imports and caches
        for count in sizes:
            path = stack_file(folder, count)
            ours, resources = timed(lambda path=path: plan_stack_file(path))
            baseline, bare_resources = timed(
                lambda count=count: run_program(
                    config={"bench:count": str(count), "bench:pemFile": str(CA_FILE)},
                    stack="bare",
                    region=REGION,
                    account_id=ACCOUNT,
                    config_dir=folder,
                    program=bare,
                )
            )
            if resources != bare_resources:
                raise SystemExit(f"not comparable: ours made {resources} resources, bare {bare_resources}")
            figures = (
                count,
                resources,
                ours,
                baseline,
                1000 * ours / count,
                1000 * baseline / count,
                ours / baseline,
            )
            print(" ".join(f"{f:>10}" if isinstance(f, int) else f"{f:>10.2f}" for f in figures))


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [100, 1000, 2000])
