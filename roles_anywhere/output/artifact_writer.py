"""Write rendered artefacts into a folder: atomically, without touching anything we did not write.

Each file is written to a temporary file beside it and renamed into place, so a reader (tbot
reloading its config, a CI job) never sees half a file. A manifest remembers what we wrote, so a
later render removes the files of a workload that was dropped, and refuses to overwrite a file it
did not write (``--out ~`` must not replace someone's README.md).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from roles_anywhere.errors import ConfigError, RolesAnywhereError, read_user_bytes

MANIFEST = ".roles-anywhere-files"
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_MANIFEST_ENTRIES = 20_000  # 5,000 workloads render about 15,000 files
MAX_DEPTH = 8  # rendered files are at most two folders deep
MAX_NAME_BYTES = 255  # NAME_MAX


class OutputFolderError(RolesAnywhereError):
    """The output folder cannot take the artefacts without losing someone's file."""


@dataclass(frozen=True)
class WriteResult:
    """What a write changed: files written (new or different), unchanged, and removed as stale."""

    written: tuple[str, ...]
    unchanged: tuple[str, ...]
    removed: tuple[str, ...]


def write_artifacts(files: Mapping[str, str], out_dir: Path, *, inside: Path | None = None) -> WriteResult:
    """Write ``files`` (relative POSIX path → text) under ``out_dir``; see the module docstring.

    Below ``out_dir`` nothing is reached through a link: every folder is opened with ``O_NOFOLLOW``
    from its parent's descriptor, files are created and replaced relative to those descriptors, and
    only regular files are ever unlinked. A planted link refuses the whole write before any change.
    With ``inside`` (the stack's folder, for ``artifactsDir``), no folder between it and ``out_dir``
    may be a link either: a link committed in a pull request must not carry the write elsewhere.
    """
    for relative in files:
        _check_relative(relative)
    try:
        return _write(files, out_dir, inside)
    except OSError as err:  # a dangling link, a file in the path, a name too long, a read-only disk
        reason = (err.strerror or type(err).__name__).lower()
        raise OutputFolderError(f"{out_dir}: cannot write there ({reason})") from None


