"""Issue 22 in figures: moves at group boundaries, what keeping them put costs the plan, stack-file limits.

Prints, each measured in a fresh process where time or memory is reported:

1. moves: one settings group grown 199 -> 200 -> 201 -> 400 -> 401, each plan against the previous one's
   outputs (as ``plan --stack-outputs`` and ``pulumi up`` run it) and without them (the stateless
   assignment earlier versions deployed): how many workloads get another profile ARN at each step;
2. plan: N workloads in 3 profile settings (as ``plan_scale.py``), planned without previous outputs and
   against the outputs of the same stack minus 1 % of its workloads (so the sticky path places
   newcomers): best and median seconds of K runs and peak RSS; ``--before TREE`` also times another
   version's tree the same way, interleaved (e.g. ``git archive <commit> | tar -x -C TREE``);
3. stack files: read + validate time and peak RSS for 5,000 workloads as the issue describes them and
   fuller ones, and how fast the densest hostile file under the cap is refused;
4. PULUMI_CONFIG: bytes per workload as the Pulumi CLI passes the config, and how many workloads fit
   Linux's 128 KiB limit for one environment variable.

Usage: python benchmarks/profile_moves.py [--before PATH] [--repeat K] [N ...]   (default: K 3, N 1000 5000)
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from roles_anywhere import PROJECT  # noqa: E402
from roles_anywhere.config.stack_file import LANGUAGE_HOST_CONFIG_BYTES, MAX_STACK_FILE_BYTES  # noqa: E402

REGION, ACCOUNT = "eu-west-1", "111122223333"
CA_FILE = ROOT / "examples" / "spiffe-ca.pem"
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

PLAN = """
import gc, json, resource, sys, time
gc.disable()  # as the CLI runs plan
from pathlib import Path
from roles_anywhere.plan.run import plan_stack_file
previous = json.loads(Path(sys.argv[2]).read_text()) if sys.argv[2] != "-" else None
kwargs = {} if previous is None else {"previous_outputs": previous, "previous_source": sys.argv[2]}
start = time.perf_counter()
plan = plan_stack_file(Path(sys.argv[1]), **kwargs)
seconds = time.perf_counter() - start
if sys.argv[3] != "-":
    Path(sys.argv[3]).write_text(json.dumps(plan.outputs))
profiles = sum(1 for r in plan.resources if r.type == "aws:rolesanywhere/profile:Profile")
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "rss_mb": rss_mb, "profiles": profiles}))
"""

READ = """
import json, resource, sys, time
from pathlib import Path
from roles_anywhere.config.stack_file import read_stack_file
from roles_anywhere.errors import ConfigError
from roles_anywhere.stack.spec import load_spec
start = time.perf_counter()
try:
    stack_file = read_stack_file(Path(sys.argv[1]))
    load_spec(stack_file.project_values(), base_dir=Path(sys.argv[1]).parent, stack="bench")
    outcome = "read"
except ConfigError as err:
    outcome = "refused: " + err.message[:40]
print(json.dumps({"seconds": time.perf_counter() - start, "outcome": outcome,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def fresh(code: str, *args: str, root: Path = ROOT) -> dict[str, Any]:
    """Run ``code`` in a new interpreter with ``root`` first on the path; its last line, as JSON."""
    result = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(root)!r})\n{code}", *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
    )
    figures: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def write(path: Path, workloads: dict[str, Any], **extra: Any) -> Path:
    config = {
        "aws:region": REGION,
        f"{PROJECT}:cluster": "bench.example",
        f"{PROJECT}:accountId": ACCOUNT,
        f"{PROJECT}:namePrefix": "bench-",
        f"{PROJECT}:caBundle": {"file": str(CA_FILE)},
        f"{PROJECT}:quotas": {"iamRoles": 5_000},
        f"{PROJECT}:workloads": workloads,
        **{f"{PROJECT}:{key}": value for key, value in extra.items()},
    }
    path.write_text(yaml.dump({"config": config}, Dumper=DUMPER))
    return path


def plain(count: int, *, groups: int = 3, skip: int = 0) -> dict[str, Any]:
    """As plan_scale.py: one managed policy each, ``groups`` session durations; every ``skip``-th left out."""
    return {
        f"w{i:05d}": {
            "spiffeId": f"/svc/w{i:05d}",
            "managedPolicyArns": ["arn:aws:iam::aws:policy/ReadOnlyAccess"],
            "sessionDuration": (3_600, 7_200, 10_800)[i % groups],
            "bots": ["bench-ci"],
        }
        for i in range(count)
        if not skip or i % skip
    }


def issue_workloads(count: int) -> dict[str, Any]:
    """Two managed policies and a bot each: the issue's 1.2 MB at 5,000."""
    return {
        f"service-{i:04d}": {
            "spiffeId": f"/svc/team-{i % 50}/service-{i:04d}",
            "managedPolicyArns": [
                "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess",
                f"arn:aws:iam::123456789012:policy/team-{i % 50}-base",
            ],
            "bots": [f"bench-runner-{i % 20}"],
        }
        for i in range(count)
    }


def fuller_workloads(count: int) -> dict[str, Any]:
    """Three policies, a two-statement inline policy, two bots, a user, three tags (~1,064 bytes)."""
    result = {}
    for index, (name, settings) in enumerate(issue_workloads(count).items()):
        result[name] = {
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
            "bots": [*settings["bots"], f"bench-deployer-{index % 7}"],
            "users": [f"oncall-{index % 30}@example.com"],
            "tags": {"Team": f"team-{index % 50}", "CostCenter": f"cc-{index % 13:04d}", "Service": name},
        }
    return result


