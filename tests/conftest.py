from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import settings

from roles_anywhere import PROJECT

from .certs import make_ca

# No timing assertions in tests: Hypothesis's per-example deadline is one, and it fails at random on a
# loaded CI machine. Speed is measured in benchmarks/ instead.
settings.register_profile("no-deadline", deadline=None)
settings.load_profile("no-deadline")

ROOT = Path(__file__).resolve().parent.parent
CA = make_ca()


def with_dotted(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``document`` with one dotted key set (``None`` deletes it)."""
    result = copy.deepcopy(document)
    *parents, last = path.split(".")
    node = result
    for part in parents:
        node = node[part]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return result


def base_values() -> dict[str, Any]:
    """A valid config, as short keys and Python values (what decode_config_values produces)."""
    return {
        "cluster": "example.teleport.sh",
        "caBundle": {"pem": CA.pem},
        "workloads": {
            "api": {
                "spiffeId": "/svc/api",
                "managedPolicyArns": ["arn:aws:iam::aws:policy/ReadOnlyAccess"],
                "inlinePolicy": {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
                },
                "sessionDuration": 7200,
            },
            "worker": {"spiffeId": "spiffe://example.teleport.sh/svc/worker"},
        },
    }


@pytest.fixture
def values() -> Callable[..., dict[str, Any]]:
    def build(**changes: Any) -> dict[str, Any]:
        result = copy.deepcopy(base_values())
        result.update(changes)
        return result

    return build


def stack_config(*, region: str = "us-east-2", **project: Any) -> dict[str, Any]:
    """A minimal valid Pulumi stack config (full keys), with project keys overridden by ``project``."""
    config: dict[str, Any] = {
        "aws:region": region,
        f"{PROJECT}:cluster": "acme.teleport.sh",
        f"{PROJECT}:caBundle": {"pem": CA.pem},
        f"{PROJECT}:workloads": {"orders": {"spiffeId": "/svc/orders"}},
    }
    config.update({f"{PROJECT}:{key}": value for key, value in project.items()})
    return config


def write_stack(folder: Path, config: dict[str, Any], stack: str = "dev") -> Path:
    path = folder / f"Pulumi.{stack}.yaml"
    path.write_text(yaml.safe_dump({"config": config}))
    return path


@pytest.fixture(autouse=True)
def _own_credential_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test its own credential cache: never the user's, never another test's answers."""
    monkeypatch.setenv("ROLES_ANYWHERE_CACHE_DIR", str(tmp_path / ".credential-cache"))


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Any]:
    """A sandbox for one test module (moto's backends are per process: modules do not share one)."""
    from roles_anywhere.sandbox.server import Sandbox  # noqa: PLC0415 - only sandbox tests need it

    with Sandbox() as running:
        yield running


@pytest.fixture(scope="module")
def world(sandbox: Any) -> Any:
    """A CA, its trust anchor and workloads made on demand, in the module's sandbox."""
    from .sandbox_helpers import make_world  # noqa: PLC0415

    return make_world(sandbox)
