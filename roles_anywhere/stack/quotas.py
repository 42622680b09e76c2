"""Quota checks at plan time: what this stack needs against the account's quotas (issue 14).

AWS refuses a create that exceeds a quota in the middle of `pulumi up`, after part of the stack exists.
Here every quota is compared with what the stack will create: a warning from 80 % of it, an error
above it. Each quota is AWS's default unless ``quotas.<key>`` says the account's was raised. The
figures count this stack only; other stacks in the same account use the same quotas.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from roles_anywhere.config.iam_settings import OUR_TAGS
from roles_anywhere.config.model import QuotasConfig
from roles_anywhere.errors import ConfigError
from roles_anywhere.stack.profiles import share_profiles
from roles_anywhere.stack.spec import Workload

WARN_AT = 0.8


@dataclass(frozen=True)
class Usage:
    """How much of one quota the stack uses, and where it uses the most."""

    key: str  # the quotas.<key> that raises it
    what: str
    used: int
    quota: int
    where: str  # the config key that uses the most (for the message)


def quota_usage(
    workloads: tuple[Workload, ...], quotas: QuotasConfig, *, shared_profiles: bool, name_prefix: str
) -> list[Usage]:
    """The stack's use of each quota."""
    profiles = len(share_profiles(workloads, name_prefix)) if shared_profiles else len(workloads)
    most_policies = max(workloads, key=lambda w: len(w.managed_policy_arns))
    most_tags = max(workloads, key=lambda w: len(w.tags))
    return [
        Usage("iamRoles", "IAM roles in the account", len(workloads), quotas.iam_roles, "workloads"),
        Usage("profiles", "Roles Anywhere profiles in the region", profiles, quotas.profiles, "workloads"),
        Usage(
            "trustAnchors",
            "Roles Anywhere trust anchors in the region",
            1,
            quotas.trust_anchors,
            "trustAnchor",
        ),
        Usage(
            "managedPoliciesPerRole",
            "managed policies on one role",
            len(most_policies.managed_policy_arns),
            quotas.managed_policies_per_role,
            f"workloads.{most_policies.name}.managedPolicyArns",
        ),
        Usage(
            "tags",
            "tags on one role or profile",
            len(most_tags.tags) + len(OUR_TAGS),
            quotas.tags,
            f"workloads.{most_tags.name}.tags",
        ),
    ]


def check_quotas(usage: Iterable[Usage]) -> list[str]:
    """Warnings for quotas at 80 % or more; a ``ConfigError`` for the first one exceeded."""
    warnings = []
    for item in usage:
        if item.used > item.quota:
            raise ConfigError(
                item.where,
                f"needs {item.used} {item.what}, over the quota of {item.quota}; if the account's quota "
                f"was raised, set quotas.{item.key} to it, otherwise split the stack or ask AWS to raise it",
            )
        if item.used >= WARN_AT * item.quota and item.used > 1:
            warnings.append(
                f"quotas.{item.key}: this stack uses {item.used} of {item.quota} {item.what} "
                f"({100 * item.used // item.quota} %), and other stacks in the account count too"
            )
    return warnings
