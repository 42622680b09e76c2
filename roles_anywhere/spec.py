"""The validated, immutable Spec every other part works from — built once from the stack config.

``load_spec`` is the single entry point: the Pulumi program, ``plan`` and the CLI all call it, so a
config that plans is a config that deploys. Every failure is a ``ConfigError`` naming the key.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from . import naming
from .bundle import CaBundle, load_bundle_file, parse_pem_bundle
from .config_model import (
    CONFIG_KEYS,
    DEFAULT_SESSION_SECONDS,
    OBJECT_KEYS,
    CaBundleConfig,
    StackConfig,
    TrustAnchorConfig,
    WorkloadConfig,
)
from .errors import ConfigError, SpiffeIdError
from .policy import policy_json
from .spiffe import SpiffeId, validate_trust_domain

ROLE_POLICY_QUOTA = 10
IAM_DEFAULT_MAX_SESSION = 3_600


@dataclass(frozen=True)
class Workload:
    """One workload, resolved: full SPIFFE ID, AWS names, the policies its role carries."""

    name: str
    spiffe_id: SpiffeId
    role_name: str
    profile_name: str
    managed_policy_arns: tuple[str, ...]
    inline_policy_json: str | None
    session_duration: int

    @property
    def max_session_duration(self) -> int:
        """The role's MaxSessionDuration: at least the profile's duration, never below IAM's default."""
        return max(IAM_DEFAULT_MAX_SESSION, self.session_duration)


@dataclass(frozen=True)
class TrustAnchorSettings:
    """What the trust anchor is called and when AWS warns before certificates expire."""

    name: str
    ca_expiry_notification_days: int
    certificate_expiry_notification_days: int
    protect: bool


@dataclass(frozen=True)
class Spec:
    """The whole stack, validated. Workloads are sorted by name so output never depends on map order."""

    cluster: str
    bundle: CaBundle
    trust_anchor: TrustAnchorSettings
    workloads: tuple[Workload, ...]
    account_id: str | None = None
    warnings: tuple[str, ...] = field(default=())

    def workload(self, name: str) -> Workload:
        """The workload called ``name``; ``KeyError`` if there is none."""
        for workload in self.workloads:
            if workload.name == name:
                return workload
        raise KeyError(name)


