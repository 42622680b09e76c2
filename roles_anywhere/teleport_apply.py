"""Apply one stack's Teleport side with tctl: every check first, then the changes, nothing in between.

``render`` copies this file verbatim into ``teleport/apply.py`` (``apply.sh`` runs it), so it uses the
standard library only and reads everything else from ``objects.json`` beside it. It trusts nothing the
cluster says: existence and ownership come from tctl's JSON listings (never from error texts), every
name it acts on is this stack's, and any text it echoes from the cluster is stripped to printable ASCII.

Exit status: 0 applied, 2 refused or failed (one line on stderr; refusals change nothing).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

STACK_LABEL = "teleport-roles-anywhere/stack"
ANCHOR_LABEL = "teleport-roles-anywhere/trust-anchor"
PLAN_FILE = "objects.json"
MAX_OUTPUT = 64 * 1024 * 1024
KINDS = ("workload_identity", "role")
_TEMPLATE = re.compile(r"\{\{.*?\}\}")


class RefusalError(Exception):
    """Something makes applying unsafe or impossible; nothing has been changed (or the step failed)."""


def clean(text: object, limit: int = 120) -> str:
    """Cluster-supplied text made safe to print: printable ASCII, one line, bounded."""
    printable = "".join(c if " " <= c <= "~" else "?" for c in str(text))
    return printable[:limit] + ("…" if len(printable) > limit else "")


def tctl(*args: str) -> str:
    """Run tctl; a non-zero exit is a ``RefusalError`` quoting its first line of error."""
    try:
        result = subprocess.run(["tctl", *args], capture_output=True, check=False)
    except FileNotFoundError:
        raise RefusalError(
            "tctl is not on PATH (Teleport's client tools, signed in as an administrator)"
        ) from None
    if result.returncode != 0:
        lines = result.stderr.decode("utf-8", "replace").strip().splitlines() or ["no message"]
        raise RefusalError(f"`tctl {' '.join(args[:2])}` failed: {clean(lines[0])}")
    if len(result.stdout) > MAX_OUTPUT:
        raise RefusalError(f"`tctl {' '.join(args[:2])}` printed more than {MAX_OUTPUT} bytes")
    return result.stdout.decode("utf-8", "replace")


def listing(kind: str) -> dict[str, dict[str, Any]]:
    """Every object of ``kind`` in the cluster, by name, from ``tctl get KIND --format=json``."""
    text = tctl("get", kind, "--format=json")
    try:
        data = json.loads(text) if text.strip() else []
    except ValueError:
        raise RefusalError(f"`tctl get {kind}` did not print JSON") from None
    items = [data] if isinstance(data, dict) else data or []
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise RefusalError(f"`tctl get {kind}` printed JSON that is not a list of objects")
    found: dict[str, dict[str, Any]] = {}
    for item in items:
        metadata = item.get("metadata")
        name = metadata.get("name") if isinstance(metadata, dict) else None
        if isinstance(name, str):
            found[name] = item
    return found


def labels(item: Mapping[str, Any]) -> dict[str, str]:
    """An object's metadata labels as text; anything malformed reads as no labels (not ours)."""
    metadata = item.get("metadata")
    found = metadata.get("labels") if isinstance(metadata, dict) else None
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def _path_pattern(expression: str) -> re.Pattern[str]:
    """Teleport's MatchString: ``^…$`` is a regular expression, anything else a glob where ``*`` is ``.*``."""
    if expression.startswith("^") and expression.endswith("$"):
        try:
            return re.compile(expression)
        except re.error:
            return re.compile(".*")  # unreadable: assume it could match anything
    return re.compile("^" + ".*".join(re.escape(part) for part in expression.split("*")) + "$")


def _template_pattern(spiffe_id: str) -> re.Pattern[str]:
    """A WorkloadIdentity's ``spiffe.id``; each ``{{ … }}`` could expand to any non-empty text."""
    parts = _TEMPLATE.split(spiffe_id)
    return re.compile("^" + ".+".join(re.escape(part) for part in parts) + "$")


def _spiffe_paths(item: Mapping[str, Any], condition: str) -> list[str]:
    spec = item.get("spec") if isinstance(item.get("spec"), dict) else {}
    block = spec.get(condition) if isinstance(spec, dict) else None
    entries = block.get("spiffe") if isinstance(block, dict) else None
    return [str(e.get("path", "")) for e in entries or [] if isinstance(e, dict)]


def _issued_id(item: Mapping[str, Any]) -> str:
    spec = item.get("spec") if isinstance(item.get("spec"), dict) else {}
    spiffe = spec.get("spiffe") if isinstance(spec, dict) else None
    return str(spiffe.get("id", "")) if isinstance(spiffe, dict) else ""


