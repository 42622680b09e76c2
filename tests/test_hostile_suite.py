"""Every hostile input in ``tests/hostile_cases.py``, run as its own process under limits (issue 13).

Each case runs ``python -m roles_anywhere …`` with 300 MiB of address space (``RLIMIT_AS``), a CPU
limit (``RLIMIT_CPU``) and a wall-clock limit for hangs, in a minimal environment whose HOME and
TMPDIR are inside the case's sandbox tree. It must end with exit 1 or 2 and exactly one line on
stderr (no traceback, no control character, no byte of a planted key), and must leave everything
outside the output folder exactly as it was (types, modes, contents, link targets).

Speed is not asserted here: ``benchmarks/hostile_inputs.py`` prints each case's time and memory.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .bundle_server import BundleServer
from .hostile_cases import CASES, Case, World, secret_fragments

MEMORY_LIMIT = 300 * 1024 * 1024
CPU_SECONDS = 10  # a hang guard; the benchmark measures the real figures (all under 2 s)
WALL_SECONDS = 60


def limits() -> None:
    """Run in the child before exec: the memory and CPU limits of the issue."""
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS + 1))


def run_case(world: World, argv: list[str]) -> subprocess.CompletedProcess[bytes]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(world.root / "home"),
        "TMPDIR": str(world.root / "tmp"),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        # credential-process keeps a per-user cache (0700, its own): here it lives in the output folder,
        # the one place a command may write, so the snapshot below still sees every other change
        "ROLES_ANYWHERE_CACHE_DIR": str(world.out / ".credential-cache"),
    }
    return subprocess.run(
        [sys.executable, "-m", "roles_anywhere", *argv],
        cwd=world.work,
        env=env,
        capture_output=True,
        timeout=WALL_SECONDS,
        check=False,
        preexec_fn=limits,
    )


def snapshot(root: Path, skip: Path) -> dict[str, tuple[Any, ...]]:
    """Everything under ``root`` but ``skip``: kind, mode and content digest or link target."""
    found: dict[str, tuple[Any, ...]] = {}
    for folder, folders, files in os.walk(root, followlinks=False):
        here = Path(folder)
        folders[:] = [name for name in folders if here / name != skip]
        for name in [*folders, *files]:
            path = here / name
            if path == skip:
                continue
            info = path.lstat()
            key = str(path.relative_to(root))
            if stat.S_ISLNK(info.st_mode):
                found[key] = ("link", os.readlink(path))
            elif stat.S_ISREG(info.st_mode):
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                found[key] = ("file", info.st_mode, info.st_size, info.st_mtime_ns, digest)
            else:
                found[key] = ("other", info.st_mode)
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BundleServer]:
    running = BundleServer(tmp_path_factory.mktemp("tls"))
    try:
        yield running
    finally:
        running.close()


@pytest.fixture(scope="module")
def base_outputs(tmp_path_factory: pytest.TempPathFactory, server: BundleServer) -> dict[str, Any]:
    """The stack outputs of the World's valid stack, as `plan --json` predicts them."""
    world = World(tmp_path_factory.mktemp("base"), server, {})
    result = run_case(world, ["plan", "--json", "--config", world.stack()])
    assert result.returncode == 0, result.stderr
    outputs: dict[str, Any] = json.loads(result.stdout)["outputs"]
    return outputs


def test_the_corpus_is_large_and_every_name_is_unique() -> None:
    names = [case.name for case in CASES]
    assert len(names) == len(set(names))
    assert len(CASES) >= 100


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_hostile_input_is_refused_in_one_line_and_changes_nothing_outside(
    case: Case, tmp_path: Path, server: BundleServer, base_outputs: dict[str, Any]
) -> None:
    world = World(tmp_path, server, base_outputs)
    argv = case.build(world)
    before = snapshot(world.root, world.out)
    result = run_case(world, argv)
    stderr = result.stderr.decode("utf-8", errors="replace")
    stdout = result.stdout.decode("utf-8", errors="replace")
    assert result.returncode in case.exits, (result.returncode, stderr[-2000:])
    assert stderr.count("\n") == 1, stderr[-2000:]
    assert stderr.endswith("\n")
    assert stderr.startswith("error: " if result.returncode == 2 else ("error: ", "denied: ")), stderr
    assert all(c.isprintable() for c in stderr.rstrip("\n")), repr(stderr)
    assert case.says in stderr, stderr
    if result.returncode == 2:
        assert stdout == ""
    assert all(c.isprintable() for c in stdout.replace("\n", "")), repr(stdout[:500])
    for fragment in secret_fragments():
        assert fragment not in stderr + stdout, f"key material printed: {stderr}"
    assert snapshot(world.root, world.out) == before
