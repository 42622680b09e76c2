"""Read this project's stack config from the Pulumi runtime and turn it into a validated Spec."""

from __future__ import annotations

import os
from pathlib import Path
from typing import cast

import pulumi
from pulumi.runtime import config as runtime_config

from roles_anywhere import CONFIG_DIR_ENV
from roles_anywhere.config.stack_file import project_values
from roles_anywhere.errors import RolesAnywhereError
from roles_anywhere.stack.spec import DEFAULT_ARTIFACTS_ROOT, Spec, decode_config_values

from .federation_args import FederationArgs, federation_args
from .run_errors import ProgramError


def project_config_values() -> dict[str, str]:
    """Every ``teleport-roles-anywhere:*`` value the engine passed, unknown keys included (to catch typos)."""
    return project_values({**runtime_config.get_config_env(), **runtime_config.CONFIG.get()})


def config_dir() -> Path:
    """Where relative config paths start: ``$ROLES_ANYWHERE_CONFIG_DIR`` or the project folder."""
    return Path(os.environ.get(CONFIG_DIR_ENV) or Path.cwd())


def artifacts_dir(spec: Spec) -> Path:
    """Where `pulumi up` writes the rendered files: ``artifactsDir`` or ``out/<stack>``."""
    return config_dir() / (spec.artifacts_dir or f"{DEFAULT_ARTIFACTS_ROOT}/{pulumi.get_stack()}")


def read_args() -> FederationArgs:
    """The stack config as the component's ``FederationArgs``: the stack config is a thin layer.

    A value that is not the JSON object it must be stops the program with one clear line; the rest
    of the validation is the component's, so both paths report the same errors. Relative paths
    resolve against ``$ROLES_ANYWHERE_CONFIG_DIR`` (set by ``plan``; set it yourself when
    ``stackConfigDir`` moves stack files) or else the project folder, where Pulumi runs us.
    """
    try:
        return cast(FederationArgs, federation_args(decode_config_values(project_config_values())))
    except RolesAnywhereError as err:
        raise ProgramError(err) from err
