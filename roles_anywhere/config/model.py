"""The shape of the stack config, as pydantic models: types, ranges, formats, unknown keys.

Checks that need more than one field (a SPIFFE ID against ``cluster``, a name against its prefix)
and the CA bundle's X.509 checks live in ``stack.spec``; this module only says what each key may hold.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from roles_anywhere.config import field_rules, iam_settings
from roles_anywhere.config.naming import TRUST_ANCHOR_NAME

MIN_SESSION_SECONDS = 900
MAX_SESSION_SECONDS = 43_200
DEFAULT_SESSION_SECONDS = 3_600
DEFAULT_NOTIFICATION_DAYS = 45
MAX_MANAGED_POLICIES = 20
MAX_INLINE_POLICY_CHARS = 10_240
MIN_FETCH_TIMEOUT = 1
MAX_FETCH_TIMEOUT = 600

POLICY_ARN = re.compile(
    r"arn:aws(?:-cn|-us-gov|-iso(?:-[a-z])?|-eusc)?:iam::(?:aws|\d{12}):policy/(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,128}"
)
ACCOUNT_ID = re.compile(r"\d{12}")
DEFAULT_SVID_TTL = "1h"
DEFAULT_SIGNING_HELPER = "aws_signing_helper"
PYTHON_SIGNING_HELPER = "python"
JOIN_METHODS = (
    "token",
    "azure",
    "azure_devops",
    "bitbucket",
    "bound_keypair",
    "circleci",
    "ec2",
    "env0",
    "gcp",
    "github",
    "gitlab",
    "iam",
    "kubernetes",
    "oracle",
    "spacelift",
    "terraform_cloud",
    "tpm",
)
TeleportMode = Literal["workload-identity", "legacy"]
CredentialSource = Literal["process", "tbot", "serve"]
DEFAULT_SERVE_PORT = 9911  # aws_signing_helper serve's


def _whole_number(value: Any) -> Any:
    """Accept ints and digit strings (``pulumi config set`` stores scalars as text); refuse bools/floats."""
    if isinstance(value, (bool, float)):
        raise ValueError("must be a whole number")
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if not isinstance(value, int):
        raise ValueError("must be a whole number")
    return value


def _flag(value: Any) -> Any:
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


WholeNumber = Annotated[int, BeforeValidator(_whole_number)]
Flag = Annotated[bool, BeforeValidator(_flag)]


def _string_or_list(value: Any) -> Any:
    """IAM's ``Action``/``Resource`` form: one non-empty string or a non-empty list of them."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(i, str) and i for i in items):
        raise ValueError("must be a non-empty string or a non-empty list of non-empty strings")
    return value


StringOrList = Annotated[Any, BeforeValidator(_string_or_list)]


class _ConfigModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=False)


class CaBundleConfig(_ConfigModel):
    """Where the Teleport SPIFFE CA comes from: exactly one source, plus how to reach it.

    ``proxy`` and ``bundleUrl`` fetch a SPIFFE trust bundle (every CA the cluster trusts, old and
    new during a rotation); ``command`` runs a program and reads PEM or bundle JSON from stdout;
    ``file`` holds PEM or bundle JSON (recognised by content); ``pem`` is the PEM text itself.
    """

    file: str | None = None
    pem: str | None = None
    proxy: str | None = None
    bundle_url: str | None = None
    command: list[str] | None = None
    proxy_ca_file: str | None = None
    timeout: WholeNumber | None = None

    @field_validator("proxy")
    @classmethod
    def _proxy(cls, address: str | None) -> str | None:
        return None if address is None else field_rules.proxy_address(address)

    @field_validator("bundle_url")
    @classmethod
    def _bundle_url(cls, url: str | None) -> str | None:
        return None if url is None else field_rules.bundle_url(url)

    @field_validator("command")
    @classmethod
    def _command(cls, argv: list[str] | None) -> list[str] | None:
        return None if argv is None else field_rules.command_argv(argv)

    @field_validator("file", "proxy_ca_file")
    @classmethod
    def _local_file(cls, path: str | None) -> str | None:
        return None if path is None else field_rules.local_path(path, what="file path")

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, seconds: int | None) -> int | None:
        if seconds is not None and not MIN_FETCH_TIMEOUT <= seconds <= MAX_FETCH_TIMEOUT:
            raise ValueError(
                f"must be between {MIN_FETCH_TIMEOUT} and {MAX_FETCH_TIMEOUT} seconds, got {seconds}"
            )
        return seconds

    @model_validator(mode="after")
    def _exactly_one(self) -> CaBundleConfig:
        given = [key for key, field in CA_BUNDLE_SOURCES.items() if getattr(self, field) is not None]
        if len(given) != 1:
            listed = ", ".join(f"'{key}'" for key in CA_BUNDLE_SOURCES)
            found = f" (found {', '.join(given)})" if given else ""
            raise ValueError(f"give exactly one source: {listed}{found}")
        if self.proxy_ca_file is not None and given[0] not in ("proxy", "bundleUrl"):
            raise ValueError(f"'proxyCaFile' applies only to 'proxy' and 'bundleUrl', not to '{given[0]}'")
        if self.timeout is not None and given[0] not in ("proxy", "bundleUrl", "command"):
            raise ValueError(
                f"'timeout' applies only to 'proxy', 'bundleUrl' and 'command', not to '{given[0]}'"
            )
        return self

    @property
    def source_key(self) -> str:
        """The config key of the source in use (``caBundle.proxy``…), for messages."""
        return "caBundle." + next(k for k, f in CA_BUNDLE_SOURCES.items() if getattr(self, f) is not None)


