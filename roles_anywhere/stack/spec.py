"""The validated, immutable Spec every other part works from — built once from the stack config.

``load_spec`` is the single entry point: the Pulumi program, ``plan`` and the CLI all call it, so a
config that plans is a config that deploys. Every failure is a ``ConfigError`` naming the key.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from roles_anywhere.bundle.ca_bundle import CaBundle
from roles_anywhere.bundle.sources import LoadedBundle, load_ca_bundle
from roles_anywhere.config import field_rules, iam_settings, naming, teleport_names
from roles_anywhere.config.model import (
    CONFIG_KEYS,
    DEFAULT_SESSION_SECONDS,
    MAX_INLINE_POLICY_CHARS,
    OBJECT_KEYS,
    AwsClientConfig,
    BotConfig,
    CaBundleConfig,
    CredentialSource,
    InlinePolicy,
    ProfileSettingsConfig,
    StackConfig,
    TeleportConfig,
    TeleportMode,
    TrustAnchorConfig,
    WorkloadConfig,
)
from roles_anywhere.config.spiffe import SpiffeId, validate_trust_domain
from roles_anywhere.errors import ConfigError, SpiffeIdError
from roles_anywhere.iam.policy import policy_json
from roles_anywhere.stack.serve_ports import assign_serve_ports

PENDING_BUNDLE = CaBundle(certificates=())  # the bundle is another resource's output, checked later

IAM_DEFAULT_MAX_SESSION = 3_600
DEFAULT_SVID_ROOT = "/opt/machine-id"
DEFAULT_BOT_STORAGE_ROOT = "/var/lib/teleport/bot"
DEFAULT_TOKEN_FILE_ROOT = "/etc/tbot"  # noqa: S105 - a folder for token files, not a secret
DEFAULT_ARTIFACTS_ROOT = "out"
_STACK_TAGS_REACH_PROFILES = "the stack's tags reach every Roles Anywhere profile"
_OWN_TAGS_REACH_PROFILE = (
    "with profileSharing: perWorkload a workload's tags reach its Roles Anywhere profile"
)


@dataclass(frozen=True)
class ProfileSettings:
    """Everything that makes a Roles Anywhere profile what it is; equal settings may share one."""

    duration_seconds: int = DEFAULT_SESSION_SECONDS
    session_policy_json: str | None = None
    managed_policy_arns: tuple[str, ...] = ()
    accept_role_session_name: bool = False
    require_instance_properties: bool = False


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
    svid_directory: str = ""
    bots: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    svid_ttl: str = "1h"
    permissions_boundary: str | None = None
    path: str = "/"
    tags: tuple[tuple[str, str], ...] = ()
    profile: ProfileSettings = ProfileSettings()
    serve_port: int | None = None  # with aws.credentials: serve, the port its serve listens on

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
class Bot:
    """A tbot that serves some workloads: how it joins and where it keeps its own identity."""

    name: str
    join_method: str
    token: str
    storage_path: str


@dataclass(frozen=True)
class TeleportSettings:
    """How Teleport issues SVIDs (mode), where tbot connects, and every bot a workload names."""

    mode: TeleportMode = "workload-identity"
    proxy: str = ""
    bots: tuple[Bot, ...] = ()
    namespace: str = ""


@dataclass(frozen=True)
class AwsClientSettings:
    """How a workload turns its SVID into AWS credentials."""

    signing_helper: str = "aws_signing_helper"
    credentials: CredentialSource = "process"
    serve_port: int = 9911
    serve_helper: str = "python"
    endpoint: str | None = None
    endpoint_ca_file: str | None = None
    endpoint_url: str | None = None


@dataclass(frozen=True)
class Imports:
    """Existing resources to adopt: the anchor's ID, role names and profile IDs by workload/profile."""

    trust_anchor: str | None = None
    roles: tuple[tuple[str, str], ...] = ()
    profiles: tuple[tuple[str, str], ...] = ()

    def role(self, workload: str) -> str | None:
        """The existing role ``workload`` adopts, if any."""
        return dict(self.roles).get(workload)

    def profile(self, name: str) -> str | None:
        """The existing profile adopted for a workload (one profile each) or a shared profile's name."""
        return dict(self.profiles).get(name)


