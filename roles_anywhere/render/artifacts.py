"""Render every artefact the Teleport and workload side needs, from one ``Deployment``.

Pure: a ``Deployment`` in, ``{relative path: file text}`` out, the same bytes every time. The
templates in ``templates/`` hold the layout; this module decides names and order, and the
environment guarantees that every interpolated value went through a quoting filter.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import jinja2

from roles_anywhere.config.field_rules import format_duration
from roles_anywhere.config.model import PYTHON_SIGNING_HELPER
from roles_anywhere.config.teleport_names import (
    ANCHOR_LABEL,
    STACK_LABEL,
    WORKLOAD_LABEL,
    workload_identity_name,
)
from roles_anywhere.render.quoting import FILTERS, Quoted, RenderError
from roles_anywhere.stack.deployment import DeployedWorkload, Deployment
from roles_anywhere.teleport.access import TeleportAccess, teleport_access
from roles_anywhere.teleport.ledger import LEDGER, Retired, ledger_text, retired_since

PACKAGE = Path(__file__).resolve().parent.parent
# A link to the repository's templates/ (a folder in the wheel); a checkout without symlinks has a
# text file there, and the folder beside the package.
_LINKED = PACKAGE / "templates"
TEMPLATES = _LINKED if _LINKED.is_dir() else PACKAGE.parent / "templates"
APPLY_PROGRAM = PACKAGE / "teleport" / "apply.py"  # copied into the rendered teleport/apply.py
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
    workload_identity: str
    spiffe_path: str
    credential_process: tuple[str, ...]
    serve: tuple[str, ...]
    serve_port: int
    tbot_session_duration: str
    tbot_renewal_interval: str
    credentials_file: str


_SAFE_FILE_STEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+=-]{0,99}")


def file_stem(name: str) -> str:
    """A Teleport object's name as a file name: itself when short and plain, else a readable part + a hash.

    Role names hold user names (up to 255 characters, any printable ones), which a file name cannot.
    """
    if _SAFE_FILE_STEM.fullmatch(name):
        return name
    readable = re.sub(r"[^A-Za-z0-9._@+=-]", "_", name)[:60]
    return f"{readable}-{hashlib.sha256(name.encode()).hexdigest()[:16]}"


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
    if workload.role_session_name:  # sent only when the profile accepts it, or CreateSession is denied
        args += ["--role-session-name", workload.role_session_name]
    if aws.endpoint:
        args += ["--endpoint", aws.endpoint]
    if aws.endpoint_ca_file:
        args += ["--ca-bundle", aws.endpoint_ca_file]
    return tuple(args)


def serve_args(deployment: Deployment, workload: DeployedWorkload, port: int) -> tuple[str, ...]:
    """``<serveHelper> serve --port N …``: ``roles-anywhere`` unless ``aws.serveHelper`` names the Go helper.

    Both follow tbot's rotation (the Go helper re-reads the files at every signature since 2024);
    ``roles-anywhere serve`` also refuses browsers and rebound names and never stalls a client.
    """
    helper = deployment.aws.serve_helper
    program = PYTHON_HELPER_COMMAND if helper == PYTHON_SIGNING_HELPER else helper
    _, _, *flags = credential_process_args(deployment, workload)
    return (program, "serve", "--port", str(port), *flags)


def workload_views(deployment: Deployment) -> list[WorkloadView]:
    """Every workload, sorted by name, with its derived names."""
    views = []
    ports = deployment.serve_ports() if deployment.aws.credentials == "serve" else {}
    for name, workload in sorted(deployment.workloads.items()):
        session = workload.session_duration
        views.append(
            WorkloadView(
                name=name,
                spec=workload,
                workload_identity=workload_identity_name(deployment.teleport.namespace, name),
                spiffe_path=workload.spiffe_id.removeprefix(f"spiffe://{deployment.cluster}"),
                credential_process=credential_process_args(deployment, workload),
                serve=serve_args(deployment, workload, ports.get(name, deployment.aws.serve_port)),
                serve_port=ports.get(name, deployment.aws.serve_port),
                tbot_session_duration=format_duration(session),
                tbot_renewal_interval=format_duration(min(MAX_RENEWAL_SECONDS, session // 2)),
                credentials_file=str(PurePosixPath(workload.svid_directory) / AWS_CREDENTIALS_ARTIFACT),
            )
        )
    return views


def render_artifacts(deployment: Deployment, retired: Retired | None = None) -> dict[str, str]:
    """Every artefact as ``{relative POSIX path: text}``, in a stable order.

    ``retired`` names the Teleport objects an earlier render into the same folder granted and this
    one no longer does (see ``teleport.ledger``); ``apply.sh`` takes them back.
    """
    return _render(deployment, teleport_access(deployment), retired or Retired())


def artifact_digests(files: Mapping[str, str]) -> dict[str, str]:
    """``path → "sha256:<hex>"`` of each rendered file: what the ``artifacts`` stack output holds.

    The bodies are not kept in stack state (they were 0.95 MB of 1.06 MB of outputs at 300
    workloads, checkpointed on every update); ``render --stack-outputs`` renders the same bytes from
    the other outputs, and the digests show whether a folder still holds what `pulumi up` wrote.
    """
    return {
        path: "sha256:" + hashlib.sha256(text.encode()).hexdigest() for path, text in sorted(files.items())
    }


def render_into_folder(deployment: Deployment, out_dir: Path) -> dict[str, str]:
    """The artefacts for ``out_dir``: what its record says earlier renders granted is taken back."""
    access = teleport_access(deployment)
    current = access.object_names(legacy=deployment.teleport.mode == "legacy")
    return _render(deployment, access, retired_since(out_dir, access.namespace, current))


def _render(deployment: Deployment, access: TeleportAccess, retired: Retired) -> dict[str, str]:
    env = _environment()
    workloads = {w.name: w for w in workload_views(deployment)}
    legacy = deployment.teleport.mode == "legacy"
    wi_files = {g.workload: f"workload_identity-{file_stem(g.workload_identity)}.yaml" for g in access.grants}
    role_files = {r.name: f"role-{file_stem(r.name)}.yaml" for r in access.roles}
    _check_distinct_files([*wi_files.values(), *role_files.values()])
    common: dict[str, Any] = {
        "d": deployment,
        "workloads": list(workloads.values()),
        "access": access,
        "retired": retired,
        "stack_label": STACK_LABEL,
        "anchor_label": ANCHOR_LABEL,
        "workload_label": WORKLOAD_LABEL,
        "legacy": legacy,
        "wi_files": wi_files,
        "role_files": role_files,
        "user_roles": access.user_roles(),
    }
    files: dict[str, str] = {}

    def put(path: str, template: str, **context: Any) -> None:
        files[path] = env.get_template(template).render(**common, **context)

    put("README.md", "README.md.j2")
    if not legacy:
        for grant in access.grants:
            path = f"teleport/{wi_files[grant.workload]}"
            put(path, "teleport/workload_identity.yaml.j2", w=workloads[grant.workload], g=grant)
    for role in access.roles:
        put(f"teleport/{role_files[role.name]}", "teleport/role.yaml.j2", r=role)
    put("teleport/apply.sh", "teleport/apply.sh.j2")
    files["teleport/apply.py"] = APPLY_PROGRAM.read_text(encoding="utf-8")
    current = access.object_names(legacy=legacy)
    current_grants = () if legacy else access.grants
    files[LEDGER] = ledger_text(
        access.namespace,
        current,
        retired,
        trustAnchor=deployment.trust_anchor_arn,
        mode=deployment.teleport.mode,
        files={
            **{f"workload_identity/{g.workload_identity}": wi_files[g.workload] for g in current_grants},
            **{f"role/{name}": file for name, file in role_files.items()},
        },
        spiffePaths=[g.spiffe_path for g in access.grants],
        bots=access.bot_roles(),
        users=access.user_roles(),
    )
    for bot, bot_settings in sorted(deployment.teleport.bots.items()):
        served = [w for w in workloads.values() if bot in w.spec.bots]
        put(f"tbot/{bot}.yaml", "tbot/bot.yaml.j2", bot=bot, settings=bot_settings, served=served)
    put("aws/config", "aws/config.j2")
    if deployment.aws.credentials == "serve":
        for view in workloads.values():
            put(f"serve/{view.name}.service", "serve/service.j2", w=view)
            put(f"serve/{view.name}.env", "serve/env.j2", w=view)
    for grant in access.grants:
        put(f"tsh/{grant.workload}.sh", "tsh/issue.sh.j2", w=workloads[grant.workload], g=grant)
    return files


def _check_distinct_files(names: list[str]) -> None:
    """Two objects in one file would leave one of them unapplied (and a retired grant alive)."""
    seen: dict[str, str] = {}
    for name in names:
        other = seen.get(name.casefold())
        seen[name.casefold()] = name
        if other is not None:
            raise RenderError(
                f"teleport/{name} and teleport/{other} would be the same file (on a case-insensitive file "
                "system); rename a bot or user"
            )


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
