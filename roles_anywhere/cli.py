"""``roles-anywhere``: plan, render, simulate, check the CA bundle, turn SVIDs into AWS credentials.

Offline (no cloud account): ``plan``, ``render``, ``simulate``, ``bundle``. On workload hosts:
``credential-process`` (cached), ``serve`` (IMDSv2 on 127.0.0.1) and ``update`` (a credentials-file
profile). With the ``sandbox`` extra: ``sandbox`` and ``sandbox-deploy``, a local Roles Anywhere to run
the whole chain on one machine.

Exit status: 0 success, 1 denied or check failed, 2 bad input. Bad input is one line on stderr
naming the config key or file, never a traceback and never key material.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from . import ALLOW_COMMANDS_ENV
from .errors import ConfigError, RolesAnywhereError
from .outside_text import one_printable_line, printable_lines

if TYPE_CHECKING:
    from roles_anywhere.stack.deployment import Deployment

EXIT_OK = 0
EXIT_DENIED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 70
DEBUG_ENV = "ROLES_ANYWHERE_DEBUG"


class _Parser(argparse.ArgumentParser):
    """argparse, but usage mistakes are the same one-line error as every other bad input."""

    def error(self, message: str) -> NoReturn:
        _say("error", f"{message} (see '{self.prog} --help')")
        raise SystemExit(EXIT_BAD_INPUT)


_WARNINGS: list[str] = []
SHORT_LIVED = frozenset({"plan", "render", "simulate", "bundle", "credential-process"})


def _say(level: str, message: str) -> None:
    """Every line the CLI prints on stderr: one line, no control characters, whatever the source.

    Warnings wait for the outcome: a run that succeeds prints them all; a run that fails or is
    denied prints one line, which mentions them, so a failure is always exactly one line.
    """
    if level == "warning":
        _WARNINGS.append(message)
        return
    if _WARNINGS:
        count = len(_WARNINGS)
        message += f" (and {count} warning{'s' if count > 1 else ''}, the first: {_WARNINGS[0]})"
        _WARNINGS.clear()
    print(f"{level}: {one_printable_line(message)}", file=sys.stderr)


def _flush_warnings() -> None:
    for message in _WARNINGS:
        print(f"warning: {one_printable_line(message)}", file=sys.stderr)
    _WARNINGS.clear()


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface; each sub-command names its handler."""
    parser = _Parser(
        prog="roles-anywhere",
        description=__doc__.split("\n\n")[1].replace("``", "") if __doc__ else None,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")
    plan = commands.add_parser("plan", help="show what `pulumi up` would create, offline")
    plan.add_argument(
        "--config", required=True, type=Path, metavar="Pulumi.<stack>.yaml", help=STACK_FILE_HELP
    )
    plan.add_argument("--json", action="store_true", help="machine-readable plan on stdout")
    add_allow_commands(plan)
    plan.add_argument(
        "--stack-outputs",
        type=Path,
        metavar="FILE",
        help="the deployed stack's outputs (pulumi stack output --json): keep each workload in its "
        "shared profile, list every profile ARN that changes, warn about changes it cannot take in place",
    )
    plan.add_argument(
        "--policy-pack",
        type=Path,
        metavar="DIR",
        help="check the plan with a CrossGuard policy pack (policy-pack/); exit 1 if a mandatory one fails",
    )
    plan.add_argument(
        "--policy-config",
        type=Path,
        metavar="FILE",
        help="policy levels and settings (--policy-pack-config format)",
    )
    plan.add_argument("--strict", action="store_true", help="warnings are errors: exit 1 if there is any")
    plan.set_defaults(handler=_plan)
    render = commands.add_parser(
        "render", help="write the Teleport, tbot, tsh and AWS CLI files for a stack's ARNs"
    )
    source = render.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--config", type=Path, metavar="Pulumi.<stack>.yaml", help="offline: ARNs as the plan predicts them"
    )
    source.add_argument(
        "--stack-outputs", type=Path, metavar="FILE", help="deployed: FILE from `pulumi stack output --json`"
    )
    render.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder")
    add_allow_commands(render)
    render.set_defaults(handler=_render)
    simulate = commands.add_parser(
        "simulate", help="would Roles Anywhere give this SVID the role, and if not, why (offline)"
    )
    simulate.add_argument(
        "--config", required=True, type=Path, metavar="Pulumi.<stack>.yaml", help=STACK_FILE_HELP
    )
    simulate.add_argument(
        "--certificate", required=True, type=Path, metavar="SVID.pem", help="the X.509-SVID (PEM)"
    )
    simulate.add_argument("--intermediates", type=Path, metavar="CHAIN.pem", help="intermediate CAs, if any")
    simulate.add_argument("--role", metavar="WORKLOAD", help="one workload's role (default: every workload)")
    simulate.add_argument("--at", metavar="ISO-8601", help="check validity at this time (default: now)")
    simulate.add_argument(
        "--stack-outputs", type=Path, metavar="FILE", help="deployed ARNs from `pulumi stack output --json`"
    )
    simulate.add_argument(
        "--trust-policy", type=Path, metavar="FILE", help="evaluate this trust policy JSON instead"
    )
    simulate.add_argument(
        "--session-duration", type=int, metavar="SECONDS", help="requested duration (default: the workload's)"
    )
    simulate.add_argument(
        "--role-session-name",
        metavar="NAME",
        help="the role session name the request sends (default: the rendered one, if any)",
    )
    simulate.add_argument("--json", action="store_true", help="a verdict per role as JSON")
    add_allow_commands(simulate)
    simulate.set_defaults(handler=_simulate)
    bundle = commands.add_parser(
        "bundle",
        help="show the CAs the caBundle source serves now; exit 1 if the deployed anchor differs",
    )
    bundle.add_argument(
        "--config", required=True, type=Path, metavar="Pulumi.<stack>.yaml", help=STACK_FILE_HELP
    )
    bundle.add_argument(
        "--stack-outputs",
        type=Path,
        metavar="FILE",
        help="compare with the deployed anchor (pulumi stack output --json)",
    )
    bundle.add_argument("--json", action="store_true", help="machine-readable report on stdout")
    add_allow_commands(bundle)
    bundle.set_defaults(handler=_bundle)
    from .credentials.command import add_command  # noqa: PLC0415 - keeps the module graph acyclic
    from .sandbox.commands import add_commands  # noqa: PLC0415

    add_command(commands)
    add_commands(commands)
    return parser