CA_BUNDLE_SOURCES = {
    "proxy": "proxy",
    "bundleUrl": "bundle_url",
    "command": "command",
    "file": "file",
    "pem": "pem",
}


class TrustAnchorConfig(_ConfigModel):
    """Trust anchor settings; notifications are pinned because changing them replaces the anchor."""

    name: str | None = None
    ca_expiry_notification_days: WholeNumber = Field(DEFAULT_NOTIFICATION_DAYS)
    certificate_expiry_notification_days: WholeNumber = Field(DEFAULT_NOTIFICATION_DAYS)
    protect: Flag = True

    @field_validator("ca_expiry_notification_days", "certificate_expiry_notification_days")
    @classmethod
    def _threshold(cls, days: int) -> int:
        if not 1 <= days <= 360:
            raise ValueError(f"must be between 1 and 360 days, got {days}")
        return days

    @field_validator("name")
    @classmethod
    def _anchor_name(cls, name: str | None) -> str | None:
        if name is not None and not TRUST_ANCHOR_NAME.fullmatch(name):
            raise ValueError("must be 1-255 characters of letters, digits, spaces, '-' and '_'")
        return name


class PolicyStatement(BaseModel):
    """One statement of an identity (permissions) policy, with IAM's own key names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    Sid: Annotated[str, Field(pattern=r"^[A-Za-z0-9]*$")] | None = None
    Effect: Literal["Allow", "Deny"]
    Action: StringOrList = None
    NotAction: StringOrList = None
    Resource: StringOrList = None
    NotResource: StringOrList = None
    Condition: dict[str, dict[str, Any]] | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_principal(cls, data: Any) -> Any:
        if isinstance(data, dict) and ({"Principal", "NotPrincipal"} & data.keys()):
            raise ValueError(
                "Principal is not allowed in a permissions policy; who may assume the role is decided "
                "by the trust policy, which is generated from spiffeId"
            )
        return data

    @model_validator(mode="after")
    def _one_of_each(self) -> PolicyStatement:
        for plain, negated in (("Action", "NotAction"), ("Resource", "NotResource")):
            if (getattr(self, plain) is None) == (getattr(self, negated) is None):
                raise ValueError(f"a statement needs exactly one of {plain} or {negated}")
        return self


class InlinePolicy(BaseModel):
    """An IAM identity policy document (``Version`` and ``Statement``), as the user wrote it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    Version: Literal["2012-10-17", "2008-10-17"]
    Id: str | None = None
    Statement: list[PolicyStatement] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _accept_json_and_single_statement(cls, data: Any) -> Any:
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as err:
                raise ValueError(f"is a string but not a JSON policy document ({err.msg})") from None
        if isinstance(data, dict) and isinstance(data.get("Statement"), dict):
            data = {**data, "Statement": [data["Statement"]]}
        return data


