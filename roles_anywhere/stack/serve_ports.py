"""A port per workload for ``aws.credentials: serve``, so two services on one host never cross-wire.

Every workload's ``serve`` listens on 127.0.0.1; if two of a stack's workloads shared a port on one
host, an application pointed at one would get the other's role. Each workload therefore gets its own
port: ``workloads.<w>.servePort`` when set, else one derived from its name alone (``aws.servePort``
plus a hash of the name, within ``SPAN`` ports). A port never depends on the other workloads, so
adding or removing one never moves another (a moved port would hand a running application, still
pointed at the old one, another workload's credentials). Two workloads on one port (by hash or by
pin) is an error naming both and a free port to pin the new one to.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from roles_anywhere.errors import ConfigError

SPAN = 10_000  # how many ports from aws.servePort the derived ports spread over
MAX_PORT = 65_535


def _span(base: int) -> int:
    return min(SPAN, MAX_PORT + 1 - base)


def derived_port(base: int, name: str) -> int:
    """The port ``name`` gets when nothing pins it: from its name alone."""
    return base + int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % _span(base)


def assign_serve_ports(base: int, names: list[str], pinned: Mapping[str, int]) -> dict[str, int]:
    """Each workload's port; a ``ConfigError`` when two would share one.

    ``pinned``: the workloads with ``servePort`` set.
    """
    ports = {name: pinned.get(name) or derived_port(base, name) for name in names}
    owner: dict[int, str] = {}
    for name in sorted(names, key=lambda n: (n not in pinned, n)):  # a pinned one keeps its port
        port = ports[name]
        if port in owner:
            other = owner[port]
            free = _free_port(base, set(ports.values()), port)
            raise ConfigError(
                f"workloads.{name}.servePort",
                f"{port} is also workloads.{other}'s serve port; each workload's serve needs its own: "
                f"pin the one that is new, e.g. workloads.{name}.servePort: {free}",
            )
        owner[port] = name
    return ports


def _free_port(base: int, taken: set[int], near: int) -> int:
    span = _span(base)
    for step in range(1, span + 1):
        port = base + (near - base + step) % span
        if port not in taken:
            return port
    raise ConfigError("aws.servePort", f"no free port left in {base}-{base + span - 1}")
