"""The fast path of ``credential-process``: it reads argv exactly as argparse does or leaves it to the
full command, agrees with it on the cache key, turns every broken entry into a miss, and imports only
the standard library. And the flag-parity messages: a hardware flag given instead of ``--certificate``
is refused by name, a missing flag is named."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from roles_anywhere import entry
from roles_anywhere.cli import build_parser, main
from roles_anywhere.credentials import cache, command

from .cache_corruptions import CORRUPTIONS
from .certs import make_ca, make_svid
from .conftest import ROOT

BIN = Path(sys.executable).parent
SCRIPT = ROOT / "roles_anywhere" / "roles-anywhere"  # what the distribution installs as bin/roles-anywhere
CA = make_ca("acme.teleport.sh")
NOW = datetime.now(UTC)
ANCHOR = "arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/0f0e0d0c-1111-2222-3333-444455556666"
PROFILE = "arn:aws:rolesanywhere:eu-west-1:111122223333:profile/1f0e0d0c-1111-2222-3333-444455556666"
ROLE_A = "arn:aws:iam::111122223333:role/orders"
ROLE_B = "arn:aws:iam::111122223333:role/billing"
UNREACHABLE = "https://127.0.0.1:9"  # nothing listens: a miss ends in one "cannot reach" line
CANNOT_REACH = f"error: --endpoint: cannot reach {UNREACHABLE}/sessions: "


def _credential_process_parser() -> argparse.ArgumentParser:
    parser = build_parser()
    (commands,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return commands.choices["credential-process"]


PARSER = build_parser()
FAST_NAMES = tuple(entry._DEFAULTS)


def argparse_values(arguments: list[str]) -> dict[str, Any] | None:
    """What the real parser makes of ``credential-process ARGUMENTS`` (None: it stops the call)."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            args = PARSER.parse_args(["credential-process", *arguments])
        except SystemExit:
            return None
    values = {name: getattr(args, name) for name in FAST_NAMES}
    return {name: str(v) if isinstance(v, Path) else v for name, v in values.items()}


def fast_values(arguments: list[str]) -> dict[str, Any] | None:
    return entry.parsed_flags(arguments)


# --- the fast path's flags are the parser's ----------------------------------------------------------


def test_the_fast_path_reads_flags_as_the_parser_defines_them() -> None:
    actions = {o: a for a in _credential_process_parser()._actions for o in a.option_strings}
    for flag, name in entry._VALUE_FLAGS.items():
        action = actions[flag]
        assert (action.dest, action.nargs, action.default) == (name, None, entry._DEFAULTS[name]), flag
        wanted = Path if name in entry._PATHS else int if name == "session_duration" else None
        assert action.type is wanted, flag
    for flag, name in entry._SWITCHES.items():
        assert isinstance(actions[flag], argparse._StoreTrueAction)
        assert actions[flag].dest == name
    assert set(cache.KEY_ARGUMENTS) <= set(entry._DEFAULTS)
    assert entry.HARDWARE_URI_PREFIXES == command.HARDWARE_URI_PREFIXES


# --- argv, as argparse reads it -------------------------------------------------------------------------

VALUE = st.text(st.characters(codec="utf-8", exclude_characters="\0"), max_size=12)
WORD = VALUE.filter(lambda v: not v.startswith("-"))
OPTIONAL = {
    "--intermediates": WORD,
    "--session-duration": st.integers(-5, 50_000).map(str)
    | st.sampled_from([" 900 ", "9_00", "+900", "٩٠٠"]),
    "--role-session-name": WORD,
    "--region": WORD,
    "--endpoint": WORD,
    "--ca-bundle": WORD,
}
REQUIRED = ("--certificate", "--private-key", "--trust-anchor-arn", "--profile-arn", "--role-arn")


