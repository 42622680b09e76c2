"""What the renderers work from: a deployed (or planned) stack, read from its stack outputs.

Both ``render --config`` (outputs of the offline plan) and ``render --stack-outputs`` (outputs of
``pulumi stack output --json``) go through ``load_deployment``, and so does ``pulumi up`` itself,
so the artefacts depend on nothing but the outputs. The outputs are re-validated with the same
rules as the config: a hand-edited outputs file cannot smuggle a newline into a shell script.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from roles_anywhere.config import field_rules, iam_settings, naming, teleport_names
from roles_anywhere.config.model import (
    JOIN_METHODS,
    MAX_WORKLOADS,
    PYTHON_SIGNING_HELPER,
    CredentialSource,
    TeleportMode,
)
from roles_anywhere.config.spiffe import SpiffeId
from roles_anywhere.errors import ConfigError, SpiffeIdError, load_json, read_user_file
from roles_anywhere.iam.arns import PROFILE_ARN, ROLE_ARN, TRUST_ANCHOR_ARN
from roles_anywhere.stack.serve_ports import assign_serve_ports

__all__ = ["PROFILE_ARN", "ROLE_ARN", "TRUST_ANCHOR_ARN", "Deployment", "load_deployment"]


def _matches(pattern: re.Pattern[str], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"{value!r} is not {what} ARN")
        return value

    return AfterValidator(check)


def _check(rule: Any) -> AfterValidator:
    return AfterValidator(rule)


TrustAnchorArn = Annotated[str, _matches(TRUST_ANCHOR_ARN, "a Roles Anywhere trust anchor")]
ProfileArn = Annotated[str, _matches(PROFILE_ARN, "a Roles Anywhere profile")]
RoleArn = Annotated[str, _matches(ROLE_ARN, "an IAM role")]
AbsolutePath = Annotated[str, _check(field_rules.absolute_path)]
HostPath = Annotated[str, _check(lambda path: field_rules.absolute_path(path, in_aws_config=False))]
HelperCommand = Annotated[
    str, _check(lambda c: c if c == PYTHON_SIGNING_HELPER else field_rules.command_path(c))
]


class _OutputModel(BaseModel):
    model_config = ConfigDict(frozen=True, alias_generator=to_camel, strict=True, extra="ignore")


class DeployedBot(_OutputModel):
    """A tbot's join settings as exported."""

    join_method: str
    token: str
    storage_path: HostPath

    @model_validator(mode="after")
    def _known_method(self) -> DeployedBot:
        if self.join_method not in JOIN_METHODS:
            raise ValueError(f"joinMethod {self.join_method!r} is not a Teleport join method")
        try:
            field_rules.join_token(self.token, self.join_method)
        except ValueError as err:
            raise ValueError(f"token: {err}") from None
        return self


class DeployedTeleport(_OutputModel):
    """Teleport settings as exported."""

    mode: TeleportMode
    namespace: Annotated[str, _check(field_rules.teleport_namespace)]
    proxy: Annotated[str, _check(field_rules.proxy_address)]
    bots: dict[Annotated[str, _check(field_rules.bot_name)], DeployedBot] = Field(default_factory=dict)


class DeployedAws(_OutputModel):
    """AWS client settings as exported."""

    signing_helper: HelperCommand
    credentials: CredentialSource
    serve_port: int = Field(9911, ge=1_024, le=65_535)
    serve_helper: HelperCommand = PYTHON_SIGNING_HELPER
    endpoint: Annotated[str, _check(field_rules.service_url)] | None = None
    endpoint_ca_file: AbsolutePath | None = None
    endpoint_url: Annotated[str, _check(lambda u: field_rules.service_url(u, https_only=False))] | None = None


class DeployedWorkload(_OutputModel):
    """One workload's identity, ARNs and client settings as exported."""

    spiffe_id: str
    role_name: str
    role_arn: RoleArn
    profile_arn: ProfileArn
    session_duration: int = Field(ge=900, le=43_200)
    svid_directory: AbsolutePath
    bots: list[Annotated[str, _check(field_rules.bot_name)]] = Field(default_factory=list)
    users: list[Annotated[str, _check(field_rules.user_name)]] = Field(default_factory=list)
    svid_ttl: Annotated[str, _check(lambda text: field_rules.format_duration(field_rules.svid_ttl(text)))]
    # Absent in outputs written before the IAM settings existed: the defaults AWS applies.
    path: Annotated[str, _check(iam_settings.role_path)] = "/"
    permissions_boundary: str | None = None
    accept_role_session_name: bool = False
    require_instance_properties: bool = False
    # With aws.credentials: serve; absent in outputs written before each workload had its own port.
    serve_port: int | None = Field(None, ge=1_024, le=65_535)

    @property
    def role_session_name(self) -> str | None:
        """What clients send as ``--role-session-name``: only when the profile accepts one."""
        return f"teleport-{self.role_name}"[:64] if self.accept_role_session_name else None


class DeployedCa(_OutputModel):
    """One CA certificate the deployed trust anchor holds, as exported (no certificate body)."""

    subject: str
    sha256_fingerprint: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    not_after: str
    key: str


