"""The stack's own previous outputs, read by the program so shared-profile assignments stay put (issue 22).

A workload stays in the shared profile its last deployment put it in (``stack.profiles``), so the
program needs that deployment's outputs. It reads them with the engine's built-in
``pulumi:pulumi:readStackOutputs`` invoke (the call behind stack references) for
``<organization>/<project>/<stack>``, then for the bare stack name (DIY backends from before
project-scoped stacks). Read at the start of the program, these are the outputs of the last update:
the root stack's outputs are replaced only when the program finishes. On a stack's first update
they are empty.

``roles-anywhere plan --stack-outputs FILE`` answers the same invoke from FILE under the mocks, so
the offline plan runs this very code. Where the engine cannot answer (the self-read is not tested
against a real backend here), ``ROLES_ANYWHERE_PREVIOUS_OUTPUTS=<file of pulumi stack output --json>``
supplies them instead; failing both, the program stops with one line rather than risk moving
workloads silently (except under unit-test mocks that do not answer the read: no deployment there).

The stack-config program exports the outputs at the top level; a program using the ``Federation``
component exports them under a key of its choosing (``pulumi.export("rolesAnywhere",
federation.stack_outputs)``), so the one top-level output that holds this cluster's workloads counts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime.mocks import MockMonitor

from roles_anywhere.errors import ConfigError
from roles_anywhere.stack.deployment import read_outputs_file
from roles_anywhere.stack.profiles import PreviousProfiles, previous_profiles

READ_STACK_OUTPUTS = "pulumi:pulumi:readStackOutputs"
PREVIOUS_OUTPUTS_ENV = "ROLES_ANYWHERE_PREVIOUS_OUTPUTS"
DIY_ORGANIZATION = "organization"  # what DIY backends (and the SDK's mocks) call every organization


def stack_names() -> list[str]:
    """The names this stack may be read back under, most specific first."""
    organization = pulumi.get_organization() or DIY_ORGANIZATION
    stack = pulumi.get_stack()
    return [f"{organization}/{pulumi.get_project()}/{stack}", stack]


def own_outputs() -> tuple[dict[str, Any], str]:
    """This stack's outputs from its last update, and where they came from (for messages)."""
    path = os.environ.get(PREVIOUS_OUTPUTS_ENV)
    if path:
        return read_outputs_file(Path(path)), path
    failures = []
    for name in stack_names():
        try:
            result = pulumi.runtime.invoke(READ_STACK_OUTPUTS, {"name": name})
        except Exception as err:  # noqa: BLE001 - the engine's reason, for the one line below
            failures.append(f"{name}: {str(err).splitlines()[0] if str(err) else type(err).__name__}")
            continue
        value = result.value if isinstance(result.value, Mapping) else {}
        outputs = value.get("outputs")
        read = value.get("name") if isinstance(value.get("name"), str) else name  # what was read
        return (dict(outputs) if isinstance(outputs, Mapping) else {}), f"the previous outputs ({read})"
    if isinstance(pulumi.runtime.settings.get_monitor(), MockMonitor):
        return {}, "no previous outputs (unit-test mocks that do not answer the read)"  # not a deployment
    raise ConfigError(
        "previous stack outputs",
        f"cannot be read ({'; '.join(failures)[:300]}); they keep each workload in its shared profile "
        f"across deploys. Save them with `pulumi stack output --json > previous.json` and set "
        f"{PREVIOUS_OUTPUTS_ENV}=previous.json",
    )


def federation_document(outputs: Mapping[str, Any], cluster: str) -> Mapping[str, Any] | None:
    """The outputs of this cluster's federation: the top level, or the one top-level output holding them."""
    if isinstance(outputs.get("workloads"), Mapping) and outputs.get("cluster") == cluster:
        return outputs
    found = [
        value
        for value in outputs.values()
        if isinstance(value, Mapping)
        and isinstance(value.get("workloads"), Mapping)
        and value.get("cluster") == cluster
    ]
    return found[0] if len(found) == 1 else None


def read_previous_profiles(cluster: str) -> tuple[PreviousProfiles | None, str]:
    """Where the last deployment put each workload of ``cluster``, and where that was read from."""
    outputs, source = own_outputs()
    document = federation_document(outputs, cluster)
    if document is None:
        if outputs:
            pulumi.log.warn(
                f"profiles: {source} hold no outputs of this federation (cluster {cluster!r}), so "
                "shared-profile assignments cannot be kept across deploys: export the Federation's "
                "stack_outputs (as the stack-config program does)"
            )
        return None, source
    return previous_profiles(document, source=source), source
