"""Rules for the IAM settings platform teams must set: boundary, path, tags, profile session policy.

Each rule is what AWS itself enforces at deploy time (IAM's and Roles Anywhere's API references),
checked at plan time so a stack fails in ``plan`` with the key named, not halfway through `pulumi up`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# IAM: a path is "/" or "/" + printable ASCII (no spaces) + "/", at most 512 characters.
ROLE_PATH = re.compile(r"/|/[\x21-\x7e]{1,510}/")
MAX_TAGS = 50  # per IAM role and per Roles Anywhere profile (tags beyond it fail the create)
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
MAX_SESSION_POLICY_CHARS = 2_048  # STS: an inline session policy, whitespace not counted
MAX_SESSION_MANAGED_POLICIES = 10  # STS: managed session policies per session
OUR_TAGS = ("ManagedBy", "TeleportCluster", "SpiffeId")
_TAG_PUNCTUATION = set("_.:/=+-@ ")


def role_path(path: str) -> str:
    """An IAM role path: ``/`` or ``/team/sub/``."""
    if not ROLE_PATH.fullmatch(path) or "//" in path:
        raise ValueError(
            f"{path[:80]!r} is not an IAM path: use '/' or '/name/…/' (printable ASCII without spaces, "
            "at most 512 characters)"
        )
    return path


def _tag_text(text: str) -> bool:
    """STS's tag pattern: letters, separators and numbers (Unicode), and ``_ . : / = + - @``."""
    return all(c.isalpha() or c.isdigit() or c.isspace() or c in _TAG_PUNCTUATION for c in text)


def tags(values: Mapping[str, str]) -> dict[str, str]:
    """User tags: AWS's key and value rules, and none of the keys this project sets itself."""
    for key, value in values.items():
        if not isinstance(value, str):
            raise ValueError(f"tag {key[:60]!r}: the value must be a string (quote numbers in YAML)")
        if not 1 <= len(key) <= MAX_TAG_KEY or not _tag_text(key):
            raise ValueError(
                f"tag key {key[:60]!r}: use 1-{MAX_TAG_KEY} letters, digits, spaces and _ . : / = + - @"
            )
        if key.lower().startswith("aws:"):
            raise ValueError(f"tag key {key[:60]!r}: the 'aws:' prefix is reserved for AWS")
        if key in OUR_TAGS:
            raise ValueError(
                f"tag key {key!r} is set by this project on every resource it creates (it records who "
                "manages it); choose another key"
            )
        if len(value) > MAX_TAG_VALUE or not _tag_text(value):
            raise ValueError(
                f"tag {key[:60]!r}: the value must be at most {MAX_TAG_VALUE} letters, digits, spaces "
                "and _ . : / = + - @"
            )
    if len(values) > MAX_TAGS - len(OUR_TAGS):
        raise ValueError(
            f"{len(values)} tags; AWS allows {MAX_TAGS} per role or profile and this project sets "
            f"{len(OUR_TAGS)} ({', '.join(OUR_TAGS)}), so at most {MAX_TAGS - len(OUR_TAGS)} are yours"
        )
    return dict(values)


def session_policy_size(policy_json: str) -> str:
    """The profile's session policy, within STS's size limit."""
    if len(policy_json) > MAX_SESSION_POLICY_CHARS:
        raise ValueError(
            f"is {len(policy_json)} characters without whitespace; STS accepts at most "
            f"{MAX_SESSION_POLICY_CHARS} for a session policy (CreateSession would fail)"
        )
    return policy_json
