"""``update``: keep a profile of the AWS shared credentials file fresh while tbot rotates the SVID.

The file (``$AWS_SHARED_CREDENTIALS_FILE``, ``$VAR`` and ``~`` expanded as botocore expands them, else
``~/.aws/credentials``) also holds the user's own
keys, and botocore refuses all of it when it cannot read it. So only the profile's three keys change,
parsed and checked as botocore parses (``credentials.shared_file``), and the file is replaced
atomically: a 0600 temporary file beside it, renamed over it.

* Several ``update``s (one per workload) may share the file: each holds an ``flock`` on
  ``<file>.lock`` (created 0600 beside it, kept afterwards; refused unless a regular file of ours closed
  to others, never followed when a link) from reading the file to the rename, so none loses another's
  write. Other writers (an editor, ``aws configure``) do not take it.
* The file itself must be a regular file of ours, at most 1 MiB, UTF-8: a link is refused and left
  alone (renaming over it would silently replace the link with a file), as is a FIFO, a device, a
  folder, another user's file (renaming would make it ours). The folder holding it may be a link
  (``~/.aws`` often is): the file is rewritten in the folder the link points to.
* Every refusal is one line naming the file (or ``--profile``) and the line and section at fault,
  never a line's text, and writes nothing; the file is checked before AWS is asked.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import stat
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from roles_anywhere.credentials.serve import SVID_POLL_SECONDS, CredentialsUnavailableError, refreshing_source
from roles_anywhere.credentials.shared_file import KEYS, check_profile_name, with_profile
from roles_anywhere.errors import ConfigError
from roles_anywhere.outside_text import one_printable_line

NOT_REGULAR = "is not a regular file of at most 1 MiB, so it is not rewritten"
# Values of the right shape for checking, before AWS is asked, that the file can be rewritten.
_PLACEHOLDERS = dict.fromkeys(KEYS, "roles-anywhere-check")


def add_command(commands: Any, add_credential_flags: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register ``update``."""
    update = commands.add_parser("update", help="keep a profile of the AWS credentials file fresh")
    add_credential_flags(update)
    update.add_argument("--profile", default="default", help="the profile to write (default: default)")
    update.add_argument("--once", action="store_true", help="write once and exit")
    update.set_defaults(handler=run_update)


def credentials_file() -> Path:
    """``$AWS_SHARED_CREDENTIALS_FILE``, else ``~/.aws/credentials``: the file botocore reads.

    ``$VAR`` and ``~`` are expanded as botocore expands them (``configloader.raw_config_parse``).
    """
    named = os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials"
    return Path(os.path.expanduser(os.path.expandvars(named)))


def read_credentials_file(path: Path) -> str:
    """The file's text ("" if there is none); a link, FIFO, device, folder or huge file is refused.

    Opened without following a link or blocking on a FIFO, and checked before reading.
    """
    from roles_anywhere.credentials.cache import MAX_CREDENTIAL_FILE_BYTES  # noqa: PLC0415

    where = str(path)
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return ""
    except OSError as err:
        if os.path.islink(path):
            raise ConfigError(
                where,
                "is a symbolic link; update replaces the file it writes, so it neither follows nor "
                "replaces a link (point AWS_SHARED_CREDENTIALS_FILE at the file itself)",
            ) from None
        raise ConfigError(where, f"cannot be read ({err.strerror}), so it is not rewritten") from None
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(where, NOT_REGULAR)
        if info.st_uid != os.getuid():
            raise ConfigError(
                where, f"belongs to another user (uid {info.st_uid}); rewriting it would make it ours"
            )
        data = _read_at_most(descriptor, MAX_CREDENTIAL_FILE_BYTES + 1)
    finally:
        os.close(descriptor)
    if len(data) > MAX_CREDENTIAL_FILE_BYTES:
        raise ConfigError(where, NOT_REGULAR)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(where, f"is not UTF-8 text (byte {err.start}), so it is not rewritten") from None


def _read_at_most(descriptor: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = os.read(descriptor, limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold ``<path>.lock`` exclusively: concurrent ``update``s read, change and rename one at a time."""
    lock = f"{path}.lock"
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        descriptor = os.open(lock, flags, 0o600)
    except OSError as err:
        if os.path.islink(lock):
            raise ConfigError(lock, "is a symbolic link, and update's lock is never followed") from None
        raise ConfigError(lock, f"cannot be opened ({err.strerror}), so nothing was written") from None
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(lock, "is not a regular file, so it cannot be update's lock")
        if info.st_uid != os.getuid() or info.st_mode & 0o077:
            raise ConfigError(
                lock,
                f"is not ours alone (uid {info.st_uid}, mode {stat.S_IMODE(info.st_mode):o}; want ours, 600)",
            )
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


def credential_values(credentials: dict[str, Any]) -> dict[str, str]:
    """The three keys of the file, from a CreateSession answer."""
    return {
        "aws_access_key_id": credentials["accessKeyId"],
        "aws_secret_access_key": credentials["secretAccessKey"],
        "aws_session_token": credentials["sessionToken"],
    }


def write_profile(path: Path, profile: str, values: dict[str, str]) -> None:
    """Rewrite ``path`` (0600, atomically, under the lock) with ``profile`` holding ``values``."""
    from roles_anywhere.credentials.cache import (  # noqa: PLC0415
        MAX_CREDENTIAL_FILE_BYTES,
        write_private_file,
    )

    check_profile_name(profile)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(str(path), f"its folder cannot be made ({err.strerror})") from None
    with locked(path):
        text = with_profile(read_credentials_file(path), profile, values, str(path))
        if len(text.encode("utf-8")) > MAX_CREDENTIAL_FILE_BYTES:
            raise ConfigError(str(path), "would grow past 1 MiB, so it is not rewritten")
        try:
            write_private_file(str(path), text)
        except OSError as err:
            raise ConfigError(
                str(path), f"cannot be written ({err.strerror}); it was left as it was"
            ) from None


def run_update(args: argparse.Namespace) -> int:
    """Write the profile now, then again before expiry or when the SVID changes (or once)."""
    check_profile_name(args.profile)
    path = credentials_file()
    # Refuse a file that cannot be rewritten before asking AWS.
    with_profile(read_credentials_file(path), args.profile, _PLACEHOLDERS, str(path))
    from roles_anywhere.credentials.credential_process import SessionRefusedError  # noqa: PLC0415

    source = refreshing_source(args)
    try:
        source.prime()  # the first credentials, or the reason there are none, before looping
    except SessionRefusedError as err:
        print(f"error: {one_printable_line(str(err))}", file=sys.stderr)
        return 1
    written: dict[str, Any] | None = None
    while True:
        try:
            credentials = source.current()
        except CredentialsUnavailableError as err:  # a long outage: keep trying, say why
            source.log(f"profile {args.profile} not updated: {err}")
        else:
            if credentials is not written:
                write_profile(path, args.profile, credential_values(credentials))
                written = credentials
                source.log(f"profile {args.profile} in {path} updated")
        if args.once:
            return 0
        time.sleep(SVID_POLL_SECONDS)
