"""``update`` and the shared credentials file (issue 21): only the target profile changes, byte for byte,
the result is what botocore reads, concurrent updates lose nothing, and every refusal is one line."""

from __future__ import annotations

import configparser
import multiprocessing
import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import botocore.configloader
import botocore.exceptions
import botocore.session
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roles_anywhere.cli import main
from roles_anywhere.credentials.shared_file import (
    KEYS,
    check_profile_name,
    read_profiles,
    scan,
    with_profile,
)
from roles_anywhere.credentials.update import credentials_file, write_profile
from roles_anywhere.errors import ConfigError
from roles_anywhere.sandbox.server import Sandbox

from .sandbox_helpers import World, fresh_svid
from .test_sandbox_credentials import BIN, aws_cli, flags, write_svid
from .update_workers import values_for, write_in_every_trial

NEW = {"aws_access_key_id": "ASIANEW", "aws_secret_access_key": "newsecret", "aws_session_token": "newtoken"}
KEYS_LF = "aws_access_key_id = ASIANEW\naws_secret_access_key = newsecret\naws_session_token = newtoken\n"
NOT_REWRITTEN = "botocore refuses such a file, so it is not rewritten"
NOT_REGULAR = "is not a regular file of at most 1 MiB, so it is not rewritten"
# Flags that pass argparse; a refusal of the file or the profile comes before any of them is used.
UNUSED_FLAGS = [
    "--certificate",
    "/nonexistent/svid.pem",
    "--private-key",
    "/nonexistent/svid_key.pem",
    "--trust-anchor-arn",
    "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/0b5c5a2e-6f3e-4c1f-9d7a-2f1b8e0c4d11",
    "--profile-arn",
    "arn:aws:rolesanywhere:us-east-1:123456789012:profile/0b5c5a2e-6f3e-4c1f-9d7a-2f1b8e0c4d11",
    "--role-arn",
    "arn:aws:iam::123456789012:role/x",
]


