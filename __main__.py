"""Pulumi program: stack config → Spec → Federation → stack outputs and rendered files. No logic here."""

import pulumi

from components.artifacts import publish_artifacts
from components.federation import Federation, FederationArgs
from components.stack_config import artifacts_dir, read_spec
from roles_anywhere.outputs import ARTIFACTS

spec = read_spec()
federation = Federation("roles-anywhere", FederationArgs(spec=spec))
for key, value in federation.outputs.items():
    pulumi.export(key, value)
pulumi.export(ARTIFACTS, publish_artifacts(federation.outputs, artifacts_dir(spec)))
