"""Render every artefact the Teleport and workload side needs, from one ``Deployment``.

Pure: a ``Deployment`` in, ``{relative path: file text}`` out, the same bytes every time. The
templates in ``templates/`` hold the layout; this module decides names and order, and the
environment guarantees that every interpolated value went through a quoting filter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import jinja2

from .config_model import PYTHON_SIGNING_HELPER
from .deployment import DeployedWorkload, Deployment
from .field_rules import format_duration
from .quoting import FILTERS, Quoted, RenderError

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
WORKLOAD_LABEL = "teleport-roles-anywhere/workload"
SVID_CERTIFICATE = "svid.pem"
SVID_KEY = "svid_key.pem"
AWS_CREDENTIALS_ARTIFACT = "aws_credentials"
MAX_RENEWAL_SECONDS = 3_600
PYTHON_HELPER_COMMAND = "roles-anywhere"  # this package's console script, for signingHelper: python


@dataclass(frozen=True)
class WorkloadView:
    """One workload with the names every artefact derives from it."""

    name: str
    spec: DeployedWorkload
    teleport_role: str
    spiffe_path: str
    credential_process: tuple[str, ...]
    tbot_session_duration: str
    tbot_renewal_interval: str
    credentials_file: str

    @property
    def resource_file(self) -> str:
        """``teleport/`` file of its WorkloadIdentity resource."""
        return f"workload_identity-{self.name}.yaml"

    @property
    def role_file(self) -> str:
        """``teleport/`` file of its role."""
        return f"role-{self.teleport_role}.yaml"


def teleport_role_name(workload: str) -> str:
    """The Teleport role that lets a bot or user obtain ``workload``'s SVID."""
    return f"{workload}-workload-identity"


def credential_process_args(deployment: Deployment, workload: DeployedWorkload) -> tuple[str, ...]:
    """``aws_signing_helper credential-process …`` as argv: the SVID files and the three ARNs."""
    directory = PurePosixPath(workload.svid_directory)
    aws = deployment.aws
    program = PYTHON_HELPER_COMMAND if aws.signing_helper == PYTHON_SIGNING_HELPER else aws.signing_helper
    args = [
        program,
        "credential-process",
        "--certificate",
        str(directory / SVID_CERTIFICATE),
        "--private-key",
        str(directory / SVID_KEY),
        "--trust-anchor-arn",
        deployment.trust_anchor_arn,
        "--profile-arn",
        workload.profile_arn,
        "--role-arn",
        workload.role_arn,
    ]
    if workload.session_duration != 3_600:
        args += ["--session-duration", str(workload.session_duration)]
    if aws.endpoint:
        args += ["--endpoint", aws.endpoint]
    if aws.endpoint_ca_file:
        args += ["--ca-bundle", aws.endpoint_ca_file]
    return tuple(args)


def workload_views(deployment: Deployment) -> list[WorkloadView]:
    """Every workload, sorted by name, with its derived names."""
    views = []
    for name, workload in sorted(deployment.workloads.items()):
        session = workload.session_duration
        views.append(
            WorkloadView(
                name=name,
                spec=workload,
                teleport_role=teleport_role_name(name),
                spiffe_path=workload.spiffe_id.removeprefix(f"spiffe://{deployment.cluster}"),
                credential_process=credential_process_args(deployment, workload),
                tbot_session_duration=format_duration(session),
                tbot_renewal_interval=format_duration(min(MAX_RENEWAL_SECONDS, session // 2)),
                credentials_file=str(PurePosixPath(workload.svid_directory) / AWS_CREDENTIALS_ARTIFACT),
            )
        )
    return views


def render_artifacts(deployment: Deployment) -> dict[str, str]:
    """Every artefact as ``{relative POSIX path: text}``, in a stable order."""
    env = _environment()
    workloads = workload_views(deployment)
    legacy = deployment.teleport.mode == "legacy"
    bot_roles = {
        bot: [w.teleport_role for w in workloads if bot in w.spec.bots]
        for bot in sorted(deployment.teleport.bots)
    }
    common: dict[str, Any] = {
        "d": deployment,
        "workloads": workloads,
        "label": WORKLOAD_LABEL,
        "legacy": legacy,
        "bot_roles": bot_roles,
    }
    files: dict[str, str] = {}

    def put(path: str, template: str, **context: Any) -> None:
        files[path] = env.get_template(template).render(**common, **context)

    put("README.md", "README.md.j2")
    for workload in workloads:
        if not legacy:
            put(f"teleport/{workload.resource_file}", "teleport/workload_identity.yaml.j2", w=workload)
        put(f"teleport/{workload.role_file}", "teleport/role.yaml.j2", w=workload)
    put("teleport/apply.sh", "teleport/apply.sh.j2")
    for bot, bot_settings in sorted(deployment.teleport.bots.items()):
        served = [w for w in workloads if bot in w.spec.bots]
        put(f"tbot/{bot}.yaml", "tbot/bot.yaml.j2", bot=bot, settings=bot_settings, served=served)
    put("aws/config", "aws/config.j2")
    for workload in workloads:
        put(f"tsh/{workload.name}.sh", "tsh/issue.sh.j2", w=workload)
    return files


def is_executable(path: str) -> bool:
    """Scripts get mode 0755, everything else 0644."""
    return path.endswith(".sh")


def _only_quoted(value: object) -> object:
    """``finalize`` hook: an interpolation that skipped the quoting filters is a template bug."""
    if not isinstance(value, Quoted):
        raise RenderError(
            f"template interpolated {str(value)[:40]!r} without a quoting filter (yaml, sh, ini, comment, md)"
        )
    return value


def _defined_only(quote: Callable[..., Quoted]) -> Callable[..., Quoted]:
    """A filter that lets ``StrictUndefined`` raise its own error instead of being quoted."""

    def checked(value: object, *args: Any) -> Quoted:
        if isinstance(value, jinja2.Undefined):
            str(value)  # raises jinja2.UndefinedError naming the missing variable
        return quote(value, *args)

    return checked


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - not HTML; every value is quoted for its format by a filter
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_only_quoted,
    )
    env.filters.update({name: _defined_only(quote) for name, quote in FILTERS.items()})
    env.filters["duration"] = format_duration
    return env
