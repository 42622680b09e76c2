"""The package's layout is its architecture: one subpackage per capability, imports running one way."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from .conftest import ROOT

# Lowest first: a subpackage may import only itself, roles_anywhere's top-level constants, and those
# listed before it.
LAYERS = [
    "outside_text",
    "errors",
    "signals",
    "config",
    "iam",
    "bundle",
    "stack",
    "output",
    "teleport",
    "render",
    "simulate",
    "credentials",
    "components",
    "plan",
    "guard",
    "sandbox",
    "cli",
    "entry",
    "__main__",
]
PACKAGE = ROOT / "roles_anywhere"
COMPONENTS = ROOT / "components"  # installed as roles_anywhere.components (a link in the package)


def _place(path: Path) -> list[str]:
    """The package path of a file's folder, as it is installed."""
    if path.is_relative_to(COMPONENTS):
        return ["roles_anywhere", "components", *path.relative_to(COMPONENTS).parent.parts]
    return ["roles_anywhere", *path.relative_to(PACKAGE).parent.parts]


def _owner(path: Path) -> str:
    place = _place(path)
    return place[1] if len(place) > 1 else path.stem


def _imported(path: Path) -> set[str]:
    """The roles_anywhere subpackages (or top-level modules) a file imports, relative imports resolved."""
    package = _place(path)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            names = [module] if node.module else [f"{module}.{alias.name}" for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "roles_anywhere" and len(parts) > 1:
                found.add(parts[1])
    return found


MODULES = sorted(
    p for folder in (PACKAGE, COMPONENTS) for p in folder.rglob("*.py") if "__pycache__" not in p.parts
)


def test_every_module_belongs_to_a_layer() -> None:
    owners = {_owner(path) for path in MODULES} - {"__init__"}
    assert owners <= set(LAYERS), owners - set(LAYERS)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_run_one_way(path: Path) -> None:
    owner = _owner(path)
    if owner == "__init__":
        return
    allowed = set(LAYERS[: LAYERS.index(owner) + 1])
    upward = {name for name in _imported(path) - allowed if not name.isupper()}  # constants of __init__
    assert not upward, f"{path.relative_to(ROOT)} imports the higher layer(s) {sorted(upward)}"


def test_every_subpackage_says_what_it_owns() -> None:
    for init in PACKAGE.glob("*/__init__.py"):
        docstring = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert docstring, f"{init.relative_to(ROOT)} has no docstring"
        assert len(docstring.splitlines()) == 1, f"{init.relative_to(ROOT)}: one line, please"


def test_make_says_it_is_installing_before_it_goes_quiet(tmp_path: Path) -> None:
    """`make demo` on a fresh clone first installs for minutes: it says so before it starts."""
    import shutil  # noqa: PLC0415
    import subprocess  # noqa: PLC0415

    for name in (
        "Makefile",
        "requirements.txt",
        "requirements-sandbox.txt",
        "requirements-dev.txt",
        "pyproject.toml",
    ):
        shutil.copy(ROOT / name, tmp_path / name)  # a clone without .venv
    result = subprocess.run(["make", "-n", "demo"], cwd=tmp_path, capture_output=True, text=True, check=False)
    lines = result.stdout.splitlines()
    first_install = next(i for i, line in enumerate(lines) if "-m venv" in line)
    assert any("installs the dependencies" in line for line in lines[:first_install])


@pytest.mark.parametrize(("ci", "outcome"), [("true", "failed"), ("", "skipped")])
def test_a_missing_teleport_schema_skips_for_users_and_fails_under_ci(
    tmp_path: Path, ci: str, outcome: str
) -> None:
    import os  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    env = {**os.environ, "CI": ci, "TELEPORT_SCHEMAS_DIR": str(tmp_path / "absent")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/test_render.py::test_the_strict_schema_catches_a_misspelt_key",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert f"1 {outcome}" in result.stdout, result.stdout[-2000:]
    if outcome == "skipped":
        assert "(or set TELEPORT_SCHEMAS_DIR)" in result.stdout or result.returncode == 0


def test_a_checkout_without_symlinks_still_plans_and_renders(tmp_path: Path) -> None:
    """Git for Windows checks links out as small text files (core.symlinks=false): the program still runs."""
    import shutil  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415
    import sysconfig  # noqa: PLC0415

    ignore = shutil.ignore_patterns("__pycache__")
    for folder in ("roles_anywhere", "components", "templates", "examples"):
        shutil.copytree(ROOT / folder, tmp_path / folder, symlinks=True, ignore=ignore)
    shutil.copy(ROOT / "Pulumi.example.yaml", tmp_path)
    for link in ("components", "templates"):
        (tmp_path / "roles_anywhere" / link).unlink()
        (tmp_path / "roles_anywhere" / link).write_text(f"../{link}")
    code = (
        "import sys; from pathlib import Path;"
        "from roles_anywhere.plan.run import plan_stack_file;"
        "from roles_anywhere.stack.deployment import load_deployment;"
        "from roles_anywhere.render.artifacts import render_artifacts;"
        "import roles_anywhere.components.program as program;"
        "plan = plan_stack_file(Path('Pulumi.example.yaml'));"
        "files = render_artifacts(load_deployment(plan.outputs, source='plan'));"
        "print(program.__file__); print(len(plan.resources), len(files))"
    )
    site = sysconfig.get_paths()["purelib"]  # the dependencies, without the editable install's finder
    result = subprocess.run(
        [sys.executable, "-S", "-c", code],
        cwd=tmp_path,
        env={"PYTHONPATH": f"{tmp_path}:{site}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    program_file, counts = result.stdout.split()[0], result.stdout.split()[1:]
    assert program_file == str(tmp_path / "components" / "program.py")
    assert counts == ["8", "12"]
