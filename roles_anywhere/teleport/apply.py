"""Apply one stack's Teleport side with tctl: every check first, then the changes.

``render`` copies this file verbatim into ``teleport/apply.py`` (``apply.sh`` runs it), so it uses the
standard library only and reads its instructions from ``objects.json`` beside it. It is code: run it
only from a folder you rendered yourself or reviewed. It trusts nothing the cluster says: existence
and ownership come from tctl's JSON listings (never from error texts); it never evaluates a foreign
regular expression; every name it acts on is this stack's; text it prints is printable ASCII.

Exit status: 0 applied, 2 refused or failed (one line on stderr; a refusal changes nothing).
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import re
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

STACK_LABEL = "teleport-roles-anywhere/stack"
ANCHOR_LABEL = "teleport-roles-anywhere/trust-anchor"
PLAN_FILE = "objects.json"
MAX_PLAN_BYTES = 16 * 1024 * 1024
MAX_RESOURCE_BYTES = 1024 * 1024
MAX_OUTPUT = 64 * 1024 * 1024
READ_TIMEOUT = 300
KINDS = ("workload_identity", "role")
MODES = ("workload-identity", "legacy")
TEMPLATE = re.compile(r"\{\{[^{}]+?\}\}")  # Teleport's lib/workloadidentity/expression/template.go
NAMESPACE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?")
BOT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
RESOURCE_FILE = re.compile(r"(?P<kind>workload_identity|role)-[A-Za-z0-9][A-Za-z0-9._@+=-]{0,99}\.yaml")
MAX_NAME = 253


class RefusalError(Exception):
    """Applying is unsafe or impossible; raised before the first change unless a change itself failed."""


def clean(text: object, limit: int = 120) -> str:
    """Text made safe to print: printable ASCII, one line, bounded (no terminal escapes)."""
    printable = "".join(c if " " <= c <= "~" else "?" for c in str(text))
    return printable[:limit] + ("..." if len(printable) > limit else "")


def tctl_read(*args: str) -> str:
    """A read-only tctl command's output; a failure or a timeout is a ``RefusalError`` (nothing changed)."""
    try:
        result = subprocess.run(["tctl", *args], capture_output=True, check=False, timeout=READ_TIMEOUT)
    except FileNotFoundError:
        raise RefusalError("tctl is not on PATH (Teleport's client tools, signed in as an admin)") from None
    except subprocess.TimeoutExpired:
        raise RefusalError(f"`tctl {' '.join(args[:2])}` did not answer within {READ_TIMEOUT} s") from None
    if result.returncode != 0:
        lines = result.stderr.decode("utf-8", "replace").strip().splitlines() or ["no message"]
        raise RefusalError(f"`tctl {' '.join(args[:2])}` failed: {clean(lines[0])}")
    if len(result.stdout) > MAX_OUTPUT:
        raise RefusalError(f"`tctl {' '.join(args[:2])}` printed more than {MAX_OUTPUT} bytes")
    return result.stdout.decode("utf-8", "replace")


def tctl_answers(*args: str) -> tuple[bool, str]:
    """Whether a read-only tctl command succeeds, and the first line of its error if not.

    For ``--no-workload-identities``, which must learn whether the cluster can list WorkloadIdentities
    without taking tctl's failure for an answer; a missing tctl or a timeout still refuses.
    """
    try:
        result = subprocess.run(["tctl", *args], capture_output=True, check=False, timeout=READ_TIMEOUT)
    except FileNotFoundError:
        raise RefusalError("tctl is not on PATH (Teleport's client tools, signed in as an admin)") from None
    except subprocess.TimeoutExpired:
        raise RefusalError(f"`tctl {' '.join(args[:2])}` did not answer within {READ_TIMEOUT} s") from None
    lines = result.stderr.decode("utf-8", "replace").strip().splitlines() or ["no message"]
    return result.returncode == 0, clean(lines[0])


def tctl_change(*args: str) -> None:
    """A changing tctl command, on the terminal (tctl may ask for MFA); a failure stops the run."""
    if subprocess.run(["tctl", *args], check=False).returncode != 0:
        raise RefusalError(f"`tctl {clean(' '.join(args))}` failed; the steps above it were applied")


