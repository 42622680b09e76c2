"""Who can obtain which SVID, and so which AWS role: the Teleport half of the chain of grants.

Computed once from a ``Deployment``; the Teleport resources, ``apply.sh``, the rendered README and
``plan`` all read it from here, so what is granted and what is reported cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from roles_anywhere.config.teleport_names import PrincipalKind, principal_role_name, workload_identity_name
from roles_anywhere.stack.deployment import Deployment


@dataclass(frozen=True, order=True)
class Principal:
    """A Teleport bot or user the config names."""

    kind: PrincipalKind
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


@dataclass(frozen=True)
class WorkloadGrant:
    """One workload: its SVID, the WorkloadIdentity issuing it, and exactly who may obtain it."""

    workload: str
    spiffe_id: str
    spiffe_path: str
    workload_identity: str
    role_arn: str
    svid_directory: str
    principals: tuple[Principal, ...]

    @property
    def bots(self) -> tuple[str, ...]:
        """The bots that may obtain the SVID."""
        return tuple(p.name for p in self.principals if p.kind == "bot")

    @property
    def users(self) -> tuple[str, ...]:
        """The users that may obtain the SVID."""
        return tuple(p.name for p in self.principals if p.kind == "user")

    @property
    def rules(self) -> list[Rule]:
        """``spec.rules.allow`` of its WorkloadIdentity: one rule per principal, any one suffices.

        ``user.is_bot`` keeps a person named like a bot's user (``bot-x``) from passing as bot ``x``.
        With no principal, one rule nobody can meet: Teleport issues to every holder of the labels
        when the list is empty.
        """
        if not self.principals:
            nobody = ((IS_BOT, "true"), (IS_BOT, "false"))
            return [Rule("nobody: the config names no bot and no user", nobody)]
        return [
            Rule(
                str(p),
                ((IS_BOT, "true"), ("user.bot_name", p.name))
                if p.kind == "bot"
                else ((IS_BOT, "false"), ("user.name", p.name)),
            )
            for p in self.principals
        ]


IS_BOT = "user.is_bot"


@dataclass(frozen=True)
class Rule:
    """One WorkloadIdentity rule: every ``(attribute, value)`` condition must hold (``eq``)."""

    comment: str
    conditions: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class PrincipalRole:
    """The one role this stack grants a principal, listing the workloads whose SVIDs it may obtain."""

    principal: Principal
    name: str
    grants: tuple[WorkloadGrant, ...]


@dataclass(frozen=True)
class TeleportAccess:
    """Every Teleport object a stack owns, and the access they add up to."""

    namespace: str
    grants: tuple[WorkloadGrant, ...]
    roles: tuple[PrincipalRole, ...]

    def object_names(self, *, legacy: bool) -> dict[str, list[str]]:
        """``{kind: [names]}`` of what the stack owns now (legacy mode has no WorkloadIdentity)."""
        return {
            "workload_identity": [] if legacy else [g.workload_identity for g in self.grants],
            "role": [role.name for role in self.roles],
        }

    def bot_roles(self) -> dict[str, str]:
        """Bot name → the role ``apply.sh`` grants it."""
        return {r.principal.name: r.name for r in self.roles if r.principal.kind == "bot"}

    def user_roles(self) -> dict[str, str]:
        """User name → the role an administrator assigns (tctl, or an SSO connector's mapping)."""
        return {r.principal.name: r.name for r in self.roles if r.principal.kind == "user"}


def teleport_access(deployment: Deployment) -> TeleportAccess:
    """The grants of ``deployment``, workloads and principals sorted, so renders never reorder."""
    namespace = deployment.teleport.namespace
    prefix = f"spiffe://{deployment.cluster}"
    grants = tuple(
        WorkloadGrant(
            workload=name,
            spiffe_id=workload.spiffe_id,
            spiffe_path=workload.spiffe_id.removeprefix(prefix),
            workload_identity=workload_identity_name(namespace, name),
            role_arn=workload.role_arn,
            svid_directory=workload.svid_directory,
            principals=tuple(
                sorted(
                    [Principal("bot", bot) for bot in workload.bots]
                    + [Principal("user", user) for user in workload.users]
                )
            ),
        )
        for name, workload in sorted(deployment.workloads.items())
    )
    granted: dict[Principal, list[WorkloadGrant]] = {}
    for grant in grants:
        for principal in grant.principals:
            granted.setdefault(principal, []).append(grant)
    roles = tuple(
        PrincipalRole(
            principal=principal,
            name=principal_role_name(namespace, principal.kind, principal.name),
            grants=tuple(granted[principal]),
        )
        for principal in sorted(granted)
    )
    return TeleportAccess(namespace=namespace, grants=grants, roles=roles)


def access_json(access: TeleportAccess, *, legacy: bool) -> list[dict[str, Any]]:
    """Per workload, who can obtain its SVID and the AWS role that leads to (``plan --json``'s ``access``)."""
    roles = {role.principal: role.name for role in access.roles}
    return [
        {
            "workload": grant.workload,
            "spiffeId": grant.spiffe_id,
            "roleArn": grant.role_arn,
            "workloadIdentity": None if legacy else grant.workload_identity,
            "principals": [
                {"kind": p.kind, "name": p.name, "teleportRole": roles[p]} for p in grant.principals
            ],
        }
        for grant in access.grants
    ]


def access_lines(access: TeleportAccess, *, legacy: bool) -> list[str]:
    """The same, for people: each workload's SVID and AWS role, then who can obtain them."""
    how = "roles' spec.allow.spiffe (legacy)" if legacy else "WorkloadIdentity rules and role labels"
    lines = [f"Who can obtain which AWS role (Teleport namespace {access.namespace!r}; bound by {how}):"]
    roles = {role.principal: role.name for role in access.roles}
    for grant in access.grants:
        lines.append(f"  {grant.workload}: {grant.spiffe_id} -> {grant.role_arn}")
        lines += [f"      {p} (Teleport role {roles[p]})" for p in grant.principals]
        if not grant.principals:
            lines.append("      nobody: the config names no bot and no user")
    return lines
