"""Names AWS and Teleport will accept, shared by validation and the components.

A workload name becomes the IAM role name, the Roles Anywhere profile name, the AWS CLI profile name
and (later) Teleport resource names, so it must be valid in all of them. The intersection we allow:
lowercase letters, digits, ``-`` and ``_``, starting with a letter or digit. Lowercase only, because
IAM role names are unique case-insensitively: ``Api`` and ``api`` would collide in AWS.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable

from roles_anywhere.errors import ConfigError

MAX_ROLE_NAME = 64
WORKLOAD_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
TRUST_ANCHOR_NAME = re.compile(r"[A-Za-z0-9 _-]{1,255}")
WORKLOAD_NAME_RULE = "at most 64 lowercase letters, digits, '-' and '_', starting with a letter or digit"


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


def key_path(*parts: int | str) -> str:
    """A dotted config key path (``workloads.api.spiffeId``) that is always one printable line.

    Map keys come from user input; one that is not a plain name is shown quoted (``workloads['a b']``),
    so a newline or a dot in a workload name can neither break the one-line error nor mislead.
    """
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(part):
            path += f".{part}" if path else part
        else:
            path += f"[{part!r}]"
    return path or "config"


def default_trust_anchor_name(cluster: str) -> str:
    """``teleport-<cluster>`` with dots made dashes (anchor names allow ``[ a-zA-Z0-9-_]`` only)."""
    return f"teleport-{cluster.replace('.', '-')}"[:255]


def policy_arn_suffixes(policy_arns: Iterable[str]) -> dict[str, str]:
    """A stable, readable suffix per managed policy ARN for the attachment's logical name.

    The policy's own name is used; when two ARNs share a name (an AWS-managed and a customer policy
    both called ``ReadOnly``), a short hash of the ARN keeps them apart. Names never depend on list
    order, so reordering ``managedPolicyArns`` changes nothing in AWS.
    """
    arns = list(policy_arns)
    basenames = {arn: arn.rsplit("/", 1)[-1] for arn in arns}
    counts = Counter(basenames.values())
    return {
        arn: base if counts[base] == 1 else f"{base}-{hashlib.sha256(arn.encode()).hexdigest()[:8]}"
        for arn, base in basenames.items()
    }


def check_distinct_spiffe_ids(workloads: Iterable[tuple[str, str]]) -> None:
    """One SPIFFE ID per workload: an SVID for a shared ID would assume every role that trusts it.

    Compared after resolution, so ``/svc/a`` and ``spiffe://<cluster>/svc/a`` are the same ID.
    """
    owners: dict[str, str] = {}
    for name, spiffe_id in workloads:
        other = owners.setdefault(spiffe_id, name)
        if other != name:
            raise ConfigError(
                key_path("workloads", name, "spiffeId"),
                f"resolves to {spiffe_id}, the SPIFFE ID of workload {other!r} too; each workload needs "
                "its own (one SVID would assume both AWS roles)",
            )
