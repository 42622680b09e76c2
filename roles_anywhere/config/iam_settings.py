"""Rules for the IAM settings platform teams must set: boundary, path, tags, profile session policy.

Each rule is what AWS itself enforces at deploy time (IAM's and Roles Anywhere's API references),
checked at plan time so a stack fails in ``plan`` with the key named, not halfway through `pulumi up`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

# IAM: a path is "/" or "/" + printable ASCII (no spaces) + "/", at most 512 characters.
ROLE_PATH = re.compile(r"/|/[\x21-\x7e]{1,510}/")
MAX_TAGS = 50  # per IAM role (tags beyond it fail the create); profiles allow 200, roles are the limit
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
MAX_SESSION_POLICY_CHARS = 2_048  # STS: an inline session policy, whitespace not counted
MAX_SESSION_MANAGED_POLICIES = 10  # STS: managed session policies per session

# The tags this project sets itself. They say who manages a resource: ``TeleportNamespace`` names the
# one stack (its Teleport namespace) that owns it, which is what an import is checked against.
MANAGED_BY_TAG = "ManagedBy"
CLUSTER_TAG = "TeleportCluster"
NAMESPACE_TAG = "TeleportNamespace"
SPIFFE_ID_TAG = "SpiffeId"
OUR_TAGS = (MANAGED_BY_TAG, CLUSTER_TAG, NAMESPACE_TAG, SPIFFE_ID_TAG)
_OURS_BY_CASE = {tag.lower(): tag for tag in OUR_TAGS}

# IAM's tag patterns (botocore's iam model): [\p{L}\p{Z}\p{N}_.:/=+\-@]. Unicode letters, separators
# (spaces, U+2028/U+2029) and numbers, which Python's str methods do not spell exactly (isspace() admits
# \n and \t, isdigit() misses Roman numerals), so the Unicode categories are checked instead.
_TAG_PUNCTUATION = frozenset("_.:/=+-@")
_TAG_CATEGORIES = frozenset("LZN")
_IAM_TAG_RULE = "letters, digits, spaces and _ . : / = + - @ (no tabs, line breaks or other symbols)"
# Roles Anywhere's (botocore's rolesanywhere model): ASCII only.
ROLES_ANYWHERE_TAG = re.compile(r"[ a-zA-Z0-9_.:/=+@-]*")
_ROLES_ANYWHERE_TAG_RULE = "ASCII letters, digits, spaces and _ . : / = + - @"


def role_path(path: str) -> str:
    """An IAM role path: ``/`` or ``/team/sub/``."""
    if not ROLE_PATH.fullmatch(path) or "//" in path:
        raise ValueError(
            f"{path[:80]!r} is not an IAM path: use '/' or '/name/…/' (printable ASCII without spaces, "
            "at most 512 characters)"
        )
    return path


def _iam_tag_text(text: str) -> bool:
    """IAM's tag pattern, character by character (Unicode categories L, Z, N and ``_ . : / = + - @``)."""
    return all(c in _TAG_PUNCTUATION or unicodedata.category(c)[0] in _TAG_CATEGORIES for c in text)


def _aws_length(text: str) -> int:
    """Length as AWS counts it: UTF-16 code units (a letter outside the BMP counts twice)."""
    return len(text.encode("utf-16-le")) // 2


def _shown(text: str) -> str:
    return repr(text[:60])


def tags(values: Mapping[str, str]) -> dict[str, str]:
    """User tags: IAM's key and value rules, no key twice (IAM keys ignore case), none of ours."""
    seen: dict[str, str] = {}
    for key, value in values.items():
        if not isinstance(value, str):
            raise ValueError(f"tag {_shown(key)}: the value must be a string (quote numbers in YAML)")
        if not 1 <= _aws_length(key) <= MAX_TAG_KEY or not _iam_tag_text(key):
            raise ValueError(f"tag key {_shown(key)}: use 1-{MAX_TAG_KEY} {_IAM_TAG_RULE}")
        if key.lower().startswith("aws:"):
            raise ValueError(f"tag key {_shown(key)}: the 'aws:' prefix is reserved for AWS")
        ours = _OURS_BY_CASE.get(key.lower())
        if ours is not None:
            spelt = "" if ours == key else f" (IAM tag keys ignore case, so {key!r} is {ours!r})"
            raise ValueError(
                f"tag key {ours!r} is set by this project on every resource it creates (it records who "
                f"manages it){spelt}; choose another key"
            )
        other = seen.setdefault(key.lower(), key)
        if other != key:
            raise ValueError(
                f"tag keys {_shown(other)} and {_shown(key)} are one key to IAM (tag keys ignore case); "
                "keep one of them"
            )
        if _aws_length(value) > MAX_TAG_VALUE or not _iam_tag_text(value):
            raise ValueError(f"tag {_shown(key)}: the value must be at most {MAX_TAG_VALUE} {_IAM_TAG_RULE}")
    if len(values) > MAX_TAGS - len(OUR_TAGS):
        raise ValueError(
            f"{len(values)} tags; AWS allows {MAX_TAGS} per role and this project sets up to "
            f"{len(OUR_TAGS)} ({', '.join(OUR_TAGS)}), so at most {MAX_TAGS - len(OUR_TAGS)} are yours"
        )
    return dict(values)


def merged_tags(stack: Mapping[str, str], own: Mapping[str, str]) -> dict[str, str]:
    """A workload's tags over the stack's: a key of the stack's in another case would be a duplicate.

    IAM keys ignore case, so ``team`` beside the stack's ``Team`` fails CreateRole ("Duplicate tag
    keys"); the override the user meant needs the stack's spelling.
    """
    stack_keys = {key.lower(): key for key in stack}
    for key in own:
        spelt = stack_keys.get(key.lower(), key)
        if spelt != key:
            raise ValueError(
                f"tag key {_shown(key)} is the stack's iam.tags key {_shown(spelt)} to IAM (tag keys ignore "
                f"case), so the role would have both: spell it {spelt!r} to override the stack's value"
            )
    try:
        return tags({**stack, **own})
    except ValueError as err:
        raise ValueError(f"with the stack's iam.tags: {err}") from None


def profile_tags(values: Mapping[str, str], *, why: str) -> dict[str, str]:
    """Tags that reach a Roles Anywhere profile: ASCII only, which IAM's rules do not require.

    ``why`` says how these tags reach a profile, for the message.
    """
    for key, value in values.items():
        if not ROLES_ANYWHERE_TAG.fullmatch(key):
            raise ValueError(
                f"tag key {_shown(key)}: {why}, and Roles Anywhere tag keys allow only "
                f"{_ROLES_ANYWHERE_TAG_RULE}; rename it"
            )
        if not ROLES_ANYWHERE_TAG.fullmatch(value):
            raise ValueError(
                f"tag {_shown(key)}: {why}, and Roles Anywhere tag values allow only "
                f"{_ROLES_ANYWHERE_TAG_RULE}; change the value"
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
