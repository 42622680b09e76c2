"""The ``roles-anywhere`` command's entry point, with a fast path for a cached ``credential-process``.

The AWS CLI runs ``credential_process`` on every invocation. A cached answer is read with the
standard library only (``credentials.cache``), before argparse, the Pulumi SDK or cryptography are
imported: the call then costs about as much as starting Python. Anything unusual (a flag the fast
path does not read, ``--no-cache``, a miss, an unsafe cache) goes to the full command, which
validates everything and says what is wrong.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

# The flags the fast path reads; any other flag sends the call to the full command.
_VALUE_FLAGS = {
    "--certificate": "certificate",
    "--private-key": "private_key",
    "--trust-anchor-arn": "trust_anchor_arn",
    "--profile-arn": "profile_arn",
    "--role-arn": "role_arn",
    "--session-duration": "session_duration",
    "--role-session-name": "role_session_name",
    "--endpoint": "endpoint",
    "--region": "region",
    "--intermediates": "intermediates",
    "--ca-bundle": "ca_bundle",
}
_SWITCHES = {"--no-verify-ssl", "--with-proxy"}


def main(argv: Sequence[str] | None = None) -> int:
    """Answer from the cache if possible, else run the full command."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["credential-process"]:
        answer = cached_answer(arguments[1:])
        if answer is not None:
            sys.stdout.write(answer)
            return 0
    from roles_anywhere.cli import main as full  # noqa: PLC0415 - the point of this module

    return full(arguments)


def cached_answer(arguments: Sequence[str]) -> str | None:
    """The ``Version: 1`` JSON from a fresh, intact cache entry for these flags, or None."""
    values: dict[str, str] = {}
    index = 0
    while index < len(arguments):
        flag, _, inline = arguments[index].partition("=")
        if flag in _SWITCHES and not inline:
            index += 1
            continue
        if flag not in _VALUE_FLAGS:
            return None
        if inline:
            value = inline
        elif index + 1 < len(arguments):
            value = arguments[index + 1]
            index += 1
        else:
            return None
        values[_VALUE_FLAGS[flag]] = value
        index += 1
    required = ("certificate", "private_key", "trust_anchor_arn", "profile_arn", "role_arn")
    if not all(name in values for name in required):
        return None
    try:
        from roles_anywhere.credentials import cache  # noqa: PLC0415

        key = cache.cache_key(
            certificate=values["certificate"],
            private_key=values["private_key"],
            trust_anchor_arn=values["trust_anchor_arn"],
            profile_arn=values["profile_arn"],
            role_arn=values["role_arn"],
            session_duration=int(values.get("session_duration", "3600")),
            role_session_name=values.get("role_session_name"),
            endpoint=values.get("endpoint"),
        )
        credentials = cache.cached_credentials(key) if key is not None else None
    except Exception:  # noqa: BLE001 - the full command handles (and reports) whatever this was
        return None
    if credentials is None:
        return None
    return cache.credential_process_json(credentials) + "\n"
