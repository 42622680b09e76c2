"""The typed arguments of the ``Federation`` component: what a Pulumi program passes to create it.

Each key mirrors a key of the stack config (``caBundleSource`` ↔ ``caBundle``, ``imports`` ↔
``import``; the rest are the same names in snake_case), so the stack config is a thin layer over
these arguments and both get the same validation and the same one-line errors, naming the key in
its camelCase form as the stack config and the component schema spell it.

No ``from __future__ import annotations`` here: Pulumi's component-provider host reads these
annotations at run time to build the package schema (TypeScript, Go, C#, YAML), and the attribute
docstrings become the schema's descriptions.
"""

import typing
from typing import Any, NotRequired, TypedDict

import pulumi
from pydantic.alias_generators import to_camel

from roles_anywhere.errors import ConfigError


class CaBundleSourceArgs(TypedDict):
    """Where to read the Teleport SPIFFE CA bundle from: exactly one of these keys."""

    proxy: NotRequired[str]
    """The Teleport proxy (``host:port``); its SPIFFE trust bundle holds every CA, old and new."""
    bundle_url: NotRequired[str]
    """An HTTPS URL serving a SPIFFE trust bundle (JSON)."""
    file: NotRequired[str]
    """A local file with PEM or SPIFFE bundle JSON (relative to the project folder)."""
    command: NotRequired[list[str]]
    """A program (argv) printing PEM or bundle JSON, e.g. ``tctl auth export --type=spiffe``."""
    pem: NotRequired[str]
    """The PEM text itself."""
    proxy_ca_file: NotRequired[str]
    """CAs to trust for ``proxy``/``bundleUrl`` instead of the system's."""
    timeout: NotRequired[int]
    """Seconds to wait for ``proxy``, ``bundleUrl`` or ``command``."""


class TrustAnchorOptionsArgs(TypedDict):
    """The trust anchor's settings (notifications are pinned: changing them replaces the anchor)."""

    name: NotRequired[str]
    """The anchor's name; default ``teleport-<cluster with dots as dashes>``."""
    ca_expiry_notification_days: NotRequired[int]
    """Days before the CA expires that AWS notifies (1-360, default 45)."""
    certificate_expiry_notification_days: NotRequired[int]
    """Days before an end-entity certificate expires that AWS notifies (1-360, default 45)."""
    protect: NotRequired[bool]
    """Protect the anchor from deletion and replacement (default true)."""


class ProfileSettingsArgs(TypedDict):
    """A Roles Anywhere profile's session settings; workloads with equal settings share a profile."""

    session_policy: NotRequired[dict[str, Any]]
    """An IAM policy document every session is limited to (at most 2,048 characters packed)."""
    managed_policy_arns: NotRequired[list[str]]
    """Managed policies every session is limited to (at most 10)."""
    accept_role_session_name: NotRequired[bool]
    """Let clients name the role session (the rendered files send ``teleport-<role>``)."""
    require_instance_properties: NotRequired[bool]
    """Refuse sessions whose request sends no instance properties."""


class WorkloadSettingsArgs(TypedDict):
    """One workload: the SPIFFE ID Teleport issues it, what its AWS role may do, who gets it."""

    spiffe_id: str
    """The SPIFFE ID path (``/svc/orders``) or full ID in the cluster's trust domain."""
    managed_policy_arns: NotRequired[list[str]]
    """Managed policies attached to the workload's role."""
    inline_policy: NotRequired[dict[str, Any]]
    """An inline IAM policy document for the role."""
    session_duration: NotRequired[int]
    """Session length in seconds (900-43,200, default 3,600)."""
    svid_directory: NotRequired[str]
    """Where tbot writes the SVID on the workload's host (absolute path)."""
    bots: NotRequired[list[str]]
    """Teleport bots allowed to issue this workload's SVID."""
    users: NotRequired[list[str]]
    """Teleport users allowed to issue this workload's SVID."""
    svid_ttl: NotRequired[str]
    """The SVID's lifetime as tbot requests it (default ``1h``)."""
    permissions_boundary: NotRequired[str]
    """A managed policy ARN capping the role (overrides ``iam.permissionsBoundary``)."""
    path: NotRequired[str]
    """The role's IAM path (overrides ``iam.path``)."""
    tags: NotRequired[dict[str, str]]
    """Tags on the role and its profile, merged over ``iam.tags``."""
    profile: NotRequired[ProfileSettingsArgs]
    """Profile settings for this workload, over the stack-wide ``profile``."""
    serve_port: NotRequired[int]
    """With ``credentials: serve``, this workload's port (default: derived from its name)."""


