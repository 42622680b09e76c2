"""Writing artefacts: atomic, idempotent, removes what it wrote before, never replaces a stranger's file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from roles_anywhere.output.artifact_writer import MANIFEST, OutputFolderError, write_artifacts

FILES = {"README.md": "hello\n", "tsh/api.sh": "#!/bin/sh\n", "teleport/role-api.yaml": "kind: role\n"}


def test_first_write_creates_files_with_modes_and_a_manifest(tmp_path: Path) -> None:
    result = write_artifacts(FILES, tmp_path / "out")
    assert result.written == ("README.md", "teleport/role-api.yaml", "tsh/api.sh")
    assert (tmp_path / "out" / "tsh" / "api.sh").read_text() == "#!/bin/sh\n"
    assert (tmp_path / "out" / "tsh" / "api.sh").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "out" / "README.md").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "out" / MANIFEST).read_text().splitlines() == sorted(FILES)


def test_rewriting_the_same_files_touches_nothing(tmp_path: Path) -> None:
    write_artifacts(FILES, tmp_path)
    readme = tmp_path / "README.md"
    os.utime(readme, (1_000_000, 1_000_000))
    result = write_artifacts(FILES, tmp_path)
    assert result.written == ()
    assert result.unchanged == tuple(sorted(FILES))
    assert readme.stat().st_mtime == 1_000_000


def test_changed_file_is_replaced_not_rewritten_in_place(tmp_path: Path) -> None:
    write_artifacts(FILES, tmp_path)
    before = (tmp_path / "README.md").stat().st_ino
    result = write_artifacts({**FILES, "README.md": "changed\n"}, tmp_path)
    assert result.written == ("README.md",)
    assert (tmp_path / "README.md").read_text() == "changed\n"
    assert (tmp_path / "README.md").stat().st_ino != before  # a new inode: renamed into place
    assert not list(tmp_path.rglob("*.tmp"))


def test_files_of_a_dropped_workload_are_removed(tmp_path: Path) -> None:
    write_artifacts(FILES, tmp_path)
    (tmp_path / "tsh" / "notes.txt").write_text("mine")
    remaining = {k: v for k, v in FILES.items() if k != "teleport/role-api.yaml" and k != "tsh/api.sh"}
    result = write_artifacts(remaining, tmp_path)
    assert result.removed == ("teleport/role-api.yaml", "tsh/api.sh")
    assert not (tmp_path / "teleport").exists()  # emptied folder removed
    assert (tmp_path / "tsh" / "notes.txt").read_text() == "mine"  # someone else's file stays


def test_a_file_we_did_not_write_is_never_replaced(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("my own notes")
    with pytest.raises(OutputFolderError) as raised:
        write_artifacts(FILES, tmp_path)
    assert str(raised.value) == (
        f"{tmp_path / 'README.md'}: exists and was not written by roles-anywhere; "
        "remove it or choose another output folder (nothing was written)"
    )
    assert (tmp_path / "README.md").read_text() == "my own notes"
    assert not (tmp_path / "tsh").exists()
    assert not (tmp_path / MANIFEST).exists()


def test_symlink_in_the_way_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    (out / "README.md").symlink_to(target)
    with pytest.raises(OutputFolderError):
        write_artifacts(FILES, out)
    assert target.read_text() == "precious"


@pytest.mark.parametrize("bad", ["../escape", "/etc/passwd", MANIFEST, ""])
def test_paths_outside_the_folder_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(OutputFolderError, match="not a file name inside the output folder"):
        write_artifacts({bad: "x"}, tmp_path)


def test_a_tampered_manifest_cannot_delete_outside(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_artifacts(FILES, out)
    (out / MANIFEST).write_text("../victim\n")
    (tmp_path / "victim").write_text("keep")
    with pytest.raises(OutputFolderError):
        write_artifacts(FILES, out)
    assert (tmp_path / "victim").read_text() == "keep"


def test_output_path_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "out").write_text("x")
    with pytest.raises(OutputFolderError, match="exists and is not a folder"):
        write_artifacts(FILES, tmp_path / "out")


@pytest.mark.parametrize("planted", ["gen", "gen/stack"])
def test_artifacts_dir_is_never_reached_through_a_link_committed_in_the_stack_folder(
    tmp_path: Path, planted: str
) -> None:
    """A pull request can commit `gen -> /somewhere`; `pulumi up` must not write through it."""
    stack_folder, elsewhere = tmp_path / "repo", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (stack_folder / "gen").mkdir(parents=True)
    link = stack_folder / planted
    if link.is_dir():
        link.rmdir()
    link.symlink_to(elsewhere)
    with pytest.raises(OutputFolderError, match=f"{link}: is a link or not a folder"):
        write_artifacts(FILES, stack_folder / "gen" / "stack" / "out", inside=stack_folder)
    assert list(elsewhere.iterdir()) == []
    link.unlink()
    result = write_artifacts(FILES, stack_folder / "gen" / "stack" / "out", inside=stack_folder)
    assert set(result.written) == set(FILES)