STACK_FILE_HELP = "the stack config file (Pulumi.<stack>.yaml)"


def add_allow_commands(parser: argparse.ArgumentParser) -> None:
    """``--allow-commands``: consent, for this run, to a ``caBundle.command`` the stack file names."""
    parser.add_argument(
        "--allow-commands",
        action="store_true",
        help=f"let caBundle.command run its program (sets {ALLOW_COMMANDS_ENV}=1 for this run)",
    )


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415 - only for --version

    try:
        return version("teleport-roles-anywhere")
    except PackageNotFoundError:
        return "(not installed)"


def _plan(args: argparse.Namespace) -> int:
    from roles_anywhere.plan import report  # noqa: PLC0415
    from roles_anywhere.plan.report import format_plan  # noqa: PLC0415
    from roles_anywhere.plan.run import plan_stack_file, read_previous_outputs  # noqa: PLC0415 - keeps `--help` fast; the Pulumi SDK is heavy

    # The program reads the deployed outputs back (as under `pulumi up`) to keep each workload's profile.
    previous = None if args.stack_outputs is None else read_previous_outputs(args.stack_outputs)
    plan = plan_stack_file(
        args.config, previous_outputs=previous, previous_source=str(args.stack_outputs or "")
    )
    warnings = list(plan.warnings)
    if args.stack_outputs is not None:
        from roles_anywhere.config.stack_file import read_stack_file  # noqa: PLC0415
        from roles_anywhere.stack.anchor_settings import threshold_drift  # noqa: PLC0415
        from roles_anywhere.stack.deployment import load_deployment  # noqa: PLC0415
        from roles_anywhere.stack.ownership import check_imports_against  # noqa: PLC0415
        from roles_anywhere.stack.spec import load_spec  # noqa: PLC0415

        deployed = load_deployment(previous or {}, source=str(args.stack_outputs))
        stack_file = read_stack_file(args.config)
        spec = load_spec(stack_file.project_values(), base_dir=args.config.parent, stack=stack_file.stack)
        warnings += threshold_drift(spec.trust_anchor, deployed.trust_anchor, str(args.stack_outputs))
        check_imports_against(spec, deployed, str(args.stack_outputs))  # imports of that stack's objects
    violations = _policy_violations(args, plan)
    warnings += [f"policy {v.policy} (advisory): {v.message}" for v in violations if v.level == "advisory"]
    for warning in warnings:
        _say("warning", warning)
    if args.json:
        document = plan.to_json()
        if args.policy_pack is not None:
            document["policyViolations"] = [v.to_json() for v in violations]
        if previous is not None:  # every workload whose profile ARN changes (issue 22)
            document.update(report.profile_moves_json(plan, previous, str(args.stack_outputs)))
        sys.stdout.write(json.dumps(document, indent=2, sort_keys=False) + "\n")
    else:
        sys.stdout.write(printable_lines(format_plan(plan)))
        if previous is not None:
            text = report.format_profile_changes(plan, previous, str(args.stack_outputs))
            sys.stdout.write(printable_lines(text))
        if args.policy_pack is not None:
            sys.stdout.write(printable_lines(_violations_text(args.policy_pack, violations)))
    mandatory = [v for v in violations if v.level == "mandatory"]
    if mandatory:
        first = mandatory[0]
        _say(
            "denied",
            f"{len(mandatory)} mandatory policy violation(s); the first: {first.policy}: {first.message}",
        )
        return EXIT_DENIED
    if args.strict and warnings:  # one line, exit 1: the first warning, as an error
        _WARNINGS.clear()
        _say("error", f"{warnings[0]} (plan --strict: {len(warnings)} warning(s), each an error)")
        return EXIT_DENIED
    return EXIT_OK


