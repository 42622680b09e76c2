"""Quote one value for one file format, so that no value can change the structure of a file.

Every ``{{ … }}`` in a template must end in one of these filters: each returns ``Quoted``, and the
render environment refuses anything else (see ``render``). A value a format cannot carry intact
(a newline in an INI value) raises ``RenderError`` instead of producing a file that parses into
something else.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Iterable

import yaml

from roles_anywhere.errors import RolesAnywhereError


class RenderError(RolesAnywhereError):
    """A value cannot be written into an artefact without changing its meaning."""


class Quoted(str):
    """Text already quoted for the file it goes into."""

    __slots__ = ()


_PLAIN_ASCII = re.compile(r"[ !#-\[\]-~]*")  # printable ASCII except '"' and '\\'
_LINE_BREAK = re.compile(r"[\r\n\x0b\x0c\x85\u2028\u2029]")
_INI_COMMENT = re.compile(r"\s[#;]")


def yaml_scalar(value: object) -> Quoted:
    """A YAML scalar: strings always double-quoted (YAML 1.1 and 1.2 parsers agree), ints and bools bare.

    Double quotes everywhere, because Teleport and tbot parse YAML with Go libraries whose type
    resolution differs from PyYAML's (``on``, ``0o17``, ``1e3``…); a quoted string is a string to all.
    """
    if isinstance(value, bool):
        return Quoted("true" if value else "false")
    if isinstance(value, int):
        return Quoted(str(value))
    if not isinstance(value, str):
        raise RenderError(f"cannot write a {type(value).__name__} as a YAML scalar")
    if _PLAIN_ASCII.fullmatch(value):
        return Quoted(f'"{value}"')  # nothing to escape: what PyYAML emits, ~100x faster
    dumped = yaml.dump(value, Dumper=yaml.SafeDumper, default_style='"', allow_unicode=True, width=math.inf)
    return Quoted(dumped.removesuffix("\n"))


def shell_words(value: str | Iterable[str]) -> Quoted:
    """POSIX shell words (``shlex.quote``), space-separated; what ``sh`` and ``shlex.split`` read back."""
    words = [value] if isinstance(value, str) else list(value)
    for word in words:
        if "\x00" in word:
            raise RenderError("a shell word cannot contain a NUL character")
    return Quoted(" ".join(shlex.quote(word) for word in words))


def ini_value(value: str) -> Quoted:
    """A value for ``key = value`` in ``~/.aws/config``: one line, read back unchanged by every AWS SDK.

    Python's ``configparser`` strips surrounding whitespace and joins indented continuation lines;
    the other SDKs also end a value at whitespace followed by ``#`` or ``;``.
    """
    if _LINE_BREAK.search(value):
        raise RenderError(f"an ~/.aws/config value must be one line: {value[:40]!r}…")
    if value != value.strip():
        raise RenderError(f"an ~/.aws/config value cannot start or end with whitespace: {value[:40]!r}")
    if _INI_COMMENT.search(value):
        raise RenderError(f"an ~/.aws/config value cannot contain ' #' or ' ;': {value[:40]!r}")
    return Quoted(value)


def comment(value: str) -> Quoted:
    """Text for the rest of a ``#`` comment line (YAML, shell or INI): it must not end the line."""
    if _LINE_BREAK.search(value):
        raise RenderError(f"a comment must be one line: {value[:40]!r}")
    return Quoted(value)


def markdown_code(value: str) -> Quoted:
    """An inline code span that is also safe inside a Markdown table cell; nothing for empty text."""
    if not value:
        return Quoted("")
    if _LINE_BREAK.search(value):
        raise RenderError(f"a Markdown code span must be one line: {value[:40]!r}")
    longest = max((len(run) for run in re.findall(r"`+", value)), default=0)
    fence = "`" * (longest + 1)
    padding = " " if value.startswith("`") or value.endswith("`") else ""
    escaped = value.replace("|", r"\|")
    return Quoted(f"{fence}{padding}{escaped}{padding}{fence}")


_SYSTEMD_SPECIAL = str.maketrans({"\\": "\\\\", '"': '\\"', "%": "%%", "$": "$$"})


def systemd_words(value: str | Iterable[str]) -> Quoted:
    """Words for a systemd ``ExecStart=`` line: each double-quoted, with ``%`` and ``$`` escaped.

    systemd expands ``%`` specifiers and ``$VARIABLES`` inside quotes too, so both are doubled.
    """
    words = [value] if isinstance(value, str) else list(value)
    for word in words:
        if _LINE_BREAK.search(word) or "\x00" in word or not word.isprintable():
            raise RenderError(f"a systemd command word must be one printable line: {word[:40]!r}")
    return Quoted(" ".join(f'"{word.translate(_SYSTEMD_SPECIAL)}"' for word in words))


FILTERS = {
    "systemd": systemd_words,
    "yaml": yaml_scalar,
    "sh": shell_words,
    "ini": ini_value,
    "comment": comment,
    "md": markdown_code,
}
