"""The component as a Pulumi package for every language, through the SDK's component-provider host.

``pulumi package add <clone>/provider`` (Pulumi CLI; not run here: this machine has no CLI) loads
``provider/PulumiPlugin.yaml``, runs ``provider/__main__.py``, which calls ``serve()``; the host
reads ``Federation``'s annotations and docstrings into the package schema, from which the CLI
generates TypeScript, Go, C#, Java and YAML SDKs.
"""

from __future__ import annotations

from importlib import metadata

import pulumi
from pulumi.provider.experimental import component_provider_host

from roles_anywhere import PROJECT

from .federation import Federation

PACKAGE = PROJECT
COMPONENTS: list[type[pulumi.ComponentResource]] = [Federation]


def package_version() -> str:
    """The installed distribution's version (the schema's), or 0.0.0 from a bare checkout."""
    try:
        return metadata.version(PROJECT)
    except metadata.PackageNotFoundError:
        return "0.0.0"


def serve() -> None:
    """Serve the components to the Pulumi engine (the engine starts this process)."""
    component_provider_host(COMPONENTS, name=PACKAGE, version=package_version())
