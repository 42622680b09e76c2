"""The name of every Teleport object a stack owns, and the labels that mark it as the stack's.

Every name starts with the stack's namespace and a ``.``. Namespaces hold no ``.``, and neither do
workload names, so two stacks can never render the same name: ``prod.orders`` is workload ``orders``
of stack ``prod`` and nothing else. Teleport itself only requires a name to be non-empty; we keep each
name within 253 characters, the object-name limit of Kubernetes, where Teleport's operator keeps them.
"""

from __future__ import annotations

from typing import Literal

STACK_LABEL = "teleport-roles-anywhere/stack"
WORKLOAD_LABEL = "teleport-roles-anywhere/workload"
MAX_NAME = 253

PrincipalKind = Literal["bot", "user"]


def workload_identity_name(namespace: str, workload: str) -> str:
    """The WorkloadIdentity that issues ``workload``'s SVID (also its ``WORKLOAD_LABEL`` value)."""
    return f"{namespace}.{workload}"


def principal_role_name(namespace: str, kind: PrincipalKind, name: str) -> str:
    """The one role this stack grants a bot or user: it lists exactly the SVIDs the config names for it.

    One role per principal, not per workload: removing a principal from a workload rewrites that
    principal's role, so revocation never depends on taking a role away from a bot or a user.
    """
    return f"{namespace}.{kind}.{name}"


def in_namespace(bot: str, namespace: str) -> bool:
    """A bot belongs to the stack whose namespace (followed by ``-``) starts its name."""
    return bot.startswith(f"{namespace}-") and len(bot) > len(namespace) + 1