@pytest.fixture
def botocore_env(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Point botocore at one credentials file, and at nothing else (no env keys, config file or IMDS)."""

    def point(path: Path) -> None:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(path))
        monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    return point


def botocore_credentials(profile: str) -> tuple[str, str, str | None]:
    """What botocore's credential chain finds for ``profile`` (the environment set by ``botocore_env``)."""
    found = botocore.session.Session(profile=profile).get_credentials()
    assert found is not None, profile
    frozen = found.get_frozen_credentials()
    return frozen.access_key, frozen.secret_key, frozen.token


def botocore_reads(text: str) -> dict[str, Any]:
    """``raw_config_parse`` of ``text`` as a file (what the AWS CLI reads); raises as botocore does."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "credentials"
        path.write_bytes(text.encode())
        return dict(botocore.configloader.raw_config_parse(str(path)))


def others(sections: dict[str, Any], profile: str) -> dict[str, Any]:
    return {name: options for name, options in sections.items() if name != profile}


def run_update(*args: str) -> int:
    return main(["update", "--once", *args, *UNUSED_FLAGS])


# (id, text before the section, the section before, the section after, text after the section, profile)
REWRITES = [
    (
        "a header with a trailing comment is a header (issue 21)",
        "",
        "[default]\naws_access_key_id = ASIAOLD\naws_secret_access_key = oldsecret\n"
        "aws_session_token = old\n",
        f"[default]\n{KEYS_LF}",
        "[prod] # admin key\naws_access_key_id = AKIAPRODKEY\naws_secret_access_key = prodsecret\n",
        "default",
    ),
    (
        "comments around and in the section, our header's comment kept",
        "; my keys\n[prod] ; admin\naws_access_key_id = AKIAPRODKEY\naws_secret_access_key = prodsecret\n\n",
        "[default] # refreshed by roles-anywhere\n; keep me\naws_access_key_id = ASIAOLD\n# and me\n",
        f"[default] # refreshed by roles-anywhere\n; keep me\n{KEYS_LF}# and me\n",
        "",
        "default",
    ),
    (
        "odd spacing, upper case and colons replaced in place, as written",
        "[a]\nx = 1\n",
        "[default]\n  AWS_ACCESS_KEY_ID=ASIAOLD\n  Aws_Secret_Access_Key :   oldsecret   \n"
        "  aws_session_token\t:\told\n",
        "[default]\n  AWS_ACCESS_KEY_ID=ASIANEW\n  Aws_Secret_Access_Key :   newsecret\n"
        "  aws_session_token\t:\tnewtoken\n",
        "[b]\ny: 2\n",
        "default",
    ),
    (
        "an old value's continuation lines go, a blank line and the next option stay",
        "",
        "[default]\naws_session_token = OLDPART1\n    OLDPART2\n\n    OLDPART3\nregion = eu-west-1\n",
        "[default]\naws_session_token = newtoken\n\nregion = eu-west-1\n"
        "aws_access_key_id = ASIANEW\naws_secret_access_key = newsecret\n",
        "[b]\ny = 2\n",
        "default",
    ),
    (
        "a nested value in the section is kept, the keys go after it",
        "",
        "[default]\ns3 =\n    addressing_style = path\n",
        f"[default]\ns3 =\n    addressing_style = path\n{KEYS_LF}",
        "",
        "default",
    ),
    (
        "CRLF",
        "[a]\r\nx = 1\r\n",
        "[default]\r\naws_access_key_id = ASIAOLD\r\n",
        f"[default]\r\n{KEYS_LF.replace(chr(10), chr(13) + chr(10))}",
        "[b]\r\ny = 2\r\n",
        "default",
    ),
    (
        "CR alone",
        "[a]\rx = 1\r",
        "[default]\raws_access_key_id = ASIAOLD\r",
        f"[default]\r{KEYS_LF.replace(chr(10), chr(13))}",
        "[b]\ry = 2\r",
        "default",
    ),
    (
        "no final newline, our section last: it gets one",
        "[a]\nx = 1\n",
        "[default]\naws_access_key_id = ASIAOLD",
        f"[default]\n{KEYS_LF}",
        "",
        "default",
    ),
    (
        "no final newline, all keys present: still none",
        "[a]\nx = 1\n",
        "[default]\naws_access_key_id = A\naws_secret_access_key = B\naws_session_token = C",
        f"[default]\n{KEYS_LF}".removesuffix("\n"),
        "",
        "default",
    ),
    (
        "no final newline after our section: kept",
        "",
        "[default]\naws_access_key_id = ASIAOLD\n",
        f"[default]\n{KEYS_LF}",
        "[b]\ny = 2",
        "default",
    ),
    ("absent, no final newline", "[a]\nx = 1", "", f"\n\n[default]\n{KEYS_LF}", "", "default"),
    ("absent, a final newline", "[a]\nx = 1\n", "", f"\n[default]\n{KEYS_LF}", "", "default"),
    ("absent, a final blank line", "[a]\nx = 1\n\n", "", f"[default]\n{KEYS_LF}", "", "default"),
    ("an empty file", "", "", f"[default]\n{KEYS_LF}", "", "default"),
    (
        "near misses are other profiles: spaces in brackets, case, text after ], profile prefix",
        "[default ]\naws_access_key_id = AKIAA\naws_secret_access_key = a\n"
        "[ default]\naws_access_key_id = AKIAB\naws_secret_access_key = b\n"
        "[Default]\naws_access_key_id = AKIAC\naws_secret_access_key = c\n"
        "[default] x]\naws_access_key_id = AKIAD\naws_secret_access_key = d\n"
        "[profile default]\naws_access_key_id = AKIAE\naws_secret_access_key = e\n",
        "",
        f"\n[default]\n{KEYS_LF}",
        "",
        "default",
    ),
    (
        "a [DEFAULT] section is left alone",
        "[DEFAULT]\nregion = eu-west-1\naws_session_token = INHERITED\n"
        "[a]\naws_access_key_id = AKIAA\naws_secret_access_key = a\n\n",
        "",
        f"[default]\n{KEYS_LF}",
        "",
        "default",
    ),
    (
        "an indented header after a section without options stays a header",
        "",
        "[default]\n",
        "[default]\n    aws_access_key_id = ASIANEW\n    aws_secret_access_key = newsecret\n"
        "    aws_session_token = newtoken\n",
        "    [prod]\naws_access_key_id = AKIAPROD\naws_secret_access_key = prodsecret\n",
        "default",
    ),
    (
        "indented options, then an indented header",
        "",
        "[default]\n  region = x\n",
        "[default]\n  region = x\n  aws_access_key_id = ASIANEW\n  aws_secret_access_key = newsecret\n"
        "  aws_session_token = newtoken\n",
        "  [prod]\nk = v\n",
        "default",
    ),
    (
        "an indented [default] under an option is that option's value, not a section",
        "[other]\nnote = see\n  [default]\n",
        "",
        f"\n[default]\n{KEYS_LF}",
        "",
        "default",
    ),
    (
        "commented-out headers are comments",
        "# [default]\n;[default]\n  # [default]\n[a]\nx = 1\n",
        "",
        f"\n[default]\n{KEYS_LF}",
        "",
        "default",
    ),
    (
        "characters str.splitlines splits on are not line breaks in the file",
        "[a]\nnote = one\x0btwo\x0cthree\x1cfour\x1dfive\x1esix\x85seven\u2028eight\u2029nine\n",
        "[default]\naws_access_key_id = ASIAOLD\n",
        f"[default]\n{KEYS_LF}",
        "[c]\nz = a\u2028[prod]\n",
        "default",
    ),
    (
        "no inline comments: # and ; in values are values",
        "",
        "[default]\nregion = a=b:c # not a comment\naws_access_key_id: ASIAOLD ; old\n",
        "[default]\nregion = a=b:c # not a comment\naws_access_key_id: ASIANEW\n"
        "aws_secret_access_key = newsecret\naws_session_token = newtoken\n",
        "",
        "default",
    ),
    (
        "a stale aws_security_token is replaced too: botocore reads it before aws_session_token",
        "",
        "[default]\naws_security_token = STALE\naws_access_key_id = ASIAOLD\n",
        f"[default]\naws_security_token = newtoken\n{KEYS_LF}",
        "[b]\naws_security_token = THEIRS\n",
        "default",
    ),
    (
        "an aws_security_token inherited from [DEFAULT] is overridden in the section",
        "[DEFAULT]\naws_security_token = INHERITED\n",
        "",
        f"\n[default]\n{KEYS_LF}aws_security_token = newtoken\n",
        "",
        "default",
    ),
    (
        "a profile name with a space and unicode",
        "[default]\naws_access_key_id = AKIADEF\naws_secret_access_key = def\n",
        "[mein Profil ü]\naws_access_key_id = ASIAOLD\n",
        f"[mein Profil ü]\n{KEYS_LF}",
        "",
        "mein Profil ü",
    ),
]


@pytest.mark.parametrize(
    ("prefix", "before", "after", "suffix", "profile"),
    [case[1:] for case in REWRITES],
    ids=[case[0] for case in REWRITES],
)
def test_only_the_profile_changes_and_botocore_reads_the_result(
    tmp_path: Path, botocore_env: Any, prefix: str, before: str, after: str, suffix: str, profile: str
) -> None:
    path = tmp_path / "aws" / "credentials"
    path.parent.mkdir()
    path.write_bytes((prefix + before + suffix).encode())
    read_before = botocore.configloader.raw_config_parse(str(path))
    write_profile(path, profile, NEW)
    assert path.read_bytes() == (prefix + after + suffix).encode()
    read_after = botocore.configloader.raw_config_parse(str(path))
    assert others(read_after, profile) == others(read_before, profile)
    assert {key: read_after[profile][key] for key in KEYS} == NEW
    botocore_env(path)
    assert botocore_credentials(profile) == ("ASIANEW", "newsecret", "newtoken")
    for name, options in read_before.items():
        if name != profile and "aws_secret_access_key" in options:
            assert botocore_credentials(name)[:2] == (
                options["aws_access_key_id"],
                options["aws_secret_access_key"],
            )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["credentials", "credentials.lock"]


def test_the_path_is_the_one_botocore_reads_with_vars_and_home_expanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, botocore_env: Any
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CREDENTIALS_FOLDER", str(tmp_path / "elsewhere"))
    for named, expected in [
        ("~/creds", tmp_path / "home" / "creds"),
        ("$CREDENTIALS_FOLDER/creds", tmp_path / "elsewhere" / "creds"),
        ("", tmp_path / "home" / ".aws" / "credentials"),
    ]:
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", named)
        assert credentials_file() == expected
        write_profile(credentials_file(), "default", NEW)
        botocore_env(Path(named or "~/.aws/credentials"))  # botocore given the same name
        assert botocore_credentials("default") == ("ASIANEW", "newsecret", "newtoken")


def test_a_missing_file_and_folder_are_made_private(tmp_path: Path) -> None:
    path = tmp_path / "home" / ".aws" / "credentials"
    write_profile(path, "default", NEW)
    assert path.read_text() == f"[default]\n{KEYS_LF}"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(Path(f"{path}.lock").stat().st_mode) == 0o600


def test_a_second_update_replaces_its_own_keys_and_nothing_else(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    path.write_text("[prod] # admin key\naws_access_key_id = AKIAPROD\naws_secret_access_key = prodsecret\n")
    write_profile(path, "default", NEW)
    write_profile(path, "default", {key: value.upper() for key, value in NEW.items()})
    assert path.read_text() == (
        "[prod] # admin key\naws_access_key_id = AKIAPROD\naws_secret_access_key = prodsecret\n\n"
        "[default]\naws_access_key_id = ASIANEW\naws_secret_access_key = NEWSECRET\n"
        "aws_session_token = NEWTOKEN\n"
    )


SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
REFUSED_FILES = [
    (
        f"[default]\naws_access_key_id = AKIAONE\n[prod]\nx = 1\n"
        f"[default]\naws_secret_access_key = {SECRET}\n",
        f"line 5: section [default] appears a second time; {NOT_REWRITTEN}",
    ),
    (
        f"[prod]\naws_access_key_id = AKIAONE\nAWS_ACCESS_KEY_ID: {SECRET}\n",
        f"line 3: aws_access_key_id appears a second time in section [prod]; {NOT_REWRITTEN}",
    ),
    (
        f"[prod]\n{SECRET} = 1\n{SECRET.upper()}: 2\n",
        f"line 3: an option appears a second time in section [prod]; {NOT_REWRITTEN}",
    ),
    (
        f"aws_secret_access_key = {SECRET}\n[default]\n",
        f"line 1 comes before any [section] header; {NOT_REWRITTEN}",
    ),
    (
        f"[prod]\naws_access_key_id = AKIAONE\n{SECRET}\n",
        "line 3 in section [prod] is not a header, a name = value option, a comment or an indented "
        f"continuation; {NOT_REWRITTEN}",
    ),
    (
        f"[prod]\n{SECRET}\n= {SECRET}\n[other]\n[]\n",
        "line 2 (and 2 more) in section [prod] is not a header, a name = value option, a comment or an "
        f"indented continuation; {NOT_REWRITTEN}",
    ),
    (
        f"[prod]\naws_secret_access_key =\n    {SECRET}\n",
        f"section [prod]: aws_secret_access_key has an indented value that is not name = value lines; "
        f"{NOT_REWRITTEN}",
    ),
    (
        "[DEFAULT]\nx = 1\n[DEFAULT]\nx = 2\n",
        f"line 4: x appears a second time in section [DEFAULT]; {NOT_REWRITTEN}",
    ),
    (
        f"\ufeff[default]\naws_secret_access_key = {SECRET}\n",
        f"starts with a byte-order mark, which botocore reads as text; {NOT_REWRITTEN}",
    ),
]


@pytest.mark.parametrize(("text", "message"), REFUSED_FILES)
def test_a_file_botocore_cannot_read_is_refused_naming_line_and_section(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    text: str,
    message: str,
) -> None:
    path = tmp_path / "credentials"
    path.write_bytes(text.encode())
    with pytest.raises(botocore.exceptions.ConfigParseError):
        botocore.configloader.raw_config_parse(str(path))  # botocore refuses it too
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(path))
    assert run_update("--profile", "default") == 2
    err = capsys.readouterr().err
    assert err == f"error: {path}: {message}\n"
    assert SECRET not in err
    assert "AKIAONE" not in err
    with pytest.raises(ConfigError) as raised:
        write_profile(path, "default", NEW)
    assert str(raised.value) == f"{path}: {message}"
    assert path.read_bytes() == text.encode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["credentials", "credentials.lock"]


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    path.write_bytes(b"[a]\nx = \xff\n")
    with pytest.raises(botocore.exceptions.ConfigParseError):
        botocore.configloader.raw_config_parse(str(path))
    with pytest.raises(ConfigError, match=r": is not UTF-8 text \(byte 8\), so it is not rewritten$"):
        write_profile(path, "default", NEW)
    assert path.read_bytes() == b"[a]\nx = \xff\n"


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda middle: middle + "[prod]\naws_access_key_id = FORGED\n",  # another profile changed
        lambda middle: middle + "[default]\n",  # a second [default]: botocore would refuse the file
        lambda middle: middle.replace("aws_session_token = newtoken\n", ""),  # a key left out
        lambda middle: middle + "region = us-east-1\n",  # an option nobody asked for
    ],
    ids=["forged profile", "duplicate section", "key missing", "extra option"],
)
def test_a_rewrite_that_would_touch_anything_else_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, corrupt: Any
) -> None:
    """The result is checked with botocore's parser, not assumed: a faulty rewrite writes nothing."""
    from roles_anywhere.credentials import shared_file  # noqa: PLC0415

    rewritten = shared_file._rewritten
    monkeypatch.setattr(shared_file, "_rewritten", lambda *args: corrupt(rewritten(*args)))
    path = tmp_path / "credentials"
    text = "[default]\naws_access_key_id = ASIAOLD\n[prod]\naws_access_key_id = AKIAPROD\n"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        write_profile(path, "default", NEW)
    assert str(raised.value) == (
        f"{path}: [default] cannot be rewritten without touching the rest of the file, so it is not rewritten"
    )
    assert path.read_text() == text


@pytest.mark.parametrize("dangling", [False, True], ids=["to a file", "dangling"])
def test_a_link_at_the_credentials_path_is_refused_and_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, dangling: bool
) -> None:
    target = tmp_path / "real-credentials"
    if not dangling:
        target.write_text("[prod]\naws_access_key_id = AKIAPROD\n")
    link = tmp_path / "credentials"
    link.symlink_to(target)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(link))
    message = (
        f"{link}: is a symbolic link; update replaces the file it writes, so it neither follows nor "
        "replaces a link (point AWS_SHARED_CREDENTIALS_FILE at the file itself)"
    )
    assert run_update() == 2
    assert capsys.readouterr().err == f"error: {message}\n"
    with pytest.raises(ConfigError) as raised:
        write_profile(link, "default", NEW)
    assert str(raised.value) == message
    assert link.is_symlink()
    assert os.readlink(link) == str(target)
    if dangling:
        assert not target.exists()
    else:
        assert target.read_text() == "[prod]\naws_access_key_id = AKIAPROD\n"