def _text(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return value


Text = Annotated[str, BeforeValidator(_text)]


def _unique(items: list[str]) -> list[str]:
    duplicates = sorted({item for item in items if items.count(item) > 1})
    if duplicates:
        raise ValueError(f"lists {duplicates[0]!r} more than once")
    return items


class BotConfig(_ConfigModel):
    """How one tbot joins the cluster and where it keeps its own identity."""

    join_method: str = "token"
    token: Text | None = None
    storage_path: Text | None = None

    @field_validator("join_method")
    @classmethod
    def _join_method(cls, method: str) -> str:
        if method not in JOIN_METHODS:
            raise ValueError(
                f"{method!r} is not a Teleport join method; use one of: {', '.join(JOIN_METHODS)}"
            )
        return method

    @field_validator("storage_path")
    @classmethod
    def _storage_path(cls, path: str | None) -> str | None:
        return None if path is None else field_rules.absolute_path(path, what="folder", in_aws_config=False)

    @field_validator("token")
    @classmethod
    def _token_is_not_a_secret(cls, token: str | None, info: ValidationInfo) -> str | None:
        if token is None:
            return None
        return field_rules.join_token(token, info.data.get("join_method", "token"))


class TeleportConfig(_ConfigModel):
    """The Teleport side: how SVIDs are issued, where tbot connects, how each bot joins."""

    mode: TeleportMode = "workload-identity"
    namespace: Text | None = None
    proxy: Text | None = None
    bots: dict[str, BotConfig] = Field(default_factory=dict)

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str | None) -> str | None:
        return None if value is None else field_rules.teleport_namespace(value)

    @field_validator("proxy")
    @classmethod
    def _proxy(cls, address: str | None) -> str | None:
        return None if address is None else field_rules.proxy_address(address)

    @field_validator("bots")
    @classmethod
    def _bot_names(cls, bots: dict[str, BotConfig]) -> dict[str, BotConfig]:
        for name in bots:
            field_rules.bot_name(name)
        return bots


class AwsClientConfig(_ConfigModel):
    """How workloads turn an SVID into AWS credentials."""

    signing_helper: Text = DEFAULT_SIGNING_HELPER
    credentials: CredentialSource = "process"
    serve_port: WholeNumber = DEFAULT_SERVE_PORT
    serve_helper: Text = PYTHON_SIGNING_HELPER
    endpoint: Text | None = None
    endpoint_ca_file: Text | None = None
    endpoint_url: Text | None = None

    @field_validator("signing_helper", "serve_helper")
    @classmethod
    def _signing_helper(cls, command: str) -> str:
        return command if command == PYTHON_SIGNING_HELPER else field_rules.command_path(command)

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, url: str | None) -> str | None:
        return None if url is None else field_rules.service_url(url)

    @field_validator("serve_port")
    @classmethod
    def _serve_port(cls, port: int) -> int:
        return _serve_port(port)

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint_url(cls, url: str | None) -> str | None:
        return None if url is None else field_rules.service_url(url, https_only=False)

    @field_validator("endpoint_ca_file")
    @classmethod
    def _endpoint_ca_file(cls, path: str | None) -> str | None:
        return None if path is None else field_rules.absolute_path(path, what="file path")

    @model_validator(mode="after")
    def _ca_file_needs_python(self) -> AwsClientConfig:
        for key, helper in (("signingHelper", self.signing_helper), ("serveHelper", self.serve_helper)):
            if self.endpoint_ca_file is not None and helper != PYTHON_SIGNING_HELPER:
                raise ValueError(
                    f"'endpointCaFile' needs {key}: python "
                    "(aws_signing_helper has no flag to trust a CA file)"
                )
        return self


def _serve_port(port: int) -> int:
    if not 1_024 <= port <= 65_535:
        raise ValueError(f"must be a port between 1024 and 65535 (no root needed), got {port}")
    return port


def _policy_arn_list(arns: list[str], too_many: str) -> list[str]:
    for index, arn in enumerate(arns):
        if not POLICY_ARN.fullmatch(arn):
            raise ValueError(
                f"item {index} ({arn!r}) is not an IAM policy ARN (arn:aws:iam::aws|ACCOUNT:policy/NAME)"
            )
    duplicates = sorted({arn for arn in arns if arns.count(arn) > 1})
    if duplicates:
        raise ValueError(f"lists {duplicates[0]} more than once")
    if too_many:
        raise ValueError(f"lists {len(arns)} policies; {too_many}")
    return arns


def _matching(pattern: re.Pattern[str], what: str) -> AfterValidator:
    """A text value that must match ``pattern``; the message shows (the start of) the value."""

    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"{value[:80]!r} is not {what}")
        return value

    return AfterValidator(check)


