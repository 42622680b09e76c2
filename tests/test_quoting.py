"""Each quoting filter against the parser the real tool uses: any value comes back exactly, or is refused."""

from __future__ import annotations

import configparser
import re
import shlex

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from roles_anywhere.render.quoting import (
    Quoted,
    RenderError,
    comment,
    ini_value,
    markdown_code,
    shell_words,
    yaml_scalar,
)

# Text YAML can carry at all: no surrogates (not encodable) and no NUL-free restriction needed.
ANY_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)
NO_NUL = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=60)


@given(ANY_TEXT)
@example("on")
@example("0o17")
@example("1e3")
@example("~")
@example("- a: b # c")
@example("'\"\\")
@example("\u0085\u2028\ufeff")
def test_yaml_scalar_round_trips_through_pyyaml_inside_a_mapping(value: str) -> None:
    document = f"outer:\n  key: {yaml_scalar(value)}\n  after: fixed\n"
    assert yaml.safe_load(document) == {"outer": {"key": value, "after": "fixed"}}


@pytest.mark.parametrize(("value", "text"), [(True, "true"), (False, "false"), (0, "0"), (7200, "7200")])
def test_yaml_scalar_bare_types(value: object, text: str) -> None:
    assert yaml_scalar(value) == text


def test_yaml_scalar_refuses_other_types() -> None:
    with pytest.raises(RenderError, match="cannot write a float as a YAML scalar"):
        yaml_scalar(1.5)


@given(st.lists(NO_NUL, max_size=6))
def test_shell_words_round_trip_through_shlex(words: list[str]) -> None:
    assert shlex.split(shell_words(words)) == words


def test_shell_words_refuse_nul() -> None:
    with pytest.raises(RenderError, match="NUL"):
        shell_words("a\x00b")


ONE_LINE = st.text(
    st.characters(exclude_categories=("Cs", "Cc", "Zl", "Zp"), exclude_characters="\x85"),
    min_size=1,
    max_size=60,
)


@given(st.lists(ONE_LINE, min_size=1, max_size=6))
def test_credential_process_lines_round_trip_through_configparser_and_shlex(words: list[str]) -> None:
    """What the AWS CLI does: configparser reads the value, then shlex splits it into argv."""
    line = shell_words(words)
    if re.search(r"\s[#;]", line):
        with pytest.raises(RenderError, match="cannot contain ' #' or ' ;'"):
            ini_value(line)
        return
    parser = configparser.RawConfigParser()
    parser.read_string(f"[profile x]\nregion = eu-west-1\ncredential_process = {ini_value(line)}\n# after\n")
    assert shlex.split(parser["profile x"]["credential_process"]) == words


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("a\nb", "an ~/.aws/config value must be one line"),
        ("a\rb", "an ~/.aws/config value must be one line"),
        ("a\u2028b", "an ~/.aws/config value must be one line"),
        (" a", "an ~/.aws/config value cannot start or end with whitespace"),
        ("a ", "an ~/.aws/config value cannot start or end with whitespace"),
        ("a #b", "an ~/.aws/config value cannot contain ' #' or ' ;'"),
        ("a ;b", "an ~/.aws/config value cannot contain ' #' or ' ;'"),
    ],
)
def test_ini_value_refusals(value: str, message: str) -> None:
    with pytest.raises(RenderError, match=message):
        ini_value(value)


def test_comment_refuses_line_breaks() -> None:
    assert comment("spiffe://x/y # z") == "spiffe://x/y # z"
    with pytest.raises(RenderError, match="a comment must be one line"):
        comment("x\ny")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("plain", "`plain`"),
        ("a|b", r"`a\|b`"),
        ("a`b", "``a`b``"),
        ("`x`", "`` `x` ``"),
        ("", ""),
    ],
)
def test_markdown_code(value: str, text: str) -> None:
    assert markdown_code(value) == text


def test_every_filter_returns_quoted() -> None:
    for result in (yaml_scalar("x"), shell_words("x"), ini_value("x"), comment("x"), markdown_code("x")):
        assert isinstance(result, Quoted)


@given(st.text(st.characters(min_codepoint=0, max_codepoint=0x7F), max_size=40))
def test_yaml_fast_path_is_what_pyyaml_emits(value: str) -> None:
    emitted = yaml.dump(value, Dumper=yaml.SafeDumper, default_style='"', allow_unicode=True, width=10**9)
    assert yaml_scalar(value) == emitted.removesuffix("\n")