def test_a_linked_folder_is_followed_the_file_in_it_rewritten(tmp_path: Path) -> None:
    """~/.aws is often a link into a dotfiles checkout: allowed; only the file itself may not be a link."""
    real = tmp_path / "dotfiles" / "aws"
    real.mkdir(parents=True)
    (real / "credentials").write_text("[prod]\naws_access_key_id = AKIAPROD\n")
    (tmp_path / ".aws").symlink_to(real)
    write_profile(tmp_path / ".aws" / "credentials", "default", NEW)
    assert (tmp_path / ".aws").is_symlink()
    assert (
        real / "credentials"
    ).read_text() == f"[prod]\naws_access_key_id = AKIAPROD\n\n[default]\n{KEYS_LF}"


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _folder(path: Path) -> None:
    path.mkdir()


def _huge(path: Path) -> None:
    path.write_text("[a]\n" + "x" * (1024 * 1024) + " = 1\n")


@pytest.mark.parametrize("make", [_fifo, _folder, _huge], ids=["FIFO", "folder", "over 1 MiB"])
def test_a_credentials_path_that_is_not_a_small_regular_file_is_refused(tmp_path: Path, make: Any) -> None:
    path = tmp_path / "credentials"
    make(path)
    kind = stat.S_IFMT(path.lstat().st_mode)
    with pytest.raises(ConfigError) as raised:
        write_profile(path, "default", NEW)
    assert str(raised.value) == f"{path}: {NOT_REGULAR}"
    assert stat.S_IFMT(path.lstat().st_mode) == kind


