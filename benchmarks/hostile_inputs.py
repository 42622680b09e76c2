"""Time and memory of every hostile-input case (tests/hostile_cases.py), each in its own process.

Prints, per case group and overall: the slowest wall time, the largest peak RSS, the median, and
the same figures for a baseline in the same run (`roles-anywhere --help`, which imports the CLI and
stops: the floor every case pays). The issue's budget is < 2 s and < 300 MB per case; the test suite
enforces the memory limit (RLIMIT_AS) and a CPU hang guard, this script reports the real figures.

    .venv/bin/python benchmarks/hostile_inputs.py [--slowest 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.bundle_server import BundleServer
from tests.hostile_cases import CASES, World
from tests.test_hostile_suite import limits

# The CLI as `python -m roles_anywhere` would run it, reporting its own peak RSS at exit. VmHWM is the
# high-water mark of the process's memory since exec; ru_maxrss would include the (large) parent's
# pages at fork time.
_WRAPPER = """
import atexit, os, runpy, sys
def _report():
    with open('/proc/self/status') as status, open(os.environ['HWM_FILE'], 'w') as out:
        out.write(next(line.split()[1] for line in status if line.startswith('VmHWM')))
atexit.register(_report)
sys.argv = ['roles-anywhere', *sys.argv[1:]]
runpy.run_module('roles_anywhere', run_name='__main__', alter_sys=True)
"""


def measure(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in MB, exit status) of one CLI process."""
    with tempfile.NamedTemporaryFile() as hwm:
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-c", _WRAPPER, *argv],
            cwd=cwd,
            env={**env, "HWM_FILE": hwm.name},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=limits,
            check=False,
        )
        wall = time.perf_counter() - started
        kilobytes = Path(hwm.name).read_text() or "0"
    return wall, int(kilobytes) / 1024, result.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slowest", type=int, default=10, help="list the N slowest cases")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        server = BundleServer(root)
        try:
            base = World(root / "base", server, {})
            env = {"PATH": os.environ.get("PATH", ""), "HOME": str(base.root / "home"), "LANG": "C.UTF-8"}
            plan = subprocess.run(
                [sys.executable, "-m", "roles_anywhere", "plan", "--json", "--config", base.stack()],
                capture_output=True,
                check=True,
                cwd=base.work,
                env=env,
            )
            import json  # noqa: PLC0415

            outputs = json.loads(plan.stdout)["outputs"]
            baseline = [measure(["--help"], base.work, env) for _ in range(5)]
            results = []
            for number, case in enumerate(CASES):
                world = World(root / f"case{number}", server, outputs)
                argv = case.build(world)
                case_env = {**env, "HOME": str(world.root / "home"), "TMPDIR": str(world.root / "tmp")}
                wall, rss, code = measure(argv, world.work, case_env)
                results.append((case.name, wall, rss, code))
        finally:
            server.close()

    walls = [wall for _, wall, _, _ in results]
    rsses = [rss for _, _, rss, _ in results]
    base_wall = statistics.median(wall for wall, _, _ in baseline)
    base_rss = max(rss for _, rss, _ in baseline)
    print(f"{len(results)} cases, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print(f"baseline `roles-anywhere --help`: {base_wall:.2f} s, {base_rss:.0f} MB peak RSS")
    print(
        f"cases: median {statistics.median(walls):.2f} s, slowest {max(walls):.2f} s "
        f"({max(walls) / base_wall:.1f}x baseline); largest peak RSS {max(rsses):.0f} MB"
    )
    over = [name for name, wall, rss, _ in results if wall >= 2 or rss >= 300]
    print(f"cases at or over 2 s or 300 MB: {len(over)} {over}")
    exits = sorted({code for *_, code in results})
    print(f"exit statuses seen: {exits}; not 1 or 2: {[n for n, *_, c in results if c not in (1, 2)]}")
    print(f"slowest {args.slowest}:")
    for name, wall, rss, code in sorted(results, key=lambda r: -r[1])[: args.slowest]:
        print(f"  {wall:5.2f} s  {rss:6.0f} MB  exit {code}  {name}")


if __name__ == "__main__":
    main()