def decode_config_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Turn config values as Pulumi hands them over (objects as JSON text) into Python values."""
    decoded: dict[str, Any] = {}
    for key, value in values.items():
        decoded[key] = value
        if key in OBJECT_KEYS and isinstance(value, str):
            try:
                decoded[key] = json.loads(value)
            except json.JSONDecodeError:
                raise ConfigError(key, f"must be a mapping; {_object_hint(key)}") from None
    return decoded


def load_spec(values: Mapping[str, Any], *, base_dir: Path, now: datetime | None = None) -> Spec:
    """Validate config values (short keys: ``cluster``, ``workloads``…) into a ``Spec``.

    Relative file paths resolve against ``base_dir``, the folder of the stack config file.
    """
    decoded = decode_config_values(values)
    cluster = decoded.get("cluster")
    if isinstance(cluster, str):
        try:
            validate_trust_domain(cluster)
        except SpiffeIdError as err:
            raise ConfigError("cluster", f"not a SPIFFE trust domain: {err}") from None
    try:
        config = StackConfig.model_validate(decoded)
    except ValidationError as err:
        raise _config_error(err.errors(include_url=False, include_input=False)) from None
    workloads = tuple(_workload(name, config.workloads[name], config) for name in sorted(config.workloads))
    bundle = _load_bundle(config.ca_bundle, base_dir, now)
    anchor = config.trust_anchor
    return Spec(
        cluster=config.cluster,
        bundle=bundle,
        trust_anchor=TrustAnchorSettings(
            name=anchor.name or naming.default_trust_anchor_name(config.cluster),
            ca_expiry_notification_days=anchor.ca_expiry_notification_days,
            certificate_expiry_notification_days=anchor.certificate_expiry_notification_days,
            protect=anchor.protect,
        ),
        workloads=workloads,
        account_id=config.account_id,
        warnings=bundle.warnings + tuple(_policy_count_warnings(workloads)),
    )


def _load_bundle(source: CaBundleConfig, base_dir: Path, now: datetime | None) -> CaBundle:
    if source.file is not None:
        path = Path(source.file).expanduser()
        return load_bundle_file(base_dir / path, key="caBundle.file", display=source.file, now=now)
    assert source.pem is not None  # noqa: S101 - guaranteed by CaBundleConfig
    return parse_pem_bundle(source.pem, key="caBundle.pem", now=now)


def _workload(name: str, config: WorkloadConfig, stack: StackConfig) -> Workload:
    key = naming.key_path("workloads", name)
    if not naming.WORKLOAD_NAME.fullmatch(name):
        raise ConfigError(key, f"invalid workload name {name!r}: use {naming.WORKLOAD_NAME_RULE}")
    role_name = f"{stack.name_prefix}{name}"
    if len(role_name) > naming.MAX_ROLE_NAME:
        raise ConfigError(
            key,
            f"name prefix plus workload name is {len(role_name)} characters; IAM role names allow "
            f"at most {naming.MAX_ROLE_NAME}",
        )
    try:
        spiffe_id = SpiffeId.for_workload(config.spiffe_id, stack.cluster)
    except SpiffeIdError as err:
        raise ConfigError(naming.key_path("workloads", name, "spiffeId"), str(err)) from None
    inline = config.inline_policy
    return Workload(
        name=name,
        spiffe_id=spiffe_id,
        role_name=role_name,
        profile_name=role_name,
        managed_policy_arns=tuple(config.managed_policy_arns),
        inline_policy_json=None if inline is None else policy_json(inline.model_dump(exclude_unset=True)),
        session_duration=config.session_duration,
    )


def _policy_count_warnings(workloads: Iterable[Workload]) -> Iterable[str]:
    for workload in workloads:
        count = len(workload.managed_policy_arns)
        if count > ROLE_POLICY_QUOTA:
            yield (
                f"{naming.key_path('workloads', workload.name, 'managedPolicyArns')}: {count} policies; "
                f"IAM's default quota is {ROLE_POLICY_QUOTA} per role — "
                "raise it before deploying or the attachment will fail"
            )


def _config_error(errors: list[ErrorDetails]) -> ConfigError:
    """The most telling pydantic error as a ``ConfigError`` with a dotted key path and a plain message.

    A misspelt key also makes the real key "missing"; the unknown key is the one worth reporting.
    """
    error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    key = naming.key_path(*error["loc"])
    kind, message = error["type"], error["msg"]
    if kind == "missing":
        return ConfigError(key, "is required" + (f"; {_object_hint(key)}" if key in OBJECT_KEYS else ""))
    if kind == "extra_forbidden":
        return ConfigError(key, f"unknown key{_suggestion(str(error['loc'][-1]))}")
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return ConfigError(
            key, "must be a mapping" + (f"; {_object_hint(key)}" if key in OBJECT_KEYS else "")
        )
    if kind == "too_short":
        return ConfigError(
            key, "must name at least one workload" if key == "workloads" else "must not be empty"
        )
    message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if message.startswith("Input should be"):
        message = "must be" + message.removeprefix("Input should be")
    return ConfigError(key, message)


def _known_keys() -> set[str]:
    keys = set(CONFIG_KEYS)
    for model in (CaBundleConfig, TrustAnchorConfig, WorkloadConfig):
        keys.update(f.alias or n for n, f in model.model_fields.items())
    return keys


def _suggestion(word: str) -> str:
    close = difflib.get_close_matches(word, sorted(_known_keys()), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _object_hint(key: str) -> str:
    return {
        "caBundle": "e.g. {file: spiffe-ca.pem} (pulumi config set --path caBundle.file spiffe-ca.pem)",
        "workloads": (
            "e.g. {api: {spiffeId: /svc/api}} (pulumi config set --path workloads.api.spiffeId /svc/api)"
        ),
        "trustAnchor": "e.g. {caExpiryNotificationDays: 45}",
    }.get(key, "see Pulumi.example.yaml")


__all__ = [
    "DEFAULT_SESSION_SECONDS",
    "Spec",
    "TrustAnchorSettings",
    "Workload",
    "decode_config_values",
    "load_spec",
]
