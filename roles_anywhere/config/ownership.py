"""Whose is an existing resource? The tags this project sets decide whether a stack may adopt it.

Every trust anchor, role and profile a stack makes carries ``TeleportNamespace: <its namespace>`` (and
``TeleportCluster``, and ``SpiffeId`` on a workload's role and profile). An import hands the resource to
the importing stack, which then rewrites it — the anchor's CA, a role's trust policy — so adopting
another stack's object would let this stack's identities assume that stack's roles. The check runs on
the tags AWS returns for the resource (``pulumi up`` reads them before it imports) and refuses, in one
line naming the ``import`` key, anything whose tags say it is another stack's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from roles_anywhere import PROJECT
from roles_anywhere.config.iam_settings import CLUSTER_TAG, MANAGED_BY_TAG, NAMESPACE_TAG, SPIFFE_ID_TAG
from roles_anywhere.errors import ConfigError

_REWRITES = {
    "trust anchor": "its CA bundle, so every role that trusts it would trust this stack's CA",
    "role": "its trust policy, so this stack's identities would assume it",
    "profile": "the roles it vends and their session policies",
}


@dataclass(frozen=True)
class Adoption:
    """One ``import`` entry and what this stack is: enough to judge the resource's tags."""

    key: str  # import.trustAnchor, import.roles.<w>, import.profiles.<p>
    kind: str  # "trust anchor", "role" or "profile"
    resource_id: str
    cluster: str
    namespace: str
    spiffe_id: str | None = None  # a workload's role or own profile: the SPIFFE ID it is for
    path: str | None = None  # a role: the IAM path this stack gives it


def ownership_tags(cluster: str, namespace: str) -> dict[str, str]:
    """The tags every resource of the stack carries: who manages it, for which cluster and stack."""
    return {MANAGED_BY_TAG: PROJECT, CLUSTER_TAG: cluster, NAMESPACE_TAG: namespace}


def _tag_values(tags: Mapping[str, str], key: str) -> list[str]:
    """Every value tagged under ``key``, in any case.

    IAM keys ignore case and Roles Anywhere's do not, so a profile may carry ``TeleportNamespace`` and
    ``teleportnamespace`` side by side: any of them naming another stack counts.
    """
    return [value for name, value in sorted(tags.items()) if name.lower() == key.lower()]


def _foreign(tags: Mapping[str, str], key: str, ours: str | None) -> str | None:
    """A value of ``key`` other than ``ours``, if the tags hold one."""
    return next((value for value in _tag_values(tags, key) if value != ours), None)


def _shown(value: str) -> str:
    """Text from AWS in a message: quoted, escaped and short, whatever it holds."""
    return repr(value[:64])


def check_adoption(
    adoption: Adoption, tags: Mapping[str, str] | None, path: str | None = None, name: str | None = None
) -> str | None:
    """Refuse (``ConfigError``) a resource another stack owns; a warning when ownership is unclear.

    ``tags``, ``path`` and ``name`` are what AWS says the existing resource holds. For roles, IAM can
    change neither the path nor the spelling of the name in place (it finds ``legacyrole`` when asked
    for ``LegacyRole``), so either differing would make the import a replacement.
    """
    tags = tags or {}
    what = f"{adoption.kind} {adoption.resource_id}"
    foreign = (
        (NAMESPACE_TAG, adoption.namespace, "the stack whose Teleport namespace is"),
        (CLUSTER_TAG, adoption.cluster, "a stack of the Teleport cluster"),
    )
    for tag, ours, whose in foreign:
        theirs = _foreign(tags, tag, ours)
        if theirs is not None:
            raise ConfigError(
                adoption.key,
                f"{what} is tagged {tag}={_shown(theirs)}: it belongs to {whose} {_shown(theirs)}, not to "
                f"this one ({ours!r}), and adopting it would rewrite {_REWRITES[adoption.kind]}; remove "
                f"{adoption.key} (if that stack is gone, delete its {tag} tag in AWS first)",
            )
    theirs = _foreign(tags, SPIFFE_ID_TAG, adoption.spiffe_id)
    if adoption.spiffe_id is not None and theirs is not None:
        raise ConfigError(
            adoption.key,
            f"{what} is tagged {SPIFFE_ID_TAG}={_shown(theirs)}: it is another workload's, and adopting it "
            f"for {adoption.spiffe_id} would rewrite {_REWRITES[adoption.kind]}; adopt that workload's own "
            f"{adoption.kind} or none",
        )
    if adoption.path is not None and path is not None and path != adoption.path:
        raise ConfigError(
            adoption.key,
            f"{what} has the IAM path {_shown(path)}, and this stack gives it {adoption.path!r}: IAM cannot "
            "move a role to another path, so the import would have to replace it; set the workload's path "
            f"(or iam.path) to {_shown(path)}",
        )
    if adoption.kind == "role" and name is not None and name != adoption.resource_id:
        raise ConfigError(
            adoption.key,
            f"role {adoption.resource_id} is spelt {_shown(name)} in IAM, which matches names without regard "
            f"to case but keeps them as made: set {adoption.key} to {_shown(name)} exactly",
        )
    if PROJECT in _tag_values(tags, MANAGED_BY_TAG) and not _tag_values(tags, NAMESPACE_TAG):
        return (
            f"{adoption.key}: {what} was made by a release of {PROJECT} from before {NAMESPACE_TAG} tags, so "
            "its stack cannot be told; adopt it only if no other stack still manages it"
        )
    return None
