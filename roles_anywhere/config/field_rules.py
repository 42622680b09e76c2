"""Rules for config values that end up on other machines: paths, host:port, durations, Teleport names.

These values are written into YAML, shell scripts and ``~/.aws/config``. The renderers quote them
correctly, but some values no quoting can save (a newline in a path inside a one-line
``credential_process``), and some are legal everywhere but read differently by another parser
(AWS SDKs treat `` #`` as a comment start in the shared config file). Such values are refused
here, with a reason, before anything is created. Each function returns the value or raises
``ValueError`` with a message that completes "<key>: ...".
"""

from __future__ import annotations

import ipaddress
import os
import re
import unicodedata
import urllib.parse
from pathlib import PurePosixPath

MAX_PATH = 4_096
MIN_SVID_TTL = 60
MAX_SVID_TTL = 24 * 3_600

_DURATION = re.compile(r"(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?")
_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_INI_COMMENT = re.compile(r"\s[#;]")
_TOKEN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
BOT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
BOT_NAME_RULE = "1-64 letters, digits, '.', '_' and '-', starting with a letter or digit"
USER_NAME_RULE = "1-255 printable characters without whitespace, '/' or ','"
NAMESPACE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?")
NAMESPACE_RULE = "1-32 lowercase letters, digits and '-', starting and ending with a letter or digit"


def _control_character(text: str) -> str | None:
    """The first control or invisible formatting character in ``text``, shown as ``U+XXXX``."""
    for char in text:
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            return f"U+{ord(char):04X}"
    return None


def absolute_path(path: str, *, what: str = "path", in_aws_config: bool = True) -> str:
    """A normalised absolute POSIX path that every renderer can carry intact.

    Relative paths are refused because ``credential_process`` and tbot run from unknown working
    directories and never expand ``~``. ``.``/``..``/``//`` are refused so that two spellings of
    one folder cannot both pass the duplicate check. ``in_aws_config``: the path is also written
    into ``~/.aws/config`` (see ``config_file_safe``).
    """
    if not path.startswith("/"):
        raise ValueError(f"must be an absolute {what} (starting with '/'), got {path!r}")
    bad = _control_character(path)
    if bad:
        raise ValueError(f"contains the control character {bad}; a {what} must be printable text")
    if len(path.encode()) > MAX_PATH:
        raise ValueError(f"is longer than {MAX_PATH} bytes")
    if path == "/":
        raise ValueError(f"must not be the root folder; give a {what} of its own")
    segments = path[1:].split("/")
    if any(segment in ("", ".", "..") for segment in segments):
        raise ValueError(f"must be a normalised {what}: no '//', '.' or '..' segments and no trailing '/'")
    return config_file_safe(path) if in_aws_config else path


def local_path(path: str, *, what: str = "folder path") -> str:
    """A path on the machine that runs `pulumi up` (relative to the stack file's folder, or absolute)."""
    bad = _control_character(path)
    if not path.strip() or bad:
        raise ValueError(f"must be a {what}" + (f" without control characters ({bad})" if bad else ""))
    return path


ARTIFACTS_ANYWHERE_ENV = "ROLES_ANYWHERE_ARTIFACTS_ANYWHERE"


def artifacts_anywhere() -> bool:
    """Whether the person running this opted out of keeping artifactsDir inside the stack's folder."""
    return os.environ.get(ARTIFACTS_ANYWHERE_ENV, "").lower() in ("1", "true", "yes")


def artifacts_dir(path: str) -> str:
    """Where `pulumi up` writes: inside the stack's folder, unless the person running it opts out.

    The opt-out is an environment variable, not a config key: a stack file from a pull request must
    not be able to point the writer at ``/etc`` or ``../../somewhere``.
    """
    local_path(path)
    parts = PurePosixPath(path.replace("\\", "/")).parts
    outside = PurePosixPath(path).is_absolute() or path.startswith("~") or ".." in parts
    if outside and not artifacts_anywhere():
        raise ValueError(
            f"{path!r} leaves the stack's folder; use a relative path without '..', or set "
            f"{ARTIFACTS_ANYWHERE_ENV}=1 for this run to write there on purpose"
        )
    return path


def bundle_url(url: str) -> str:
    """An ``https://`` SPIFFE bundle URL: over plain HTTP anyone on the path could swap the CA."""
    bad = _control_character(url)
    if bad:
        raise ValueError(f"contains the control character {bad}")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() != "https":
        raise ValueError(
            f"must be an https:// URL, got {url!r}: "
            "a trust bundle fetched without TLS could be swapped in transit"
        )
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry user:password; a SPIFFE bundle endpoint needs no credentials")
    if parts.fragment:
        raise ValueError("must not have a '#fragment'")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{url!r} has an invalid port") from None
    host = parts.hostname or ""
    proxy_address(f"[{host}]:{port or 443}" if ":" in host else f"{host}:{port or 443}")
    return url


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def service_url(url: str, *, https_only: bool = True) -> str:
    """An endpoint URL with no path beyond ``/``: https, or http on a loopback host when allowed."""
    bad = _control_character(url)
    if bad:
        raise ValueError(f"contains the control character {bad}")
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    plain_ok = not https_only and host in LOOPBACK_HOSTS
    if parts.scheme != "https" and not (parts.scheme == "http" and plain_ok):
        allowed = "https://" if https_only else "https:// (http:// only on 127.0.0.1, localhost or ::1)"
        raise ValueError(f"must be an {allowed} URL, got {url!r}")
    if parts.username or parts.password or parts.query or parts.fragment or parts.path not in ("", "/"):
        raise ValueError(f"must be scheme://host[:port] only, got {url!r}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{url!r} has an invalid port") from None
    proxy_address(f"[{host}]:{port or 443}" if ":" in host else f"{host}:{port or 443}")
    return config_file_safe(url.rstrip("/"))


