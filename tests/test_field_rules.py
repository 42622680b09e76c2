"""Values that end up on other machines: paths, proxy addresses, durations, Teleport names."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roles_anywhere.config import field_rules


@pytest.mark.parametrize(
    "path",
    [
        "/opt/machine-id/api",
        "/opt/my svids/api",
        "/opt/a#b/c;d",
        "/srv/\"quoted\"/'single'",
        "/data/ünïcödé/日本",
        "/a:b/c=d/e,f",
        "/$HOME/`x`/$(y)",
    ],
)
def test_absolute_path_accepts_hostile_but_representable_paths(path: str) -> None:
    assert field_rules.absolute_path(path) == path


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("opt/api", "must be an absolute path (starting with '/'), got 'opt/api'"),
        ("~/svids", "must be an absolute path (starting with '/'), got '~/svids'"),
        ("/opt/a\nb", "contains the control character U+000A; a path must be printable text"),
        ("/opt/a\x00b", "contains the control character U+0000; a path must be printable text"),
        ("/opt/a\u202eb", "contains the control character U+202E; a path must be printable text"),
        ("/opt/a\u2028b", "contains the control character U+2028; a path must be printable text"),
        ("/", "must not be the root folder; give a path of its own"),
        ("/opt//api", "must be a normalised path: no '//', '.' or '..' segments and no trailing '/'"),
        ("/opt/../etc", "must be a normalised path: no '//', '.' or '..' segments and no trailing '/'"),
        ("/opt/api/", "must be a normalised path: no '//', '.' or '..' segments and no trailing '/'"),
        (
            "/opt/my #svids",
            "contains a space followed by '#' or ';', which AWS SDKs read as the start of a comment "
            "in ~/.aws/config; rename it",
        ),
        ("/" + "a" * 4096, "is longer than 4096 bytes"),
    ],
)
def test_absolute_path_refusals(path: str, message: str) -> None:
    with pytest.raises(ValueError, match=r".*") as caught:
        field_rules.absolute_path(path)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("address", "normalised"),
    [
        ("teleport.example.com:443", "teleport.example.com:443"),
        ("teleport.example.com", "teleport.example.com:443"),
        ("proxy.internal:3080", "proxy.internal:3080"),
        ("10.0.0.7:443", "10.0.0.7:443"),
        ("[2001:db8::1]:8443", "[2001:db8::1]:8443"),
        ("[::1]", "[::1]:443"),
        ("example.teleport.sh.:0443", "example.teleport.sh.:443"),
    ],
)
def test_proxy_address(address: str, normalised: str) -> None:
    assert field_rules.proxy_address(address) == normalised


@pytest.mark.parametrize(
    ("address", "message"),
    [
        (
            "https://teleport.example.com",
            "'https://teleport.example.com' is not HOST:PORT "
            "(no scheme or path, e.g. teleport.example.com:443)",
        ),
        ("teleport.example.com:", "port '' is not a number from 1 to 65535"),
        ("teleport.example.com:70000", "port '70000' is not a number from 1 to 65535"),
        ("tele port.example.com:443", "'tele port.example.com' is not a host name or IPv4 address"),
        ("-bad.example.com", "'-bad.example.com' is not a host name or IPv4 address"),
        ("2001:db8::1", "'2001:db8::1' is not HOST:PORT (put an IPv6 address in brackets)"),
        ("[2001:db8::1", "'[2001:db8::1' opens '[' for an IPv6 address but never closes it"),
        ("[nothost]:443", "'nothost' is not an IPv6 address"),
        (":443", "'' is not a host name or IPv4 address"),
    ],
)
def test_proxy_address_refusals(address: str, message: str) -> None:
    with pytest.raises(ValueError, match=r".*") as caught:
        field_rules.proxy_address(address)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1h", 3600), ("90m", 5400), ("1h30m", 5400), ("45s", 45), ("24h", 86400), ("0h1m", 60)],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert field_rules.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1", "1d", "1.5h", "-1h", "1m1h", "h", "1 h"])
def test_parse_duration_refusals(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration such as 30m, 1h or 8h"):
        field_rules.parse_duration(text)


@given(st.integers(min_value=1, max_value=10**7))
def test_format_duration_round_trips(seconds: int) -> None:
    text = field_rules.format_duration(seconds)
    assert field_rules.parse_duration(text) == seconds
    assert text == field_rules.format_duration(field_rules.parse_duration(text))


@pytest.mark.parametrize("text", ["59s", "24h1s", "25h"])
def test_svid_ttl_bounds(text: str) -> None:
    with pytest.raises(ValueError, match=f"must be between 1m and 24h, got '{text}'"):
        field_rules.svid_ttl(text)


@pytest.mark.parametrize("name", ["ci-runner", "CI_Runner.2", "a"])
def test_bot_names(name: str) -> None:
    assert field_rules.bot_name(name) == name


@pytest.mark.parametrize("name", ["", "-x", "a/b", "../x", "a b", "x" * 65, "é"])
def test_bot_name_refusals(name: str) -> None:
    with pytest.raises(ValueError, match="is not a bot name"):
        field_rules.bot_name(name)


@pytest.mark.parametrize("name", ["alice", "alice@example.com", "o'brien", "ünïcode"])
def test_user_names(name: str) -> None:
    assert field_rules.user_name(name) == name


@pytest.mark.parametrize("name", ["", "a b", "a/b", "a\nb", "x" * 256])
def test_user_name_refusals(name: str) -> None:
    with pytest.raises(ValueError, match="is not a Teleport user name"):
        field_rules.user_name(name)


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("", "must not be empty"),
        (
            "bin/aws_signing_helper",
            "must be a program name on PATH or an absolute path, got 'bin/aws_signing_helper'",
        ),
        (" aws_signing_helper", "must not start or end with whitespace"),
        ("aws\tsigning", "contains the control character U+0009"),
    ],
)
def test_command_path_refusals(command: str, message: str) -> None:
    with pytest.raises(ValueError, match=r".*") as caught:
        field_rules.command_path(command)
    assert str(caught.value) == message