_POLICY = "an IAM policy ARN (arn:aws:iam::aws|ACCOUNT:policy/NAME)"
BoundaryArn = Annotated[str, BeforeValidator(_text), _matching(POLICY_ARN, _POLICY)]
RolePath = Annotated[str, BeforeValidator(_text), AfterValidator(iam_settings.role_path)]
Tags = Annotated[dict[str, Any], AfterValidator(iam_settings.tags)]


class IamSettingsConfig(_ConfigModel):
    """What an account's rules may require on every role: a permissions boundary, a path, tags.

    Set stack-wide under ``iam``; a workload's own keys of the same names override them (its tags are
    merged over the stack's).
    """

    permissions_boundary: BoundaryArn | None = None
    path: RolePath | None = None
    tags: Tags | None = None


class ProfileSettingsConfig(_ConfigModel):
    """A Roles Anywhere profile's session settings (stack-wide under ``profile``, or per workload).

    Workloads whose resolved settings are equal share one profile (see ``profileSharing``).
    """

    session_policy: InlinePolicy | None = None
    managed_policy_arns: list[str] | None = None
    accept_role_session_name: Flag | None = None
    require_instance_properties: Flag | None = None

    @field_validator("managed_policy_arns")
    @classmethod
    def _session_policy_arns(cls, arns: list[str] | None) -> list[str] | None:
        if arns is None:
            return None
        limit = iam_settings.MAX_SESSION_MANAGED_POLICIES
        too_many = f"STS applies at most {limit} to a session" if len(arns) > limit else ""
        return _policy_arn_list(arns, too_many)


