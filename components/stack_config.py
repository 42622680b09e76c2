"""Read this project's stack config from the Pulumi runtime and turn it into a validated Spec."""

from __future__ import annotations

import os
from pathlib import Path

import pulumi
from pulumi.runtime import config as runtime_config

from roles_anywhere import CONFIG_DIR_ENV
from roles_anywhere.config.stack_file import project_values
from roles_anywhere.errors import RolesAnywhereError
from roles_anywhere.stack.spec import DEFAULT_ARTIFACTS_ROOT, Spec, load_spec


def project_config_values() -> dict[str, str]:
    """Every ``teleport-roles-anywhere:*`` value the engine passed, unknown keys included (to catch typos)."""
    return project_values({**runtime_config.get_config_env(), **runtime_config.CONFIG.get()})


def config_dir() -> Path:
    """Where relative config paths start: ``$ROLES_ANYWHERE_CONFIG_DIR`` or the project folder."""
    return Path(os.environ.get(CONFIG_DIR_ENV) or Path.cwd())


def artifacts_dir(spec: Spec) -> Path:
    """Where `pulumi up` writes the rendered files: ``artifactsDir`` or ``out/<stack>``."""
    return config_dir() / (spec.artifacts_dir or f"{DEFAULT_ARTIFACTS_ROOT}/{pulumi.get_stack()}")


def read_spec() -> Spec:
    """The stack's Spec; a bad config stops the program with one clear line and no stack trace.

    Relative paths resolve against ``$ROLES_ANYWHERE_CONFIG_DIR`` (set by ``plan``; set it yourself
    when ``stackConfigDir`` moves stack files) or else the project folder, where Pulumi runs us.
    """
    try:
        spec = load_spec(project_config_values(), base_dir=config_dir(), stack=pulumi.get_stack())
    except RolesAnywhereError as err:
        raise pulumi.RunError(str(err)) from err  # the CLI prefixes "error: " itself
    for warning in spec.warnings:
        pulumi.log.warn(warning)
    return spec
