"""The Pulumi program: stack config → Spec → Federation → stack outputs and rendered files. No logic here.

It ships inside the package, so `roles-anywhere plan` runs the same program from a wheel as
`pulumi up` runs from this repository's ``__main__.py``.
"""

from __future__ import annotations

import gc
from operator import itemgetter

import pulumi

from roles_anywhere.config.field_rules import artifacts_anywhere
from roles_anywhere.stack.outputs import ARTIFACTS

from .artifacts import publish_artifacts
from .federation import Federation
from .resolved_outputs import contains_output
from .stack_config import artifacts_dir, config_dir, read_args

# Cyclic-collector thresholds for the program under the Pulumi CLI (the default is (700, 10, 10)).
# The program's heap is almost all live (resources, Outputs, their futures), so frequent full
# collections rescan it for nothing. Measured on the plan of 5,000 workloads: 31.5 s / 762 MB with
# the defaults, 19.2 s / 779 MB with these, 17.8 s / 849 MB with the collector off (which the
# short-lived CLI commands use; `pulumi up` runs longer, so cycles are still collected here).
COLLECTOR_THRESHOLDS = (200_000, 50, 1_000)


def tune_collector() -> None:
    """Collect cycles rarely: the program allocates much and frees little (figures above)."""
    gc.set_threshold(*COLLECTOR_THRESHOLDS)


def run() -> None:
    """Register the stack's resources and exports with the Pulumi engine."""
    federation = Federation("roles-anywhere", read_args())
    spec = federation.spec
    outputs = federation.stack_outputs
    for key, value in federation.outputs.items():
        pulumi.export(key, outputs.apply(itemgetter(key)) if contains_output(value) else value)
    inside = None if artifacts_anywhere() else config_dir()
    pulumi.export(ARTIFACTS, publish_artifacts(outputs, artifacts_dir(spec), inside=inside))