def test_a_file_that_would_grow_past_1_mib_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    text = "[a]\nx = " + "y" * (1024 * 1024 - 20) + "\n"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        write_profile(path, "default", NEW)
    assert str(raised.value) == f"{path}: would grow past 1 MiB, so it is not rewritten"
    assert path.read_text() == text


def test_a_file_of_nearly_1_mib_and_many_profiles_is_rewritten_around_its_middle(tmp_path: Path) -> None:
    block = "[p{:05d}] # long-lived\naws_access_key_id = AKIA{:016d}\naws_secret_access_key = {}\n\n"
    sections = [block.format(i, i, SECRET) for i in range(8000)]
    head, tail = "".join(sections[:4000]), "".join(sections[4001:])
    path = tmp_path / "credentials"
    path.write_text(head + sections[4000] + tail)
    assert 1000 * 1024 < path.stat().st_size <= 1024 * 1024
    write_profile(path, "p04000", NEW)
    assert path.read_text() == head + f"[p04000] # long-lived\n{KEYS_LF}\n" + tail


@pytest.mark.skipif(os.getuid() != 0, reason="giving a file to another user needs root")
def test_another_users_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    path.write_text("[a]\nx = 1\n")
    os.chown(path, 65534, 65534)
    with pytest.raises(ConfigError) as raised:
        write_profile(path, "default", NEW)
    assert (
        str(raised.value) == f"{path}: belongs to another user (uid 65534); rewriting it would make it ours"
    )
    assert path.stat().st_uid == 65534
    assert path.read_text() == "[a]\nx = 1\n"


