"""A small exception hierarchy: every user-facing failure names the config key or file at fault."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path
from typing import Any


class RolesAnywhereError(Exception):
    """Base class for every error the CLI turns into one line and exit status 2."""


class ConfigError(RolesAnywhereError):
    """A stack config value is wrong; ``key`` is its dotted path (``workloads.api.spiffeId``)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


class BundleError(ConfigError):
    """The CA bundle cannot be used as a Roles Anywhere trust anchor."""


MAX_USER_FILE_BYTES = 16 * 1024 * 1024


def load_json(text: str) -> Any:
    """JSON from a file someone else may have written: a repeated key is refused, not last-wins.

    ``json.loads`` keeps the last of two equal keys, so a second ``workloads`` at the end of a stack
    outputs file would silently replace the reviewed one. Raises ``ValueError`` (``JSONDecodeError``
    included) with a message for the user.
    """

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        document: dict[str, Any] = {}
        for key, value in pairs:
            if key in document:
                raise ValueError(f"key {key[:60]!r} appears twice in one object")
            document[key] = value
        return document

    try:
        return json.loads(text, object_pairs_hook=unique)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def read_user_file(path: Path, label: str | None = None, limit: int = MAX_USER_FILE_BYTES) -> str:
    """UTF-8 text of a file the user named: ``read_user_bytes``, decoded."""
    where = label or str(path)
    try:
        return read_user_bytes(path, where, limit).decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(where, "not UTF-8 text") from None


def read_user_bytes(
    path: Path, label: str | None = None, limit: int = MAX_USER_FILE_BYTES, *, follow_link: bool = True
) -> bytes:
    """At most ``limit`` bytes of a regular file the user named (error messages name ``label``).

    Opened without blocking, so a FIFO cannot hang the run, and refused unless it is a regular file
    (``/dev/zero`` never ends); with ``follow_link=False`` a link is refused too. Missing, unreadable
    or oversized is a ``ConfigError`` naming it.
    """
    where = label or str(path)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow_link else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise ConfigError(where, "file not found") from None
    except OSError as err:
        if err.errno == errno.ELOOP and not follow_link:
            raise ConfigError(where, "is a link, and a link is never followed here") from None
        raise ConfigError(where, f"cannot read: {err.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ConfigError(where, "not a regular file")
    with os.fdopen(fd, "rb") as stream:
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise ConfigError(where, f"larger than {limit} bytes")
    return data


class SpiffeIdError(ValueError):
    """A SPIFFE ID or trust domain breaks the SPIFFE ID rules (messages follow go-spiffe's)."""
