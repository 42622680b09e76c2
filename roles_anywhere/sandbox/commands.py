"""Commands: ``sandbox`` (run it) and ``sandbox-deploy`` (a stack into it)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from roles_anywhere import PROJECT
from roles_anywhere.signals import stop_on_signals

from ..errors import ConfigError, RolesAnywhereError, read_user_file

DEFAULT_ENDPOINTS_FILE = Path("out/sandbox/endpoints.json")
SANDBOX_MODULES = ("moto", "flask", "werkzeug", "boto3", "botocore")
SANDBOX_EXTRA = "install this project with its 'sandbox' extra (in the checkout: pip install '.[sandbox]')"


class MissingExtraError(RolesAnywhereError):
    """A command needs the optional ``sandbox`` dependencies, which are not installed."""


def require_sandbox_extra(command: str) -> None:
    """Stop with one line naming the extra, before an import error could become a traceback."""
    missing = [name for name in SANDBOX_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingExtraError(
            f"`roles-anywhere {command}` needs the 'sandbox' extra ({', '.join(missing)} not installed): "
            f"{SANDBOX_EXTRA}"
        )


def add_commands(commands: Any) -> None:
    """Register ``sandbox`` and ``sandbox-deploy`` on the CLI's sub-parser collection."""
    sandbox = commands.add_parser("sandbox", help="run a local Roles Anywhere (+ moto IAM/STS) on 127.0.0.1")
    sandbox.add_argument("--state-dir", type=Path, metavar="DIR", help="keep resources across restarts")
    sandbox.add_argument(
        "--endpoints-file",
        type=Path,
        default=DEFAULT_ENDPOINTS_FILE,
        metavar="FILE",
        help=f"where to write the endpoints and CA file clients need (default {DEFAULT_ENDPOINTS_FILE})",
    )
    sandbox.add_argument(
        "--region", default="us-east-1", help="the region it answers for (default us-east-1)"
    )
    sandbox.set_defaults(handler=run_sandbox)

    deploy = commands.add_parser(
        "sandbox-deploy", help="deploy a stack into a running sandbox and render its files for it"
    )
    deploy.add_argument(
        "--config", required=True, type=Path, metavar="Pulumi.<stack>.yaml", help="the stack config file"
    )
    deploy.add_argument(
        "--endpoints",
        type=Path,
        default=DEFAULT_ENDPOINTS_FILE,
        metavar="FILE",
        help=f"the running sandbox's endpoints file (default {DEFAULT_ENDPOINTS_FILE})",
    )
    deploy.add_argument(
        "--out", required=True, type=Path, metavar="DIR", help="where to write the rendered files"
    )
    deploy.add_argument(
        "--allow-commands", action="store_true", help="let caBundle.command run its program for this run"
    )
    deploy.set_defaults(handler=run_deploy)


def read_endpoints(path: Path) -> dict[str, Any]:
    """The endpoints file a running sandbox wrote."""
    try:
        endpoints = json.loads(read_user_file(path, f"--endpoints {path}"))
    except json.JSONDecodeError:
        raise ConfigError(f"--endpoints {path}", "is not JSON written by `roles-anywhere sandbox`") from None
    missing = {"region", "accountId", "iam", "sts", "rolesanywhere", "caFile"} - set(endpoints)
    if missing:
        raise ConfigError(
            f"--endpoints {path}", f"lacks {', '.join(sorted(missing))}; is the sandbox running?"
        )
    return dict(endpoints)


def run_sandbox(args: argparse.Namespace) -> int:
    """Start, print the endpoints, wait for Ctrl-C or SIGTERM, stop everything."""
    import logging  # noqa: PLC0415

    require_sandbox_extra("sandbox")

    from .server import Sandbox  # noqa: PLC0415

    logging.basicConfig(level=logging.INFO, format="sandbox: %(message)s", stream=sys.stderr)
    stopping = stop_on_signals()
    with Sandbox(region=args.region, state_dir=args.state_dir, endpoints_file=args.endpoints_file) as sandbox:
        endpoints = sandbox.endpoints
        sys.stdout.write(
            f"Roles Anywhere sandbox ({args.region}, account {endpoints['accountId']}) on 127.0.0.1:\n"
            f"  rolesanywhere  {endpoints['rolesanywhere']}  (TLS certificate: {endpoints['caFile']})\n"
            f"  iam, sts       {endpoints['iam']}  (moto)\n"
            f"Endpoints written to {args.endpoints_file}. Ctrl-C stops it.\n"
        )
        sys.stdout.flush()
        while not stopping:
            time.sleep(0.5)
    return 0


def with_sandbox_clients(config: dict[str, str], endpoints: dict[str, Any]) -> dict[str, str]:
    """The stack config with ``aws`` pointing rendered clients at the sandbox (and our Python helper)."""
    key = f"{PROJECT}:aws"
    aws = json.loads(config.get(key) or "{}")
    aws.update(
        signingHelper="python",
        endpoint=endpoints["rolesanywhere"],
        endpointCaFile=str(Path(endpoints["caFile"]).resolve()),
        endpointUrl=endpoints["sts"],
    )
    return {**config, key: json.dumps(aws)}


def run_deploy(args: argparse.Namespace) -> int:
    """Create the stack's resources in the sandbox, then write outputs.json and the rendered files."""
    from roles_anywhere.config.stack_file import read_stack_file  # noqa: PLC0415
    from roles_anywhere.output.artifact_writer import write_artifacts  # noqa: PLC0415
    from roles_anywhere.render.artifacts import render_into_folder  # noqa: PLC0415
    from roles_anywhere.stack.deployment import load_deployment, read_outputs_file  # noqa: PLC0415

    require_sandbox_extra("sandbox-deploy")
    from .deploy import deploy_stack  # noqa: PLC0415

    endpoints = read_endpoints(args.endpoints)
    stack_file = read_stack_file(args.config)
    stack_file = replace(stack_file, config=with_sandbox_clients(stack_file.config, endpoints))
    previous_outputs = args.out / "outputs.json"
    previous = read_outputs_file(previous_outputs) if previous_outputs.is_file() else None
    plan, deleted = deploy_stack(stack_file, endpoints, previous)
    deployment = load_deployment(plan.outputs, source=f"sandbox deploy of {args.config}")
    args.out.mkdir(parents=True, exist_ok=True)
    files = render_into_folder(deployment, args.out)
    files["outputs.json"] = json.dumps(plan.outputs, indent=2) + "\n"
    write_artifacts(files, args.out)
    sys.stdout.write(
        f"Deployed {len(plan.resources)} resources of {args.config} into the sandbox "
        f"(trust anchor {deployment.trust_anchor_arn}).\n"
        f"Stack outputs and rendered files for the sandbox: {args.out}/ (outputs.json, aws/config, …)\n"
    )
    for what in deleted:
        sys.stdout.write(f"  deleted {what} (no longer in the config)\n")
    return 0