@dataclass(frozen=True)
class Spec:
    """The whole stack, validated. Workloads are sorted by name so output never depends on map order."""

    cluster: str
    bundle: CaBundle
    trust_anchor: TrustAnchorSettings
    workloads: tuple[Workload, ...]
    account_id: str | None = None
    warnings: tuple[str, ...] = field(default=())
    teleport: TeleportSettings = TeleportSettings()
    aws: AwsClientSettings = AwsClientSettings()
    artifacts_dir: str | None = None
    bundle_origin: str = ""
    bundle_source: str = "caBundle"
    name_prefix: str = ""
    profile_sharing: str = "shared"
    imports: Imports = Imports()
    stack_tags: tuple[tuple[str, str], ...] = ()

    def workload(self, name: str) -> Workload:
        """The workload called ``name``; ``KeyError`` if there is none."""
        return self._by_name[name]

    @cached_property
    def _by_name(self) -> dict[str, Workload]:
        """An index: looking workloads up one by one was quadratic (1.55 s at 10,000)."""
        return {workload.name: workload for workload in self.workloads}


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


def load_spec(
    values: Mapping[str, Any],
    *,
    base_dir: Path,
    stack: str,
    now: datetime | None = None,
    bundle_later: bool = False,
) -> Spec:
    """Validate config values (short keys: ``cluster``, ``workloads``…) into a ``Spec``.

    Relative file paths resolve against ``base_dir``, the folder of the stack config file; ``stack``
    is the Pulumi stack's name, the Teleport namespace when neither the config nor ``namePrefix`` sets one.
    ``bundle_later``: the CA bundle is another resource's output, validated when it resolves (see
    ``Federation``); ``values`` then hold no ``caBundle`` and the Spec's bundle is ``PENDING_BUNDLE``.
    """
    decoded = decode_config_values(values)
    if bundle_later:
        decoded["caBundle"] = {"pem": ""}  # a placeholder for the model: never read
    cluster = decoded.get("cluster")
    if isinstance(cluster, str):
        try:
            validate_trust_domain(cluster)
        except SpiffeIdError as err:
            raise ConfigError("cluster", f"not a SPIFFE trust domain: {err}") from None
        if "" in cluster.split("."):
            raise ConfigError(
                "cluster",
                f"{cluster!r} has an empty label (a leading, trailing or doubled '.'); a Teleport cluster "
                "name never does, so no SVID would match it",
            )
    try:
        config = StackConfig.model_validate(decoded)
    except ValidationError as err:
        raise _config_error(err.errors(include_url=False, include_input=False)) from None
    try:
        iam_settings.profile_tags(config.iam.tags or {}, why=_STACK_TAGS_REACH_PROFILES)
    except ValueError as err:
        raise ConfigError("iam.tags", str(err)) from None
    workloads = tuple(_workload(name, config.workloads[name], config) for name in sorted(config.workloads))
    workloads = _with_adopted_role_names(config, workloads)
    workloads = _with_serve_ports(config, workloads)
    _check_distinct_svid_directories(workloads)
    naming.check_distinct_spiffe_ids((w.name, str(w.spiffe_id)) for w in workloads)
    namespace = _namespace(config, stack)
    teleport = _teleport_settings(config.teleport, config.cluster, workloads, namespace)
    _check_credential_source(config.aws, teleport)
    loaded = (
        LoadedBundle(PENDING_BUNDLE, "another resource's output", "caBundle")
        if bundle_later
        else load_ca_bundle(config.ca_bundle, base_dir=base_dir, now=now)
    )
    bundle = loaded.bundle
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
        name_prefix=config.name_prefix,
        profile_sharing=config.profile_sharing,
        imports=_imports(config, workloads),
        stack_tags=tuple(sorted((config.iam.tags or {}).items())),
        warnings=bundle.warnings
        + loaded.warnings
        + tuple(_quota_warnings(config, workloads))
        + tuple(_broad_permission_warnings(workloads))
        + tuple(_loosening_warnings(config))
        + tuple(_instance_properties_warnings(config, workloads))
        + tuple(_unissued_warnings(workloads))
        + tuple(_import_warnings(config, workloads)),
        teleport=teleport,
        aws=AwsClientSettings(
            signing_helper=config.aws.signing_helper,
            credentials=config.aws.credentials,
            serve_port=config.aws.serve_port,
            serve_helper=config.aws.serve_helper,
            endpoint=config.aws.endpoint,
            endpoint_ca_file=config.aws.endpoint_ca_file,
            endpoint_url=config.aws.endpoint_url,
        ),
        artifacts_dir=config.artifacts_dir,
        bundle_origin=loaded.origin,
        bundle_source=loaded.key,
    )


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
    inline = None if config.inline_policy is None else config.inline_policy.model_dump(exclude_unset=True)
    if inline is not None:
        size = len(json.dumps(inline, separators=(",", ":"), ensure_ascii=False))
        if size > MAX_INLINE_POLICY_CHARS:
            raise ConfigError(
                naming.key_path("workloads", name, "inlinePolicy"),
                f"is {size} characters without whitespace; IAM allows {MAX_INLINE_POLICY_CHARS} for a "
                "role's inline policies (deploying would fail): use a managed policy",
            )
    tags_key = naming.key_path("workloads", name, "tags")
    try:
        tags = iam_settings.merged_tags(stack.iam.tags or {}, config.tags or {})
    except ValueError as err:
        raise ConfigError(tags_key, str(err)) from None
    if stack.profile_sharing == "perWorkload":
        try:
            iam_settings.profile_tags(config.tags or {}, why=_OWN_TAGS_REACH_PROFILE)
        except ValueError as err:
            raise ConfigError(tags_key, str(err)) from None
    return Workload(
        name=name,
        spiffe_id=spiffe_id,
        role_name=role_name,
        profile_name=role_name,
        managed_policy_arns=tuple(config.managed_policy_arns),
        inline_policy_json=None if inline is None else policy_json(inline),
        session_duration=config.session_duration,
        svid_directory=config.svid_directory or f"{DEFAULT_SVID_ROOT}/{name}",
        bots=tuple(config.bots),
        users=tuple(config.users),
        svid_ttl=config.svid_ttl,
        permissions_boundary=config.permissions_boundary or stack.iam.permissions_boundary,
        path=config.path or stack.iam.path or "/",
        tags=tuple(sorted(tags.items())),
        profile=_profile_settings(name, config, stack),
    )


