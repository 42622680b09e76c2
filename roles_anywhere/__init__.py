"""Pure core of teleport-roles-anywhere: config model, validation, policy documents, plan.

Nothing in the core imports the Pulumi engine: only ``components`` (the Pulumi program, a link to the
repository's ``components/``), ``plan``, which runs that program under the SDK's unit-test mocks, and
``sandbox``, which runs it against the local sandbox.
"""

import os as _os  # not pathlib: every ``roles-anywhere`` call imports this, a cached one included

PROJECT = "teleport-roles-anywhere"

# ``components`` and ``templates`` are links to the repository's top-level folders (a wheel holds
# them as real folders). A checkout made without symlinks (Git for Windows by default) has small
# text files instead; then the repository root is searched for them too, so the checkout still runs.
_HERE = _os.path.dirname(_os.path.realpath(__file__))
_ROOT = _os.path.dirname(_HERE)
if not _os.path.isdir(_os.path.join(_HERE, "components")) and _os.path.isfile(
    _os.path.join(_ROOT, "components", "program.py")
):
    __path__.append(_ROOT)

# Folder that relative paths in the stack config resolve against (``plan`` sets it to the stack
# file's folder; under the Pulumi CLI it defaults to the project folder, where the program runs).
CONFIG_DIR_ENV = "ROLES_ANYWHERE_CONFIG_DIR"

# caBundle.command runs a program named by the stack file, which may come from a pull request: only
# when this is set for the run (``--allow-commands`` sets it; ``pulumi up`` reads it from the shell).
ALLOW_COMMANDS_ENV = "ROLES_ANYWHERE_ALLOW_COMMANDS"

# Set by ``plan``: the program renders its artefacts but writes no files (the ARNs are predictions).
OFFLINE_PLAN_ENV = "ROLES_ANYWHERE_OFFLINE_PLAN"

# Pulumi type tokens of the project's components (a contract: URNs, and so state, depend on them).
FEDERATION_TYPE = f"{PROJECT}:index:Federation"
TRUST_ANCHOR_TYPE = f"{PROJECT}:index:TrustAnchor"
WORKLOAD_TYPE = f"{PROJECT}:index:Workload"
