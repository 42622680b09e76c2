"""A port per workload for ``aws.credentials: serve``, so two services on one host never cross-wire.

Every workload's ``serve`` listens on 127.0.0.1; if two of a stack's workloads shared a port on one
host, an application pointed at one would get the other's role. Each workload therefore gets its own
port: ``workloads.<w>.servePort`` when set, else one derived from its name alone (``aws.servePort``
plus a hash of the name, within ``SPAN`` ports), so adding or removing another workload does not move
it (a moved port would hand a running application, still pointed at the old one, another workload's
credentials). Two names that hash to the same port are rare; the later one in name order takes the
next free port and a warning says to pin it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from roles_anywhere.errors import ConfigError

SPAN = 10_000  # how many ports from aws.servePort the derived ports spread over
MAX_PORT = 65_535


def derived_port(base: int, name: str) -> int:
    """The port ``name`` gets when nothing pins it: stable, from its name alone."""
    span = min(SPAN, MAX_PORT + 1 - base)
    return base + int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % span


def assign_serve_ports(
    base: int, names: list[str], pinned: Mapping[str, int]
) -> tuple[dict[str, int], list[str]]:
    """Each workload's port and the warnings for any that could not have its derived one.

    ``pinned``: the workloads with ``servePort`` set; two pinned to one port is an error.
    """
    taken: dict[int, str] = {}
    for name in sorted(pinned):
        port = pinned[name]
        if port in taken:
            raise ConfigError(
                f"workloads.{name}.servePort",
                f"{port} is also workloads.{taken[port]}.servePort; each workload's serve needs its own port",
            )
        taken[port] = name
    ports = dict(pinned)
    warnings = []
    span = min(SPAN, MAX_PORT + 1 - base)
    for name in sorted(set(names) - set(pinned)):
        wanted = port = derived_port(base, name)
        while port in taken:
            port = base + (port - base + 1) % span
            if port == wanted:
                raise ConfigError("aws.servePort", f"no free port left in {base}-{base + span - 1}")
        if port != wanted:
            warnings.append(
                f"workloads.{name}: its serve port {wanted} is workloads.{taken[wanted]}'s, so it gets "
                f"{port}, which moves if that changes; set workloads.{name}.servePort: {port} to pin it"
            )
        taken[port] = name
        ports[name] = port
    return ports, warnings
