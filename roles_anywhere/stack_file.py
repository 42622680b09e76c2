"""Read a ``Pulumi.<stack>.yaml`` the way the Pulumi CLI hands it to a program.

The CLI passes every config value as text, objects as JSON. We do the same, so the program sees
identical input whether it runs under ``pulumi up`` or under ``roles-anywhere plan``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from . import PROJECT
from .errors import ConfigError, read_user_file

_STACK_FILE = re.compile(r"Pulumi\.(?P<stack>[^/]+)\.ya?ml")
_REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d+")


@dataclass(frozen=True)
class StackFile:
    """A parsed stack config file: its stack name and every config value as Pulumi would pass it."""

    path: Path
    stack: str
    config: dict[str, str]

    def project_values(self) -> dict[str, str]:
        """This project's keys without the namespace (``cluster``, ``workloads``, …)."""
        prefix = f"{PROJECT}:"
        return {k.removeprefix(prefix): v for k, v in self.config.items() if k.startswith(prefix)}

    def aws_region(self) -> str:
        """``aws:region``, required offline because every Roles Anywhere ARN names its region."""
        region = self.config.get("aws:region")
        if region is None:
            raise ConfigError("aws:region", "is required (pulumi config set aws:region eu-west-1)")
        if not _REGION.fullmatch(region):
            raise ConfigError("aws:region", f"{region!r} is not an AWS region name (e.g. eu-west-1)")
        return region


def read_stack_file(path: Path) -> StackFile:
    """Parse ``path``; a missing, unreadable or malformed file is a ``ConfigError`` naming it."""
    text = read_user_file(path)
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or "syntax error"
        raise ConfigError(str(path), f"not valid YAML{where}: {problem}") from None
    if not isinstance(document, dict) or not isinstance(document.get("config"), dict):
        raise ConfigError(str(path), "not a Pulumi stack config: expected a top-level 'config:' mapping")
    match = _STACK_FILE.fullmatch(path.name)
    stack = match.group("stack") if match else path.stem
    config = {str(key): _as_pulumi_text(str(key), value) for key, value in document["config"].items()}
    for key in config:
        if ":" not in key:
            raise ConfigError(key, f"config keys must be namespaced, e.g. {PROJECT}:{key}")
    return StackFile(path=path, stack=stack, config=config)


def _as_pulumi_text(key: str, value: Any) -> str:
    if isinstance(value, dict) and set(value) == {"secure"}:
        raise ConfigError(key, "is an encrypted (secure) value; plan runs offline and cannot decrypt it")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return "" if value is None else str(value)
