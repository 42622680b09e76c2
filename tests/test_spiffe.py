"""SPIFFE ID rules: the cases go-spiffe's spiffeid tests cover, every ASCII character, and properties."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roles_anywhere.config.spiffe import (
    ERR_BAD_PATH_SEGMENT_CHAR,
    ERR_BAD_TRUST_DOMAIN_CHAR,
    ERR_DOT_SEGMENT,
    ERR_EMPTY,
    ERR_EMPTY_PATH,
    ERR_EMPTY_SEGMENT,
    ERR_MISSING_TRUST_DOMAIN,
    ERR_NO_LEADING_SLASH,
    ERR_TRAILING_SLASH,
    ERR_WRONG_SCHEME,
    SpiffeId,
    validate_path,
    validate_trust_domain,
)
from roles_anywhere.errors import SpiffeIdError

TD_CHARS = string.ascii_lowercase + string.digits + ".-_"
PATH_CHARS = string.ascii_letters + string.digits + ".-_"


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("", ERR_EMPTY),
        ("192.168.2.2:6688", ERR_WRONG_SCHEME),
        ("http://domain.test/path/element", ERR_WRONG_SCHEME),
        ("spiffe:path/element", ERR_WRONG_SCHEME),
        ("spiffe:/path/element", ERR_WRONG_SCHEME),
        ("SPIFFE://domain.test/path/element", ERR_WRONG_SCHEME),
        ("Spiffe://domain.test/path/element", ERR_WRONG_SCHEME),
        ("spiffe:///path/element", ERR_MISSING_TRUST_DOMAIN),
        ("spiffe://", ERR_MISSING_TRUST_DOMAIN),
        ("spiffe://domain.test/path/element?query=1", ERR_BAD_PATH_SEGMENT_CHAR),
        ("spiffe://domain.test/path/element#fragment-1", ERR_BAD_PATH_SEGMENT_CHAR),
        ("spiffe://domain.test/path/elem%5uent", ERR_BAD_PATH_SEGMENT_CHAR),
        ("spiffe://domain.test/path/elem%20ent", ERR_BAD_PATH_SEGMENT_CHAR),
        ("spiffe://domain.test/pa th", ERR_BAD_PATH_SEGMENT_CHAR),
        ("spiffe://domain.test/path\n", ERR_BAD_PATH_SEGMENT_CHAR),
        ("spiffe://domain.test/caf\u00e9", ERR_BAD_PATH_SEGMENT_CHAR),
        ("spiffe://domain.test:8080/path/element", ERR_BAD_TRUST_DOMAIN_CHAR),
        ("spiffe://user:password@test.org/path/element", ERR_BAD_TRUST_DOMAIN_CHAR),
        ("spiffe://Domain.test/path", ERR_BAD_TRUST_DOMAIN_CHAR),
        ("spiffe://domain.test?x/path", ERR_BAD_TRUST_DOMAIN_CHAR),
        ("spiffe://trustdomain", ERR_EMPTY_PATH),
        ("spiffe://trustdomain/", ERR_TRAILING_SLASH),
        ("spiffe://trustdomain/path/", ERR_TRAILING_SLASH),
        ("spiffe://trustdomain//", ERR_EMPTY_SEGMENT),
        ("spiffe://trustdomain//path", ERR_EMPTY_SEGMENT),
        ("spiffe://trustdomain/path//element", ERR_EMPTY_SEGMENT),
        ("spiffe://trustdomain/./path", ERR_DOT_SEGMENT),
        ("spiffe://trustdomain/../path", ERR_DOT_SEGMENT),
        ("spiffe://trustdomain/path/.", ERR_DOT_SEGMENT),
        ("spiffe://trustdomain/path/..", ERR_DOT_SEGMENT),
        ("spiffe://trustdomain/path/../other", ERR_DOT_SEGMENT),
    ],
)
def test_invalid_ids_fail_with_go_spiffe_message(value: str, error: str) -> None:
    with pytest.raises(SpiffeIdError) as raised:
        SpiffeId.parse(value)
    assert str(raised.value).startswith(error)


@pytest.mark.parametrize(
    "value",
    [
        "spiffe://trustdomain/path",
        "spiffe://trustdomain/path/element",
        "spiffe://domain.test/.a",
        "spiffe://domain.test/..a",
        "spiffe://domain.test/...",
        "spiffe://domain.test/a.b/c-d/e_f/G",
        "spiffe://a/b",
        "spiffe://example.teleport.sh/svc/orders",
        "spiffe://td-with_all.chars0123456789/" + PATH_CHARS,
    ],
)
def test_valid_ids_round_trip(value: str) -> None:
    parsed = SpiffeId.parse(value)
    assert str(parsed) == value


@pytest.mark.parametrize("code", range(128))
def test_every_ascii_character_in_a_path(code: int) -> None:
    char = chr(code)
    value = f"spiffe://domain.test/a{char}b"
    if char in PATH_CHARS or char == "/":
        assert str(SpiffeId.parse(value)) == value
    else:
        with pytest.raises(SpiffeIdError, match="path segment characters"):
            SpiffeId.parse(value)


@pytest.mark.parametrize("code", range(128))
def test_every_ascii_character_in_a_trust_domain(code: int) -> None:
    char = chr(code)
    if char == "/":
        return
    if char in TD_CHARS:
        assert validate_trust_domain(f"a{char}b") == f"a{char}b"
    else:
        with pytest.raises(SpiffeIdError, match="trust domain characters"):
            validate_trust_domain(f"a{char}b")


def test_bad_character_is_located_and_shown_escaped() -> None:
    with pytest.raises(SpiffeIdError) as raised:
        SpiffeId.parse("spiffe://td/ok/bad\nline")
    message = str(raised.value)
    assert "'\\n' at position 18" in message
    assert "\n" not in message


def test_a_path_must_start_with_a_slash() -> None:
    with pytest.raises(SpiffeIdError, match=ERR_NO_LEADING_SLASH):
        validate_path("svc/api")


def test_trust_domain_longer_than_255_bytes() -> None:
    with pytest.raises(SpiffeIdError, match="at most 255"):
        validate_trust_domain("a" * 256)
    assert validate_trust_domain("a" * 255)


def test_aws_session_tag_limit_of_256_characters() -> None:
    prefix = "spiffe://td/"
    exactly = prefix + "a" * (256 - len(prefix))
    assert str(SpiffeId.parse(exactly)) == exactly
    with pytest.raises(SpiffeIdError) as raised:
        SpiffeId.parse(exactly + "a")
    assert str(raised.value) == (
        "is 257 characters long; AWS maps it into the session tag x509SAN/URI, which holds at most 256"
    )


def test_workload_path_resolves_against_cluster() -> None:
    assert (
        str(SpiffeId.for_workload("/svc/api", "example.teleport.sh"))
        == "spiffe://example.teleport.sh/svc/api"
    )
    full = "spiffe://example.teleport.sh/svc/api"
    assert SpiffeId.for_workload(full, "example.teleport.sh") == SpiffeId.parse(full)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("spiffe://other.teleport.sh/svc/api", "trust domain 'other.teleport.sh' does not match cluster"),
        ("spiffe://EXAMPLE.teleport.sh/svc/api", ERR_BAD_TRUST_DOMAIN_CHAR),
        ("svc/api", ERR_WRONG_SCHEME),
        ("", ERR_EMPTY),
        ("/", ERR_TRAILING_SLASH),
        ("/svc/../admin", ERR_DOT_SEGMENT),
        ("/svc/{{ user.bot_name }}", ERR_BAD_PATH_SEGMENT_CHAR),
        ("/svc/*", ERR_BAD_PATH_SEGMENT_CHAR),
    ],
)
def test_workload_ids_that_are_refused(value: str, error: str) -> None:
    with pytest.raises(SpiffeIdError, match=error.replace("{", r"\{").replace("*", r"\*")):
        SpiffeId.for_workload(value, "example.teleport.sh")


trust_domains = st.text(TD_CHARS, min_size=1, max_size=40)
segments = st.text(PATH_CHARS, min_size=1, max_size=20).filter(lambda s: s not in (".", ".."))
paths = st.lists(segments, min_size=1, max_size=6).map(lambda parts: "/" + "/".join(parts))


@given(trust_domains, paths)
def test_valid_ids_always_parse_and_round_trip(trust_domain: str, path: str) -> None:
    value = f"spiffe://{trust_domain}{path}"
    if len(value) > 256:
        with pytest.raises(SpiffeIdError, match="at most 256"):
            SpiffeId.parse(value)
        return
    parsed = SpiffeId.parse(value)
    assert (parsed.trust_domain, parsed.path, str(parsed)) == (trust_domain, path, value)


@given(trust_domains, paths, st.data())
def test_one_foreign_character_anywhere_in_the_path_is_refused(
    trust_domain: str, path: str, data: st.DataObject
) -> None:
    bad = data.draw(st.characters().filter(lambda c: c not in PATH_CHARS and c != "/"))
    position = data.draw(st.integers(min_value=1, max_value=len(path)))
    with pytest.raises(SpiffeIdError):
        SpiffeId.parse(f"spiffe://{trust_domain}{path[:position]}{bad}{path[position:]}")