class WorkloadConfig(_ConfigModel):
    """One workload: the SPIFFE ID Teleport issues it, what its AWS role may do, who gets it."""

    spiffe_id: str
    managed_policy_arns: list[str] = Field(default_factory=list)
    inline_policy: InlinePolicy | None = None
    session_duration: WholeNumber = DEFAULT_SESSION_SECONDS
    svid_directory: Text | None = None
    bots: list[Text] = Field(default_factory=list)
    users: list[Text] = Field(default_factory=list)
    svid_ttl: Text = DEFAULT_SVID_TTL
    permissions_boundary: BoundaryArn | None = None
    path: RolePath | None = None
    tags: Tags | None = None
    profile: ProfileSettingsConfig = ProfileSettingsConfig()
    serve_port: WholeNumber | None = None

    @field_validator("serve_port")
    @classmethod
    def _serve_port(cls, port: int | None) -> int | None:
        return None if port is None else _serve_port(port)

    @field_validator("svid_directory")
    @classmethod
    def _svid_directory(cls, path: str | None) -> str | None:
        return None if path is None else field_rules.absolute_path(path, what="folder")

    @field_validator("bots")
    @classmethod
    def _bots(cls, bots: list[str]) -> list[str]:
        return _unique([field_rules.bot_name(bot) for bot in bots])

    @field_validator("users")
    @classmethod
    def _users(cls, users: list[str]) -> list[str]:
        return _unique([field_rules.user_name(user) for user in users])

    @field_validator("svid_ttl")
    @classmethod
    def _svid_ttl(cls, text: str) -> str:
        return field_rules.format_duration(field_rules.svid_ttl(text))

    @field_validator("spiffe_id", mode="before")
    @classmethod
    def _spiffe_id_text(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError("must be a string: a path such as /svc/name or a full spiffe:// ID")
        return value

    @field_validator("managed_policy_arns")
    @classmethod
    def _policy_arns(cls, arns: list[str]) -> list[str]:
        too_many = len(arns) > MAX_MANAGED_POLICIES
        return _policy_arn_list(
            arns, f"IAM attaches at most {MAX_MANAGED_POLICIES} to a role" if too_many else ""
        )

    @field_validator("session_duration")
    @classmethod
    def _session_duration(cls, seconds: int) -> int:
        if not MIN_SESSION_SECONDS <= seconds <= MAX_SESSION_SECONDS:
            raise ValueError(
                f"must be between {MIN_SESSION_SECONDS} and {MAX_SESSION_SECONDS} seconds "
                f"(15 minutes to 12 hours), got {seconds}"
            )
        return seconds


MAX_WORKLOADS = 5_000
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_ROLE_NAME = re.compile(r"[\w+=,.@-]{1,64}")


RolesAnywhereId = Annotated[
    str,
    BeforeValidator(_text),
    _matching(_UUID, "a Roles Anywhere ID (a lowercase UUID, the ARN's last part)"),
]
RoleName = Annotated[
    str,
    BeforeValidator(_text),
    _matching(_ROLE_NAME, "an IAM role name (1-64 of letters, digits and +=,.@_-)"),
]


class ImportConfig(_ConfigModel):
    """Existing resources `pulumi up` adopts instead of creating (Pulumi's ``import`` option).

    Keys: ``trustAnchor`` (the hand-made anchor's ID), ``roles`` (workload → existing role name),
    ``profiles`` (workload, or shared profile name, → existing profile ID). After the first
    `pulumi up` the keys may stay: an import applies only to a resource not yet in the stack.
    """

    trust_anchor: RolesAnywhereId | None = None
    roles: dict[str, RoleName] = Field(default_factory=dict)
    profiles: dict[str, RolesAnywhereId] = Field(default_factory=dict)


class QuotasConfig(_ConfigModel):
    """The account's quotas, for accounts where they were raised (AWS's defaults otherwise).

    ``plan`` warns at 80 % of each and refuses a stack above one, before AWS refuses it mid-deploy.
    """

    iam_roles: WholeNumber = 1_000  # per account (raisable to 5,000)
    profiles: WholeNumber = 250  # Roles Anywhere profiles per region
    trust_anchors: WholeNumber = 50  # Roles Anywhere trust anchors per region
    managed_policies_per_role: WholeNumber = 10  # raisable to 20
    tags: WholeNumber = 50  # per role or profile; AWS's hard limit

    @model_validator(mode="after")
    def _within_aws_maximums(self) -> QuotasConfig:
        for key, value, maximum in (
            ("iamRoles", self.iam_roles, MAX_WORKLOADS),
            ("managedPoliciesPerRole", self.managed_policies_per_role, MAX_MANAGED_POLICIES),
            ("tags", self.tags, iam_settings.MAX_TAGS),
        ):
            if not 1 <= value <= maximum:
                raise ValueError(f"{key} must be between 1 and {maximum} (AWS's maximum), got {value}")
        if not self.profiles >= 1 or not self.trust_anchors >= 1:
            raise ValueError("profiles and trustAnchors must be at least 1")
        return self


class StackConfig(_ConfigModel):
    """Every ``teleport-roles-anywhere:`` key of a stack config."""

    cluster: str
    ca_bundle: CaBundleConfig
    workloads: dict[str, WorkloadConfig] = Field(min_length=1)
    trust_anchor: TrustAnchorConfig = TrustAnchorConfig()
    name_prefix: str = ""
    account_id: str | None = None
    teleport: TeleportConfig = TeleportConfig()
    aws: AwsClientConfig = AwsClientConfig()
    artifacts_dir: str | None = None
    iam: IamSettingsConfig = IamSettingsConfig()
    profile: ProfileSettingsConfig = ProfileSettingsConfig()
    profile_sharing: Literal["shared", "perWorkload"] = "shared"
    quotas: QuotasConfig = QuotasConfig()
    import_: ImportConfig = Field(ImportConfig(), alias="import")

    @field_validator("cluster", "name_prefix", "account_id", "artifacts_dir", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, str):
            raise ValueError("must be a string")
        return value

    @field_validator("workloads", mode="before")
    @classmethod
    def _workload_count(cls, value: Any) -> Any:
        if isinstance(value, dict) and len(value) > MAX_WORKLOADS:
            raise ValueError(
                f"{len(value)} workloads; at most {MAX_WORKLOADS} (one IAM role each, and IAM allows at "
                f"most {MAX_WORKLOADS} roles per account even with a raised quota)"
            )
        return value

    @field_validator("artifacts_dir")
    @classmethod
    def _artifacts_dir(cls, path: str | None) -> str | None:
        return None if path is None else field_rules.artifacts_dir(path)

    @field_validator("account_id")
    @classmethod
    def _account_id(cls, value: str | None) -> str | None:
        if value is not None and not ACCOUNT_ID.fullmatch(value):
            raise ValueError("must be a 12-digit AWS account ID (quote it in YAML to keep leading zeros)")
        return value

    @field_validator("name_prefix")
    @classmethod
    def _name_prefix(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z0-9_-]{0,32}", value):
            raise ValueError("must be at most 32 lowercase letters, digits, '-' or '_'")
        return value


CONFIG_KEYS = tuple(field.alias or name for name, field in StackConfig.model_fields.items())
OBJECT_KEYS = frozenset(
    {"caBundle", "workloads", "trustAnchor", "teleport", "aws", "iam", "profile", "quotas", "import"}
)
