"""The Pulumi program: stack config → Spec → Federation → stack outputs and rendered files. No logic here.

It ships inside the package, so `roles-anywhere plan` runs the same program from a wheel as
`pulumi up` runs from this repository's ``__main__.py``.
"""

from __future__ import annotations

import pulumi

from roles_anywhere.config.field_rules import artifacts_anywhere
from roles_anywhere.stack.outputs import ARTIFACTS

from .artifacts import publish_artifacts
from .federation import Federation, FederationArgs
from .stack_config import artifacts_dir, config_dir, read_spec


def run() -> None:
    """Register the stack's resources and exports with the Pulumi engine."""
    spec = read_spec()
    federation = Federation("roles-anywhere", FederationArgs(spec=spec))
    for key, value in federation.outputs.items():
        pulumi.export(key, value)
    inside = None if artifacts_anywhere() else config_dir()
    pulumi.export(ARTIFACTS, publish_artifacts(federation.outputs, artifacts_dir(spec), inside=inside))
