"""Offline ownership check: an ``import`` of what another stack's outputs say that stack owns.

``pulumi up`` reads each resource it is about to adopt and refuses one whose tags name another stack
(``config.ownership``). Offline, ``plan`` cannot read AWS; what it can read is another stack's outputs
(``pulumi stack output --json``), which name that stack's anchor, roles and profiles. Given them,
``plan --stack-outputs`` refuses the same imports ``pulumi up`` would, before anyone runs it.
"""

from __future__ import annotations

from roles_anywhere.config.naming import key_path
from roles_anywhere.errors import ConfigError
from roles_anywhere.stack.deployment import Deployment
from roles_anywhere.stack.spec import Spec


def check_imports_against(spec: Spec, deployed: Deployment, source: str) -> None:
    """Refuse an import of a resource ``deployed`` (another stack's outputs, from ``source``) owns.

    Outputs of this very stack (same cluster and namespace) are not another owner: re-importing what
    the stack already holds is a no-op for Pulumi.
    """
    theirs = deployed.teleport.namespace
    if (deployed.cluster, theirs) == (spec.cluster, spec.teleport.namespace):
        return
    owner = f"the stack whose Teleport namespace is {theirs!r} (cluster {deployed.cluster!r}, per {source})"
    anchor_id = deployed.trust_anchor_arn.rsplit("/", 1)[-1]
    if spec.imports.trust_anchor == anchor_id:
        _refuse("import.trustAnchor", f"trust anchor {anchor_id}", owner, "its CA bundle")
    their_roles = {w.role_name.lower(): name for name, w in deployed.workloads.items()}
    for workload, role in spec.imports.roles:
        if role.lower() in their_roles:
            what = f"role {role} (its workload {their_roles[role.lower()]!r})"
            _refuse(key_path("import", "roles", workload), what, owner, "its trust policy")
    their_profiles = {w.profile_arn.rsplit("/", 1)[-1] for w in deployed.workloads.values()}
    for name, profile_id in spec.imports.profiles:
        if profile_id in their_profiles:
            _refuse(
                key_path("import", "profiles", name), f"profile {profile_id}", owner, "the roles it vends"
            )


def _refuse(key: str, what: str, owner: str, rewritten: str) -> None:
    raise ConfigError(
        key,
        f"{what} belongs to {owner}; adopting it would rewrite {rewritten} for this stack's identities: "
        f"remove {key}",
    )
