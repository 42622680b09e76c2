"""The name of every Teleport object a stack owns, and the labels that mark it as the stack's.

Every name starts with the stack's namespace and a ``.``. Namespaces hold no ``.``, and neither do
workload names, so two stacks can never render the same name: ``prod.orders`` is workload ``orders``
of stack ``prod`` and nothing else. Teleport itself only requires a name to be non-empty; we keep each
name within 253 characters, the object-name limit of Kubernetes, where Teleport's operator keeps them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

STACK_LABEL = "teleport-roles-anywhere/stack"
ANCHOR_LABEL = "teleport-roles-anywhere/trust-anchor"
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


def check_object_name(name: str) -> str:
    """The one rule for every Teleport object name we render or read back: printable, no space or ``/``.

    ``/`` would split a ``tctl`` reference (``role/NAME``) and ``,`` a ``--add-roles`` list.
    """
    if not 0 < len(name) <= MAX_NAME or not name.isprintable() or any(c in name for c in " /,"):
        raise ValueError(f"is not a Teleport object name ({len(name)} characters; at most {MAX_NAME})")
    return name


def check_principals(namespace: str, bots: Iterable[str], users: Iterable[str]) -> None:
    """A workload's bots must be this stack's (``<namespace>-…``); each principal's role name must fit.

    The prefix is the first line of defence against a bot serving two stacks; ``apply.sh`` also
    refuses a bot that holds another stack's role.
    """
    for bot in bots:
        if not (bot.startswith(f"{namespace}-") and len(bot) > len(namespace) + 1):
            raise PrincipalError(
                "bots",
                f"bot {bot!r} is outside this stack's Teleport namespace {namespace!r}: name it "
                f"'{namespace}-…' (a bot serves one stack: its role and tbot config come from one stack)",
            )
    for user in users:
        role = principal_role_name(namespace, "user", user)
        if len(role) > MAX_NAME:
            raise PrincipalError(
                "users",
                f"user {user[:40]!r}… makes the Teleport role name {len(role)} characters long; "
                f"at most {MAX_NAME}",
            )
        try:
            check_object_name(role)
        except ValueError:
            raise PrincipalError(
                "users", f"user {user[:40]!r} cannot be part of a Teleport role name (printable, no space)"
            ) from None


class PrincipalError(ValueError):
    """A bot or user the stack cannot grant; ``key`` is the workload key at fault (``bots``/``users``)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
