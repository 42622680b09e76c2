"""A plan as a reviewer reads it: the resource tree, each role's trust policy, the stack outputs."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from roles_anywhere.plan.mocks import PROFILE, ROLE, ROLE_POLICY, ROLE_POLICY_ATTACHMENT, TRUST_ANCHOR
from roles_anywhere.plan.run import Plan, PlannedResource
from roles_anywhere.stack.outputs import ARTIFACTS
from roles_anywhere.stack.profiles import previous_profiles, profile_moves, unchecked
from roles_anywhere.teleport.access import access_lines

_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml: 5x faster on a big plan


def format_plan(plan: Plan) -> str:
    """The human form of ``plan --json``: same facts, as an indented tree."""
    lines = [
        f"Plan for stack {plan.stack!r}: account {plan.account_id}, region {plan.region} "
        f"({len(plan.resources)} AWS resources; ARNs as the offline mocks predict them)",
        "",
    ]
    lines.extend(_tree(plan, None, ""))
    lines += ["", *access_lines(plan.access, legacy=plan.legacy)]
    outputs = {key: value for key, value in plan.outputs.items() if key != ARTIFACTS}
    lines += ["", "Stack outputs:"]
    lines += [
        "  " + line for line in yaml.dump(outputs, Dumper=_DUMPER, sort_keys=False, width=200).splitlines()
    ]
    artifacts = plan.outputs.get(ARTIFACTS) or {}
    lines += ["", f"Rendered files ({len(artifacts)}; `pulumi up` writes them, `roles-anywhere render` too):"]
    lines += [f"  {path}" for path in artifacts]
    return "\n".join(lines) + "\n"


def _tree(plan: Plan, parent: str | None, indent: str) -> Iterable[str]:
    children = plan.children(parent)
    for index, child in enumerate(children):
        last = index == len(children) - 1
        branch, continuation = ("└── ", "    ") if last else ("├── ", "│   ")
        if parent is None:
            branch, continuation = "", ""
        flag = ("  [protected]" if child.protect else "") + (
            f"  [adopts existing {child.import_id}]" if child.import_id else ""
        )
        yield f"{indent}{branch}{child.type}  {child.name}{flag}"
        detail_indent = indent + continuation + ("│     " if plan.children(child.urn) else "      ")
        for detail in _details(child):
            yield detail_indent + detail
        yield from _tree(plan, child.urn, indent + continuation)


def _details(resource: PlannedResource) -> list[str]:
    inputs, outputs = resource.inputs, resource.outputs
    if resource.type == TRUST_ANCHOR:
        pem = inputs.get("source", {}).get("sourceData", {}).get("x509CertificateData", "")
        notifications = ", ".join(
            f"{n.get('event')} {n.get('threshold')} days" for n in inputs.get("notificationSettings", [])
        )
        return [
            f"arn: {outputs.get('arn')}",
            f"name: {inputs.get('name')}  enabled: {inputs.get('enabled')}",
            f"bundle: {pem.count('BEGIN CERTIFICATE')} CA certificate(s), {len(pem)} characters",
            f"notifications: {notifications}",
        ]
    if resource.type == ROLE:
        return [
            f"arn: {outputs.get('arn')}",
            f"maxSessionDuration: {inputs.get('maxSessionDuration')} s",
            "trust policy:",
            *_json_lines(inputs.get("assumeRolePolicy", "{}")),
        ]
    if resource.type == ROLE_POLICY_ATTACHMENT:
        return [f"policy: {inputs.get('policyArn')}"]
    if resource.type == ROLE_POLICY:
        return [f"name: {inputs.get('name')}", "policy:", *_json_lines(inputs.get("policy", "{}"))]
    if resource.type == PROFILE:
        return [
            f"arn: {outputs.get('arn')}",
            f"roles: {', '.join(inputs.get('roleArns', []))}  duration: {inputs.get('durationSeconds')} s  "
            f"enabled: {inputs.get('enabled')}",
        ]
    return []


def _json_lines(text: str) -> list[str]:
    document: Any = json.loads(text) if isinstance(text, str) else text
    return ["  " + line for line in json.dumps(document, indent=2).splitlines()]


def profile_changes(plan: Plan, deployed: Mapping[str, Any], source: str) -> list[dict[str, Any]]:
    """Every workload whose profile ARN changes from the deployed outputs (``plan --stack-outputs``).

    Profiles are matched by settings digest and bucket, not ARN: the plan's ARNs are predictions, and
    a profile that stays (even renamed by a new ``namePrefix``) keeps its deployed ARN. ``to.arn`` is
    that deployed ARN, or null for a profile this deploy creates.
    """
    before = previous_profiles(deployed, source=source)
    after = previous_profiles(plan.outputs, source=f"plan of stack {plan.stack}")
    if before is None or after is None:
        return []
    current = {name: after.placements.get(name) for name in after.arns}
    changes = []
    for move in profile_moves(before, current):
        workload = plan.outputs["workloads"][move.workload]
        if move.after is None:
            name, arn = str(workload.get("roleName", move.workload)), None
        else:
            name, arn = after.names[move.after], before.profile_arns.get(move.after)
        changes.append(move.to_json(after_name=name, after_arn=arn))
    return changes


def profile_moves_json(plan: Plan, deployed: Mapping[str, Any], source: str) -> dict[str, Any]:
    """The keys ``plan --json --stack-outputs`` adds: ``profileMoves``, and ``profileMovesUnchecked``.

    The second counts workloads the deployed outputs cannot place (outputs from before ``sharedProfiles``).
    """
    before = previous_profiles(deployed, source=source)
    count = 0 if before is None else unchecked(before, plan.outputs.get("workloads", {}))
    return {
        "profileMoves": profile_changes(plan, deployed, source),
        **({"profileMovesUnchecked": count} if count else {}),
    }


def format_profile_changes(plan: Plan, deployed: Mapping[str, Any], source: str) -> str:
    """The text form of ``profileMoves``: one line per workload whose profile ARN changes."""
    before = previous_profiles(deployed, source=source)
    unchecked_workloads = 0 if before is None else unchecked(before, plan.outputs.get("workloads", {}))
    if unchecked_workloads:
        return (
            f"\nProfile changes against {source}: cannot be checked for {unchecked_workloads} workload(s) "
            "(the outputs have no sharedProfiles; see the warning)\n"
        )
    changes = profile_changes(plan, deployed, source)
    if not changes:
        return f"\nProfile changes against {source}: none; every workload keeps its profile ARN.\n"
    lines = [
        f"\nProfile changes against {source}: {len(changes)} workload(s) get another profile ARN; a host "
        "whose aws/config still names the old one gets AccessDenied until the new file reaches it:"
    ]
    for change in changes:
        old, new = change["from"], change["to"]
        target = new["arn"] or "created by this deploy"
        lines.append(
            f"  {change['workload']}: {old['profile'] or 'its own profile'} ({old['arn']}) -> "
            f"{new['profile']} ({target}): {change['reason']}"
        )
    return "\n".join(lines) + "\n"