def test_a_folder_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "aws").write_text("a file where the folder should be")
    with pytest.raises(ConfigError) as raised:
        write_profile(tmp_path / "aws" / "credentials", "default", NEW)
    assert str(raised.value) == f"{tmp_path / 'aws' / 'credentials'}: its folder cannot be made (File exists)"


def _lock_link(lock: Path) -> None:
    lock.symlink_to(lock.parent / "elsewhere")


def _lock_folder(lock: Path) -> None:
    lock.mkdir()


def _lock_fifo(lock: Path) -> None:
    os.mkfifo(lock, 0o600)


def _lock_open(lock: Path) -> None:
    lock.touch()
    lock.chmod(0o644)


@pytest.mark.parametrize(
    ("plant", "message"),
    [
        (_lock_link, "is a symbolic link, and update's lock is never followed"),
        (_lock_folder, "cannot be opened (Is a directory), so nothing was written"),
        (_lock_fifo, "is not a regular file, so it cannot be update's lock"),
        (_lock_open, f"is not ours alone (uid {os.getuid()}, mode 644; want ours, 600)"),
    ],
    ids=["link", "folder", "FIFO", "open to others"],
)
def test_a_planted_lock_is_refused_and_nothing_written(tmp_path: Path, plant: Any, message: str) -> None:
    path = tmp_path / "credentials"
    path.write_text("[a]\nx = 1\n")
    lock = tmp_path / "credentials.lock"
    plant(lock)
    with pytest.raises(ConfigError) as raised:
        write_profile(path, "default", NEW)
    assert str(raised.value) == f"{lock}: {message}"
    assert path.read_text() == "[a]\nx = 1\n"
    assert not (tmp_path / "elsewhere").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("elsewhere")) == [
        "credentials",
        "credentials.lock",
    ]


# ---- profile names --------------------------------------------------------------------------------

