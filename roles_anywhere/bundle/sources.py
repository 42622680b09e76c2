"""Where the trust anchor's CAs come from: a proxy's SPIFFE bundle, any bundle URL, a command, a file.

Whatever the source, the bytes go through the same strict validation (``bundle.ca_bundle``), so a bundle
fetched from the network is held to exactly the rules of one pasted into the config. The proxy's
``/webapi/spiffe/bundle.json`` is the source to prefer: unlike ``tctl auth export`` it holds every
CA the cluster trusts, so during a rotation the anchor trusts both the old and the new CA.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from roles_anywhere import ALLOW_COMMANDS_ENV
from roles_anywhere.bundle.ca_bundle import (
    CaBundle,
    load_bundle_file,
    parse_bundle_bytes,
    parse_pem_bundle,
    parse_served_bundle,
)
from roles_anywhere.bundle.fetch import fetch_bundle
from roles_anywhere.config.model import CaBundleConfig
from roles_anywhere.errors import BundleError
from roles_anywhere.outside_text import without_key_material

TELEPORT_BUNDLE_PATH = "/webapi/spiffe/bundle.json"
DEFAULT_FETCH_TIMEOUT = 10
DEFAULT_COMMAND_TIMEOUT = 30
MAX_BUNDLE_BYTES = 1 << 20
_STDERR_SHOWN = 400


@dataclass(frozen=True)
class LoadedBundle:
    """A validated bundle and a human description of where it came from (a URL, a command, a file)."""

    bundle: CaBundle
    origin: str
    key: str
    warnings: tuple[str, ...] = ()


def teleport_bundle_url(proxy: str) -> str:
    """The unauthenticated SPIFFE bundle endpoint of a Teleport proxy (``host:port``, normalised)."""
    return f"https://{proxy}{TELEPORT_BUNDLE_PATH}"


def load_ca_bundle(source: CaBundleConfig, *, base_dir: Path, now: datetime | None = None) -> LoadedBundle:
    """Read the configured source and validate it; every failure is a ``BundleError`` naming the key."""
    key = source.source_key
    if source.proxy is not None or source.bundle_url is not None:
        url = source.bundle_url or teleport_bundle_url(source.proxy or "")
        ca_file = _resolve(base_dir, source.proxy_ca_file) if source.proxy_ca_file else None
        body = fetch_bundle(
            url,
            key=key,
            ca_file=ca_file,
            ca_file_display=source.proxy_ca_file,
            timeout=source.timeout or DEFAULT_FETCH_TIMEOUT,
            max_bytes=MAX_BUNDLE_BYTES,
        )
        return LoadedBundle(parse_served_bundle(body, key=key, source=f"{url}: ", now=now), url, key)
    if source.command is not None:
        display = " ".join(source.command)
        if os.environ.get(ALLOW_COMMANDS_ENV, "").lower() not in ("1", "true", "yes"):
            raise BundleError(
                key,
                "runs a program named by the stack file, so it is refused unless allowed for this run: "
                f"pass --allow-commands to roles-anywhere, or set {ALLOW_COMMANDS_ENV}=1 for pulumi "
                "preview/up. Review a stack file that uses it as code",
            )
        stdout = run_bundle_command(
            source.command, key=key, cwd=base_dir, timeout=source.timeout or DEFAULT_COMMAND_TIMEOUT
        )
        bundle = parse_bundle_bytes(stdout, key=key, source=f"output of `{display}`: ", now=now)
        return LoadedBundle(bundle, f"`{display}`", key, tuple(_active_only_warning(source.command, key)))
    if source.file is not None:
        bundle = load_bundle_file(_resolve(base_dir, source.file), key=key, display=source.file, now=now)
        return LoadedBundle(bundle, source.file, key)
    assert source.pem is not None  # noqa: S101 - guaranteed by CaBundleConfig
    return LoadedBundle(parse_pem_bundle(source.pem, key=key, now=now), "the PEM text in the config", key)


def _active_only_warning(argv: list[str], key: str) -> list[str]:
    """``tctl auth export`` prints only the active CA: say so, because rotations will break."""
    if Path(argv[0]).name == "tctl" and "export" in argv:
        return [
            f"{key}: `tctl auth export` prints only the active SPIFFE CA; during a CA rotation the "
            "other one is missing from the trust anchor. Prefer caBundle.proxy (the proxy's bundle.json)"
        ]
    return []


def _resolve(base_dir: Path, path: str) -> Path:
    return base_dir / Path(path).expanduser()


def run_bundle_command(argv: list[str], *, key: str, cwd: Path, timeout: float) -> bytes:
    """Run ``argv`` (no shell) in ``cwd`` and return its stdout; fail clearly on exit, timeout or size.

    The command runs in its own process group so a timeout kills everything it started: a script
    whose child hangs would otherwise keep the pipes open and block us past the timeout.
    """
    display = " ".join(argv)
    try:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except FileNotFoundError:
        where = "" if "/" in argv[0] else " on PATH"
        raise BundleError(key, f"cannot run `{display}`: {argv[0]!r} not found{where}") from None
    except PermissionError:
        raise BundleError(key, f"cannot run `{display}`: {argv[0]!r} is not executable") from None
    except OSError as err:
        raise BundleError(key, f"cannot run `{display}`: {err.strerror or err}") from None
    started = time.monotonic()
    try:
        stdout, stderr = _collect(process, deadline=started + timeout)
    except subprocess.TimeoutExpired:
        raise BundleError(
            key,
            f"`{display}` did not finish within {timeout:g} s and was stopped "
            "(raise caBundle.timeout if it is just slow)",
        ) from None
    except _TooMuchOutputError:
        raise BundleError(
            key, f"`{display}` printed more than {MAX_BUNDLE_BYTES} bytes and was stopped; not a CA bundle"
        ) from None
    finally:
        if process.poll() is None:
            _kill_group(process)
    if process.returncode != 0:
        status = (
            f"was killed by signal {-process.returncode}"
            if process.returncode < 0
            else f"exited with status {process.returncode}"
        )
        raise BundleError(key, f"`{display}` {status}{_stderr_excerpt(stderr)}")
    if len(stdout) > MAX_BUNDLE_BYTES:
        raise BundleError(key, f"`{display}` printed more than {MAX_BUNDLE_BYTES} bytes; not a CA bundle")
    if not stdout.strip():
        raise BundleError(
            key,
            f"`{display}` printed nothing on stdout after {time.monotonic() - started:.1f} s"
            f"{_stderr_excerpt(stderr)}",
        )
    return stdout


class _TooMuchOutputError(Exception):
    """The command printed more than a CA bundle could ever be."""


def _collect(process: subprocess.Popen[bytes], *, deadline: float) -> tuple[bytes, bytes]:
    """Stdout and stderr as they stream, stopping (and killing the group) past the cap or the deadline.

    ``communicate`` would buffer ``cat /dev/zero`` whole before any size check.
    """
    assert process.stdout is not None  # noqa: S101 - a pipe
    assert process.stderr is not None  # noqa: S101 - a pipe
    chunks: dict[int, list[bytes]] = {process.stdout.fileno(): [], process.stderr.fileno(): []}
    sizes = dict.fromkeys(chunks, 0)
    with selectors.DefaultSelector() as selector:
        for stream in (process.stdout, process.stderr):
            selector.register(stream, selectors.EVENT_READ)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                _kill_group(process)
                raise subprocess.TimeoutExpired(process.args, 0)
            for key, _ in selector.select(timeout=remaining):
                data = os.read(key.fd, 65_536)
                if not data:
                    selector.unregister(key.fileobj)
                    continue
                sizes[key.fd] += len(data)
                if sizes[key.fd] > MAX_BUNDLE_BYTES:
                    _kill_group(process)
                    raise _TooMuchOutputError
                chunks[key.fd].append(data)
    process.wait(timeout=max(0.0, deadline - time.monotonic()))
    return b"".join(chunks[process.stdout.fileno()]), b"".join(chunks[process.stderr.fileno()])


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    # Close our ends rather than read them: a grandchild that left the group could hold them open.
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()
    process.wait()


def _stderr_excerpt(stderr: bytes) -> str:
    """The command's stderr on one line, shortened; PEM blocks (possibly keys) are never shown."""
    text = stderr.decode("utf-8", errors="replace")
    if "-----BEGIN" in text:
        return "; its stderr holds PEM data, not shown"
    text = without_key_material(text)  # before lines are joined and cut: a key split over lines
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return " (nothing on stderr)"
    joined = " | ".join(lines)
    if len(joined) > _STDERR_SHOWN:
        joined = "…" + joined[-_STDERR_SHOWN:]
    return f"; stderr: {joined}"
