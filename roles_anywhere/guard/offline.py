"""Run a CrossGuard policy pack on an offline plan: the pack's own policy objects, no Pulumi CLI.

The pack folder's ``__main__.py`` is loaded under another module name, so it defines ``POLICIES``
without starting the gRPC server ``PolicyPack`` runs under the CLI. The policies then run behind
pulumi-policy's own analyzer (the servicer that gRPC server serves), called with the requests the
engine sends: ``Configure`` with each policy's level and settings (from a file in the format of
``pulumi preview --policy-pack-config``), ``Analyze`` per resource with its inputs, ``AnalyzeStack``
with every resource's outputs. So a policy sees exactly what it sees under the CLI: proxies rather
than dicts and lists, numbers as floats, secrets unwrapped. Loading the folder runs its code: point
``--policy-pack`` only at a pack you would run with ``pulumi preview``.
"""

from __future__ import annotations

import json
import runpy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pulumi.runtime import proto
from pulumi_policy import EnforcementLevel, Policy
from pulumi_policy.policy import _PolicyAnalyzerServicer

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
    """Every violation of ``pack`` in ``plan``, policy by policy in the pack's order."""
    analyzer = PackAnalyzer(pack, config or {})
    violations: list[Violation] = []
    for resource in plan.resources:
        violations += analyzer.analyze(
            resource.type, resource.inputs, resource.urn, resource.name, protect=resource.protect
        )
    violations += analyzer.analyze_stack(
        [
            StackResource(
                r.type,
                {**r.inputs, **{k: v for k, v in r.outputs.items() if v is not None}},
                r.urn,
                r.name,
                protect=r.protect,
                parent=r.parent,
            )
            for r in plan.resources
        ]
    )
    order = {policy.name: index for index, policy in enumerate(pack)}
    return sorted(violations, key=lambda v: order.get(v.policy, len(order)))


@dataclass(frozen=True)
class StackResource:
    """One resource as ``AnalyzeStack`` gets it: its outputs (which hold its inputs too)."""

    type: str
    properties: Mapping[str, Any]
    urn: str
    name: str
    protect: bool = False
    parent: str | None = None


class PackAnalyzer:
    """pulumi-policy's analyzer servicer for ``pack``, configured as the CLI configures it."""

    def __init__(self, pack: list[Policy], config: Mapping[str, Any]) -> None:
        self._descriptions = {policy.name: policy.description for policy in pack}
        servicer: Any = _PolicyAnalyzerServicer("policy-pack", "0.0.1", pack, EnforcementLevel.ADVISORY)
        self._servicer = servicer
        request = proto.ConfigureAnalyzerRequest()
        for policy in pack:
            level, values = _settings(policy, config)
            request.policyConfig[policy.name].enforcementLevel = _LEVELS[level]
            request.policyConfig[policy.name].properties.update(values)
        servicer.Configure(request, None)

    def analyze(
        self, resource_type: str, inputs: Mapping[str, Any], urn: str, name: str, *, protect: bool = False
    ) -> list[Violation]:
        """What ``Analyze`` reports for one resource (its inputs, as the engine sends them)."""
        request = proto.AnalyzeRequest(type=resource_type, urn=urn, name=name)
        request.properties.update(dict(inputs))
        request.options.protect = protect
        return self._violations(self._servicer.Analyze(request, None), urn)

    def analyze_stack(self, resources: list[StackResource]) -> list[Violation]:
        """What ``AnalyzeStack`` reports for the whole stack."""
        request = proto.AnalyzeStackRequest()
        for resource in resources:
            added = request.resources.add(
                type=resource.type, urn=resource.urn, name=resource.name, parent=resource.parent or ""
            )
            added.properties.update(dict(resource.properties))
            added.options.protect = resource.protect
            added.options.parent = resource.parent or ""
        return self._violations(self._servicer.AnalyzeStack(request, None), None)

    def _violations(self, response: Any, urn: str | None) -> list[Violation]:
        found = []
        for diagnostic in response.diagnostics:
            prefix = self._descriptions.get(diagnostic.policyName, "") + "\n"
            message = str(diagnostic.message).removeprefix(prefix)
            level = _LEVEL_NAMES.get(diagnostic.enforcementLevel, "advisory")
            found.append(Violation(str(diagnostic.policyName), level, str(diagnostic.urn) or urn, message))
        return found


_LEVELS = {
    EnforcementLevel.ADVISORY.value: proto.ADVISORY,
    EnforcementLevel.MANDATORY.value: proto.MANDATORY,
    EnforcementLevel.REMEDIATE.value: proto.REMEDIATE,
    EnforcementLevel.DISABLED.value: proto.DISABLED,
}
_LEVEL_NAMES = {number: name for name, number in _LEVELS.items()}


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
