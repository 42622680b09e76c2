"""Run a CrossGuard policy pack on an offline plan: the pack's own policy objects, no Pulumi CLI.

The pack folder's ``__main__.py`` is loaded under another module name, so it defines ``POLICIES``
without starting the gRPC server ``PolicyPack`` runs under the CLI. Each policy then gets what the
CLI would hand it (type, inputs, options; the whole stack for stack policies) from the plan, at the
level the policy config gives it, in the file format of ``pulumi preview --policy-pack-config``.
Loading the folder runs its code: point ``--policy-pack`` only at a pack you would run with
``pulumi preview``.
"""

from __future__ import annotations

import inspect
import json
import runpy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pulumi.runtime import rpc
from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from roles_anywhere.errors import ConfigError
from roles_anywhere.plan.run import Plan

MAX_CONFIG_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Violation:
    """One policy violation: which policy, how enforced, on which resource, and how to fix it."""

    policy: str
    level: str
    urn: str | None
    message: str

    def to_json(self) -> dict[str, Any]:
        """The violation as ``plan --json`` prints it."""
        return {"policy": self.policy, "level": self.level, "urn": self.urn, "message": self.message}


def load_pack(folder: Path) -> list[Policy]:
    """The policies a pack folder defines (``POLICIES`` in its ``__main__.py``)."""
    if not (folder / "PulumiPolicy.yaml").is_file():
        raise ConfigError("--policy-pack", f"{folder} has no PulumiPolicy.yaml, so it is not a policy pack")
    entry = folder / "__main__.py"
    if not entry.is_file():
        raise ConfigError("--policy-pack", f"{folder} has no __main__.py")
    try:
        namespace = runpy.run_path(str(entry), run_name="policy_pack")
    except Exception as err:  # noqa: BLE001 - the pack's own code failed; say so in one line
        raise ConfigError("--policy-pack", f"{entry} failed to load: {type(err).__name__}: {err}") from None
    found = namespace.get("POLICIES")
    if not isinstance(found, list) or not found or not all(isinstance(p, Policy) for p in found):
        raise ConfigError("--policy-pack", f"{entry} must define POLICIES, a non-empty list of policies")
    return found


def read_policy_config(path: Path | None) -> dict[str, Any]:
    """``--policy-config``: ``{"<policy>" | "all": "<level>" | {"enforcementLevel": …, …}}``."""
    if path is None:
        return {}
    try:
        with path.open("rb") as stream:
            text = stream.read(MAX_CONFIG_BYTES + 1)
    except OSError as err:
        raise ConfigError("--policy-config", f"{path}: cannot read it ({err.strerror})") from None
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError("--policy-config", f"{path}: larger than {MAX_CONFIG_BYTES} bytes")
    try:
        config = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ConfigError("--policy-config", f"{path}: not JSON") from None
    if not isinstance(config, dict):
        raise ConfigError("--policy-config", f"{path}: must be a JSON object of policy names")
    return config


def check_plan(plan: Plan, pack: list[Policy], config: Mapping[str, Any] | None = None) -> list[Violation]:
    """Every violation of ``pack`` in ``plan``."""
    config = config or {}
    resources = [_policy_resource(r) for r in plan.resources]
    violations: list[Violation] = []
    for policy in pack:
        level, settings = _settings(policy, config)
        if level == EnforcementLevel.DISABLED.value:
            continue
        reporter = _Reporter(violations, policy.name, level)
        if isinstance(policy, ResourceValidationPolicy):
            for resource in resources:
                args = ResourceValidationArgs(
                    resource.resource_type,
                    resource.props,
                    resource.urn,
                    resource.name,
                    resource.opts,
                    None,
                    config=settings,
                )
                _settle(policy.validate(args, reporter.on(resource.urn)))
        elif isinstance(policy, StackValidationPolicy):
            _settle(policy.validate(StackValidationArgs(resources, config=settings), reporter.on(None)))
    return violations


@dataclass
class _Reporter:
    """``report_violation`` for one policy: collects its violations, on a resource or the stack."""

    violations: list[Violation]
    policy: str
    level: str

    def on(self, default_urn: str | None) -> Any:
        def report(message: str, urn: str | None = None) -> None:
            self.violations.append(Violation(self.policy, self.level, urn or default_urn, message))

        return report


def _settings(policy: Policy, config: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The policy's level and its other settings, from the config (its own entry over ``all``)."""
    level = (policy.enforcement_level or EnforcementLevel.ADVISORY).value
    settings: dict[str, Any] = {}
    for key in ("all", policy.name):
        entry = config.get(key)
        if isinstance(entry, str):
            level = _level(entry, key)
        elif isinstance(entry, dict):
            if "enforcementLevel" in entry:
                level = _level(entry["enforcementLevel"], key)
            if key == policy.name:
                settings = {k: v for k, v in entry.items() if k != "enforcementLevel"}
        elif entry is not None:
            raise ConfigError("--policy-config", f"{key}: must be a level or an object")
    return level, settings


def _level(text: Any, key: str) -> str:
    known = [level.value for level in EnforcementLevel]
    if text not in known:
        raise ConfigError("--policy-config", f"{key}: enforcement level must be one of {', '.join(known)}")
    return str(text)


def _policy_resource(resource: Any) -> PolicyResource:
    options = PolicyResourceOptions(
        protect=resource.protect,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
        parent=resource.parent,
    )
    return PolicyResource(
        resource.type, _unsecret(resource.inputs), resource.urn, resource.name, options, None, None, [], {}
    )


def _unsecret(value: Any) -> Any:
    """Inputs without Pulumi's secret wrappers: a policy sees the value, as under the CLI."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return _unsecret(value.get("value"))
        return {key: _unsecret(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_unsecret(item) for item in value]
    return value


def _settle(result: Any) -> None:
    """Policies may be async; run an awaitable one to the end."""
    if inspect.isawaitable(result):
        import asyncio  # noqa: PLC0415 - only for async policies

        asyncio.run(_awaited(result))


async def _awaited(result: Any) -> None:
    await result
