r"""The AWS shared credentials file, read as botocore reads it and rewritten one profile at a time.

The file holds the user's own long-lived keys next to ours, and botocore refuses the *whole* file
when it cannot read it, so one profile is rewritten without touching a byte of the others, and the
result is checked with the parser botocore uses before anything is written.

botocore reads the file with ``configparser.RawConfigParser()`` (``configloader.raw_config_parse``),
and so does this module (the standard library's, not botocore's code: workload hosts lack botocore):

* lines end at ``\n``, ``\r\n`` or ``\r`` (universal newlines), nothing else; a line whose first
  non-blank character is ``#`` or ``;`` is a comment; there are no inline comments in values;
* ``[name]`` first on a line is a header; whatever follows the *last* ``]`` is ignored
  (``[prod] # admin key`` is ``prod``), spaces inside the brackets are part of the name, and names
  are case-sensitive. A profile's section is its bare name (``[profile x]`` belongs to the config file);
* ``name = value`` or ``name: value`` is an option, its name lower-cased (``AWS_ACCESS_KEY_ID: …``
  is ``aws_access_key_id``);
* a line indented deeper than the option above it continues that option's value, even when it looks
  like a header; a value that starts on the next line is read as nested ``name = value`` lines;
* a section or option that appears twice, a line before any header, a line that is none of these, or
  a nested value that is not ``name = value`` lines makes botocore refuse the file; so does this module,
  naming the line and section (never a line's text: it may hold a key);
* ``[DEFAULT]`` is no profile: its options are inherited by every section. ``--profile DEFAULT`` is
  refused; a ``[DEFAULT]`` section in the file is left alone (our profile sets the keys itself).

Rewriting: the target section's ``aws_access_key_id``, ``aws_secret_access_key`` and
``aws_session_token`` (and ``aws_security_token`` when the profile has one, its own or from
``[DEFAULT]``: botocore reads that older name first, so a stale one would win over the new token) are
replaced in place (the name, delimiter and spacing before the value kept as written; the old value's
continuation lines dropped); the missing ones go after the section's last option, indented like it
(so a following indented header stays a header); a missing section is appended at the end after a
blank line. Every line keeps its own ending; new lines take the file's first line ending (``\n`` if
it has none). A missing final newline is kept, unless our lines go after that last line: it then gets
one. The result is refused unless it parses, the text before and after the target section is
byte-identical, every other section reads the same, and the target reads the new keys.

Profile names (``check_profile_name``): non-empty, printable characters only (no control, format or
separator character, so nothing ``str.splitlines`` splits on), no ``[`` or ``]`` (the AWS CLI's own
writer finds no such section), no leading or trailing space (other SDKs trim section names), and not
``DEFAULT``.
"""

from __future__ import annotations

import configparser
import io
import re
from dataclasses import dataclass
from typing import Any

from roles_anywhere.errors import ConfigError

KEYS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
# botocore's shared-file provider reads this older name before aws_session_token: a stale one would win.
LEGACY_TOKEN = "aws_security_token"  # noqa: S105 - a key's name, not a secret
DEFAULT_SECTION = configparser.DEFAULTSECT
# configparser's own patterns, so a header or option here is exactly one there.
_HEADER = configparser.RawConfigParser.SECTCRE
_OPTION = configparser.RawConfigParser.OPTCRE
_NONSPACE = configparser.RawConfigParser.NONSPACECRE
_ENDING = re.compile(r"\r\n|\r|\n")
_SHOWN_NAME = re.compile(r"[\w.-]{1,64}", re.ASCII)
NOT_REWRITTEN = "botocore refuses such a file, so it is not rewritten"


@dataclass(frozen=True)
class Line:
    """One line of the file as configparser reads it."""

    number: int  # from 1, as configparser counts
    start: int  # offset in the text
    text: str  # without its ending
    ending: str  # "\n", "\r\n", "\r", or "" for a last line without one
    kind: str  # blank, comment, header, option, continuation or error
    section: str | None  # the section the line is in (a header: its own); None before the first
    option: str | None  # option and continuation lines: the option's (lower-cased) name
    indent: str  # the leading whitespace
    value_at: int = -1  # option lines: where the value starts in ``text``

    @property
    def end(self) -> int:
        """Offset just after the line's ending."""
        return self.start + len(self.text) + len(self.ending)


def split_lines(text: str) -> list[tuple[int, str, str]]:
    """``(offset, text, ending)`` per line, split where universal newlines split (not ``splitlines``)."""
    lines, position = [], 0
    for found in _ENDING.finditer(text):
        lines.append((position, text[position : found.start()], found.group()))
        position = found.end()
    if position < len(text):
        lines.append((position, text[position:], ""))
    return lines


