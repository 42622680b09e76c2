"""Test helpers: stack outputs for a namespace, and a fake Teleport cluster that runs the real apply.sh.

``FakeCluster.apply`` runs the rendered ``teleport/apply.sh`` with ``/bin/sh`` and ``fake_tctl.py`` as
``tctl``; ``FakeCluster.model`` hands the resulting resources to the issuance model
(``teleport_model``), so tests ask Teleport's own question: who can obtain which SPIFFE ID.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import yaml

from roles_anywhere.output.artifact_writer import write_artifacts
from roles_anywhere.render.artifacts import render_into_folder
from roles_anywhere.stack.deployment import Deployment, load_deployment

from .teleport_model import WILDCARD_ISSUER, Cluster, Principal

CLUSTER = "acme.teleport.sh"
ANCHOR_ARN = "arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/0b5c5a2e-6f3e-4c1f-9d7a-2f1b8e0c4d11"
FAKE_TCTL = Path(__file__).resolve().parent / "fake_tctl.py"


def stack_outputs(namespace: str, workloads: dict[str, dict[str, Any]], mode: str) -> dict[str, Any]:
    """Stack outputs as `pulumi up` exports them; ``workloads``: name → {path, bots, users}."""
    bots = sorted({bot for w in workloads.values() for bot in w.get("bots", [])})

    def profile(name: str) -> str:
        return f"arn:aws:rolesanywhere:eu-west-1:111122223333:profile/{uuid.uuid5(uuid.NAMESPACE_URL, name)}"

    return {
        "cluster": CLUSTER,
        "trustAnchorArn": ANCHOR_ARN,
        "teleport": {
            "mode": mode,
            "namespace": namespace,
            "proxy": f"{CLUSTER}:443",
            "bots": {
                bot: {"joinMethod": "kubernetes", "token": bot, "storagePath": f"/var/lib/teleport/bot/{bot}"}
                for bot in bots
            },
        },
        "aws": {"signingHelper": "aws_signing_helper", "credentials": "process"},
        "workloads": {
            name: {
                "spiffeId": f"spiffe://{CLUSTER}{w['path']}",
                "roleName": f"{namespace}-{name}",
                "roleArn": f"arn:aws:iam::111122223333:role/{namespace}-{name}",
                "profileArn": profile(f"{namespace}-{name}"),
                "sessionDuration": 3600,
                "svidDirectory": f"/opt/machine-id/{namespace}/{name}",
                "bots": list(w.get("bots", [])),
                "users": list(w.get("users", [])),
                "svidTtl": "1h",
            }
            for name, w in workloads.items()
        },
    }


def deployment_of(namespace: str, workloads: dict[str, dict[str, Any]], mode: str) -> Deployment:
    return load_deployment(stack_outputs(namespace, workloads, mode), source="test")


def render_to(folder: Path, deployment: Deployment) -> dict[str, str]:
    """Render into ``folder`` as `pulumi up` and `roles-anywhere render` do: the folder's record counts."""
    files = render_into_folder(deployment, folder)
    write_artifacts(files, folder)
    return files


class FakeCluster:
    """A Teleport cluster in a JSON file, with the preset wildcard issuer role every principal may hold."""

    def __init__(self, folder: Path) -> None:
        self.state_file = folder / "cluster.json"
        self.bin = folder / "bin"
        self.bin.mkdir(parents=True)
        # -S skips site-packages (3x faster start-up); PyYAML, which `create -f` needs, comes by PYTHONPATH.
        for name, command in (("tctl", f'{FAKE_TCTL} "$@"'), ("python3", '"$@"')):
            (self.bin / name).write_text(f"#!/bin/sh\nexec {sys.executable} -S {command}\n")
            (self.bin / name).chmod(0o755)
        self._write(
            {
                "role": {WILDCARD_ISSUER["metadata"]["name"]: WILDCARD_ISSUER},
                "workload_identity": {},
                "bot": {},
                "user": {},
                "log": [],
            }
        )

    def state(self) -> dict[str, Any]:
        return json.loads(self.state_file.read_text())

    def _write(self, state: dict[str, Any]) -> None:
        self.state_file.write_text(json.dumps(state))

    def put(self, kind: str, document: dict[str, Any]) -> None:
        """Create an object behind apply.sh's back (another stack, a hand-made one, an admin's edit)."""
        state = self.state()
        state[kind][document["metadata"]["name"]] = document
        self._write(state)

    def add_bot(self, name: str, roles: list[str] | None = None) -> None:
        """`tctl bots add`: by default the bot also holds the wildcard preset, the worst case."""
        if name not in self.state()["bot"]:
            held = [WILDCARD_ISSUER["metadata"]["name"]] if roles is None else roles
            self.put(
                "bot", {"kind": "bot", "version": "v1", "metadata": {"name": name}, "spec": {"roles": held}}
            )

    def grant_user(self, user: str, roles: list[str]) -> None:
        """An administrator following apply.sh step 5: adds roles, never removes one (the worst case)."""
        state = self.state()
        held = state["user"].setdefault(user, [WILDCARD_ISSUER["metadata"]["name"]])
        held.extend(role for role in roles if role not in held)
        self._write(state)

    def apply(self, folder: Path, *args: str, fail: str = "") -> subprocess.CompletedProcess[str]:
        """Run the rendered apply.sh; ``fail`` names a kind whose listing fails (an unreachable cluster)."""
        return subprocess.run(
            ["/bin/sh", str(folder / "teleport" / "apply.sh"), *args],
            capture_output=True,
            text=True,
            check=False,
            env={
                "PATH": f"{self.bin}:/usr/bin:/bin",
                "FAKE_TCTL_STATE": str(self.state_file),
                "PYTHONPATH": str(Path(yaml.__file__).parent.parent),
                "FAKE_TCTL_FAIL": fail,
            },
        )

    def model(self) -> Cluster:
        state = self.state()
        return Cluster(
            roles=state["role"],
            workload_identities=state["workload_identity"],
            bots={name: bot["spec"]["roles"] for name, bot in state["bot"].items()},
            users=state["user"],
        )

    def principal(self, kind: str, name: str) -> Principal:
        state = self.state()
        if kind == "bot":
            return Principal(name, True, tuple(state["bot"].get(name, {}).get("spec", {}).get("roles", [])))
        return Principal(name, False, tuple(state["user"].get(name, [])))