@st.composite
def well_formed(draw: st.DrawFn) -> list[str]:
    """The flags as a user or render writes them, in any order, each as `--f v` or `--f=v`."""
    chosen = [(flag, WORD) for flag in REQUIRED]
    chosen += [(flag, values) for flag, values in OPTIONAL.items() if draw(st.booleans())]
    pieces: list[list[str]] = []
    for flag, values in chosen:
        value = draw(values)
        inline = draw(st.booleans()) or value.startswith("-")
        pieces.append([f"{flag}={value}"] if inline else [flag, value])
    pieces += [[switch] for switch in entry._SWITCHES if draw(st.booleans())]
    return [token for piece in draw(st.permutations(pieces)) for token in piece]


TRICKS = st.sampled_from(
    [
        "--",
        "-",
        "",
        "-x",
        "-5",
        "--role-a",  # an abbreviation argparse would expand
        "--role",  # an ambiguous one
        "--cert",
        "--no-verify",
        "--no-verify-ssl=",
        "--with-proxy=yes",
        "--region=",
        "--role-arn=" + ROLE_B,
        "--session-duration=abc",
        "--session-duration=" + "9" * 5_000,
        "--debug",
        "--no-cache",
        "--pkcs8-password",
        "--reuse-pin",
        "--cert-selector",
        "pkcs11:token=a",
        "handle:0x81000001",
        "positional",
        "-h",
        "--help",
        "--version",
        "credential-process",
        "a b",
        "-a b",
        "--region x",
        *REQUIRED,
        *OPTIONAL,
    ]
)


@st.composite
def mangled(draw: st.DrawFn) -> list[str]:
    """A well-formed call with tokens inserted, dropped, repeated or replaced."""
    tokens = draw(well_formed())
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.integers(0, len(tokens)))
        action = draw(st.sampled_from(["insert", "drop", "repeat", "replace"]))
        if action == "insert":
            tokens.insert(where, draw(TRICKS | VALUE))
        elif tokens and action == "drop":
            del tokens[min(where, len(tokens) - 1)]
        elif tokens and action == "repeat":
            tokens += tokens[where : where + 2]
        elif tokens:
            tokens[min(where, len(tokens) - 1)] = draw(TRICKS)
    return tokens


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(well_formed())
def test_the_fast_path_reads_well_formed_flags_exactly_as_argparse(arguments: list[str]) -> None:
    assert fast_values(arguments) == argparse_values(arguments)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(mangled())
@example(["--role-arn", ROLE_A, *[f"{f}=x" for f in REQUIRED[:4]], "--region=", "--role-arn=" + ROLE_B])
@example([*[f"{f}=x" for f in REQUIRED], "--role-a", "y"])
@example([*[f"{f}=x" for f in REQUIRED], "--region", "-x"])
@example([*[f"{f}=x" for f in REQUIRED], "--session-duration", "-5"])
@example([*[f"{f}=x" for f in REQUIRED], "--", "--region=x"])
@example([*[f"{f}=x" for f in REQUIRED], "x"])
@example(["--certificate=pkcs11:token=a", *[f"{f}=x" for f in REQUIRED[1:]]])
def test_the_fast_path_reads_any_argv_as_argparse_or_not_at_all(arguments: list[str]) -> None:
    fast = fast_values(arguments)
    assert fast is None or fast == argparse_values(arguments)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--region="], {"region": ""}),  # argparse's '' (empty inline value)
        (["--region", ""], {"region": ""}),
        (["--session-duration=-5"], {"session_duration": -5}),  # the full command refuses it
        (["--session-duration", " 7200 "], {"session_duration": 7200}),  # int() strips spaces
        (["--endpoint=https://x:1/a=b"], {"endpoint": "https://x:1/a=b"}),
        (["--ca-bundle", "./ca//x.pem/"], {"ca_bundle": "ca/x.pem"}),  # Path's spelling
        (["--region=", "--role-arn=" + ROLE_B], None),  # given twice: the full command decides
        (["--role-a", ROLE_B], None),
        (["--region", "-x"], None),
        (["--session-duration", "-5"], None),  # argparse reads -5 as a value; not worth being sure
        (["--session-duration=0x10"], None),
        (["--"], None),
        (["extra"], None),
        (["--no-verify-ssl="], None),
        (["--reuse-pin"], None),
        (["--debug"], None),
    ],
)
def test_examples_of_what_the_fast_path_reads(extra: list[str], expected: dict[str, Any] | None) -> None:
    arguments = ["--role-arn", ROLE_A, *[f"{f}=x" for f in REQUIRED[:4]], *extra]
    fast = entry.parsed_flags(arguments)
    if expected is None:
        assert fast is None
        return
    assert fast is not None
    assert {name: fast[name] for name in expected} == expected
    assert fast_values(arguments) == argparse_values(arguments)