def listing(kind: str) -> dict[str, dict[str, Any]]:
    """Every object of ``kind`` in the cluster, by name, from ``tctl get KIND --format=json``."""
    text = tctl_read("get", kind, "--format=json")
    try:
        data = json.loads(text) if text.strip() else []
    except (ValueError, RecursionError):
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


def _field(item: Mapping[str, Any], *path: str) -> Any:
    node: Any = item
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def grants_workload_identities(role: Mapping[str, Any]) -> bool:
    """Whether a role grants WorkloadIdentities: ``workload_identity_labels`` or a rule on the kind.

    Every role this project renders in workload-identity mode has both; legacy roles and emptied
    ones have neither. Such a role of this namespace means its WorkloadIdentities may be live.
    """
    if _field(role, "spec", "allow", "workload_identity_labels"):
        return True
    rules = _field(role, "spec", "allow", "rules")
    for rule in rules if isinstance(rules, list) else []:
        resources = _field(rule, "resources")
        if isinstance(resources, list) and "workload_identity" in resources:
            return True
    return False


def held_roles(item: Mapping[str, Any]) -> list[str]:
    """The roles a bot (``spec.roles``) or user (``spec.roles``) holds."""
    roles = _field(item, "spec", "roles")
    return [str(role) for role in roles] if isinstance(roles, list) else []


def pieces_match(pieces: Sequence[str], path: str) -> bool:
    """Whether ``path`` is the pieces in order with any text (possibly none) between them.

    Exact and linear: each middle piece is found leftmost, which is optimal when gaps are free.
    """
    if len(pieces) == 1:
        return path == pieces[0]
    first, *middle, last = pieces
    if len(first) + len(last) > len(path) or not path.startswith(first) or not path.endswith(last):
        return False
    position, end = len(first), len(path) - len(last)
    for piece in middle:
        found = path.find(piece, position, end)
        if found < 0:
            return False
        position = found + len(piece)
    return True


def legacy_rule_could_issue(expression: str, path: str) -> bool:
    """Teleport's MatchString: ``*`` is any text (``/`` too); a ``^…$`` regex is never run, only feared."""
    if expression.startswith("^") and expression.endswith("$"):
        return True
    return pieces_match(expression.split("*"), path)


def template_could_issue(spiffe_id: str, path: str) -> bool:
    """Whether a ``spiffe.id`` could render as ``path``: each ``{{ … }}`` may become any text, even none."""
    return pieces_match(TEMPLATE.split(spiffe_id), path)