LINE_BREAKS = [chr(c) for c in range(sys.maxunicode + 1) if len(f"a{chr(c)}b".splitlines()) > 1]
PRINTABLE_ONLY = "a profile name is one line of printable characters"


def test_every_character_splitlines_splits_on_is_in_the_list() -> None:
    assert list("\n\x0b\x0c\r\x1c\x1d\x1e\x85\u2028\u2029") == LINE_BREAKS


@pytest.mark.parametrize(
    "character",
    [*LINE_BREAKS, "\x00", "\t", "\x1b", "\x7f", "\x9b", "\xa0", "\u200b", "\u202e", "\ufeff", "\udcff"],
    ids=lambda c: f"U+{ord(c):04X}",
)
def test_a_profile_name_with_a_control_or_separator_character_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, character: str
) -> None:
    path = tmp_path / "credentials"
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(path))
    name = f"prod{character}x"
    assert run_update("--profile", name) == 2
    assert capsys.readouterr().err == (
        f"error: --profile: {name!r} holds U+{ord(character):04X}, a control, format or separator "
        f"character; {PRINTABLE_ONLY}\n"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "must not be empty"),
        (
            "DEFAULT",
            "'DEFAULT' is configparser's defaults section: botocore never reads it as a profile, and every "
            "other profile inherits its keys",
        ),
        ("[prod]", "'[prod]' holds a square bracket, which a [section] header cannot"),
        ("a]b", "'a]b' holds a square bracket, which a [section] header cannot"),
        ("a[b", "'a[b' holds a square bracket, which a [section] header cannot"),
        (" default", "' default' starts or ends with a space, which AWS SDKs trim differently"),
        ("default ", "'default ' starts or ends with a space, which AWS SDKs trim differently"),
        (" ", "' ' starts or ends with a space, which AWS SDKs trim differently"),
        (
            "prod\n[default]",
            f"'prod\\n[default]' holds U+000A, a control, format or separator character; {PRINTABLE_ONLY}",
        ),
    ],
)
def test_a_bad_profile_name_is_one_line_and_nothing_is_written(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    message: str,
) -> None:
    path = tmp_path / "credentials"
    path.write_text("[DEFAULT]\nregion = x\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(path))
    assert run_update("--profile", name) == 2
    assert capsys.readouterr().err == f"error: --profile: {message}\n"
    with pytest.raises(ConfigError) as raised:
        write_profile(path, name, NEW)
    assert str(raised.value) == f"--profile: {message}"
    assert path.read_text() == "[DEFAULT]\nregion = x\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["credentials"]


@pytest.mark.parametrize(
    "name",
    [
        "default",
        "prod",
        "my profile",
        "profile x",
        "a=b",
        "a:b",
        "#x",
        ";x",
        "ünïcødé",
        "名前",
        "DEFAULTS",
        "x" * 300,
    ],
)
def test_a_good_profile_name_is_what_botocore_reads_back(
    tmp_path: Path, botocore_env: Any, name: str
) -> None:
    path = tmp_path / "credentials"
    path.write_text("[other]\naws_access_key_id = AKIAOTHER\naws_secret_access_key = other\n")
    write_profile(path, name, NEW)
    botocore_env(path)
    assert botocore_credentials(name) == ("ASIANEW", "newsecret", "newtoken")
    assert botocore_credentials("other") == ("AKIAOTHER", "other", None)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(min_size=0, max_size=12))
def test_any_profile_name_is_refused_or_read_back_by_botocore(name: str) -> None:
    text = "[other]\naws_access_key_id = AKIAOTHER\n"
    try:
        check_profile_name(name)
    except ConfigError as err:
        refused = err.key
    else:
        refused = None
    if refused is not None:
        assert refused == "--profile"
        return
    sections = botocore_reads(with_profile(text, name, NEW, "credentials"))
    assert sections == {"other": {"aws_access_key_id": "AKIAOTHER"}, name: NEW}


@pytest.mark.parametrize(
    "value", ["", "two words", "line\nbreak", "line\rbreak", "tab\there", "x\u2028[prod]", None]
)
def test_a_credential_that_is_not_one_word_is_refused(tmp_path: Path, value: Any) -> None:
    """A line break in a value from the endpoint would forge lines of the file."""
    path = tmp_path / "credentials"
    path.write_text("[prod]\naws_access_key_id = AKIAPROD\n")
    with pytest.raises(ConfigError) as raised:
        write_profile(path, "default", {**NEW, "aws_session_token": value})
    assert str(raised.value) == (
        f"{path}: the aws_session_token AWS answered with is not one word of printable characters; "
        "nothing was written"
    )
    assert path.read_text() == "[prod]\naws_access_key_id = AKIAPROD\n"


# ---- properties: parsing as botocore does, and other sections surviving byte for byte -------------