def scan(text: str) -> list[Line]:
    """Every line classified as ``RawConfigParser._read`` classifies it (its indentation rule included)."""
    lines: list[Line] = []
    section: str | None = None
    option: str | None = None  # the option a deeper-indented line continues
    level = 0  # the indentation of the last header or option line
    for number, (start, body, ending) in enumerate(split_lines(text), start=1):
        stripped = body.strip()
        nonspace = _NONSPACE.search(body)
        indent = body[: nonspace.start()] if nonspace else body
        kind, value_at = "error", -1
        if stripped.startswith(("#", ";")):
            kind = "comment"
        elif not stripped:
            kind = "blank"
        elif section is not None and option and len(indent) > level:
            kind = "continuation"
        else:
            level = len(indent)
            header = _HEADER.match(stripped)
            if header:
                kind, section, option = "header", header.group("header"), None
            elif section is not None:
                found = _OPTION.match(stripped)
                name = found.group("option").rstrip().lower() if found else ""
                if found and name:
                    kind, option, value_at = "option", name, len(indent) + found.start("value")
        named = option if kind in ("option", "continuation") else None
        lines.append(Line(number, start, body, ending, kind, section, named, indent, value_at))
    return lines


def read_profiles(text: str, where: str) -> dict[str, dict[str, Any]]:
    """What ``botocore.configloader.raw_config_parse`` makes of ``text``; a ``ConfigError`` where it fails."""
    return _parse(text, where)[0]


def _parse(text: str, where: str) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """The sections as botocore sees them, and the raw ``[DEFAULT]`` options every section inherits."""
    if text.startswith("\ufeff"):
        raise ConfigError(
            where, f"starts with a byte-order mark, which botocore reads as text; {NOT_REWRITTEN}"
        )
    parser = configparser.RawConfigParser()
    try:
        parser.read_file(io.StringIO(text, newline=None), source=where)
    except configparser.Error as err:
        raise ConfigError(where, f"{_problem(err, text)}; {NOT_REWRITTEN}") from None
    profiles: dict[str, dict[str, Any]] = {}
    for section in parser.sections():
        profiles[section] = {}
        for option in parser.options(section):
            profiles[section][option] = _value(parser.get(section, option), where, section, option)
    return profiles, dict(parser.defaults())


def _value(value: str, where: str, section: str, option: str) -> Any:
    """As botocore's ``_parse_nested``: a value that starts on the next line is ``name = value`` lines."""
    if not value.startswith("\n"):
        return value
    nested: dict[str, str] = {}
    for line in value.splitlines():
        if not line.strip():
            continue
        if "=" not in line:
            raise ConfigError(
                where,
                f"section [{section}]: {_shown(option)} has an indented value that is not "
                f"name = value lines; {NOT_REWRITTEN}",
            )
        key, _, item = line.strip().partition("=")
        nested[key.strip()] = item.strip()
    return nested


def _shown(option: str) -> str:
    """An option's name for a message: only a plain short one (a pasted key is never repeated)."""
    return option if _SHOWN_NAME.fullmatch(option) else "an option"


def _problem(err: configparser.Error, text: str) -> str:
    """What configparser found, by line and section: its own message may quote a line holding a key."""
    if isinstance(err, configparser.DuplicateSectionError):
        return f"line {err.lineno}: section [{err.section}] appears a second time"
    if isinstance(err, configparser.DuplicateOptionError):
        return f"line {err.lineno}: {_shown(err.option)} appears a second time in section [{err.section}]"
    if isinstance(err, configparser.MissingSectionHeaderError):
        return f"line {err.lineno} comes before any [section] header"
    if isinstance(err, configparser.ParsingError):
        numbers = [number for number, _ in err.errors]
        lines = scan(text)
        section = lines[numbers[0] - 1].section if numbers[0] <= len(lines) else None
        more = f" (and {len(numbers) - 1} more)" if len(numbers) > 1 else ""
        return (
            f"line {numbers[0]}{more} in section [{section}] is not a header, a name = value option, "
            "a comment or an indented continuation"
        )
    return type(err).__name__  # pragma: no cover - configparser raises only the above while reading


def check_profile_name(name: str) -> None:
    """Refuse a name the AWS CLI could not find again as a section of the file (module docstring)."""
    shown = repr(name) if len(name) <= 80 else f"{name[:80]!r}..."
    if not name:
        raise ConfigError("--profile", "must not be empty")
    if name == DEFAULT_SECTION:
        raise ConfigError(
            "--profile",
            "'DEFAULT' is configparser's defaults section: botocore never reads it as a profile, and "
            "every other profile inherits its keys",
        )
    odd = next((c for c in name if not c.isprintable()), None)
    if odd is not None:
        raise ConfigError(
            "--profile",
            f"{shown} holds U+{ord(odd):04X}, a control, format or separator character; "
            "a profile name is one line of printable characters",
        )
    if "[" in name or "]" in name:
        raise ConfigError("--profile", f"{shown} holds a square bracket, which a [section] header cannot")
    if name != name.strip():
        raise ConfigError(
            "--profile", f"{shown} starts or ends with a space, which AWS SDKs trim differently"
        )


