"""Pulumi program: stack config → Spec → Federation → stack outputs. No logic lives here."""

import pulumi

from components.federation import Federation, FederationArgs
from components.stack_config import read_spec

federation = Federation("roles-anywhere", FederationArgs(spec=read_spec()))
for key, value in federation.outputs.items():
    pulumi.export(key, value)