_INSIDE = st.text(
    st.sampled_from(list("aZ09 _-=:#;[]/+.%\t\x0b\x0c\x1c\x85\u2028ü")), min_size=1, max_size=8
).filter(lambda s: s.strip() == s)
_NAMES = st.text(st.sampled_from(list("abcXYZ _-")), min_size=1, max_size=6).filter(lambda s: s.strip() == s)
_ENDINGS = st.sampled_from(["\n", "\r\n", "\r"])


@st.composite
def _any_line(draw: Any) -> str:
    indent = draw(st.sampled_from(["", "", " ", "  ", "\t", "\x0c"]))
    body = draw(
        st.one_of(
            st.builds(lambda n, t: f"[{n}]{t}", _NAMES, st.sampled_from(["", " # c", "]", " x]", " ;"])),
            st.builds(
                lambda n, d, v: f"{n}{d}{v}",
                st.sampled_from(["aws_access_key_id", "AWS_Session_Token", "region", "x", "s3", ""]),
                st.sampled_from(["=", ":", " = ", " : ", "\t=", "= "]),
                st.one_of(st.just(""), _INSIDE),
            ),
            st.builds(lambda p, t: p + t, st.sampled_from(["#", ";"]), st.one_of(st.just(""), _INSIDE)),
            st.just(""),
            _INSIDE,
            st.sampled_from(["[DEFAULT]", "[default]", "[]", "\ufeff"]),
        )
    )
    return indent + body


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_any_line(), max_size=10), _ENDINGS, st.booleans(), st.integers(0, 4))
def test_the_file_is_parsed_as_botocore_parses_it(
    lines: list[str], ending: str, final: bool, headed: int
) -> None:
    lines = ["[first]"] * bool(headed) + lines  # mostly a header first: else botocore refuses at line 1
    text = ending.join(lines) + (ending if final and lines else "")
    try:
        expected = botocore_reads(text)
    except botocore.exceptions.ConfigParseError:
        with pytest.raises(ConfigError):
            read_profiles(text, "credentials")
        return
    assert read_profiles(text, "credentials") == expected
    headers = {line.section for line in scan(text) if line.kind == "header"}
    assert headers - {configparser.DEFAULTSECT} == set(expected)
    assert not [line for line in scan(text) if line.kind == "error"]


@st.composite
def _section(draw: Any, name: str) -> list[str]:
    """A section's lines (no endings): a header at column 0, options with their continuations, comments."""
    header = f"[{name}]" + draw(st.sampled_from(["", " # admin key", " ; x", "\t# admin"]))
    options = draw(
        st.lists(
            st.sampled_from(
                ["aws_access_key_id", "aws_secret_access_key", "aws_session_token", "region", "x"]
            ),
            unique=True,
        )
    )
    indent = draw(st.sampled_from(["", "", "  "]))
    lines = [header]
    for option in options:
        lines += draw(st.lists(st.sampled_from(["", "# note", "  ; note", "   "]), max_size=2))
        spelled = "".join(c.upper() if draw(st.booleans()) else c for c in option)
        delimiter = draw(st.sampled_from(["=", " = ", ":", " : ", "\t=\t"]))
        lines.append(f"{indent}{spelled}{delimiter}{draw(_INSIDE)}")
        continued = draw(st.lists(_INSIDE, max_size=2))
        lines += [f"{indent}    {more}" for more in continued if not more.startswith(("#", ";"))]
    return lines


@st.composite
def _credentials_file(draw: Any) -> tuple[list[str], str, int | None]:
    """Sections as text (each with its endings), the profile to write, and its index (None: absent)."""
    names = draw(
        st.lists(
            st.sampled_from(["default", "prod", "Default", "default ", "profile x", "DEFAULT", "ci"]),
            unique=True,
            max_size=5,
        )
    )
    profile = draw(st.sampled_from(["default", "prod", "ci", "new one"]))
    ending = draw(_ENDINGS)
    blocks = [ending.join(draw(_section(name))) + ending for name in names]
    preamble = draw(st.lists(st.sampled_from(["# mine", "", "; x"]), max_size=2))
    if preamble:
        blocks.insert(0, ending.join(preamble) + ending)
        names.insert(0, "")
    if blocks and draw(st.booleans()):
        blocks[-1] = blocks[-1].removesuffix(ending)
    return blocks, profile, names.index(profile) if profile in names else None


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(_credentials_file())
def test_other_sections_survive_byte_for_byte_and_botocore_reads_the_profile(
    drawn: tuple[list[str], str, int | None],
) -> None:
    blocks, profile, index = drawn
    text = "".join(blocks)
    result = with_profile(text, profile, NEW, "credentials")
    if index is None:
        assert result.startswith(text)
    else:
        assert result.startswith("".join(blocks[:index]))
        assert result.endswith("".join(blocks[index + 1 :]))
    before, after = botocore_reads(text), botocore_reads(result)
    assert others(after, profile) == others(before, profile)
    assert {key: after[profile][key] for key in KEYS} == NEW
    if index is None:  # a new section inherits [DEFAULT]'s options, as every section does
        parser = configparser.RawConfigParser()
        parser.read_string(text.replace("\r\n", "\n").replace("\r", "\n"))
        kept = dict(parser.defaults())
    else:
        kept = before[profile]
    assert {k: v for k, v in after[profile].items() if k not in KEYS} == {
        k: v for k, v in kept.items() if k not in KEYS
    }
    assert with_profile(result, profile, NEW, "credentials") == result  # a second run changes nothing more