def _with_serve_ports(config: StackConfig, workloads: tuple[Workload, ...]) -> tuple[Workload, ...]:
    """With ``aws.credentials: serve``, each workload with its own port (``stack.serve_ports``)."""
    if config.aws.credentials != "serve":
        return workloads
    pinned = {
        name: port for name, settings in config.workloads.items() if (port := settings.serve_port) is not None
    }
    ports = assign_serve_ports(config.aws.serve_port, [w.name for w in workloads], pinned)
    return tuple(replace(w, serve_port=ports[w.name]) for w in workloads)


def _profile_settings(name: str, config: WorkloadConfig, stack: StackConfig) -> ProfileSettings:
    """The workload's profile settings: its own ``profile`` keys, else the stack's, else the defaults."""
    own, shared = config.profile, stack.profile
    policy = own.session_policy or shared.session_policy
    document = None if policy is None else policy.model_dump(exclude_unset=True)
    policy_text = None if document is None else policy_json(document)
    if document is not None:
        try:
            iam_settings.session_policy_size(json.dumps(document, separators=(",", ":"), ensure_ascii=False))
        except ValueError as err:
            where = "workloads." + name + ".profile" if own.session_policy else "profile"
            raise ConfigError(f"{where}.sessionPolicy", str(err)) from None
    arns = own.managed_policy_arns if own.managed_policy_arns is not None else shared.managed_policy_arns
    accept = own.accept_role_session_name
    require = own.require_instance_properties
    return ProfileSettings(
        duration_seconds=config.session_duration,
        session_policy_json=policy_text,
        managed_policy_arns=tuple(arns or ()),
        accept_role_session_name=bool(accept if accept is not None else shared.accept_role_session_name),
        require_instance_properties=bool(
            require if require is not None else shared.require_instance_properties
        ),
    )


