"""Read a ``Pulumi.<stack>.yaml`` the way the Pulumi CLI hands it to a program.

The CLI passes every config value as text, objects as JSON. We do the same, so the program sees
identical input whether it runs under ``pulumi up`` or under ``roles-anywhere plan``.

How big a stack file may be follows from the largest stack we support, ``MAX_WORKLOADS`` (5,000)
workloads, not from a round number: 1 KiB per workload (a workload with three managed policies, a
two-statement inline policy, two bots, a user and three tags is 1,064 bytes in YAML; one with two
managed policies and a bot, 226) plus 1 MiB for everything else. Bytes alone do not bound the work,
though: YAML made of one-character values costs about ten times more per byte than a real stack (a
6 MiB flow list would take ~20 s and ~1.3 GB to load). So the file's YAML events are counted first
(1.6 µs each, no tree built) against a budget sized the same way: 96 per workload (the workload
above has 72) plus 20,000.

The Pulumi CLI then hands the whole config to the Python program in one environment variable,
``PULUMI_CONFIG``, and Linux refuses to start a process with any one variable over 128 KiB
(``MAX_ARG_STRLEN``): ``pulumi up`` fails with "argument list too long" (pulumi/pulumi#8680) for a
stack config of about 600 such workloads, long before this file's limits. ``plan`` runs offline and
is not affected, so it only warns (``language_host_warning``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from roles_anywhere import PROJECT
from roles_anywhere.config import strict_yaml
from roles_anywhere.config.model import MAX_WORKLOADS
from roles_anywhere.errors import ConfigError, read_user_file

_STACK_FILE = re.compile(r"Pulumi\.(?P<stack>[^/]+)\.ya?ml")
STACK_FILE_BYTES_PER_WORKLOAD = 1024
STACK_FILE_BASE_BYTES = 1024 * 1024  # the CA bundle inline, stack-wide keys, comments
MAX_STACK_FILE_BYTES = STACK_FILE_BASE_BYTES + MAX_WORKLOADS * STACK_FILE_BYTES_PER_WORKLOAD  # 6,168,576
YAML_EVENTS_PER_WORKLOAD = 96
YAML_BASE_EVENTS = 20_000
MAX_STACK_FILE_EVENTS = YAML_BASE_EVENTS + MAX_WORKLOADS * YAML_EVENTS_PER_WORKLOAD  # 500,000
# Linux's MAX_ARG_STRLEN (32 pages) holds "PULUMI_CONFIG=", the JSON and the terminating NUL.
LANGUAGE_HOST_CONFIG_BYTES = 32 * 4096 - len("PULUMI_CONFIG=") - 1
_YAML_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SCHEMA_KEYS = frozenset({"type", "default", "description", "secret", "items"})
_PROJECT_SEARCH_DEPTH = 4  # the stack file's folder and three above (stackConfigDir is usually one down)
_REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d+")


@dataclass(frozen=True)
class StackFile:
    """A parsed stack config file: its stack name and every config value as Pulumi would pass it."""

    path: Path
    stack: str
    config: dict[str, str]

    def project_values(self) -> dict[str, str]:
        """This project's keys without the namespace (``cluster``, ``workloads``, …)."""
        return project_values(self.config)

    def language_host_config(self) -> str:
        """``PULUMI_CONFIG`` as the Pulumi CLI sets it when it starts the program with this config.

        The CLI (Go's ``encoding/json``) sends objects as compact JSON text (keys sorted) inside a
        compact JSON object (keys sorted), and escapes ``<``, ``>``, ``&``, U+2028 and U+2029 as six-character
        sequences.
        """
        compact = {key: _compact(self.config[key]) for key in sorted(self.config)}
        text = json.dumps(compact, separators=(",", ":"), ensure_ascii=False)
        for char in "<>&\u2028\u2029":
            text = text.replace(char, f"\\u{ord(char):04x}")
        return text

    def language_host_warning(self) -> str | None:
        """One line when ``pulumi up`` could not even start the program on Linux (see the module)."""
        size = len(self.language_host_config().encode())
        if size <= LANGUAGE_HOST_CONFIG_BYTES:
            return None
        return (
            f"{self.path}: the Pulumi CLI passes this config to the program as one environment variable "
            f"(PULUMI_CONFIG) of about {size:,} bytes, over the {LANGUAGE_HOST_CONFIG_BYTES:,} Linux "
            "allows for one variable, so pulumi preview and pulumi up fail there with 'argument list "
            "too long' (pulumi/pulumi#8680; plan and render are not affected): split the stack, or "
            "declare the workloads in code with the Federation component"
        )

    def aws_region(self) -> str:
        """``aws:region``, required offline because every Roles Anywhere ARN names its region."""
        region = self.config.get("aws:region")
        if region is None:
            raise ConfigError("aws:region", "is required (pulumi config set aws:region eu-west-1)")
        if not _REGION.fullmatch(region):
            raise ConfigError("aws:region", f"{region!r} is not an AWS region name (e.g. eu-west-1)")
        return region


