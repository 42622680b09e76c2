"""How `roles-anywhere plan` scales with the number of workloads, against a fair bare baseline.

For each size N: a generated stack of N workloads in 3 profile settings (session durations 1 h, 2 h,
3 h; one managed policy each; shared profiles), planned as the CLI plans it (cyclic collector off).
The baseline replays *the same* plan: a bare Pulumi program registering the same ComponentResources,
the same AWS resources (same types, names, parents and inputs, as literals) and the same stack outputs,
under the same mocks — so the ratio measures this project's own work (config model, validation,
rendering, Outputs), not the cost of components or outputs. Each variant runs in a fresh process:
Pulumi's global settings keep a finished run's root stack alive, so a second run in one process pays to
collect the first one's leftovers.

Prints per size: profiles, stack-output bytes per workload, ours and bare seconds, ms per workload,
peak RSS and the ratio. Usage: python benchmarks/plan_scale.py [N ...]   (default: 100 1000 5000)
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from roles_anywhere import PROJECT  # noqa: E402

REGION, ACCOUNT = "eu-west-1", "111122223333"
CA_FILE = ROOT / "examples" / "spiffe-ca.pem"
DURATIONS = (3_600, 7_200, 10_800)

# Run in a fresh interpreter: plan the stack file, time it, report what the baseline needs.
OURS = """
import gc, json, resource, sys, time
gc.disable()  # as the CLI runs plan
from pathlib import Path
from roles_anywhere.plan.run import plan_stack_file
start = time.perf_counter()
plan = plan_stack_file(Path(sys.argv[1]))
seconds = time.perf_counter() - start
document = plan.to_json()
Path(sys.argv[2]).write_text(json.dumps(document))
print(json.dumps({
    "seconds": seconds,
    "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "resources": len(plan.resources),
    "profiles": sum(1 for r in plan.resources if r.type == "aws:rolesanywhere/profile:Profile"),
    "output_bytes": len(json.dumps(document["outputs"])),
}))
"""

BARE = """
import gc, json, resource, sys, time
gc.disable()
from pathlib import Path
from roles_anywhere.plan.run import run_program
start = time.perf_counter()
plan = run_program(config={"bench:plan": sys.argv[1]}, stack="bare", region=sys.argv[2],
                   account_id=sys.argv[3], config_dir=Path(sys.argv[1]).parent, program=Path(sys.argv[4]))
seconds = time.perf_counter() - start
recorded, replayed = json.load(open(sys.argv[1])), plan.to_json()
def registered(document):  # what the engine was asked to create, and the stack outputs
    resources = sorted(
        (r["type"], r["name"], json.dumps(r["inputs"], sort_keys=True)) for r in document["resources"]
    )
    return resources, sorted(c["name"] for c in document["components"]), document["outputs"]
print(json.dumps({
    "seconds": seconds,
    "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "resources": len(plan.resources),
    "same": registered(recorded) == registered(replayed),
}))
"""

# The bare Pulumi program: replays a recorded plan with literal inputs and the same outputs. It makes
# the same resource classes (pulumi_aws's, which translate typed inputs and record where in the
# program each resource was made) and the components as ComponentResource subclasses, as ours are.
REPLAY_PROGRAM = """
import json
import re
import pulumi
import pulumi_aws

class Component(pulumi.ComponentResource):
    def __init__(self, type_, name, opts):
        super().__init__(type_, name, None, opts)

def snake(key):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()

def arguments(value):  # engine names -> the SDK's keyword names, except in tags (user data)
    if isinstance(value, dict):
        return {snake(k): (v if k == "tags" else arguments(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [arguments(v) for v in value]
    return value

def resource_class(token):  # "aws:iam/role:Role" -> pulumi_aws.iam.Role
    module, name = token.split(":")[1].split("/")[0], token.split(":")[2]
    return getattr(getattr(pulumi_aws, module), name)

plan = json.load(open(pulumi.Config("bench").require("plan")))
made = {}
pending = list(plan["components"]) + list(plan["resources"])
custom = {id(r) for r in plan["resources"]}
while pending:  # parents before children
    waiting = []
    for item in pending:
        parent = item["parent"]
        if parent is not None and parent not in made:
            waiting.append(item)
            continue
        opts = pulumi.ResourceOptions(parent=made.get(parent), protect=item["protect"])
        if id(item) in custom:
            resource = resource_class(item["type"])(item["name"], opts=opts, **arguments(item["inputs"]))
        else:
            resource = Component(item["type"], item["name"], opts)
        made[item["urn"]] = resource
    pending = waiting
for key, value in plan["outputs"].items():
    pulumi.export(key, value)
"""


def stack_file(folder: Path, count: int) -> Path:
    workloads = {
        f"w{i:05d}": {
            "spiffeId": f"/svc/w{i:05d}",
            "managedPolicyArns": ["arn:aws:iam::aws:policy/ReadOnlyAccess"],
            "sessionDuration": DURATIONS[i % 3],
            "bots": ["bench-ci"],
        }
        for i in range(count)
    }
    config = {
        "aws:region": REGION,
        f"{PROJECT}:cluster": "bench.example",
        f"{PROJECT}:accountId": ACCOUNT,
        f"{PROJECT}:namePrefix": "bench-",
        f"{PROJECT}:caBundle": {"file": str(CA_FILE)},
        f"{PROJECT}:quotas": {"iamRoles": 5_000},
        f"{PROJECT}:workloads": workloads,
    }
    path = folder / f"Pulumi.bench{count}.yaml"
    path.write_text(yaml.safe_dump({"config": config}))
    return path


def fresh(code: str, *args: str) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True, cwd=ROOT
    )
    figures: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def main(sizes: list[int]) -> None:
    print(
        f"# plan_scale  python {platform.python_version()}  {platform.machine()}  (fresh process per variant)"
    )
    columns = (
        "workloads",
        "profiles",
        "out B/wl",
        "ours s",
        "bare s",
        "ours ms/wl",
        "ours MB",
        "bare MB",
        "ratio",
    )
    print(" ".join(f"{c:>10}" for c in columns))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        replay = folder / "replay.py"
        replay.write_text(REPLAY_PROGRAM)
        for count in sizes:
            recorded = folder / f"plan{count}.json"
            ours = fresh(OURS, str(stack_file(folder, count)), str(recorded))
            bare = fresh(BARE, str(recorded), REGION, ACCOUNT, str(replay))
            if not bare["same"]:
                raise SystemExit(f"not comparable at {count}: the replay registered other inputs or outputs")
            figures = (
                count,
                int(ours["profiles"]),
                ours["output_bytes"] / count,
                ours["seconds"],
                bare["seconds"],
                1000 * ours["seconds"] / count,
                ours["rss_mb"],
                bare["rss_mb"],
                ours["seconds"] / bare["seconds"],
            )
            print(" ".join(f"{f:>10}" if isinstance(f, int) else f"{f:>10.2f}" for f in figures), flush=True)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [100, 1000, 5000])