# ---- concurrency ----------------------------------------------------------------------------------

USERS_OWN = "# my long-lived keys\n[prod] # admin key\n" + (
    "aws_access_key_id = AKIAPROD\naws_secret_access_key = prodsecret\n"
)


def test_twenty_concurrent_writers_lose_no_profile_over_many_trials(tmp_path: Path) -> None:
    workers, trials = 20, 30
    for trial in range(trials):
        (tmp_path / f"trial{trial}").mkdir()
        (tmp_path / f"trial{trial}" / "credentials").write_text(USERS_OWN)
    context = multiprocessing.get_context("spawn")  # no fork of a process with threads
    barrier = context.Barrier(workers)
    processes = [
        context.Process(target=write_in_every_trial, args=(str(tmp_path), index, trials, barrier))
        for index in range(workers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=300)
    assert [process.exitcode for process in processes] == [0] * workers
    lost = 0
    for trial in range(trials):
        text = (tmp_path / f"trial{trial}" / "credentials").read_text()
        assert text.startswith(USERS_OWN)
        sections = botocore_reads(text)
        assert sections["prod"] == {"aws_access_key_id": "AKIAPROD", "aws_secret_access_key": "prodsecret"}
        for index in range(workers):
            lost += sections.get(f"workload-{index}") != values_for(trial, index)
    assert lost == 0, f"{lost} of {workers * trials} writes lost"


@pytest.mark.parametrize("processes", [4, 12])
def test_concurrent_update_commands_each_keep_their_own_profile(
    sandbox: Sandbox, world: World, tmp_path: Path, botocore_env: Any, processes: int
) -> None:
    import boto3  # noqa: PLC0415

    workloads = [world.workload(f"/svc/concurrent-update-{processes}-{i}") for i in range(processes)]
    for i, workload in enumerate(workloads):
        write_svid(tmp_path / f"svid{i}", fresh_svid(world.ca, workload.spiffe_id))
    for trial in range(3):
        path = tmp_path / f"trial{trial}" / "credentials"
        path.parent.mkdir()
        path.write_text(USERS_OWN)
        env = {**os.environ, "AWS_SHARED_CREDENTIALS_FILE": str(path)}
        running = [
            subprocess.Popen(
                [
                    str(BIN / "roles-anywhere"),
                    "update",
                    "--once",
                    "--profile",
                    f"workload-{i}",
                    *flags(sandbox, world, tmp_path / f"svid{i}", workload),
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i, workload in enumerate(workloads)
        ]
        errors = [process.communicate(timeout=180)[1] for process in running]
        assert [process.returncode for process in running] == [0] * processes, errors
        text = path.read_text()
        assert text.startswith(USERS_OWN)
        sections = botocore_reads(text)
        assert set(sections) == {"prod", *(f"workload-{i}" for i in range(processes))}
        assert sections["prod"] == {"aws_access_key_id": "AKIAPROD", "aws_secret_access_key": "prodsecret"}
    botocore_env(path)  # the last trial: each profile is its own workload's role
    for i, workload in enumerate(workloads):
        session = boto3.Session(profile_name=f"workload-{i}", region_name="us-east-1")
        arn = session.client("sts", endpoint_url=sandbox.endpoints["sts"]).get_caller_identity()["Arn"]
        assert f"assumed-role/{workload.role_arn.rsplit('/', 1)[1]}/" in arn


def test_update_keeps_the_admin_keys_of_a_commented_header(
    sandbox: Sandbox, world: World, tmp_path: Path, botocore_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 21's report: `[prod] # admin key` after [default]; `update --profile default` took its keys."""
    workload = world.workload("/svc/issue-21")
    write_svid(tmp_path / "svid", fresh_svid(world.ca, workload.spiffe_id))
    path = tmp_path / "credentials"
    prod = "[prod] # admin key\nAWS_ACCESS_KEY_ID: AKIAPRODKEY\naws_secret_access_key = prodsecret\n"
    path.write_text(f"[default]\naws_access_key_id = ASIAOLD\n{prod}")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(path))
    assert (
        main(
            ["update", "--once", "--profile", "default", *flags(sandbox, world, tmp_path / "svid", workload)]
        )
        == 0
    )
    assert path.read_text().endswith(prod)
    botocore_env(path)
    assert botocore_credentials("prod") == ("AKIAPRODKEY", "prodsecret", None)
    result = aws_cli(sandbox, {**os.environ, "AWS_CONFIG_FILE": os.devnull}, "--profile", "default")
    assert result.returncode == 0, result.stderr
