"""A stand-in for ``tctl``: the commands ``teleport/apply.sh`` runs, against a cluster kept in a JSON file.

It does what apply.sh relies on: ``get KIND --format=json`` prints every object as a JSON array
(``get KIND/NAME`` one, or fails); ``create -f`` creates or replaces (YAML or JSON); ``rm`` deletes, but
not a role a user holds (Teleport refuses that too); ``bots update --add-roles`` needs the bot and every
role. ``FAKE_TCTL_FAIL=KIND`` makes ``get KIND`` fail, as an unreachable cluster does. Every mutation
is logged, so a test can prove that a refusal changed nothing. Run as ``python fake_tctl.py ARGS``
with $FAKE_TCTL_STATE.

A cluster (or a tctl) from before a kind existed is the state key ``"unsupported": [KIND]``: ``get``
and ``create`` of that kind fail with exit status 1. Assumed from tctl's source as we remember it
(``tool/tctl/common/resource_command.go``: a kind the client does not know ends in
``trace.BadParameter("getting %q is not supported", ref)``; a newer client against an older auth
server gets a gRPC "not implemented" error instead). We could not check the exact text, and nothing
depends on it: apply.py reads only the exit status and quotes the first line.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

KINDS = {
    "role": "role",
    "roles": "role",
    "workload_identity": "workload_identity",
    "bot": "bot",
    "bots": "bot",
    "user": "user",
    "users": "user",
}


def load(path: Path) -> dict[str, Any]:
    """The cluster: ``{"role": {}, "workload_identity": {}, "bot": {}, "user": {}, "log": []}``."""
    if not path.exists():
        return {"role": {}, "workload_identity": {}, "bot": {}, "user": {}, "log": []}
    return json.loads(path.read_text())


def save(path: Path, state: dict[str, Any]) -> None:
    path.write_text(json.dumps(state, indent=1, sort_keys=True))


def fail(message: str) -> int:
    print(f"ERROR: {message}", file=sys.stderr)
    return 1


def main(argv: list[str]) -> int:
    path = Path(os.environ["FAKE_TCTL_STATE"])
    state = load(path)
    match argv:
        case ["get", ref, "--format=json"]:
            kind, _, name = ref.partition("/")
            if os.environ.get("FAKE_TCTL_FAIL") == kind:
                return fail("connection reset by peer")
            if KINDS.get(kind) in state.get("unsupported", []):
                return fail(f'getting "{kind}" is not supported')
            if kind not in KINDS:
                return fail(f"unsupported resource: {kind!r}")
            objects = state[KINDS[kind]]
            if kind in ("user", "users"):  # stored as name -> roles
                objects = {
                    n: {"kind": "user", "metadata": {"name": n}, "spec": {"roles": r}}
                    for n, r in objects.items()
                }
            if not name:
                print(json.dumps(list(objects.values()), indent=4))
                return 0
            if name not in objects:
                return fail(f'{kind} "{name}" doesn\'t exist')
            print(json.dumps([objects[name]], indent=4))
            return 0
        case ["create", "-f", file]:
            import yaml  # noqa: PLC0415 - only here: `get` must start fast

            for document in yaml.safe_load_all(Path(file).read_text()):  # tctl creates every document
                kind, name = document["kind"], document["metadata"]["name"]
                if kind not in ("role", "workload_identity") or kind in state.get("unsupported", []):
                    return fail(f"unsupported resource kind {kind}")
                state[kind][name] = document
                state["log"].append(["create", kind, name])
        case ["rm", ref]:
            kind, _, name = ref.partition("/")
            if kind == "role" and any(name in roles for roles in state["user"].values()):
                return fail("failed to delete a role that is still in use by a user")
            if state.get(kind, {}).pop(name, None) is None:
                return fail(f'{kind} "{name}" doesn\'t exist')
            state["log"].append(["rm", kind, name])
        case ["bots", "update", bot, "--add-roles", roles]:
            if bot not in state["bot"]:
                return fail(f'bot "{bot}" is not found')
            for role in roles.split(","):
                if role not in state["role"]:
                    return fail(f'role "{role}" is not found')
                held = state["bot"][bot]["spec"]["roles"]
                if role not in held:
                    held.append(role)
            state["log"].append(["bots update", bot, roles])
        case _:
            return fail(f"fake tctl does not know: {' '.join(argv)}")
    save(path, state)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
