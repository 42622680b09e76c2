"""Stop a Pulumi program with one line, keeping the error it came from.

The Pulumi CLI prints a ``RunError`` as ``error: <message>`` with no stack trace. The SDK may
re-raise it with its ``__cause__`` replaced (a failed apply inside a resource registration comes
back ``raise exn from exn``), so the original error rides along as an attribute for ``plan`` to
report with the same one-line message and exit status.
"""

from __future__ import annotations

import pulumi

from roles_anywhere.errors import RolesAnywhereError


class ProgramError(pulumi.RunError):
    """A ``RunError`` holding the ``RolesAnywhereError`` behind it."""

    def __init__(self, error: RolesAnywhereError) -> None:
        super().__init__(str(error))  # the CLI prefixes "error: " itself
        self.error = error


def original_error(err: BaseException) -> RolesAnywhereError | None:
    """The ``RolesAnywhereError`` a program error stands for, if it stands for one."""
    if isinstance(err, ProgramError):
        return err.error
    if isinstance(err.__cause__, RolesAnywhereError):
        return err.__cause__
    return None