def _write(files: Mapping[str, str], out_dir: Path, inside: Path | None) -> WriteResult:
    if inside is not None:
        _check_no_link_between(inside, out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputFolderError(f"{out_dir}: exists and is not a folder")
    previous = read_manifest(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with _Folder(out_dir) as folder:
        for relative in sorted(set(files) | previous):  # every check before the first change
            parent = folder.open(_parents(relative), create=False)
            foreign = relative in files and relative not in previous and parent is not None
            if foreign and parent is not None and _lstat(parent, PurePosixPath(relative).name) is not None:
                raise OutputFolderError(
                    f"{out_dir / relative}: exists and was not written by roles-anywhere; "
                    "remove it or choose another output folder (nothing was written)"
                )
        written, unchanged = [], []
        for relative, text in sorted(files.items()):
            parent = folder.open(_parents(relative), create=True)
            assert parent is not None  # noqa: S101 - created when missing
            name, mode, data = PurePosixPath(relative).name, _mode(relative), text.encode()
            if _same(parent, name, data, mode):
                unchanged.append(relative)
                continue
            _atomic_write(parent, name, data, mode, display=out_dir / relative)
            written.append(relative)
        removed = [r for r in sorted(previous - files.keys()) if _remove(folder, r)]
        manifest = "".join(f"{path}\n" for path in sorted(files)).encode()
        _atomic_write(folder.root, MANIFEST, manifest, 0o644, display=out_dir / MANIFEST)
    return WriteResult(tuple(written), tuple(unchanged), tuple(removed))


class _Folder:
    """Descriptors of the folders under the output folder, each opened without following a link."""

    def __init__(self, root: Path) -> None:
        self.path = root
        self.root = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._open: dict[tuple[str, ...], int] = {(): self.root}

    def __enter__(self) -> _Folder:
        return self

    def __exit__(self, *_: object) -> None:
        for fd in self._open.values():
            os.close(fd)

    def open(self, parts: tuple[str, ...], *, create: bool) -> int | None:
        """The folder ``parts`` below the root; ``None`` if it does not exist and ``create`` is false."""
        known = max(depth for depth in range(len(parts) + 1) if parts[:depth] in self._open)
        fd = self._open[parts[:known]]
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        for depth in range(known + 1, len(parts) + 1):
            name = parts[depth - 1]
            try:
                fd = os.open(name, flags, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    return None
                os.mkdir(name, 0o755, dir_fd=fd)
                fd = os.open(name, flags, dir_fd=fd)
            except OSError:
                raise OutputFolderError(
                    f"{self.path.joinpath(*parts[:depth])}: is a link or not a folder; nothing under the "
                    "output folder is reached through a link (nothing was written)"
                ) from None
            self._open[parts[:depth]] = fd
        return fd


def _check_no_link_between(inside: Path, out_dir: Path) -> None:
    try:
        parts = out_dir.relative_to(inside).parts
    except ValueError:
        raise OutputFolderError(f"{out_dir}: not inside {inside}") from None
    if ".." in parts:
        raise OutputFolderError(f"{out_dir}: not inside {inside}")
    for depth in range(1, len(parts) + 1):
        path = inside.joinpath(*parts[:depth])
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            raise OutputFolderError(
                f"{path}: is a link or not a folder; the output folder is never reached through a link "
                "inside the stack's or current folder (nothing was written)"
            )


def _parents(relative: str) -> tuple[str, ...]:
    return PurePosixPath(relative).parts[:-1]


def _mode(relative: str) -> int:
    return 0o755 if is_executable(relative) else 0o644


def _lstat(parent: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        return None


def is_executable(path: str) -> bool:
    """Scripts get mode 0755, everything else 0644."""
    return path.endswith(".sh")


def _check_relative(relative: str) -> None:
    path = PurePosixPath(relative)
    canonical = str(path) == relative and "." not in relative.split("/")
    printable = relative.isprintable() and all(len(part.encode()) <= MAX_NAME_BYTES for part in path.parts)
    if (
        not canonical
        or not printable
        or path.is_absolute()
        or ".." in path.parts
        or not path.parts
        or len(path.parts) > MAX_DEPTH
        or path.name == MANIFEST
    ):
        shown = relative[:80].encode("unicode_escape").decode("ascii")
        raise OutputFolderError(f"{shown}: not a file name inside the output folder")


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
    if len(entries) > MAX_MANIFEST_ENTRIES:
        raise OutputFolderError(
            f"{out_dir / MANIFEST}: lists {len(entries)} files; "
            f"a render writes at most {MAX_MANIFEST_ENTRIES}"
        )
    for entry in entries:
        try:
            _check_relative(entry)
        except OutputFolderError as err:
            raise OutputFolderError(f"{out_dir / MANIFEST}: {err}") from None
    return entries


def read_regular_file(path: Path, limit: int) -> bytes | None:
    """At most ``limit`` bytes of a file in the output folder, ``None`` if absent; never through a link."""
    if not os.path.lexists(path):
        return None
    try:
        return read_user_bytes(path, str(path), limit, follow_link=False)
    except ConfigError as err:
        raise OutputFolderError(str(err)) from None


def _same(parent: int, name: str, data: bytes, mode: int) -> bool:
    """Unchanged content and mode of a regular file: leave it (and its mtime) alone."""
    found = _lstat(parent, name)
    if found is None or not stat.S_ISREG(found.st_mode) or found.st_size != len(data):
        return False
    if (found.st_mode & 0o777) != mode:
        return False
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=parent)
    with os.fdopen(fd, "rb") as stream:
        return stream.read(len(data) + 1) == data


def _atomic_write(parent: int, name: str, data: bytes, mode: int, *, display: Path) -> None:
    """A temporary file beside ``name``, fsynced, then renamed over it (a link is replaced, not followed)."""
    temporary = f".{name}.{secrets.token_hex(8)}.tmp"
    fd = os.open(
        temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=parent
    )
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fchmod(stream.fileno(), mode)
            os.fsync(stream.fileno())
        os.replace(temporary, name, src_dir_fd=parent, dst_dir_fd=parent)
    except IsADirectoryError:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary, dir_fd=parent)
        raise OutputFolderError(f"{display}: is a folder, not a file this project wrote") from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary, dir_fd=parent)
        raise


def _remove(folder: _Folder, relative: str) -> bool:
    """Remove a regular file we wrote earlier (never a link or a folder), and folders it leaves empty."""
    parts = _parents(relative)
    parent = folder.open(parts, create=False)
    name = PurePosixPath(relative).name
    found = None if parent is None else _lstat(parent, name)
    if parent is None or found is None or not stat.S_ISREG(found.st_mode):
        return False
    os.unlink(name, dir_fd=parent)
    while parts:
        above = folder.open(parts[:-1], create=False)
        try:
            os.rmdir(parts[-1], dir_fd=above)
        except OSError:
            break
        parts = parts[:-1]
    return True
