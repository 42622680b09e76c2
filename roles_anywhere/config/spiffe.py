"""SPIFFE IDs and trust domains, validated by the rules of spiffe/spiffe ``SPIFFE-ID.md``.

The checks and their messages follow go-spiffe's ``spiffeid`` package, the reference implementation,
plus one rule of this project: AWS maps the ID into a session tag, whose value may hold at most
256 characters, so a longer ID could never assume a role.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from roles_anywhere.errors import SpiffeIdError

SCHEME_PREFIX = "spiffe://"
MAX_TRUST_DOMAIN_BYTES = 255
MAX_SPIFFE_ID_BYTES = 2048
MAX_SESSION_TAG_CHARS = 256

_TRUST_DOMAIN_CHARS = frozenset(string.ascii_lowercase + string.digits + ".-_")
_PATH_SEGMENT_CHARS = frozenset(string.ascii_letters + string.digits + ".-_")

ERR_EMPTY = "cannot be empty"
ERR_WRONG_SCHEME = "scheme is missing or invalid"
ERR_MISSING_TRUST_DOMAIN = "trust domain is missing"
ERR_BAD_TRUST_DOMAIN_CHAR = (
    "trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores"
)
ERR_BAD_PATH_SEGMENT_CHAR = (
    "path segment characters are limited to letters, numbers, dots, dashes, and underscores"
)
ERR_NO_LEADING_SLASH = "path must have a leading slash"
ERR_EMPTY_SEGMENT = "path cannot contain empty segments"
ERR_DOT_SEGMENT = "path cannot contain dot segments"
ERR_TRAILING_SLASH = "path cannot have a trailing slash"
ERR_EMPTY_PATH = "path cannot be empty: a workload needs an ID below the trust domain (e.g. /svc/name)"


def _describe(char: str, position: int) -> str:
    return f"{char!r} at position {position}"


def validate_trust_domain(name: str) -> str:
    """Return ``name`` if it is a valid SPIFFE trust domain name, else raise ``SpiffeIdError``."""
    if not name:
        raise SpiffeIdError(ERR_MISSING_TRUST_DOMAIN)
    for index, char in enumerate(name):
        if char not in _TRUST_DOMAIN_CHARS:
            raise SpiffeIdError(f"{ERR_BAD_TRUST_DOMAIN_CHAR} (found {_describe(char, index)})")
    if len(name.encode()) > MAX_TRUST_DOMAIN_BYTES:
        raise SpiffeIdError(
            f"trust domain is {len(name)} bytes long; at most {MAX_TRUST_DOMAIN_BYTES} allowed"
        )
    return name


def validate_path(path: str, *, offset: int = 0) -> str:
    """Return ``path`` if it is a valid, non-empty SPIFFE ID path, else raise ``SpiffeIdError``.

    ``offset`` shifts reported positions so they point into the full ID the user wrote.
    """
    if not path:
        raise SpiffeIdError(ERR_EMPTY_PATH)
    if path[0] != "/":
        raise SpiffeIdError(ERR_NO_LEADING_SLASH)
    segment_start = 0
    for index, char in enumerate(path):
        if char == "/":
            if index > 0:
                _check_segment(path[segment_start:index], last=False)
            segment_start = index
            continue
        if char not in _PATH_SEGMENT_CHARS:
            raise SpiffeIdError(f"{ERR_BAD_PATH_SEGMENT_CHAR} (found {_describe(char, index + offset)})")
    _check_segment(path[segment_start:], last=True)
    return path


def _check_segment(segment: str, *, last: bool) -> None:
    if segment == "/":
        raise SpiffeIdError(ERR_TRAILING_SLASH if last else ERR_EMPTY_SEGMENT)
    if segment in ("/.", "/.."):
        raise SpiffeIdError(ERR_DOT_SEGMENT)


@dataclass(frozen=True, order=True)
class SpiffeId:
    """A validated SPIFFE ID with a non-empty path."""

    trust_domain: str
    path: str

    def __str__(self) -> str:
        return f"{SCHEME_PREFIX}{self.trust_domain}{self.path}"

    @classmethod
    def parse(cls, value: str) -> SpiffeId:
        """Parse a full ``spiffe://<trust domain><path>`` ID; any rule broken raises ``SpiffeIdError``."""
        if not value:
            raise SpiffeIdError(ERR_EMPTY)
        if not value.startswith(SCHEME_PREFIX):
            raise SpiffeIdError(ERR_WRONG_SCHEME)
        rest = value[len(SCHEME_PREFIX) :]
        slash = rest.find("/")
        trust_domain, path = (rest, "") if slash < 0 else (rest[:slash], rest[slash:])
        validate_trust_domain(trust_domain)
        validate_path(path, offset=len(SCHEME_PREFIX) + len(trust_domain))
        return cls(trust_domain, path)._checked_length()

    @classmethod
    def for_workload(cls, value: str, cluster: str) -> SpiffeId:
        """Resolve a config ``spiffeId`` (a ``/path`` or a full ID) against the stack's cluster."""
        if value.startswith("/"):
            return cls(validate_trust_domain(cluster), validate_path(value))._checked_length()
        if not value:
            raise SpiffeIdError(ERR_EMPTY)
        if not value.startswith(SCHEME_PREFIX):
            raise SpiffeIdError(
                f"{ERR_WRONG_SCHEME}: write a path (/svc/name) or a full spiffe://{cluster}/… ID"
            )
        parsed = cls.parse(value)
        if parsed.trust_domain != cluster:
            raise SpiffeIdError(
                f"trust domain {parsed.trust_domain!r} does not match cluster {cluster!r}; "
                "Teleport issues SVIDs only in its own trust domain"
            )
        return parsed

    def _checked_length(self) -> SpiffeId:
        text = str(self)
        if len(text.encode()) > MAX_SPIFFE_ID_BYTES:
            raise SpiffeIdError(
                f"is {len(text.encode())} bytes long; SPIFFE IDs may be at most {MAX_SPIFFE_ID_BYTES}"
            )
        if len(text) > MAX_SESSION_TAG_CHARS:
            raise SpiffeIdError(
                f"is {len(text)} characters long; AWS maps it into the session tag x509SAN/URI, "
                f"which holds at most {MAX_SESSION_TAG_CHARS}"
            )
        return self
