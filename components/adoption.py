"""Adopt an existing resource only after reading it: another stack's is refused before the import.

Pulumi's ``import`` option hands the resource to this stack, which then rewrites it to the config (the
anchor's CA, a role's trust policy). So before registering an import, the program reads the resource
(``Resource.get``, which runs in ``pulumi preview`` too) and judges its tags with
``config.ownership.check_adoption``. The imported resource takes one input through that judgement, so a
refusal fails its registration: the engine is never asked to import, and nothing is rewritten.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

import pulumi

from roles_anywhere.config.ownership import Adoption, check_adoption
from roles_anywhere.errors import RolesAnywhereError

from .run_errors import ProgramError

T = TypeVar("T")


def after_ownership_check(
    adoption: Adoption,
    tags: tuple[pulumi.Output[Mapping[str, str] | None], pulumi.Output[Mapping[str, str] | None]],
    value: T,
    path: pulumi.Output[str | None] | None = None,
    name: pulumi.Output[str | None] | None = None,
) -> pulumi.Output[T]:
    """``value``, once what AWS holds (``tags``; a role's ``path`` and ``name``) shows it may be adopted.

    ``tags`` is the read's ``(tags, tags_all)``: the provider leaves out of ``tags`` any key its
    ``default_tags`` also set, so both are judged. Feed the result to one input of the importing
    resource. A resource another stack owns stops the program with one line naming the ``import`` key;
    an unclear owner is a warning.
    """

    def judge(read: list[object]) -> T:
        own_tags, all_tags, found_path, found_name = read
        found = {
            **(all_tags if isinstance(all_tags, Mapping) else {}),
            **(own_tags if isinstance(own_tags, Mapping) else {}),
        }
        try:
            warning = check_adoption(
                adoption,
                found,
                found_path if isinstance(found_path, str) else None,
                found_name if isinstance(found_name, str) else None,
            )
        except RolesAnywhereError as err:
            raise ProgramError(err) from err
        if warning is not None:
            pulumi.log.warn(warning)
        return value

    return pulumi.Output.all(*tags, path, name).apply(judge)