def _check_distinct_svid_directories(workloads: Iterable[Workload]) -> None:
    """Two workloads writing SVIDs to one folder would overwrite each other's key and certificate."""
    owners: dict[str, str] = {}
    for workload in workloads:
        other = owners.setdefault(workload.svid_directory, workload.name)
        if other != workload.name:
            raise ConfigError(
                naming.key_path("workloads", workload.name, "svidDirectory"),
                f"{workload.svid_directory!r} is already the SVID folder of workload {other!r}; "
                "each workload needs its own (the files would overwrite each other)",
            )


def _namespace(config: StackConfig, stack: str) -> str:
    """``teleport.namespace``, else ``namePrefix`` without its trailing separator, else the stack name."""
    if config.teleport.namespace is not None:
        return config.teleport.namespace
    derived = config.name_prefix.rstrip("-_")
    origin = f"namePrefix {config.name_prefix!r}" if derived else f"the stack name {stack!r}"
    try:
        return field_rules.teleport_namespace(derived or stack)
    except ValueError as err:
        raise ConfigError(
            "teleport.namespace", f"is not set, and {origin} gives no valid one ({err}); set it"
        ) from None


def _teleport_settings(
    config: TeleportConfig, cluster: str, workloads: Iterable[Workload], namespace: str
) -> TeleportSettings:
    """Resolve bots: every bot a workload names, with its join settings or the defaults."""
    workloads = tuple(workloads)
    for workload in workloads:
        try:
            teleport_names.check_principals(namespace, workload.bots, workload.users)
        except teleport_names.PrincipalError as err:
            raise ConfigError(naming.key_path("workloads", workload.name, err.key), str(err)) from None
    named = sorted({bot for workload in workloads for bot in workload.bots})
    for name in config.bots:
        if name not in named:
            raise ConfigError(
                naming.key_path("teleport", "bots", name),
                f"no workload lists bot {name!r} in its bots{_close_match(name, named)}",
            )
    seen: dict[str, str] = {}
    for name in named:
        other = seen.setdefault(name.lower(), name)
        if other != name:
            raise ConfigError(
                "teleport.bots",
                f"bots {other!r} and {name!r} differ only in case; their tbot/<bot>.yaml files would "
                "collide on case-insensitive file systems",
            )
    return TeleportSettings(
        mode=config.mode,
        namespace=namespace,
        proxy=config.proxy or f"{cluster}:443",
        bots=tuple(_bot(name, config.bots.get(name, BotConfig())) for name in named),
    )


def _bot(name: str, config: BotConfig) -> Bot:
    default_token = f"{DEFAULT_TOKEN_FILE_ROOT}/{name}.token" if config.join_method == "token" else name
    return Bot(
        name=name,
        join_method=config.join_method,
        token=config.token or default_token,
        storage_path=config.storage_path or f"{DEFAULT_BOT_STORAGE_ROOT}/{name}",
    )


def _check_credential_source(aws: AwsClientConfig, teleport: TeleportSettings) -> None:
    if aws.credentials == "tbot" and teleport.mode == "legacy":
        raise ConfigError(
            "aws.credentials",
            "'tbot' needs teleport.mode 'workload-identity': tbot's workload-identity-aws-roles-anywhere "
            "service selects a WorkloadIdentity resource, which legacy mode does not create",
        )