def project_values(config: Mapping[str, str]) -> dict[str, str]:
    """The ``teleport-roles-anywhere:`` keys without their namespace.

    Keys under another namespace are invisible to the program; when ``cluster`` is missing here but
    present there (the project was renamed in Pulumi.yaml, or keys were copied from another project),
    say so instead of a bare "is required".
    """
    prefix = f"{PROJECT}:"
    values = {key.removeprefix(prefix): value for key, value in config.items() if key.startswith(prefix)}
    for required in ("cluster", "caBundle", "workloads"):
        if required in values:
            continue
        foreign = sorted(k for k in config if k.endswith(f":{required}") and not k.startswith(prefix))
        if foreign:
            raise ConfigError(
                required,
                f"is required under '{prefix}'; the config has {foreign[0]!r}, in another namespace. "
                f"This program reads only '{prefix}' keys: keep 'name: {PROJECT}' in Pulumi.yaml "
                "or rename the keys",
            )
    return values


def project_config(stack_path: Path) -> dict[str, str]:
    """Project-level config from the nearest ``Pulumi.yaml`` above the stack file, as Pulumi passes it.

    Pulumi uses these as defaults for every stack: a plain value, ``{value: …}``, or a schema's
    ``default``; a key without a namespace belongs to the project named there.
    """
    folders = [stack_path.resolve().parent, *stack_path.resolve().parent.parents][:_PROJECT_SEARCH_DEPTH]
    project_file = next(
        (f / name for f in folders for name in ("Pulumi.yaml", "Pulumi.yml") if (f / name).is_file()), None
    )
    if project_file is None:
        return {}
    document = _yaml_document(project_file)
    if not isinstance(document, dict):
        raise ConfigError(str(project_file), "not a Pulumi project file")
    name, entries = document.get("name"), document.get("config") or {}
    if not isinstance(entries, dict):
        raise ConfigError(f"{project_file}: config", "must be a mapping of keys to values")
    values: dict[str, str] = {}
    for key, entry in entries.items():
        full = str(key) if ":" in str(key) else f"{name}:{key}"
        if isinstance(entry, dict) and "value" in entry:
            values[full] = _as_pulumi_text(full, entry["value"])
        elif isinstance(entry, dict):
            if not set(entry) <= _SCHEMA_KEYS:
                raise ConfigError(
                    f"{project_file}: config.{key}",
                    "an object value must sit under 'value:' (otherwise Pulumi reads it as a schema); "
                    "encrypted values cannot be read offline",
                )
            if "default" in entry:  # a schema ({type, default, …}); without a default it sets nothing
                values[full] = _as_pulumi_text(full, entry["default"])
        else:
            values[full] = _as_pulumi_text(full, entry)
    return values


def _compact(value: str) -> str:
    """A config value as the Pulumi CLI sends it: objects as compact JSON, the rest as they are."""
    if value[:1] not in ("{", "["):
        return value
    try:
        return json.dumps(json.loads(value), separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    except ValueError:
        return value


def _check_event_budget(text: str, path: Path) -> None:
    """Refuse a file with more YAML events than the largest stack needs, before any tree is built."""
    loader = _YAML_LOADER(text)
    events = 0
    try:
        while loader.check_event():
            loader.get_event()  # type: ignore[no-untyped-call]
            events += 1
            if events > MAX_STACK_FILE_EVENTS:
                raise ConfigError(
                    str(path),
                    f"holds more than {MAX_STACK_FILE_EVENTS:,} YAML events (values, keys and "
                    f"collections); {MAX_WORKLOADS:,} workloads need at most about "
                    f"{YAML_EVENTS_PER_WORKLOAD} each, so it is not a stack file we can plan",
                )
    finally:
        loader.dispose()


def _yaml_document(path: Path) -> Any:
    try:
        text = read_user_file(path, limit=MAX_STACK_FILE_BYTES)
        _check_event_budget(text, path)
        return strict_yaml.load(text)
    except strict_yaml.StrictYamlError as err:
        raise ConfigError(str(path), f"refused: {err}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or "syntax error"
        raise ConfigError(str(path), f"not valid YAML{where}: {problem}") from None


def read_stack_file(path: Path) -> StackFile:
    """Parse ``path`` over the project-level config of its ``Pulumi.yaml``; errors name the file."""
    document = _yaml_document(path)
    if not isinstance(document, dict) or not isinstance(document.get("config"), dict):
        raise ConfigError(str(path), "not a Pulumi stack config: expected a top-level 'config:' mapping")
    match = _STACK_FILE.fullmatch(path.name)
    stack = match.group("stack") if match else path.stem
    stack_config = {str(key): _as_pulumi_text(str(key), value) for key, value in document["config"].items()}
    for key in stack_config:
        if ":" not in key:
            raise ConfigError(key, f"config keys must be namespaced, e.g. {PROJECT}:{key}")
    config = {**project_config(path), **stack_config}  # the stack's values win, as in Pulumi
    return StackFile(path=path, stack=stack, config=config)


def _as_pulumi_text(key: str, value: Any) -> str:
    if isinstance(value, dict) and set(value) == {"secure"}:
        raise ConfigError(key, "is an encrypted (secure) value; plan runs offline and cannot decrypt it")
    if isinstance(value, bool):
        return "true" if value else "false"
    try:
        if isinstance(value, (dict, list)):
            return json.dumps(value, default=str)
        return "" if value is None else str(value)
    except ValueError:  # an integer beyond Python's 4,300-digit limit for text
        raise ConfigError(key, "holds a number too long to be read as text") from None