def command_argv(argv: list[str]) -> list[str]:
    """A command as a list (program and arguments, no shell): ``[tctl, auth, export, --type, tls-spiffe]``."""
    if not argv:
        raise ValueError("must name a program, e.g. [tctl, auth, export, --type, tls-spiffe]")
    for number, word in enumerate(argv):
        if "\0" in word:
            raise ValueError(f"item {number} contains a NUL character")
    if not argv[0].strip():
        raise ValueError("the program name (item 0) is empty")
    return argv


def config_file_safe(text: str) -> str:
    """Refuse whitespace followed by ``#`` or ``;``: AWS SDKs read it as a comment in ``~/.aws/config``."""
    if _INI_COMMENT.search(text):
        raise ValueError(
            "contains a space followed by '#' or ';', which AWS SDKs read as the start of a comment "
            "in ~/.aws/config; rename it"
        )
    return text


def command_path(command: str) -> str:
    """A program name on ``PATH`` or an absolute path: one word as the AWS CLI will split it."""
    if not command:
        raise ValueError("must not be empty")
    bad = _control_character(command)
    if bad:
        raise ValueError(f"contains the control character {bad}")
    if command != command.strip():
        raise ValueError("must not start or end with whitespace")
    if "/" in command and not command.startswith("/"):
        raise ValueError(f"must be a program name on PATH or an absolute path, got {command!r}")
    return config_file_safe(command)


def proxy_address(address: str) -> str:
    """``host:port`` of a Teleport proxy; a missing port means 443. IPv6 literals go in brackets."""
    host, port = address, "443"
    if "://" in address or "/" in address:
        raise ValueError(f"{address!r} is not HOST:PORT (no scheme or path, e.g. teleport.example.com:443)")
    if address.startswith("["):
        end = address.find("]")
        if end < 0:
            raise ValueError(f"{address!r} opens '[' for an IPv6 address but never closes it")
        host, rest = address[1:end], address[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"{address!r} is not HOST:PORT")
            port = rest[1:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{host!r} is not an IPv6 address") from None
        host = f"[{host}]"
    else:
        if address.count(":") > 1:
            raise ValueError(f"{address!r} is not HOST:PORT (put an IPv6 address in brackets)")
        if ":" in address:
            host, port = address.split(":")
        labels = host.rstrip(".").split(".")
        if not host or not all(_HOST_LABEL.fullmatch(label) for label in labels):
            raise ValueError(f"{host!r} is not a host name or IPv4 address")
    if not port.isdigit() or not 1 <= int(port) <= 65_535:
        raise ValueError(f"port {port!r} is not a number from 1 to 65535")
    return f"{host}:{int(port)}"


def parse_duration(text: str) -> int:
    """Seconds in a Go-style duration made of hours, minutes and seconds (``1h``, ``90m``, ``1h30m``)."""
    match = _DURATION.fullmatch(text.strip())
    if not text.strip() or match is None:
        raise ValueError(f"{text!r} is not a duration such as 30m, 1h or 8h")
    hours, minutes, seconds = (int(match.group(unit) or 0) for unit in "hms")
    return hours * 3_600 + minutes * 60 + seconds


def format_duration(seconds: int) -> str:
    """The shortest Go duration text for ``seconds`` (``3600`` → ``1h``, ``5400`` → ``1h30m``)."""
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    hours, rest = divmod(seconds, 3_600)
    minutes, secs = divmod(rest, 60)
    return "".join(f"{value}{unit}" for value, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if value)


def svid_ttl(text: str) -> int:
    """How long an SVID a human issues with ``tsh`` lives: 1 minute to 24 hours (Teleport's cap)."""
    seconds = parse_duration(text)
    if not MIN_SVID_TTL <= seconds <= MAX_SVID_TTL:
        raise ValueError(f"must be between 1m and 24h, got {text!r}")
    return seconds


def bot_name(name: str) -> str:
    """A Teleport bot name that is also a safe file name (``tbot/<bot>.yaml``)."""
    if not BOT_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a bot name: use {BOT_NAME_RULE}")
    return name


def join_token(token: str, join_method: str) -> str:
    """A bot's ``onboarding.token``: a file path for the secret ``token`` method, else a token's name."""
    if join_method == "token":
        if not token.startswith("/"):
            raise ValueError(
                "with joinMethod 'token' give the absolute path of a file holding the one-time "
                "join token, not the token itself (it is a secret and would be written into "
                "rendered files and stack outputs)"
            )
        return absolute_path(token, what="file path", in_aws_config=False)
    if not _TOKEN_NAME.fullmatch(token):
        raise ValueError(f"{token!r} is not the name of a Teleport join token")
    return token


def user_name(name: str) -> str:
    """A Teleport user name (often an email address) as ``tctl`` takes it."""
    bad = _control_character(name)
    if not name or len(name) > 255 or bad or not name.isprintable() or any(c in name for c in " /,"):
        raise ValueError(f"{name!r} is not a Teleport user name: use {USER_NAME_RULE}")
    return name


def teleport_namespace(name: str) -> str:
    """The per-stack prefix of every Teleport object name and the value of the stack label.

    DNS-label characters only: it becomes part of role and WorkloadIdentity names, a label value and a
    DNS SAN, and it never holds a '.', the separator that keeps two stacks' names apart.
    """
    if not NAMESPACE.fullmatch(name):
        raise ValueError(f"{name!r} is not a namespace: use {NAMESPACE_RULE}")
    return name