def _policy_violations(args: argparse.Namespace, plan: Any) -> list[Any]:
    if args.policy_pack is None:
        if args.policy_config is not None:
            raise ConfigError("--policy-config", "applies only with --policy-pack")
        return []
    from roles_anywhere.guard.offline import check_plan, load_pack, read_policy_config  # noqa: PLC0415

    config = read_policy_config(args.policy_config)
    return check_plan(plan, load_pack(args.policy_pack), config)


def _violations_text(pack: Path, violations: list[Any]) -> str:
    if not violations:
        return f"\nPolicy pack {pack}: no violations.\n"
    lines = [f"\nPolicy pack {pack}: {len(violations)} violation(s):"]
    lines += [f"  {v.level}: {v.policy}: {v.message}" for v in violations]
    return "\n".join(lines) + "\n"


def _render(args: argparse.Namespace) -> int:
    from roles_anywhere.config.field_rules import artifacts_anywhere  # noqa: PLC0415 - see _plan
    from roles_anywhere.output.artifact_writer import write_artifacts  # noqa: PLC0415
    from roles_anywhere.render.artifacts import render_into_folder  # noqa: PLC0415
    from roles_anywhere.stack.deployment import load_deployment, read_stack_outputs  # noqa: PLC0415

    if args.config is not None:
        from roles_anywhere.plan.run import plan_stack_file  # noqa: PLC0415

        plan = plan_stack_file(args.config)
        for warning in plan.warnings:
            _say("warning", warning)
        deployment = load_deployment(plan.outputs, source=f"plan of {args.config}")
        origin = f"ARNs predicted offline for {args.config}"
    else:
        deployment = read_stack_outputs(args.stack_outputs)
        origin = f"ARNs from {args.stack_outputs}"
    files = render_into_folder(deployment, args.out)
    # A relative --out is checked like artifactsDir: a link committed in the repository (`gen -> /etc`)
    # must not carry the write elsewhere. An absolute path, or one with '..', is the caller's choice.
    stays_inside = not args.out.is_absolute() and ".." not in args.out.parts and not artifacts_anywhere()
    inside = Path.cwd() if stays_inside else None
    result = write_artifacts(files, Path.cwd() / args.out if inside else args.out, inside=inside)
    sys.stdout.write(
        f"Rendered {len(files)} files into {args.out} ({origin}): {len(result.written)} written, "
        f"{len(result.unchanged)} unchanged, {len(result.removed)} removed\n"
    )
    for path in files:
        sys.stdout.write(f"  {args.out / path}\n")
    for path in result.removed:
        sys.stdout.write(f"  removed {args.out / path}\n")
    return EXIT_OK