def _close_match(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _with_adopted_role_names(config: StackConfig, workloads: tuple[Workload, ...]) -> tuple[Workload, ...]:
    """Each workload with an ``import.roles`` entry planned under the adopted role's own name.

    IAM imports a role by name, and a role's name cannot change in place: planned under the stack's
    name (``<namePrefix><workload>``), the import would have to replace the role it adopts. Role names
    must stay distinct as IAM compares them, without regard to case.
    """
    adopted = config.import_.roles
    names = {workload.name for workload in workloads}
    for name in adopted:
        if name not in names:
            raise ConfigError(naming.key_path("import", "roles", name), "names no workload of this stack")
    renamed = tuple(replace(w, role_name=adopted.get(w.name, w.role_name)) for w in workloads)
    owners: dict[str, Workload] = {}
    for workload in renamed:
        other = owners.setdefault(workload.role_name.lower(), workload)
        if other is workload:
            continue
        importer, holder = (workload, other) if workload.name in adopted else (other, workload)
        raise ConfigError(
            naming.key_path("import", "roles", importer.name),
            f"{importer.role_name!r} is also the role of workload {holder.name!r} (IAM role names ignore "
            "case); one role cannot serve two workloads: adopt another role or none",
        )
    return renamed


def _imports(config: StackConfig, workloads: tuple[Workload, ...]) -> Imports:
    """The ``import`` keys, each naming a workload (or a shared profile) this stack has."""
    from roles_anywhere.stack.profiles import share_profiles  # noqa: PLC0415 - it imports this module

    names = {workload.name for workload in workloads}
    if config.profile_sharing == "shared":
        profile_names = {profile.name for profile in share_profiles(workloads, config.name_prefix)}
        what = "shared profile (with profileSharing: shared, the keys are the profile names plan shows)"
    else:
        profile_names, what = names, "workload"
    adopted: dict[str, str] = {}
    for name, profile_id in config.import_.profiles.items():
        key = naming.key_path("import", "profiles", name)
        if name not in profile_names:
            raise ConfigError(key, f"names no {what}")
        other = adopted.setdefault(profile_id, name)
        if other != name:
            raise ConfigError(
                key, f"{profile_id} is also import.profiles.{other}: one profile cannot be adopted twice"
            )
    return Imports(
        trust_anchor=config.import_.trust_anchor,
        roles=tuple(sorted(config.import_.roles.items())),
        profiles=tuple(sorted(config.import_.profiles.items())),
    )


_CHECKED_ON_UP = (
    f"pulumi up refuses it if its {iam_settings.NAMESPACE_TAG} tag names another stack, but plan cannot "
    "read its tags: be sure it is this stack's (plan --stack-outputs FILE checks another stack's outputs)"
)


def _import_warnings(config: StackConfig, workloads: tuple[Workload, ...]) -> Iterable[str]:
    """One warning per import: adopting hands the resource to this stack, which then rewrites it."""
    imports = config.import_
    if imports.trust_anchor is not None:
        yield (
            f"import.trustAnchor: adopts the existing trust anchor {imports.trust_anchor}, then rewrites "
            "its CA bundle, name and tags to this config's, and every role trusting it follows; "
            + _CHECKED_ON_UP
        )
    for workload in workloads:
        role = imports.roles.get(workload.name)
        if role is not None:
            yield (
                f"{naming.key_path('import', 'roles', workload.name)}: adopts the existing role {role} "
                f"(planned under that name), then rewrites its trust policy, permissions, boundary and "
                f"tags to this config's; {_CHECKED_ON_UP}"
            )
    for name, profile_id in sorted(imports.profiles.items()):
        yield (
            f"{naming.key_path('import', 'profiles', name)}: adopts the existing profile {profile_id}, "
            f"then rewrites its roles, session settings and tags to this config's; {_CHECKED_ON_UP}"
        )


def _quota_warnings(config: StackConfig, workloads: tuple[Workload, ...]) -> list[str]:
    """Quota warnings (80 % and up); a ``ConfigError`` for a quota the stack would exceed."""
    from roles_anywhere.stack import quotas  # noqa: PLC0415 - quotas imports this module's types

    usage = quotas.quota_usage(
        workloads,
        config.quotas,
        shared_profiles=config.profile_sharing == "shared",
        name_prefix=config.name_prefix,
    )
    return quotas.check_quotas(usage)


def _broad_permission_warnings(workloads: Iterable[Workload]) -> Iterable[str]:
    """Permissions that make a role (and so whoever obtains the SVID) nearly an administrator."""
    for workload in workloads:
        key = naming.key_path("workloads", workload.name)
        if any(arn.endswith(":policy/AdministratorAccess") for arn in workload.managed_policy_arns):
            yield f"{key}.managedPolicyArns: AdministratorAccess makes whoever obtains the SVID an admin"
        if workload.inline_policy_json is None:
            continue
        for statement in json.loads(workload.inline_policy_json)["Statement"]:
            if statement.get("Effect") != "Allow":
                continue
            actions = _listed(statement.get("Action"))
            resources = _listed(statement.get("Resource"))
            if "*" in actions:
                yield f'{key}.inlinePolicy: a statement allows Action "*" (every action)'
            if "iam:PassRole" in actions and "*" in resources:
                yield f'{key}.inlinePolicy: iam:PassRole on Resource "*" lets the role pass any role'


# AWS managed policies that bound next to nothing, as a permissions boundary or a session policy.
_WIDE_POLICIES = {
    "AdministratorAccess": "which allows every action",
    "PowerUserAccess": "which allows every action outside IAM and Organizations",
    "IAMFullAccess": "which allows every IAM action (and so, by making roles, any other)",
}


def _wide_policy(arn: str) -> str | None:
    """The name of an AWS managed policy in ``_WIDE_POLICIES``, if ``arn`` is one."""
    partition, _, name = arn.partition(":iam::aws:policy/")
    return name if partition and name in _WIDE_POLICIES else None


def _how_wide(arn: str) -> str:
    """What a policy named as a boundary or session policy lets through, as far as plan can know."""
    name = _wide_policy(arn)
    if name is not None:
        return _WIDE_POLICIES[name]
    return "which plan cannot compare (it cannot read a managed policy) and which may allow more"


def _loosening_warnings(config: StackConfig) -> Iterable[str]:
    """A workload override that may widen what the stack bounds: its boundary or its session policies.

    A stack-wide boundary or session policy is usually an account rule; a workload that swaps it for
    another can only be proven harmless offline when it is the same or, for session policies, a subset.
    """
    boundary = config.iam.permissions_boundary
    for name in sorted(config.workloads):
        own = config.workloads[name]
        key = naming.key_path("workloads", name)
        if boundary is not None and own.permissions_boundary not in (None, boundary):
            yield (
                f"{key}.permissionsBoundary: replaces the stack's iam.permissionsBoundary {boundary} with "
                f"{own.permissions_boundary}, {_how_wide(own.permissions_boundary or '')}: this role is then "
                "not bounded as the stack's roles are; remove the override, or use a boundary no wider than "
                "the stack's"
            )
        yield from _session_policy_loosening(key, own.profile, config.profile)


def _policy_document(policy: InlinePolicy | None) -> dict[str, Any] | None:
    return None if policy is None else policy.model_dump(exclude_unset=True)


def _statements_within(document: dict[str, Any], bound: dict[str, Any] | None) -> bool:
    """Provably no wider than ``bound``: every Allow is one of its statements, and it keeps every Deny."""
    if bound is None:
        return False
    allows = [s for s in document["Statement"] if s.get("Effect") == "Allow"]
    denies = [s for s in bound["Statement"] if s.get("Effect") == "Deny"]
    return all(s in bound["Statement"] for s in allows) and all(s in document["Statement"] for s in denies)


def _session_policy_loosening(
    key: str, own: ProfileSettingsConfig, stack: ProfileSettingsConfig
) -> Iterable[str]:
    """Session policies are one layer: an action any of them allows is allowed (then the role decides).

    So a workload widens the stack's session bound by replacing its inline policy with one that allows
    more, by adding a managed session policy, or by removing every session policy.
    """
    stack_document = _policy_document(stack.session_policy)
    stack_arns = list(stack.managed_policy_arns or [])
    if stack_document is None and not stack_arns:
        return  # the stack bounds no session: a workload's own session policy only narrows
    named = ["profile.sessionPolicy"] if stack_document is not None else []
    named += [f"profile.managedPolicyArns ({', '.join(stack_arns)})"] if stack_arns else []
    stacks = f"the stack's {' and '.join(named)}"
    own_document = _policy_document(own.session_policy)
    if own_document is not None and not _statements_within(own_document, stack_document):
        change = "replaces" if stack_document is not None else "adds a session policy to"
        yield (
            f"{key}.profile.sessionPolicy: {change} {stacks} with a document that allows what the stack's "
            "does not (plan proves a session policy narrower only when each Allow is one of the stack's "
            "statements and every Deny is kept): its sessions may do more; remove the override or narrow it"
        )
    if own.managed_policy_arns is None:
        return
    added = [arn for arn in own.managed_policy_arns if arn not in stack_arns]
    if added:
        wide = [f"{name}, {_WIDE_POLICIES[name]}" for arn in added if (name := _wide_policy(arn))]
        yield (
            f"{key}.profile.managedPolicyArns: adds {', '.join(added)} to {stacks}"
            + (f" ({'; '.join(wide)})" if wide else "")
            + ": session policies are one layer, so an action any of them allows is allowed and its sessions "
            "may do more; remove the override or list only the stack's policies"
        )
    elif not own.managed_policy_arns and own_document is None and stack_document is None:
        yield (
            f"{key}.profile.managedPolicyArns: [] removes {stacks}, so its sessions may do all its role "
            "allows; remove the override"
        )


def _instance_properties_warnings(config: StackConfig, workloads: tuple[Workload, ...]) -> Iterable[str]:
    """``requireInstanceProperties: true`` with the clients this stack renders: credentials never come."""
    inherited = [
        w.name
        for w in workloads
        if w.profile.require_instance_properties
        and config.workloads[w.name].profile.require_instance_properties is None
    ]
    if inherited:
        yield _never_credentials("profile.requireInstanceProperties", inherited)
    for workload in workloads:
        if config.workloads[workload.name].profile.require_instance_properties:
            key = naming.key_path("workloads", workload.name, "profile", "requireInstanceProperties")
            yield _never_credentials(key, [workload.name])


def _never_credentials(key: str, workloads: list[str]) -> str:
    shown = ", ".join(workloads[:5]) + (f" and {len(workloads) - 5} more" if len(workloads) > 5 else "")
    return (
        f"{key}: true makes Roles Anywhere refuse every CreateSession without instance properties, and "
        "no client this stack renders sends any (aws_signing_helper hard-codes none; nor do roles-anywhere "
        f"credential-process and serve, or tbot): {'workload' if len(workloads) == 1 else 'workloads'} "
        f"{shown} can never get credentials as rendered. Set it to false, or have each host call "
        "CreateSession itself with an instanceProperties map (1-50 string pairs, 1-200 characters each) in "
        "its signed request body"
    )


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def _unissued_warnings(workloads: Iterable[Workload]) -> Iterable[str]:
    for workload in workloads:
        if not workload.bots and not workload.users:
            yield (
                f"{naming.key_path('workloads', workload.name)}: names no bot and no user, so Teleport "
                "issues its SVID to nobody and its AWS role cannot be used; add bots or users to grant it"
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
    for model in (
        CaBundleConfig,
        TrustAnchorConfig,
        WorkloadConfig,
        TeleportConfig,
        BotConfig,
        AwsClientConfig,
    ):
        keys.update(f.alias or n for n, f in model.model_fields.items())
    return keys


def _suggestion(word: str) -> str:
    return _close_match(word, sorted(_known_keys()))


def _object_hint(key: str) -> str:
    return {
        "caBundle": "e.g. {file: spiffe-ca.pem} (pulumi config set --path caBundle.file spiffe-ca.pem)",
        "workloads": (
            "e.g. {api: {spiffeId: /svc/api}} (pulumi config set --path workloads.api.spiffeId /svc/api)"
        ),
        "trustAnchor": "e.g. {caExpiryNotificationDays: 45}",
        "teleport": "e.g. {mode: workload-identity, proxy: teleport.example.com:443}",
        "aws": "e.g. {signingHelper: /usr/local/bin/aws_signing_helper}",
    }.get(key, "see Pulumi.example.yaml")


__all__ = [
    "DEFAULT_SESSION_SECONDS",
    "AwsClientSettings",
    "Bot",
    "Spec",
    "TeleportSettings",
    "TrustAnchorSettings",
    "Workload",
    "decode_config_values",
    "load_spec",
]
