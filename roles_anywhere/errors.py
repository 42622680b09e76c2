"""A small exception hierarchy: every user-facing failure names the config key or file at fault."""


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


class SpiffeIdError(ValueError):
    """A SPIFFE ID or trust domain breaks the SPIFFE ID rules (messages follow go-spiffe's)."""