def moves(folder: Path) -> None:
    print("\n# 1. moves: one settings group; workloads whose profile ARN changes against the previous step")
    print(f"{'workloads':>10} {'profiles':>9} {'sticky':>7} {'stateless':>10}")
    before: dict[str, dict[str, Any]] = {}
    for count in (199, 200, 201, 400, 401):
        path = write(folder / "Pulumi.moves.yaml", plain(count, groups=1))
        outputs = {mode: folder / f"{mode}-{count}.json" for mode in ("sticky", "stateless")}
        previous = str(before["sticky"]) if before else "-"
        sticky = fresh(PLAN, str(path), previous, str(outputs["sticky"]))
        fresh(PLAN, str(path), "-", str(outputs["stateless"]))
        changed = []
        for mode, file in outputs.items():
            after = json.loads(file.read_text())["workloads"]
            old = json.loads(before[mode].read_text())["workloads"] if before else {}
            changed.append(sum(1 for name in old if old[name]["profileArn"] != after[name]["profileArn"]))
        print(f"{count:>10} {int(sticky['profiles']):>9} {changed[0]:>7} {changed[1]:>10}", flush=True)
        before = dict(outputs)


def plans(folder: Path, sizes: list[int], before: Path | None, repeat: int) -> None:
    print(
        f"\n# 2. plan: N workloads in 3 settings; 'with outputs' = against the outputs of the same stack "
        f"without every 100th workload; best and median of {repeat}, versions interleaved"
    )
    print(f"{'variant':>22} {'workloads':>10} {'best s':>8} {'median s':>9} {'MB':>6}")
    for count in sizes:
        path = write(folder / f"Pulumi.plan{count}.yaml", plain(count))
        smaller = write(folder / f"Pulumi.smaller{count}.yaml", plain(count, skip=100))
        recorded = folder / f"smaller{count}.json"
        fresh(PLAN, str(smaller), "-", str(recorded))
        variants = [("now, no outputs", ROOT, "-"), ("now, with outputs", ROOT, str(recorded))]
        if before is not None:
            variants.append(("before, no outputs", before, "-"))
        runs: dict[str, list[dict[str, Any]]] = {label: [] for label, _, _ in variants}
        for _ in range(repeat):
            for label, root, previous in variants:
                runs[label].append(fresh(PLAN, str(path), previous, "-", root=root))
        for label, figures in runs.items():
            seconds = sorted(f["seconds"] for f in figures)
            print(
                f"{label:>22} {count:>10} {seconds[0]:>8.2f} {seconds[len(seconds) // 2]:>9.2f} "
                f"{max(f['rss_mb'] for f in figures):>6.0f}",
                flush=True,
            )


def stack_files(folder: Path) -> None:
    print(f"\n# 3. stack files (cap {MAX_STACK_FILE_BYTES:,} bytes): read + validate, fresh process")
    print(f"{'file':>28} {'bytes':>10} {'s':>6} {'MB':>6}  outcome")
    dense = folder / "Pulumi.dense.yaml"
    dense.write_text("config:\n  x: [" + "a," * ((MAX_STACK_FILE_BYTES - 20) // 2) + "]\n")
    cases = [
        ("5,000 as the issue's", write(folder / "Pulumi.issue.yaml", issue_workloads(5_000))),
        ("5,000 fuller", write(folder / "Pulumi.fuller.yaml", fuller_workloads(5_000))),
        ("densest under the cap", dense),
    ]
    for label, path in cases:
        figures = fresh(READ, str(path))
        print(
            f"{label:>28} {path.stat().st_size:>10,} {figures['seconds']:>6.2f} {figures['rss_mb']:>6.0f}  "
            f"{figures['outcome']}",
            flush=True,
        )


def language_host(folder: Path) -> None:
    from roles_anywhere.config.stack_file import read_stack_file  # noqa: PLC0415

    print(f"\n# 4. PULUMI_CONFIG (Linux allows {LANGUAGE_HOST_CONFIG_BYTES:,} bytes for one variable)")
    print(f"{'workloads':>22} {'bytes/workload':>15} {'fit':>6}")
    for label, make in (("as the issue's", issue_workloads), ("fuller", fuller_workloads)):
        sizes = []
        for count in (0, 1_000):
            stack = read_stack_file(
                write(folder / "Pulumi.env.yaml", make(count) or {"a": {"spiffeId": "/a"}})
            )
            sizes.append(len(stack.language_host_config().encode()))
        per = (sizes[1] - sizes[0]) / 1_000
        print(f"{label:>22} {per:>15.0f} {int((LANGUAGE_HOST_CONFIG_BYTES - sizes[0]) / per):>6}")


def main(argv: list[str]) -> None:
    before, repeat = None, 3
    while argv[:1] in (["--before"], ["--repeat"]):
        if argv[0] == "--before":
            before = Path(argv[1]).resolve()
        else:
            repeat = int(argv[1])
        argv = argv[2:]
    sizes = [int(a) for a in argv] or [1_000, 5_000]
    print(f"# profile_moves  python {platform.python_version()}  {platform.machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        moves(folder)
        plans(folder, sizes, before, repeat)
        stack_files(folder)
        language_host(folder)


if __name__ == "__main__":
    main(sys.argv[1:])
