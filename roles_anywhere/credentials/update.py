"""``update``: keep a profile of the AWS shared credentials file fresh while tbot rotates the SVID.

The file is rewritten atomically (a temporary file renamed over it, 0600), every other line kept as
it was.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from roles_anywhere.credentials.serve import SVID_POLL_SECONDS, refreshing_source


def add_command(commands: Any, add_credential_flags: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register ``update``."""
    update = commands.add_parser("update", help="keep a profile of the AWS credentials file fresh")
    add_credential_flags(update)
    update.add_argument("--profile", default="default", help="the profile to write (default: default)")
    update.add_argument("--once", action="store_true", help="write once and exit")
    update.set_defaults(handler=run_update)


def credentials_file() -> Path:
    """``$AWS_SHARED_CREDENTIALS_FILE``, else ``~/.aws/credentials``."""
    return Path(os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or Path.home() / ".aws" / "credentials")


def with_profile(text: str, profile: str, credentials: dict[str, Any]) -> str:
    """``text`` with ``profile``'s three keys set; every other line kept as it was."""
    values = {
        "aws_access_key_id": credentials["accessKeyId"],
        "aws_secret_access_key": credentials["secretAccessKey"],
        "aws_session_token": credentials["sessionToken"],
    }
    lines = text.splitlines()
    out: list[str] = []
    inside = found = False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            if inside:  # leaving our section: add what was missing
                out += [f"{k} = {v}" for k, v in values.items()]
                values = {}
            inside = stripped[1:-1].strip() == profile
            found = found or inside
            out.append(line)
            continue
        if inside and stripped.split("=", 1)[0].strip() in values:
            key = stripped.split("=", 1)[0].strip()
            out.append(f"{key} = {values.pop(key)}")
            continue
        out.append(line)
    if inside:
        out += [f"{k} = {v}" for k, v in values.items()]
    elif not found:
        out += ([""] if out else []) + [f"[{profile}]"] + [f"{k} = {v}" for k, v in values.items()]
    return "\n".join(out) + "\n"


def read_credentials_file(path: Path) -> str:
    """The credentials file's text ("" if there is none); a FIFO, device or huge file is refused."""
    from roles_anywhere.credentials.cache import read_regular_file  # noqa: PLC0415
    from roles_anywhere.errors import ConfigError  # noqa: PLC0415

    if not os.path.lexists(path):
        return ""
    data = read_regular_file(str(path))
    if data is None:
        raise ConfigError(str(path), "is not a regular file of at most 1 MiB, so it is not rewritten")
    return data.decode("utf-8", errors="replace")


def write_profile(path: Path, profile: str, credentials: dict[str, Any]) -> None:
    """Rewrite ``path`` atomically (0600) with ``profile`` holding ``credentials``."""
    from roles_anywhere.credentials.cache import write_private_file  # noqa: PLC0415

    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_private_file(str(path), with_profile(read_credentials_file(path), profile, credentials))


def run_update(args: argparse.Namespace) -> int:
    """Write the profile now, then again before expiry or when the SVID changes (or once)."""
    from roles_anywhere.errors import ConfigError  # noqa: PLC0415

    if not args.profile or any(c in args.profile for c in "[]\n\r"):
        raise ConfigError("--profile", f"{args.profile!r} is not a profile name")
    path = credentials_file()
    read_credentials_file(path)  # refuse a file that cannot be rewritten before asking AWS
    source = refreshing_source(args)
    written: dict[str, Any] | None = None
    while True:
        credentials = source.current()
        if credentials is not written:
            write_profile(path, args.profile, credentials)
            written = credentials
            source.log(f"profile {args.profile} in {path} updated")
        if args.once:
            return 0
        time.sleep(SVID_POLL_SECONDS)