class DeployedTrustAnchor(_OutputModel):
    """The anchor's settings as exported (absent in outputs from before they were)."""

    name: str
    ca_expiry_notification_days: int = Field(ge=1, le=360)
    certificate_expiry_notification_days: int = Field(ge=1, le=360)


class Deployment(_OutputModel):
    """A whole stack as the renderers see it: every value they interpolate, validated."""

    cluster: str
    trust_anchor_arn: TrustAnchorArn
    trust_anchor: DeployedTrustAnchor | None = None
    ca_certificates: list[DeployedCa] = Field(default_factory=list)
    teleport: DeployedTeleport
    aws: DeployedAws
    workloads: dict[str, DeployedWorkload] = Field(min_length=1, max_length=MAX_WORKLOADS)

    @property
    def region(self) -> str:
        """The region AWS put the trust anchor in; profiles and sessions live there too."""
        match = TRUST_ANCHOR_ARN.fullmatch(self.trust_anchor_arn)
        assert match is not None  # noqa: S101 - guaranteed by the field's validator
        return match.group("region")

    def serve_ports(self) -> dict[str, int]:
        """Each workload's ``serve`` port: as exported, else derived as ``plan`` would (older outputs)."""
        pinned = {name: w.serve_port for name, w in self.workloads.items() if w.serve_port is not None}
        return assign_serve_ports(self.aws.serve_port, sorted(self.workloads), pinned)


def load_deployment(outputs: Mapping[str, Any], *, source: str) -> Deployment:
    """Validate stack outputs into a ``Deployment``; errors name ``source`` and the output key."""
    try:
        deployment = Deployment.model_validate(dict(outputs))
    except ValidationError as err:
        error = err.errors(include_url=False, include_input=False)[0]
        message = error["msg"].removeprefix("Value error, ").replace("Input should be", "must be", 1)
        if error["type"] == "missing":
            message = "is missing (were these outputs written by this project's `pulumi up`?)"
        raise ConfigError(f"{source}: {naming.key_path(*error['loc'])}", message) from None
    _check_consistency(deployment, source)
    return deployment


def read_stack_outputs(path: Path) -> Deployment:
    """``pulumi stack output --json`` saved to ``path``, as a ``Deployment``."""
    return load_deployment(read_outputs_file(path), source=str(path))


def read_outputs_file(path: Path) -> dict[str, Any]:
    """The raw outputs object in ``path``; unreadable or non-JSON is a ``ConfigError`` naming it."""
    text = read_user_file(path)
    try:
        outputs = load_json(text)
    except json.JSONDecodeError as err:
        raise ConfigError(
            str(path), f"not JSON (line {err.lineno}: {err.msg}); save `pulumi stack output --json` to it"
        ) from None
    except ValueError as err:
        raise ConfigError(str(path), f"refused: {err}") from None
    if not isinstance(outputs, dict):
        raise ConfigError(str(path), "not a JSON object of stack outputs (`pulumi stack output --json`)")
    return outputs


def _check_consistency(deployment: Deployment, source: str) -> None:
    """Cross-field facts AWS and Teleport rely on: one trust domain, one region, known bots."""
    anchor = TRUST_ANCHOR_ARN.fullmatch(deployment.trust_anchor_arn)
    assert anchor is not None  # noqa: S101 - validated above
    for name, workload in deployment.workloads.items():
        key = f"{source}: {naming.key_path('workloads', name)}"
        if not naming.WORKLOAD_NAME.fullmatch(name):
            raise ConfigError(key, f"invalid workload name {name!r}")
        try:
            spiffe_id = SpiffeId.parse(workload.spiffe_id)
        except SpiffeIdError as err:
            raise ConfigError(f"{key}.spiffeId", str(err)) from None
        if spiffe_id.trust_domain != deployment.cluster:
            raise ConfigError(f"{key}.spiffeId", f"is not in the trust domain {deployment.cluster!r}")
        profile = PROFILE_ARN.fullmatch(workload.profile_arn)
        assert profile is not None  # noqa: S101 - validated above
        if profile.group("region", "account", "partition") != anchor.group("region", "account", "partition"):
            raise ConfigError(
                f"{key}.profileArn", "is not in the trust anchor's partition, region and account"
            )
        for bot in workload.bots:
            if bot not in deployment.teleport.bots:
                raise ConfigError(f"{key}.bots", f"bot {bot!r} has no entry in teleport.bots")
        try:
            teleport_names.check_principals(deployment.teleport.namespace, workload.bots, workload.users)
        except teleport_names.PrincipalError as err:
            raise ConfigError(f"{key}.{err.key}", str(err)) from None
    try:
        naming.check_distinct_spiffe_ids(
            (name, str(SpiffeId.parse(w.spiffe_id))) for name, w in sorted(deployment.workloads.items())
        )
        if deployment.aws.credentials == "serve":
            deployment.serve_ports()  # two workloads exported with one port are refused
    except ConfigError as err:
        raise ConfigError(f"{source}: {err.key}", err.message) from None