def _simulate(args: argparse.Namespace) -> int:
    from roles_anywhere.config.stack_file import read_stack_file  # noqa: PLC0415
    from roles_anywhere.simulate import inputs  # noqa: PLC0415 - see _plan
    from roles_anywhere.simulate.evaluate import certificate_findings, simulate  # noqa: PLC0415
    from roles_anywhere.simulate.report import format_report, report_json  # noqa: PLC0415
    from roles_anywhere.stack.deployment import load_deployment, read_stack_outputs  # noqa: PLC0415
    from roles_anywhere.stack.spec import load_spec  # noqa: PLC0415

    at = inputs.parse_time(args.at)
    leaf, extra = inputs.load_leaf(args.certificate)
    intermediates = (
        inputs.load_certificates(args.intermediates, "--intermediates") if args.intermediates else []
    )
    custom = (
        (inputs.load_trust_policy(args.trust_policy), str(args.trust_policy)) if args.trust_policy else None
    )
    stack_file = read_stack_file(args.config)
    spec = load_spec(stack_file.project_values(), base_dir=args.config.parent, stack=stack_file.stack)
    if args.stack_outputs is not None:
        deployment = read_stack_outputs(args.stack_outputs)
        for warning in inputs.bundle_drift(spec, deployment):
            _say("warning", warning)
    else:
        from roles_anywhere.plan.run import plan_stack_file  # noqa: PLC0415

        deployment = load_deployment(plan_stack_file(args.config).outputs, source=f"plan of {args.config}")
    if extra:
        _say(
            "warning",
            f"--certificate {args.certificate}: holds {extra} more certificate(s); only the "
            "first is the SVID (pass a chain with --intermediates)",
        )
    targets = inputs.role_targets(
        deployment,
        role=args.role,
        custom_policy=custom,
        session_duration=args.session_duration,
        role_session_name=args.role_session_name,
    )
    anchors = [cert.certificate for cert in spec.bundle.certificates]
    findings = certificate_findings(leaf, intermediates, anchors, at)
    verdicts = simulate(findings, targets, deployment.trust_anchor_arn)
    if args.json:
        document = report_json(leaf, findings, verdicts, at, deployment.trust_anchor_arn)
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        sys.stdout.write(
            printable_lines(format_report(leaf, findings, verdicts, at, deployment.trust_anchor_arn))
        )
    if any(v.allowed for v in verdicts):
        return EXIT_OK
    _say("denied", f"no role admits {args.certificate} (the report names the step that fails)")
    return EXIT_DENIED


def _bundle(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime  # noqa: PLC0415 - see _plan

    from roles_anywhere.config.stack_file import read_stack_file  # noqa: PLC0415
    from roles_anywhere.stack.bundle_check import BundleCheck, check_json, format_check  # noqa: PLC0415
    from roles_anywhere.stack.deployment import read_stack_outputs  # noqa: PLC0415
    from roles_anywhere.stack.spec import load_spec  # noqa: PLC0415

    now = datetime.now(UTC)
    stack_file = read_stack_file(args.config)
    spec = load_spec(
        stack_file.project_values(), base_dir=args.config.parent, stack=stack_file.stack, now=now
    )
    for warning in spec.warnings:
        _say("warning", warning)
    deployment = None
    if args.stack_outputs is not None:
        deployment = read_stack_outputs(args.stack_outputs)
        _check_same_stack(spec.cluster, deployment, args.stack_outputs)
    check = BundleCheck(spec.bundle_source, spec.bundle_origin, spec.bundle.certificates, deployment)
    if args.json:
        sys.stdout.write(json.dumps(check_json(check), indent=2) + "\n")
    else:
        sys.stdout.write(printable_lines(format_check(check, now)))
    if check.up_to_date is False:
        _say("out of date", "the deployed trust anchor does not hold exactly the CAs served; run pulumi up")
        return EXIT_DENIED
    return EXIT_OK


def _check_same_stack(cluster: str, deployment: Deployment, path: Path) -> None:
    if deployment.cluster != cluster:
        raise ConfigError(
            f"--stack-outputs {path}",
            f"are for cluster {deployment.cluster!r}, but the config's cluster is {cluster!r}",
        )
    if not deployment.ca_certificates:
        raise ConfigError(
            f"--stack-outputs {path}",
            "have no caCertificates output (were they written by this project's `pulumi up`?)",
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit status."""
    args = build_parser().parse_args(argv)
    if getattr(args, "allow_commands", False):
        os.environ[ALLOW_COMMANDS_ENV] = "1"
    _WARNINGS.clear()
    if args.command in SHORT_LIVED:
        # These build large object graphs once and exit: the cyclic collector's repeated scans of
        # the Pulumi SDK's heap were half the plan time at 1,000 workloads (benchmarks/README.md),
        # for ~10 % more memory without it.
        gc.disable()
    # Python's own warnings (a library noticing an odd certificate field) would print extra lines with
    # file names; what the user needs to know is said by our own messages.
    warnings.simplefilter("ignore")
    try:
        code = int(args.handler(args))
        _flush_warnings()
        return code
    except RolesAnywhereError as err:
        _say("error", str(err))
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130
    except MemoryError:
        _say("error", "out of memory: the input needs more memory than this process may use")
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        # The reader (`| head`) went away: not an error. Point stdout at /dev/null so the
        # interpreter's final flush does not complain again (Python's documented recipe).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as err:  # noqa: BLE001 - last resort: one line instead of a traceback
        if os.environ.get(DEBUG_ENV):
            traceback.print_exc()
        _say(
            "error", f"internal error ({type(err).__name__}); please report it. Set {DEBUG_ENV}=1 for details"
        )
        return EXIT_INTERNAL