def check_values(values: dict[str, str], where: str) -> None:
    """Each credential one word of printable characters: a line break in one would forge lines."""
    for key in KEYS:
        value = values.get(key)
        if not isinstance(value, str) or not value or not value.isprintable() or " " in value:
            raise ConfigError(
                where,
                f"the {key} AWS answered with is not one word of printable characters; nothing was written",
            )


def with_profile(text: str, profile: str, values: dict[str, str], where: str) -> str:
    """``text`` with ``profile`` holding ``values`` (the three ``KEYS``); everything else byte-identical.

    A ``ConfigError`` naming ``where`` when ``text`` does not parse as botocore parses it, or when the
    result would not (checked, not assumed).
    """
    check_profile_name(profile)
    check_values(values, where)
    before, defaults = _parse(text, where)
    if LEGACY_TOKEN in before.get(profile, defaults):  # in the section or inherited from [DEFAULT]
        values = {**values, LEGACY_TOKEN: values["aws_session_token"]}
    lines = scan(text)
    if any(line.kind == "error" for line in lines):  # pragma: no cover - configparser refused it above
        raise ConfigError(where, f"cannot be rewritten without touching other profiles; {NOT_REWRITTEN}")
    ours = [line for line in lines if line.section == profile]
    ending = next((line.ending for line in lines if line.ending), "\n")
    if ours:
        start, end = ours[0].start, ours[-1].end
        following = next((line for line in lines[ours[-1].number :] if line.kind == "header"), None)
        middle = _rewritten(ours, following, values, ending)
    else:
        start = end = len(text)
        middle = "" if not lines or lines[-1].ending else ending
        middle += ending if lines and lines[-1].text.strip() else ""
        middle += f"[{profile}]{ending}" + "".join(
            f"{key} = {value}{ending}" for key, value in values.items()
        )
    result = text[:start] + middle + text[end:]
    _check(result, text, (start, end), profile=profile, values=values, parsed=(before, defaults), where=where)
    return result


def _rewritten(ours: list[Line], following: Line | None, values: dict[str, str], ending: str) -> str:
    """The target section's lines with the keys replaced in place and the missing ones added."""
    missing = dict(values)
    kept: list[str] = []
    last = 0  # kept[:last] ends with the section's last header, option or continuation line
    anchor = ours[0]  # the header or option line that set the indentation level there
    dropping = False  # continuation lines of a replaced key's old value are dropped
    for line in ours:
        if line.kind == "continuation" and dropping:
            continue
        if line.kind in ("header", "option"):
            anchor, dropping = line, line.option in missing
        if dropping and line.kind == "option":
            kept.append(line.text[: line.value_at] + missing.pop(str(line.option)) + line.ending)
        else:
            kept.append(line.text + line.ending)
        if line.kind in ("header", "option", "continuation"):
            last = len(kept)
    if missing:
        if not kept[last - 1].endswith(("\n", "\r")):
            kept[last - 1] += ending
        # Not deeper than the line above (else they would continue its value), and not shallower than
        # the next header (else it would continue theirs).
        indent = anchor.indent if anchor.kind == "option" else following.indent if following else ""
        kept[last:last] = [f"{indent}{key} = {value}{ending}" for key, value in missing.items()]
    return "".join(kept)


def _check(
    result: str,
    text: str,
    span: tuple[int, int],
    *,
    profile: str,
    values: dict[str, str],
    parsed: tuple[dict[str, dict[str, Any]], dict[str, str]],
    where: str,
) -> None:
    """Refuse ``result`` unless only the target section changed, and only as intended."""
    refused = ConfigError(
        where,
        f"[{profile}] cannot be rewritten without touching the rest of the file, so it is not rewritten",
    )
    start, end = span
    outside = result.startswith(text[:start]) and result.endswith(text[end:])
    if not outside or len(result) < start + len(text) - end:
        raise refused
    try:
        after, _ = _parse(result, where)
    except ConfigError:
        raise refused from None
    before, defaults = parsed
    others = {name: options for name, options in before.items() if name != profile}
    if {name: options for name, options in after.items() if name != profile} != others:
        raise refused
    inherited = {k: _value(v, where, DEFAULT_SECTION, k) for k, v in defaults.items()}  # parsed above
    wanted = {k: v for k, v in before.get(profile, inherited).items() if k not in values} | values
    if after.get(profile) != wanted:
        raise refused