class BotOptionsArgs(TypedDict):
    """How one tbot joins the cluster."""

    join_method: NotRequired[str]
    """Teleport join method (default ``token``)."""
    token: NotRequired[str]
    """The join token's name (never its secret value)."""
    storage_path: NotRequired[str]
    """tbot's storage folder."""


class TeleportOptionsArgs(TypedDict):
    """The Teleport side: which objects to render and how tbot reaches the cluster."""

    mode: NotRequired[str]
    """``workload-identity`` (default) or ``legacy``."""
    namespace: NotRequired[str]
    """Prefix of every Teleport object this stack owns (default: the name prefix or the stack)."""
    proxy: NotRequired[str]
    """The proxy tbot connects to (``host:port``)."""
    bots: NotRequired[dict[str, BotOptionsArgs]]
    """Per bot name, how it joins."""


class AwsClientOptionsArgs(TypedDict):
    """How workloads get credentials (the rendered ``aws/config`` and tbot configs)."""

    signing_helper: NotRequired[str]
    """``aws_signing_helper`` (default), a path to it, or ``python`` for ``roles-anywhere``."""
    credentials: NotRequired[str]
    """``process`` (default, ``credential_process``), ``tbot``, or ``serve`` (an IMDSv2 endpoint per host)."""
    serve_port: NotRequired[int]
    """The first of the ports each workload's ``serve`` gets on 127.0.0.1 (default 9911)."""
    serve_helper: NotRequired[str]
    """``python`` (default, ``roles-anywhere serve``) or the Go ``aws_signing_helper`` (name or path)."""
    endpoint: NotRequired[str]
    """A Roles Anywhere endpoint other than AWS's."""
    endpoint_ca_file: NotRequired[str]
    """CAs to trust for ``endpoint``."""
    endpoint_url: NotRequired[str]
    """An AWS endpoint URL for the rendered profiles."""


class IamSettingsArgs(TypedDict):
    """IAM settings an organisation may require on every role."""

    permissions_boundary: NotRequired[str]
    """A managed policy ARN set as every role's permissions boundary."""
    path: NotRequired[str]
    """Every role's IAM path (``/teleport/``)."""
    tags: NotRequired[dict[str, str]]
    """Tags on every role and profile (``ManagedBy``, ``TeleportCluster`` and ``SpiffeId`` are ours)."""


class QuotaArgs(TypedDict):
    """The account's quotas, where they were raised; ``plan`` warns at 80 % and refuses above."""

    iam_roles: NotRequired[int]
    """IAM roles per account (default 1,000, at most 5,000)."""
    profiles: NotRequired[int]
    """Roles Anywhere profiles per region (default 250)."""
    trust_anchors: NotRequired[int]
    """Roles Anywhere trust anchors per region (default 50)."""
    managed_policies_per_role: NotRequired[int]
    """Managed policies per role (default 10, at most 20)."""
    tags: NotRequired[int]
    """Tags per role or profile (50)."""


class ImportArgs(TypedDict):
    """Existing resources to adopt instead of creating them (Pulumi's ``import``)."""

    trust_anchor: NotRequired[str]
    """The ID of a hand-made trust anchor."""
    roles: NotRequired[dict[str, str]]
    """Per workload, the name of an existing role."""
    profiles: NotRequired[dict[str, str]]
    """Per workload (or shared profile name), the ID of an existing profile."""


