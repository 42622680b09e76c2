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
from roles_anywhere.plan import plan_stack_file, run_program  # noqa: E402

REGION, ACCOUNT = "eu-west-1", "111122223333"
BARE_PROGRAM = '''
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
'''


def stack_file(folder: Path, count: int) -> Path:
    workloads = {
        f"w{i:05d}": {"spiffeId": f"/svc/w{i:05d}", "managedPolicyArns": ["arn:aws:iam::aws:policy/ReadOnlyAccess"]}
        for i in range(count)
    }
    config = {
        "aws:region": REGION,
        f"{PROJECT}:cluster": "bench.example",
        f"{PROJECT}:accountId": ACCOUNT,
        f"{PROJECT}:caBundle": {"file": str(ROOT / "examples" / "spiffe-ca.pem")},
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
    print(f"{'workloads':>9} {'resources':>9} {'ours s':>8} {'bare s':>8} {'ours ms/wl':>10} {'bare ms/wl':>10} {'ratio':>6}")
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
                    config={"bench:count": str(count), "bench:pemFile": str(ROOT / "examples" / "spiffe-ca.pem")},
                    stack="bare",
                    region=REGION,
                    account_id=ACCOUNT,
                    config_dir=folder,
                    program=bare,
                )
            )
            assert resources == bare_resources, (resources, bare_resources)
            print(
                f"{count:>9} {resources:>9} {ours:>8.2f} {baseline:>8.2f} {1000 * ours / count:>10.2f} "
                f"{1000 * baseline / count:>10.2f} {ours / baseline:>6.2f}"
            )


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [100, 1000, 2000])