def read_regular_file(path: Path, limit: int) -> bytes:
    """At most ``limit`` bytes of a regular file: never through a link, never blocking on a FIFO."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as err:
        raise RefusalError(f"{path.name}: cannot read ({err.strerror}; a link is never followed)") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise RefusalError(f"{path.name}: not a regular file")
    with os.fdopen(fd, "rb") as stream:
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise RefusalError(f"{path.name}: larger than {limit} bytes")
    return data


class Plan:
    """``objects.json``, checked as strictly as render wrote it: a hand-edited one is refused."""

    def __init__(self, document: Any) -> None:
        if not isinstance(document, dict):
            raise RefusalError(f"{PLAN_FILE}: not a JSON object")
        self.stack = self._text(document, "stack")
        if not NAMESPACE.fullmatch(self.stack):
            raise RefusalError(f"{PLAN_FILE}: stack is not a namespace")
        self.anchor = self._text(document, "trustAnchor")
        if not self.anchor.startswith("arn:") or clean(self.anchor) != self.anchor:
            raise RefusalError(f"{PLAN_FILE}: trustAnchor is not an ARN")
        self.mode = self._text(document, "mode")
        if self.mode not in MODES:
            raise RefusalError(f"{PLAN_FILE}: mode is not one of {', '.join(MODES)}")
        self.current = self._objects(document, "current")
        self.retired = self._objects(document, "retired")
        if self.mode == "legacy" and self.current["workload_identity"]:
            raise RefusalError(f"{PLAN_FILE}: legacy mode renders no WorkloadIdentity")
        self.files = self._files(document)
        self.paths = self._list(document, "spiffePaths")
        if not all(path.startswith("/") and path.isprintable() for path in self.paths):
            raise RefusalError(f"{PLAN_FILE}: spiffePaths must be paths")
        self.bots = self._principals(document, "bots", "bot")
        self.users = self._principals(document, "users", "user")
        if not all(BOT_NAME.fullmatch(bot) for bot in self.bots):
            raise RefusalError(f"{PLAN_FILE}: bots holds a name that is not a bot name")

    @staticmethod
    def _text(document: Mapping[str, Any], key: str) -> str:
        value = document.get(key)
        if not isinstance(value, str):
            raise RefusalError(f"{PLAN_FILE}: {key} must be text")
        return value

    @staticmethod
    def _list(document: Mapping[str, Any], key: str) -> list[str]:
        value = document.get(key)
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise RefusalError(f"{PLAN_FILE}: {key} must be a list of text")
        return value

    def _name(self, name: str, where: str) -> str:
        valid = 0 < len(name) <= MAX_NAME and name.isprintable() and not any(c in name for c in " /,")
        if not valid or not name.startswith(f"{self.stack}."):
            raise RefusalError(
                f"{PLAN_FILE}: {where} holds {clean(name, 60)!r}, not a name of stack {self.stack}"
            )
        return name

    def _objects(self, document: Mapping[str, Any], key: str) -> dict[str, list[str]]:
        value = document.get(key)
        if not isinstance(value, dict) or set(value) != set(KINDS):
            raise RefusalError(f"{PLAN_FILE}: {key} must map {' and '.join(KINDS)} to names")
        return {kind: [self._name(n, f"{key}.{kind}") for n in self._list(value, kind)] for kind in KINDS}

    def _files(self, document: Mapping[str, Any]) -> dict[str, str]:
        value = document.get("files")
        expected = {f"{kind}/{name}" for kind in KINDS for name in self.current[kind]}
        if not isinstance(value, dict) or set(value) != expected:
            raise RefusalError(f"{PLAN_FILE}: files must name exactly one file per current object")
        for ref, file in value.items():
            match = RESOURCE_FILE.fullmatch(file) if isinstance(file, str) else None
            if match is None or match.group("kind") != ref.split("/", 1)[0]:
                raise RefusalError(f"{PLAN_FILE}: files holds {clean(file, 60)!r}, not a file render writes")
        return dict(value)

    def _principals(self, document: Mapping[str, Any], key: str, kind: str) -> dict[str, str]:
        value = document.get(key)
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise RefusalError(f"{PLAN_FILE}: {key} must map names to roles")
        for principal, role in value.items():
            if role != f"{self.stack}.{kind}.{principal}" or role not in self.current["role"]:
                raise RefusalError(
                    f"{PLAN_FILE}: {key} gives {clean(principal, 60)} a role render never made"
                )
        return dict(value)


class Applier:
    """The checks and changes for one stack, from its ``objects.json``."""

    def __init__(self, folder: Path, plan: Plan, *, take_over: bool, no_workload_identities: bool) -> None:
        self.folder = folder
        self.plan = plan
        self.stack = plan.stack
        self.legacy = plan.mode == "legacy"
        self.take_over = take_over
        self.no_workload_identities = no_workload_identities
        if no_workload_identities and (not self.legacy or any(plan.current["workload_identity"])):
            raise RefusalError("--no-workload-identities is for legacy stacks on clusters without them")
        if no_workload_identities and plan.retired["workload_identity"]:
            raise RefusalError("--no-workload-identities: objects.json records WorkloadIdentities to delete")

    def ours(self, item: Mapping[str, Any]) -> bool:
        """Labelled with this stack's namespace and trust anchor (any anchor with ``--take-over``)."""
        found = labels(item)
        same_anchor = found.get(ANCHOR_LABEL) == self.plan.anchor or self.take_over
        return found.get(STACK_LABEL) == self.stack and same_anchor

    def owner(self, item: Mapping[str, Any]) -> str:
        """Who made ``item``, for a refusal message (cluster text cleaned)."""
        found = labels(item)
        if STACK_LABEL not in found:
            return "no teleport-roles-anywhere stack made it (it has no teleport-roles-anywhere/stack label)"
        if found[STACK_LABEL] == self.stack:
            return (
                f"another stack with the namespace '{self.stack}' made it (trust anchor "
                f"{clean(found.get(ANCHOR_LABEL, 'unknown'))}, not {self.plan.anchor}); give each stack its "
                "own teleport.namespace, or pass --take-over if this stack's trust anchor was replaced"
            )
        return f"it belongs to stack '{clean(found[STACK_LABEL], 40)}' (label {STACK_LABEL})"

    def run(self) -> None:
        """Check everything, then change: every refusal comes before the first change."""
        cluster = {"role": listing("roles"), "bot": listing("bots")}
        if self.no_workload_identities:
            self._check_no_workload_identities(cluster["role"])
            cluster["workload_identity"] = {}
        else:
            cluster["workload_identity"] = listing("workload_identity")
        retired = self._retired(cluster)
        self._check_files()
        self._check_ownership(cluster, retired)
        self._check_other_issuers(cluster, retired)
        self._check_bots(cluster)
        if self.legacy:
            self._check_legacy_holders(cluster["bot"], listing("users"))
        print(f"Checks passed for stack '{self.stack}'; applying.")
        self._retire(cluster, retired)
        for kind in KINDS:
            for name in self.plan.current[kind]:
                tctl_change("create", "-f", str(self.folder / self.plan.files[f"{kind}/{name}"]))
                print(f"  {kind}/{clean(name)}: created or replaced")
        for bot, role in sorted(self.plan.bots.items()):
            if role not in held_roles(cluster["bot"][bot]):
                tctl_change("bots", "update", bot, "--add-roles", role)
            print(f"  bot {clean(bot)}: holds {clean(role)}")
        for user, role in sorted(self.plan.users.items()):
            print(f"  user {clean(user)}: needs {clean(role)} (tctl edit user/{clean(user)})")

    def _check_no_workload_identities(self, roles: Mapping[str, Mapping[str, Any]]) -> None:
        """``--no-workload-identities`` skips listing them, so it must be true that there are none to see.

        Without the listing this stack's WorkloadIdentities are neither found nor deleted: after a
        switch from workload-identity mode they would stay live, and a principal the config dropped
        would keep obtaining the SVID (through the wildcard preset, say). So the flag is refused when
        the cluster can list them after all, and when a role labelled with this namespace grants them
        (only workload-identity mode renders such roles, so its WorkloadIdentities may still exist,
        whatever made the listing fail: an old tctl, missing read access, a passing error).
        """
        works, error = tctl_answers("get", "workload_identity", "--format=json")
        if works:
            raise RefusalError(
                "--no-workload-identities: this cluster lists WorkloadIdentities (`tctl get "
                "workload_identity` works), so they are checked and this stack's taken back: run apply.sh "
                "without it (nothing was changed)"
            )
        for name, role in sorted(roles.items()):
            if labels(role).get(STACK_LABEL) == self.stack and grants_workload_identities(role):
                raise RefusalError(
                    f"--no-workload-identities: role/{clean(name)} of namespace '{self.stack}' grants "
                    f"WorkloadIdentities, so this stack's may be live, but `tctl get workload_identity` "
                    f"failed ({error}); use a tctl that lists them (Teleport >= 17.2.7, read on "
                    "workload_identity) and run apply.sh without the flag (nothing was changed)"
                )

    def _retired(self, cluster: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
        """Recorded as retired, or labelled as this stack's in the cluster, and not rendered now."""
        retired: dict[str, list[str]] = {}
        for kind in KINDS:
            labelled = {name for name, item in cluster[kind].items() if self.ours(item)}
            names = (labelled | set(self.plan.retired[kind])) - set(self.plan.current[kind])
            retired[kind] = sorted(name for name in names if name.startswith(f"{self.stack}."))
        return retired

    def _check_files(self) -> None:
        """Each file declares the object objects.json says it holds, with this stack's label, and only it."""
        for ref, file in sorted(self.plan.files.items()):
            kind, name = ref.split("/", 1)
            lines = read_regular_file(self.folder / file, MAX_RESOURCE_BYTES).decode("utf-8", "replace")
            lines_list = lines.splitlines()
            declared = (
                lines_list.count(f"kind: {kind}") == 1
                and [line for line in lines_list if line.startswith("  name: ")]
                == [f"  name: {json.dumps(name, ensure_ascii=False)}"]
                and f'    "{STACK_LABEL}": "{self.stack}"' in lines_list
                and not any(
                    line.startswith(("---", "...", "kind:")) and line != f"kind: {kind}"
                    for line in lines_list
                )
            )
            if not declared:
                raise RefusalError(
                    f"{file} does not declare {kind}/{clean(name)} as render wrote it; render again"
                )

    def _check_ownership(
        self, cluster: Mapping[str, Mapping[str, Any]], retired: Mapping[str, list[str]]
    ) -> None:
        for kind in KINDS:
            for name in [*self.plan.current[kind], *retired[kind]]:
                item = cluster[kind].get(name)
                if item is not None and not self.ours(item):
                    raise RefusalError(
                        f"{kind}/{clean(name)} exists but {self.owner(item)}; nothing was changed"
                    )

    def _check_other_issuers(
        self, cluster: Mapping[str, Mapping[str, Any]], retired: Mapping[str, list[str]]
    ) -> None:
        """Whoever else can issue one of our SPIFFE IDs would assume our AWS roles: refuse."""
        mine = {kind: set(self.plan.current[kind]) | set(retired[kind]) for kind in KINDS}
        paths = set(self.plan.paths)
        ordered = sorted(paths)

        def starting_with(prefix: str) -> list[str]:
            """Our paths that start with ``prefix``: a pattern's literal start narrows them first."""
            first = bisect.bisect_left(ordered, prefix)
            last = first
            while last < len(ordered) and ordered[last].startswith(prefix):
                last += 1
            return ordered[first:last]

        for name, item in sorted(cluster["workload_identity"].items()):
            if name in mine["workload_identity"]:
                continue
            issued = str(_field(item, "spec", "spiffe", "id") or "")
            if "{{" not in issued:  # one exact ID: a set lookup
                self._refuse_overlap(f"workload_identity/{name}", item, [issued] if issued in paths else [])
            else:
                self._refuse_overlap(
                    f"workload_identity/{name}",
                    item,
                    (p for p in starting_with(TEMPLATE.split(issued)[0]) if template_could_issue(issued, p)),
                )
        for name, item in sorted(cluster["role"].items()):
            if name in mine["role"]:
                continue
            entries = _field(item, "spec", "allow", "spiffe")
            for entry in entries if isinstance(entries, list) else []:
                expression = str(_field(entry, "path") or "")
                if "*" not in expression and not expression.startswith("^"):
                    self._refuse_overlap(f"role/{name}", item, [expression] if expression in paths else [])
                else:
                    self._refuse_overlap(
                        f"role/{name}",
                        item,
                        (
                            p
                            for p in (
                                self.plan.paths
                                if expression.startswith("^")
                                else starting_with(expression.split("*", maxsplit=1)[0])
                            )
                            if legacy_rule_could_issue(expression, p)
                        ),
                    )

    def _refuse_overlap(self, ref: str, item: Mapping[str, Any], overlapping: Iterable[str]) -> None:
        for path in overlapping:
            raise RefusalError(
                f"{clean(ref)} can also issue the SPIFFE ID path {clean(path)} of this stack "
                f"({self.owner(item)}), so its holders would assume this stack's AWS role; remove it or give "
                "the workload another path; nothing was changed"
            )

    def _check_bots(self, cluster: Mapping[str, Mapping[str, Any]]) -> None:
        for bot, role in sorted(self.plan.bots.items()):
            found = cluster["bot"].get(bot)
            if found is None:
                raise RefusalError(
                    f"bot {bot} does not exist; create it with: tctl bots add {bot} --roles={role} "
                    "(nothing was changed)"
                )
            for held in held_roles(found):
                other = cluster["role"].get(held)
                foreign = other is not None and STACK_LABEL in labels(other) and not self.ours(other)
                if foreign and other is not None and _field(other, "spec", "allow"):
                    raise RefusalError(
                        f"bot {bot} also holds role {clean(held)}, and {self.owner(other)}; a bot serves "
                        "one stack (nothing was changed)"
                    )

    def _check_legacy_holders(
        self, bots: Mapping[str, Mapping[str, Any]], users: Mapping[str, Mapping[str, Any]]
    ) -> None:
        """Legacy roles cannot name their holder: only the principal a role is for may hold it."""
        holders = [("bot", name, item) for name, item in bots.items()]
        holders += [("user", name, item) for name, item in users.items()]
        for kind, name, item in holders:
            for role in held_roles(item):
                if not role.startswith(f"{self.stack}.") or role == f"{self.stack}.{kind}.{name}":
                    continue
                raise RefusalError(
                    f"{kind} {clean(name)} holds role {clean(role)}, which is not its own; in legacy mode a "
                    "role of this stack issues its SPIFFE IDs to whoever holds it: take it away (nothing was "
                    "changed)"
                )

    def _retire(self, cluster: Mapping[str, Mapping[str, Any]], retired: Mapping[str, list[str]]) -> None:
        for name in retired["workload_identity"]:
            if name in cluster["workload_identity"]:
                tctl_change("rm", f"workload_identity/{name}")
                print(f"  workload_identity/{clean(name)}: deleted (no longer in the config)")
        held = {role for bot in cluster["bot"].values() for role in held_roles(bot)}
        for name in retired["role"]:
            if name not in cluster["role"]:
                continue
            if name not in held:
                try:
                    tctl_change("rm", f"role/{name}")
                    print(f"  role/{clean(name)}: deleted (no longer in the config)")
                    continue
                except RefusalError:
                    print(f"  role/{clean(name)}: still held by a user, so emptied instead")
            self._empty_role(name)
            print(f"  role/{clean(name)}: emptied (no longer in the config; still held, so not deleted)")

    def _empty_role(self, name: str) -> None:
        role = {
            "kind": "role",
            "version": "v7",
            "metadata": {
                "name": name,
                "description": f"Retired by teleport-roles-anywhere stack {self.stack}: grants nothing",
                "labels": {STACK_LABEL: self.stack, ANCHOR_LABEL: self.plan.anchor},
            },
            "spec": {"allow": {}},
        }
        with tempfile.NamedTemporaryFile("w", suffix=".json", encoding="utf-8") as stream:
            json.dump(role, stream)
            stream.flush()
            tctl_change("create", "-f", stream.name)


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """objects.json with a key twice (last-wins in json) is not what render wrote: refuse it."""
    if len({key for key, _ in pairs}) != len(pairs):
        raise ValueError("a key appears twice")
    return dict(pairs)


def main(argv: Sequence[str] | None = None) -> int:
    """Apply the stack in this file's folder; return the exit status."""
    parser = argparse.ArgumentParser(prog="teleport/apply.sh", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--take-over",
        action="store_true",
        help="accept objects of this namespace made for another trust anchor (after replacing the anchor)",
    )
    parser.add_argument(
        "--no-workload-identities",
        action="store_true",
        help="legacy stacks on a cluster from before WorkloadIdentity resources (Teleport < 17.2.7); refused "
        "where tctl lists them or a role of this namespace grants them",
    )
    args = parser.parse_args(argv)
    folder = Path(__file__).resolve().parent
    try:
        try:
            document = json.loads(
                read_regular_file(folder / PLAN_FILE, MAX_PLAN_BYTES), object_pairs_hook=_unique
            )
        except (ValueError, RecursionError):
            raise RefusalError(f"{PLAN_FILE}: not JSON; render again") from None
        applier = Applier(
            folder,
            Plan(document),
            take_over=args.take_over,
            no_workload_identities=args.no_workload_identities,
        )
        applier.run()
    except RefusalError as refusal:
        print(f"error: teleport/apply.sh: {refusal}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # noqa: BLE001 - one line, never a traceback
        print(
            f"error: teleport/apply.sh: stopped ({type(err).__name__}); nothing after it was changed",
            file=sys.stderr,
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