class FederationArgs(TypedDict):
    """Everything the federation needs: the cluster, its CA, and the workloads."""

    cluster: str
    """The Teleport cluster name, which is the SPIFFE trust domain."""
    ca_bundle: NotRequired[pulumi.Input[str]]
    """The cluster's SPIFFE CA bundle as PEM: text, or another resource's output."""
    ca_bundle_source: NotRequired[CaBundleSourceArgs]
    """Where to read the CA bundle instead (give this or ``caBundle``, not both)."""
    workloads: dict[str, WorkloadSettingsArgs]
    """The workloads, by name (lowercase letters, digits and dashes)."""
    trust_anchor: NotRequired[TrustAnchorOptionsArgs]
    """The trust anchor's settings."""
    name_prefix: NotRequired[str]
    """Prefix of every role and profile name."""
    account_id: NotRequired[str]
    """The AWS account ID, to check ARNs and predict them in ``plan``."""
    teleport: NotRequired[TeleportOptionsArgs]
    """The Teleport side."""
    aws: NotRequired[AwsClientOptionsArgs]
    """How workloads get credentials."""
    artifacts_dir: NotRequired[str]
    """Where ``pulumi up`` writes the rendered files (the stack-config program only)."""
    iam: NotRequired[IamSettingsArgs]
    """IAM settings for every role."""
    profile: NotRequired[ProfileSettingsArgs]
    """Profile settings for every workload."""
    profile_sharing: NotRequired[str]
    """``shared`` (default: equal settings share a profile) or ``perWorkload``."""
    quotas: NotRequired[QuotaArgs]
    """The account's quotas, where raised."""
    imports: NotRequired[ImportArgs]
    """Existing resources to adopt."""


# Keys whose camelCase spelling in the stack config is not their snake_case name camel-cased.
_CONFIG_NAMES = {"ca_bundle_source": "caBundle", "imports": "import"}
_ARG_NAMES = {config: arg for arg, config in _CONFIG_NAMES.items()}


def config_values(args: typing.Mapping[str, Any]) -> dict[str, Any]:
    """``args`` as stack-config values (camelCase keys), except ``ca_bundle``.

    Only the keys of the typed dictionaries are renamed; user data keeps its keys (workload, bot and
    tag names, policy documents). A key the types do not know stays as it is, so validation names it.
    """
    values: dict[str, Any] = _walk(args, FederationArgs, to_config=True)
    return values


def federation_args(values: typing.Mapping[str, Any]) -> dict[str, Any]:
    """Stack-config values (camelCase) as ``FederationArgs``: the stack config's thin layer."""
    args: dict[str, Any] = _walk(values, FederationArgs, to_config=False)
    return args


def _walk(value: Any, hint: Any, *, to_config: bool) -> Any:
    if typing.is_typeddict(hint) and isinstance(value, typing.Mapping):
        fields = hint.__annotations__  # as written (NotRequired kept): no forward references to evaluate
        renamed = {}
        for key, item in value.items():
            arg = key if to_config else (_ARG_NAMES.get(key) or _snake(key))
            if arg not in fields:  # unknown: keep it for validation to name
                renamed[key] = item
                continue
            name = (_CONFIG_NAMES.get(arg) or to_camel(arg)) if to_config else arg
            renamed[name] = _walk(item, fields[arg], to_config=to_config)
        return renamed
    origin = typing.get_origin(hint)
    if origin in (NotRequired, typing.Required):
        return _walk(value, typing.get_args(hint)[0], to_config=to_config)
    if origin is dict and isinstance(value, typing.Mapping):
        item_hint = typing.get_args(hint)[1]
        return {key: _walk(item, item_hint, to_config=to_config) for key, item in value.items()}
    return value


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def check_bundle_choice(args: typing.Mapping[str, Any]) -> None:
    """Not both ``caBundle`` and ``caBundleSource`` (neither: validation says ``caBundle`` is missing)."""
    if args.get("ca_bundle") is not None and args.get("ca_bundle_source") is not None:
        raise ConfigError("caBundle", "give the CA bundle as caBundle (PEM) or caBundleSource, not both")
