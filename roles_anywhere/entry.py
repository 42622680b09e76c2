"""The ``roles-anywhere`` command's entry point, with a fast path for a cached ``credential-process``.

The AWS CLI runs ``credential_process`` on every invocation. A cached answer is read with the
standard library only (``credentials.cache``), before argparse, the Pulumi SDK or cryptography are
imported: the call then costs about as much as starting Python. The fast path reads the flags the
way argparse does or not at all: anything it cannot be sure of (a flag it does not read, an
abbreviation, a flag given twice, a value that starts with ``-``, ``--``, a positional, ``--no-cache``,
a miss, an unsafe cache) goes to the full command, which validates everything and says what is wrong.
Both compute the cache key with ``cache.cache_key`` from the same values, so they agree on it.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # collections.abc and typing cost more than the rest of a cached call
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

# The value flags the fast path reads (argparse's names for them); any other flag sends the call on.
_VALUE_FLAGS = {
    "--certificate": "certificate",
    "--private-key": "private_key",
    "--intermediates": "intermediates",
    "--trust-anchor-arn": "trust_anchor_arn",
    "--profile-arn": "profile_arn",
    "--role-arn": "role_arn",
    "--session-duration": "session_duration",
    "--role-session-name": "role_session_name",
    "--region": "region",
    "--endpoint": "endpoint",
    "--ca-bundle": "ca_bundle",
}
_SWITCHES = {"--no-verify-ssl": "no_verify_ssl", "--with-proxy": "with_proxy"}
_PATHS = ("certificate", "private_key", "intermediates", "ca_bundle")  # type=Path in argparse
_REQUIRED = ("certificate", "private_key", "trust_anchor_arn", "profile_arn", "role_arn")
_DEFAULTS: dict[str, Any] = {
    **dict.fromkeys(_VALUE_FLAGS.values()),
    "session_duration": 3_600,
    "no_verify_ssl": False,
    "with_proxy": False,
}
# credentials.command.HARDWARE_URI_PREFIXES (a test keeps them equal): refused by the full command.
HARDWARE_URI_PREFIXES = ("pkcs11:", "handle:")


def main(argv: Sequence[str] | None = None) -> int:
    """Answer from the cache if possible, else run the full command."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["credential-process"]:
        answer = cached_answer(arguments[1:])
        if answer is not None:
            try:
                sys.stdout.write(answer)
                sys.stdout.flush()
            except BrokenPipeError:  # the reader went away: not an error, as in the full command
                import os  # noqa: PLC0415 - already loaded by the interpreter's start-up

                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
    from roles_anywhere.cli import main as full  # noqa: PLC0415 - the point of this module

    return full(arguments)


def cached_answer(arguments: Sequence[str]) -> str | None:
    """The ``Version: 1`` JSON from a fresh, intact cache entry for these flags, or None."""
    values = parsed_flags(arguments)
    if values is None:
        return None
    try:
        from roles_anywhere.credentials import cache  # noqa: PLC0415

        key = cache.cache_key(**{name: values[name] for name in cache.KEY_ARGUMENTS})
        credentials = cache.cached_credentials(key) if key is not None else None
        if credentials is None:
            return None
        return cache.credential_process_json(credentials) + "\n"
    except Exception:  # noqa: BLE001 - the full command handles (and reports) whatever this was
        return None


def parsed_flags(arguments: Sequence[str]) -> dict[str, Any] | None:
    """What argparse makes of ``credential-process``'s flags, or None where the fast path is not sure.

    Accepted: each flag at most once, exactly as spelled, ``--flag value`` (a value not starting
    with ``-``, which argparse could take for a flag) or ``--flag=value`` (any value, ``''`` too);
    the two switches bare. Values are converted as argparse converts them (``int``, ``Path``'s
    spelling). Everything else, and a call without the five required flags, is None.
    """
    values = _flag_values(arguments)
    if values is None or not all(name in values for name in _REQUIRED):
        return None
    for name in _PATHS:
        if name in values:
            values[name] = path_text(values[name])
    if values["certificate"].startswith(HARDWARE_URI_PREFIXES):
        return None
    if values["private_key"].startswith(HARDWARE_URI_PREFIXES):
        return None
    try:
        values["session_duration"] = int(values.get("session_duration", 3_600))
    except ValueError:
        return None
    return {**_DEFAULTS, **values}


def _flag_values(arguments: Sequence[str]) -> dict[str, Any] | None:
    values: dict[str, Any] = {}
    index = 0
    while index < len(arguments):
        token = arguments[index]
        name = _SWITCHES.get(token)
        value: Any = True
        if name is None:
            flag, equals, value = token.partition("=")
            name = _VALUE_FLAGS.get(flag)
            if name is None:  # another flag, an abbreviation, a switch with "=", "--", a positional
                return None
            if not equals:
                index += 1
                if index == len(arguments) or arguments[index].startswith("-"):
                    return None
                value = arguments[index]
        if name in values:  # argparse keeps the last; the full command will say what it makes of it
            return None
        values[name] = value
        index += 1
    return values


def path_text(text: str) -> str:
    """``str(pathlib.Path(text))`` on POSIX, without importing pathlib (a test checks they agree)."""
    root = (
        "//" if text.startswith("//") and not text.startswith("///") else "/" if text.startswith("/") else ""
    )
    return root + "/".join(part for part in text.split("/") if part and part != ".") or "."
