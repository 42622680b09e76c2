"""Write rendered artefacts into a folder: atomically, without touching anything we did not write.

Each file is written to a temporary file beside it and renamed into place, so a reader (tbot
reloading its config, a CI job) never sees half a file. A manifest remembers what we wrote, so a
later render removes the files of a workload that was dropped, and refuses to overwrite a file it
did not write (``--out ~`` must not replace someone's README.md).
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from roles_anywhere.errors import RolesAnywhereError

MANIFEST = ".roles-anywhere-files"
MAX_MANIFEST_BYTES = 4 * 1024 * 1024


class OutputFolderError(RolesAnywhereError):
    """The output folder cannot take the artefacts without losing someone's file."""


@dataclass(frozen=True)
class WriteResult:
    """What a write changed: files written (new or different), unchanged, and removed as stale."""

    written: tuple[str, ...]
    unchanged: tuple[str, ...]
    removed: tuple[str, ...]


def write_artifacts(files: Mapping[str, str], out_dir: Path) -> WriteResult:
    """Write ``files`` (relative POSIX path → text) under ``out_dir``; see the module docstring."""
    for relative in files:
        _check_relative(relative)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputFolderError(f"{out_dir}: exists and is not a folder")
    previous = read_manifest(out_dir)
    for relative in files:
        target = out_dir / relative
        if relative not in previous and (target.exists() or target.is_symlink()):
            raise OutputFolderError(
                f"{target}: exists and was not written by roles-anywhere; "
                "remove it or choose another output folder (nothing was written)"
            )
    written, unchanged = [], []
    for relative, text in sorted(files.items()):
        target = out_dir / relative
        mode = 0o755 if is_executable(relative) else 0o644
        if _same(target, text, mode):
            unchanged.append(relative)
            continue
        _atomic_write(target, text.encode(), mode)
        written.append(relative)
    removed = [relative for relative in sorted(previous - files.keys()) if _remove(out_dir, relative)]
    _atomic_write(out_dir / MANIFEST, "".join(f"{path}\n" for path in sorted(files)).encode(), 0o644)
    return WriteResult(tuple(written), tuple(unchanged), tuple(removed))


def is_executable(path: str) -> bool:
    """Scripts get mode 0755, everything else 0644."""
    return path.endswith(".sh")


def _check_relative(relative: str) -> None:
    path = PurePosixPath(relative)
    if path.is_absolute() or ".." in path.parts or not path.parts or relative == MANIFEST:
        raise OutputFolderError(f"{relative}: not a file name inside the output folder")


def read_manifest(out_dir: Path) -> set[str]:
    """The files an earlier write put into ``out_dir`` (empty when there was none)."""
    data = read_regular_file(out_dir / MANIFEST, MAX_MANIFEST_BYTES)
    if data is None:
        return set()
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise OutputFolderError(f"{out_dir / MANIFEST}: not UTF-8 text") from None
    entries = {line for line in lines if line}
    for entry in entries:
        _check_relative(entry)
    return entries


def read_regular_file(path: Path, limit: int) -> bytes | None:
    """At most ``limit`` bytes of a regular file, ``None`` if absent.

    Never through a link, never blocking on a FIFO, never reading a device or a file that does not end.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as err:
        raise OutputFolderError(f"{path}: cannot read ({err.strerror}; a link is never followed)") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OutputFolderError(f"{path}: not a regular file")
    with os.fdopen(fd, "rb") as stream:
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise OutputFolderError(f"{path}: larger than {limit} bytes")
    return data


def _same(target: Path, text: str, mode: int) -> bool:
    """Unchanged content and mode: leave the file (and its mtime) alone."""
    try:
        return (
            not target.is_symlink()
            and target.read_bytes() == text.encode()
            and (target.stat().st_mode & 0o777) == mode
        )
    except OSError:
        return False


def _atomic_write(target: Path, data: bytes, mode: int) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _remove(out_dir: Path, relative: str) -> bool:
    """Remove a file we wrote earlier, and its folders if that leaves them empty."""
    target = out_dir / relative
    try:
        target.unlink()
    except FileNotFoundError:
        return False
    folder = target.parent
    while folder != out_dir:
        try:
            folder.rmdir()
        except OSError:
            break
        folder = folder.parent
    return True