def _grants_something(role: Mapping[str, Any]) -> bool:
    spec = role.get("spec")
    allow = spec.get("allow") if isinstance(spec, dict) else None
    return bool(allow)


class Applier:
    """The checks and changes for one stack, from its ``objects.json``."""

    def __init__(self, folder: Path, plan: Mapping[str, Any], *, take_over: bool) -> None:
        self.folder = folder
        self.stack = str(plan["stack"])
        self.anchor = str(plan["trustAnchor"])
        self.legacy = plan["mode"] == "legacy"
        self.current = {kind: list(plan["current"][kind]) for kind in KINDS}
        self.recorded_retired = {kind: list(plan["retired"][kind]) for kind in KINDS}
        self.files: dict[str, str] = dict(plan["files"])
        self.paths: list[str] = list(plan["spiffePaths"])
        self.bots: dict[str, str] = dict(plan["bots"])
        self.users: dict[str, str] = dict(plan["users"])
        self.take_over = take_over

    def ours(self, item: Mapping[str, Any]) -> bool:
        """Labelled with this stack's namespace and trust anchor (any anchor with ``--take-over``)."""
        found = labels(item)
        same_anchor = found.get(ANCHOR_LABEL) == self.anchor or self.take_over
        return found.get(STACK_LABEL) == self.stack and same_anchor

    def owner(self, item: Mapping[str, Any]) -> str:
        """Who made ``item``, for a refusal message (cluster text cleaned)."""
        found = labels(item)
        if STACK_LABEL not in found:
            return "no teleport-roles-anywhere stack made it (it has no teleport-roles-anywhere/stack label)"
        if found[STACK_LABEL] == self.stack:
            return (
                f"another stack with the namespace '{clean(self.stack)}' made it (trust anchor "
                f"{clean(found.get(ANCHOR_LABEL, 'unknown'))}, not {self.anchor}); give each stack its own "
                "teleport.namespace, or pass --take-over if this stack's trust anchor was replaced"
            )
        return f"it belongs to stack '{clean(found[STACK_LABEL], 40)}' (label {STACK_LABEL})"

    def run(self) -> None:
        """Check everything, then change: a refusal comes before the first change."""
        cluster = {"role": listing("roles"), "bot": listing("bots")}
        try:
            cluster["workload_identity"] = listing("workload_identity")
        except RefusalError:
            if not self.legacy:
                raise
            cluster["workload_identity"] = {}  # a cluster from before WorkloadIdentity resources has none
        retired = self._retired(cluster)
        self._check_ownership(cluster, retired)
        self._check_other_issuers(cluster, retired)
        self._check_bots(cluster)
        print(f"Checks passed for stack '{self.stack}'; applying.")
        self._retire(cluster, retired)
        for kind in KINDS:
            if self.legacy and kind == "workload_identity":
                continue
            for name in self.current[kind]:
                tctl("create", "-f", str(self.folder / self.files[f"{kind}/{name}"]))
                print(f"  {kind}/{name}: created or replaced")
        for bot, role in sorted(self.bots.items()):
            held = cluster["bot"][bot].get("spec", {}).get("roles") or []
            if role not in held:
                tctl("bots", "update", bot, "--add-roles", role)
            print(f"  bot {bot}: holds {role}")
        for user, role in sorted(self.users.items()):
            print(f"  user {user}: needs {role} (tctl edit user/{user}, or your SSO connector's mapping)")

    def _retired(self, cluster: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
        """Recorded as retired, or labelled as this stack's in the cluster, and not rendered now."""
        retired: dict[str, list[str]] = {}
        for kind in KINDS:
            labelled = {name for name, item in cluster[kind].items() if self.ours(item)}
            names = (labelled | set(self.recorded_retired[kind])) - set(self.current[kind])
            retired[kind] = sorted(name for name in names if name.startswith(f"{self.stack}."))
        return retired

    def _check_ownership(
        self, cluster: Mapping[str, Mapping[str, Any]], retired: Mapping[str, list[str]]
    ) -> None:
        for kind in KINDS:
            for name in [*self.current[kind], *retired[kind]]:
                item = cluster[kind].get(name)
                if item is not None and not self.ours(item):
                    raise RefusalError(
                        f"{kind}/{clean(name)} exists but {self.owner(item)}; nothing was changed"
                    )

    def _check_other_issuers(
        self, cluster: Mapping[str, Mapping[str, Any]], retired: Mapping[str, list[str]]
    ) -> None:
        """Whoever else can issue one of our SPIFFE IDs would assume our AWS roles: refuse."""
        mine = {kind: set(self.current[kind]) | set(retired[kind]) for kind in KINDS}
        paths = set(self.paths)
        for name, item in sorted(cluster["workload_identity"].items()):
            if name in mine["workload_identity"]:
                continue
            issued = _issued_id(item)
            if "{{" not in issued:  # the common case: one exact ID, a set lookup
                self._refuse_overlap(f"workload_identity/{name}", item, [issued] if issued in paths else [])
                continue
            pattern = _template_pattern(issued)
            overlapping = [path for path in self.paths if pattern.match(path)]
            self._refuse_overlap(f"workload_identity/{name}", item, overlapping)
        for name, item in sorted(cluster["role"].items()):
            if name in mine["role"]:
                continue
            for expression in _spiffe_paths(item, "allow"):
                if "*" not in expression and not expression.startswith("^"):
                    overlapping = [expression] if expression in paths else []
                else:
                    pattern = _path_pattern(expression)
                    overlapping = [path for path in self.paths if pattern.match(path)]
                self._refuse_overlap(f"role/{name}", item, overlapping)

    def _refuse_overlap(self, ref: str, item: Mapping[str, Any], overlapping: Iterable[str]) -> None:
        for path in overlapping:
            raise RefusalError(
                f"{clean(ref)} can also issue the SPIFFE ID path {path} of this stack ({self.owner(item)}), "
                "so its holders would assume this stack's AWS role; remove it or give the workload another "
                "path; nothing was changed"
            )

    def _check_bots(self, cluster: Mapping[str, Mapping[str, Any]]) -> None:
        for bot, role in sorted(self.bots.items()):
            found = cluster["bot"].get(bot)
            if found is None:
                raise RefusalError(
                    f"bot {bot} does not exist; create it with: tctl bots add {bot} --roles={role} "
                    "(nothing was changed)"
                )
            spec = found.get("spec") if isinstance(found.get("spec"), dict) else {}
            for held in spec.get("roles") or []:
                other = cluster["role"].get(str(held))
                foreign = other is not None and STACK_LABEL in labels(other) and not self.ours(other)
                if foreign and other is not None and _grants_something(other):
                    raise RefusalError(
                        f"bot {bot} also holds role {clean(held)}, and {self.owner(other)}; a bot serves "
                        "one stack (nothing was changed)"
                    )

    def _retire(self, cluster: Mapping[str, Mapping[str, Any]], retired: Mapping[str, list[str]]) -> None:
        for name in retired["workload_identity"]:
            if name in cluster["workload_identity"]:
                tctl("rm", f"workload_identity/{name}")
                print(f"  workload_identity/{name}: deleted (no longer in the config)")
        held = {
            str(role) for bot in cluster["bot"].values() for role in bot.get("spec", {}).get("roles") or []
        }
        for name in retired["role"]:
            if name not in cluster["role"]:
                continue
            if name not in held:
                try:
                    tctl("rm", f"role/{name}")
                    print(f"  role/{name}: deleted (no longer in the config)")
                    continue
                except RefusalError:
                    pass  # a user still holds it: empty it instead
            self._empty_role(name)
            print(f"  role/{name}: emptied (no longer in the config; still held, so not deleted)")

    def _empty_role(self, name: str) -> None:
        role = {
            "kind": "role",
            "version": "v7",
            "metadata": {
                "name": name,
                "description": f"Retired by teleport-roles-anywhere stack {self.stack}: grants nothing",
                "labels": {STACK_LABEL: self.stack, ANCHOR_LABEL: self.anchor},
            },
            "spec": {"allow": {}},
        }
        with tempfile.NamedTemporaryFile("w", suffix=".json", encoding="utf-8") as stream:
            json.dump(role, stream)
            stream.flush()
            tctl("create", "-f", stream.name)


def main(argv: Sequence[str] | None = None) -> int:
    """Apply the stack in this file's folder; return the exit status."""
    parser = argparse.ArgumentParser(prog="teleport/apply.sh", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--take-over",
        action="store_true",
        help="accept objects of this namespace made for another trust anchor (after replacing the anchor)",
    )
    args = parser.parse_args(argv)
    folder = Path(__file__).resolve().parent
    try:
        plan = json.loads((folder / PLAN_FILE).read_text(encoding="utf-8"))
        Applier(folder, plan, take_over=args.take_over).run()
    except RefusalError as refusal:
        print(f"error: teleport/apply.sh: {refusal}", file=sys.stderr)
        return 2
    except (OSError, ValueError, KeyError, TypeError) as err:
        print(f"error: teleport/apply.sh: {PLAN_FILE}: unreadable ({type(err).__name__})", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