@given(st.text(st.sampled_from("/.a\\ é"), max_size=12))
@example("")
@example("//")
@example("///a//b/./")
def test_path_text_is_pathlibs_spelling(text: str) -> None:
    assert entry.path_text(text) == str(Path(text))


# --- one key, whichever path computes it -------------------------------------------------------------


@pytest.fixture
def svid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An SVID, its key and a CA bundle in the working folder (relative paths work as users give them)."""
    issued = make_svid(CA, "spiffe://acme.teleport.sh/svc/orders", not_after=NOW + timedelta(hours=2))
    (tmp_path / "svid.pem").write_text(issued.pem)
    (tmp_path / "svid_key.pem").write_text(issued.key_pem)
    (tmp_path / "ca.pem").write_text(CA.pem)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def call(*extra: str, role: str = ROLE_A) -> list[str]:
    return [
        "--certificate", "svid.pem",
        "--private-key", "svid_key.pem",
        "--trust-anchor-arn", ANCHOR,
        "--profile-arn", PROFILE,
        "--role-arn", role,
        "--endpoint", UNREACHABLE,
        *extra,
    ]  # fmt: skip


def fast_key(arguments: list[str]) -> cache.CacheKey | None:
    values = entry.parsed_flags(arguments)
    assert values is not None
    return cache.cache_key(**{name: values[name] for name in cache.KEY_ARGUMENTS})


def full_key(arguments: list[str]) -> cache.CacheKey | None:
    args = PARSER.parse_args(["credential-process", *arguments])
    made: cache.CacheKey | None = command._cache_key(args)
    return made


def store(arguments: list[str], key_id: str = "ASIACACHEDCACHED0001") -> cache.CacheKey:
    key = fast_key(arguments)
    assert key is not None
    answer = {
        "accessKeyId": key_id,
        "secretAccessKey": "secret",
        "sessionToken": "token",
        "expiration": (NOW + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    assert cache.store(key, answer, NOW + timedelta(hours=2))
    return key


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    order=st.permutations(range(6)),
    inline=st.lists(st.booleans(), min_size=6, max_size=6),
    options=st.lists(
        st.sampled_from(
            [
                ["--no-verify-ssl"],
                ["--with-proxy"],
                ["--ca-bundle", "./ca.pem"],
                ["--region", "us-east-1"],
                ["--region="],
                ["--session-duration", "7200"],
                ["--role-session-name", "x"],
                ["--intermediates", "ca.pem"],
            ]
        ),
        unique_by=lambda o: o[0].split("=")[0],
        max_size=4,
    ),
)
def test_the_fast_path_and_the_full_command_compute_one_key(
    svid: Path, order: list[int], inline: list[bool], options: list[list[str]]
) -> None:
    pairs = [call()[i : i + 2] for i in range(0, 12, 2)]
    pieces = [[f"{p[0]}={p[1]}"] if inline[n] else p for n, p in enumerate(pairs)]
    arguments = [token for n in order for token in pieces[n]] + [t for o in options for t in o]
    fast, full = fast_key(arguments), full_key(arguments)
    assert fast is not None
    assert full is not None
    assert (fast.name, fast.fields) == (full.name, full.fields)


# --- every corrupt entry is a miss, on the fast path and the full path --------------------------------


# What a cached call imports beyond what `python -c pass` does: no json, re, pathlib, typing, argparse.
FAST_PATH_MODULES = {
    "roles_anywhere",
    "roles_anywhere.entry",
    "roles_anywhere.credentials",
    "roles_anywhere.credentials.cache",
    "__future__",
    "binascii",
    "errno",
    "_operator",
    "_sha256",
    "stat",
    "_stat",
}


def imported(importtime_stderr: str) -> set[str]:
    """The modules ``python -X importtime`` reports."""
    lines = importtime_stderr.splitlines()
    return {line.rsplit("|", 1)[1].strip() for line in lines if line.startswith("import time:")}


def run(arguments: list[str], program: Path = BIN / "roles-anywhere") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(program), "credential-process", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_cached_answer_is_served_by_the_fast_path_importing_only_the_standard_library(svid: Path) -> None:
    store(call())
    command_line = [sys.executable, "-X", "importtime", str(SCRIPT), "credential-process", *call()]
    answered = subprocess.run(command_line, capture_output=True, text=True, timeout=60, check=False)
    assert answered.returncode == 0, answered.stderr
    assert json.loads(answered.stdout)["AccessKeyId"] == "ASIACACHEDCACHED0001"
    baseline = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "pass"], capture_output=True, text=True, check=True
    )

    extra = imported(answered.stderr) - imported(baseline.stderr)
    assert extra <= FAST_PATH_MODULES, extra


def test_a_reader_that_went_away_is_not_an_error(svid: Path) -> None:
    store(call())
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the answer is written
    try:
        done = subprocess.run(
            [str(BIN / "roles-anywhere"), "credential-process", *call()],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (0, "")


@pytest.mark.parametrize("corruption", list(CORRUPTIONS), ids=list(CORRUPTIONS))
def test_a_corrupt_entry_is_a_miss_on_the_fast_and_the_full_path(
    svid: Path, capsys: pytest.CaptureFixture[str], corruption: str
) -> None:
    key = store(call())
    path = Path(cache.cache_dir()) / f"{key.name}.entry"
    path.write_bytes(CORRUPTIONS[corruption](key, path.read_bytes()))
    assert entry.cached_answer(call()) is None
    process = run(call())  # the fast path misses; the full command misses too, and asks AWS
    assert (process.returncode, process.stdout) == (2, "")
    assert process.stderr.startswith(CANNOT_REACH)
    assert process.stderr.count("\n") == 1
    assert main(["credential-process", *call()]) == 2
    err = capsys.readouterr().err
    assert err.startswith(CANNOT_REACH)
    assert err.count("\n") == 1


# --- argv tricks and TLS modes never get another call's answer ------------------------------------------


def test_a_repeated_flag_never_gets_the_first_values_answer(
    svid: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store(call())  # role A's answer
    tricked = [*call()[:8], "--role-arn", ROLE_A, *call()[10:], "--region=", "--role-arn=" + ROLE_B]
    assert entry.cached_answer(tricked) is None
    process = run(tricked)  # argparse keeps the last: role B, which has no answer
    assert process.returncode == 2
    assert process.stderr.startswith(CANNOT_REACH)
    assert process.stdout == ""
    assert json.loads(run(call()).stdout)["AccessKeyId"] == "ASIACACHEDCACHED0001"  # role A's still is


def test_an_unverified_answer_is_never_served_to_a_verifying_call(svid: Path) -> None:
    store(call("--no-verify-ssl"), "ASIAUNVERIFIEDANSWER")
    store(call("--ca-bundle", "ca.pem"), "ASIABUNDLEDANSWER001")
    assert json.loads(run(call("--no-verify-ssl")).stdout)["AccessKeyId"] == "ASIAUNVERIFIEDANSWER"
    assert json.loads(run(call("--ca-bundle", "ca.pem")).stdout)["AccessKeyId"] == "ASIABUNDLEDANSWER001"
    for verifying in (call(), call("--with-proxy"), call("--ca-bundle", "ca.pem", "--with-proxy")):
        assert entry.cached_answer(verifying) is None
        process = run(verifying)
        assert process.stderr.startswith(CANNOT_REACH), verifying
    (svid / "other-ca.pem").write_text(make_ca("other.example").pem)
    assert run(call("--ca-bundle", "other-ca.pem")).stderr.startswith(CANNOT_REACH)
    (svid / "ca.pem").write_text(CA.pem + make_ca("added.example").pem)  # the bundle changed
    assert run(call("--ca-bundle", "ca.pem")).stderr.startswith(CANNOT_REACH)


# --- flag parity: hardware flags and missing flags, one line each --------------------------------------


HARDWARE_LINE = "selects a key in a certificate store, PKCS#11 token or TPM, which roles-anywhere cannot use"
ARNS = ["--trust-anchor-arn", ANCHOR, "--profile-arn", PROFILE, "--role-arn", ROLE_A]


@pytest.mark.parametrize(
    "subcommand", [["credential-process"], ["serve", "--port", "0"], ["update", "--once"]]
)
@pytest.mark.parametrize(
    ("given_flags", "line"),
    [
        (["--cert-selector", "file://selector.json"], f"error: --cert-selector: {HARDWARE_LINE}"),
        (["--system-store-name", "MY"], f"error: --system-store-name: {HARDWARE_LINE}"),
        (["--pkcs11-lib", "/usr/lib/p11.so", "--reuse-pin"], f"error: --pkcs11-lib: {HARDWARE_LINE}"),
        (["--use-latest-expiring-certificate"], f"error: --use-latest-expiring-certificate: {HARDWARE_LINE}"),
        (
            ["--certificate", "pkcs11:token=a;object=svid"],
            "error: --certificate: names a PKCS#11 or TPM object; use aws_signing_helper for hardware keys",
        ),
        (
            ["--certificate", "svid.pem", "--private-key", "handle:0x81000001"],
            "error: --private-key: names a PKCS#11 or TPM object; use aws_signing_helper for hardware keys",
        ),
        (
            [],
            "error: --certificate: is required (the X.509-SVID file, e.g. svid.pem); "
            "missing too: --private-key",
        ),
        (
            ["--certificate", "svid.pem"],
            "error: --private-key: is required (the SVID's private key file, e.g. svid_key.pem)",
        ),
    ],
)
def test_a_hardware_flag_instead_of_the_key_files_is_refused_by_name(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    subcommand: list[str],
    given_flags: list[str],
    line: str,
) -> None:
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    assert main([*subcommand, *given_flags, *ARNS]) == 2
    err = capsys.readouterr().err
    assert err.startswith(line)
    assert err.count("\n") == 1
    assert not (tmp_path / "credentials").exists()


def test_a_missing_arn_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    arguments = [
        "credential-process",
        "--certificate",
        "svid.pem",
        "--private-key",
        "k.pem",
        "--role-arn",
        ROLE_A,
    ]
    assert main(arguments) == 2
    assert capsys.readouterr().err == (
        "error: --trust-anchor-arn: is required (the Roles Anywhere trust anchor's ARN); "
        "missing too: --profile-arn\n"
    )


def test_a_hardware_flag_is_refused_even_with_an_answer_cached(
    svid: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store(call())
    assert main(["credential-process", *call("--reuse-pin")]) == 2
    assert capsys.readouterr().err.startswith(f"error: --reuse-pin: {HARDWARE_LINE}")
    process = run(call("--reuse-pin"))
    assert (process.returncode, process.stdout) == (2, "")
    assert process.stderr.startswith(f"error: --reuse-pin: {HARDWARE_LINE}")


@pytest.mark.parametrize(
    "flag", ["--certificate", "--role-arn", "--ca-bundle", "--cert-selector", "--region"]
)
def test_a_flag_given_double_dash_as_its_value_is_one_line(
    capsys: pytest.CaptureFixture[str], flag: str
) -> None:
    """Python 3.11's argparse reads `--flag=--` as an empty list, which crashed the command (exit 70)."""
    from roles_anywhere.cli import main  # noqa: PLC0415

    args = {
        "--certificate": "/svid.pem",
        "--private-key": "/svid_key.pem",
        "--trust-anchor-arn": "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/x",
        "--profile-arn": "arn:aws:rolesanywhere:us-east-1:123456789012:profile/x",
        "--role-arn": "arn:aws:iam::123456789012:role/x",
    }
    for name in ("credential-process", "serve", "update"):
        argv = [name, *(f"{k}={v}" for k, v in args.items() if k != flag), f"{flag}=--"]
        assert main(argv) == 2
        assert capsys.readouterr().err == f"error: {flag}: needs a value; '--' is not one\n"
