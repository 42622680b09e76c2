"""Render the Teleport, tbot, tsh and AWS CLI files from the stack outputs, and write them on `pulumi up`.

The files are rendered from the resolved stack outputs, exactly as ``roles-anywhere render
--stack-outputs`` renders them, so the artefacts `pulumi up` writes and the ones rendered later
from ``pulumi stack output --json`` are the same bytes. Nothing is written during a preview or an
offline plan: the ARNs there are not (yet) real.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pulumi

from roles_anywhere import OFFLINE_PLAN_ENV
from roles_anywhere.errors import RolesAnywhereError
from roles_anywhere.output.artifact_writer import write_artifacts
from roles_anywhere.render.artifacts import artifact_digests, render_artifacts, render_into_folder
from roles_anywhere.stack.deployment import load_deployment

from .run_errors import ProgramError


def publish_artifacts(
    outputs: pulumi.Output[dict[str, Any]], out_dir: Path, *, inside: Path | None = None
) -> pulumi.Output[dict[str, str]]:
    """The rendered files' digests (path → ``sha256:…``), the files written to ``out_dir`` on `pulumi up`.

    The bodies stay out of the stack state (see ``artifact_digests``).

    ``inside``: the folder ``out_dir`` must be reached from without passing a link (see
    ``write_artifacts``).
    """
    write = not pulumi.runtime.is_dry_run() and not os.environ.get(OFFLINE_PLAN_ENV)

    def render(resolved: dict[str, Any]) -> dict[str, str]:
        try:
            deployment = load_deployment(resolved, source="stack outputs")
            files = render_into_folder(deployment, out_dir) if write else render_artifacts(deployment)
            if write:
                result = write_artifacts(files, out_dir, inside=inside)
                pulumi.log.info(
                    f"artefacts in {out_dir}: {len(result.written)} written, {len(result.unchanged)} "
                    f"unchanged, {len(result.removed)} removed"
                )
        except RolesAnywhereError as err:
            raise ProgramError(err) from err
        return artifact_digests(files)

    return outputs.apply(render)
