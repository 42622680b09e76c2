"""A small exception hierarchy: every user-facing failure names the config key or file at fault."""

from __future__ import annotations

from pathlib import Path


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


def read_user_file(path: Path, label: str | None = None) -> str:
    """UTF-8 text of a file the user named; missing or unreadable is a ``ConfigError`` naming it."""
    where = label or str(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(where, "file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(where, f"cannot read: {getattr(err, 'strerror', None) or err}") from None


class SpiffeIdError(ValueError):
    """A SPIFFE ID or trust domain breaks the SPIFFE ID rules (messages follow go-spiffe's)."""
