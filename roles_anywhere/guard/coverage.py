r"""Which resource types the guard reads, and how it refuses the others that may reach Roles Anywhere.

A Pulumi program can make an IAM role with pulumi-aws (``aws:iam/role:Role``, the only pulumi-aws
resource that takes a trust policy) or pulumi-aws-native (``aws-native:iam:Role``), and a Roles
Anywhere anchor, profile or CRL with either. Those types are read property by property. Every
other resource is scanned instead: its inputs, with JSON and YAML text inside them decoded (so a
``\u0072olesanywhere`` escape is read as IAM would read it), must not mention Roles Anywhere's
service principal or an ``AWS::RolesAnywhere::`` type, and a trust policy found anywhere in them
(a key such as ``AssumeRolePolicyDocument``) must not be one that may admit Roles Anywhere. A
CloudFormation template that cannot be read is refused rather than skipped.

What no policy pack can see is not claimed: a template fetched from a URL, a macro's output, or a
role made at run time by code (a Lambda, a custom resource, a command).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from roles_anywhere.plan.mocks import PROFILE, ROLE, TRUST_ANCHOR

from .documents import MAX_NODES, UnreadableError, plain, read_template, require_known, walk
from .trust_rules import may_admit_roles_anywhere

AWS_NATIVE_ROLE = "aws-native:iam:Role"
AWS_NATIVE_TRUST_ANCHOR = "aws-native:rolesanywhere:TrustAnchor"
AWS_NATIVE_PROFILE = "aws-native:rolesanywhere:Profile"
AWS_NATIVE_CRL = "aws-native:rolesanywhere:Crl"

ROLE_TRUST_PROPERTY = {ROLE: "assumeRolePolicy", AWS_NATIVE_ROLE: "assumeRolePolicyDocument"}
ANCHOR_ARN_PROPERTY = {TRUST_ANCHOR: "arn", AWS_NATIVE_TRUST_ANCHOR: "trustAnchorArn"}
PROFILE_TYPES = frozenset({PROFILE, AWS_NATIVE_PROFILE})
CRL_TYPES = frozenset({AWS_NATIVE_CRL})
INSPECTED_TYPES = frozenset({*ROLE_TRUST_PROPERTY, *ANCHOR_ARN_PROPERTY, *PROFILE_TYPES, *CRL_TYPES})
# Identity-based permissions policies: IAM refuses a Principal in them, so they cannot hold trust (a
# deployer's iam:PassRole condition on rolesanywhere.amazonaws.com is legitimate there).
PERMISSIONS_POLICY_TYPES = frozenset(
    {
        "aws:iam/policy:Policy",
        "aws:iam/rolePolicy:RolePolicy",
        "aws:iam/userPolicy:UserPolicy",
        "aws:iam/groupPolicy:GroupPolicy",
        "aws-native:iam:ManagedPolicy",
        "aws-native:iam:Policy",
        "aws-native:iam:RolePolicy",
        "aws-native:iam:UserPolicy",
        "aws-native:iam:GroupPolicy",
    }
)
TEMPLATE_PROPERTY = {
    "aws:cloudformation/stack:Stack": "templateBody",
    "aws:cloudformation/stackSet:StackSet": "templateBody",
    "aws-native:cloudformation:Stack": "templateBody",
    "aws-native:cloudformation:StackSet": "templateBody",
}
_MARKERS = ("rolesanywhere.amazonaws", "aws::rolesanywhere::")
_TRUST_KEY = re.compile(r"(assumerole|trust)policy(document|json|text)?")
_MAX_DECODE_DEPTH = 4


@dataclass(frozen=True)
class Finding:
    """Why a resource of a type the guard does not read may reach Roles Anywhere."""

    where: str
    what: str


def uncovered_finding(resource_type: str, props: Any) -> Finding | None:
    """The first way a resource of an uninspected type may reach Roles Anywhere, or None."""
    if resource_type in INSPECTED_TYPES or resource_type in PERMISSIONS_POLICY_TYPES:
        return None
    if "rolesanywhere" in resource_type.casefold():
        return Finding("its type", "is a Roles Anywhere type the guard does not read")
    values = plain(props)
    template_key = TEMPLATE_PROPERTY.get(resource_type)
    if template_key and isinstance(values, Mapping) and values.get(template_key) is not None:
        try:
            values = {**values, template_key: read_template(values[template_key])}
        except UnreadableError as err:
            return Finding(template_key, f"is a template the guard cannot read ({err})")
    try:
        return _scan(values)
    except UnreadableError as err:
        return Finding("its inputs", f"cannot all be read ({err})")


def _scan(values: Any) -> Finding | None:
    """Walk ``values``, decoding JSON/YAML text found inside (a bounded number of levels)."""
    pending: list[tuple[str, Any, int]] = [("", values, 0)]
    budget = MAX_NODES
    while pending:
        where, value, depth = pending.pop()
        for key, item in walk(value):
            budget -= 1
            if budget < 0:
                raise UnreadableError(f"they hold more than {MAX_NODES} values")
            place = where or (key or "")
            if (
                key is not None
                and item is not None
                and _TRUST_KEY.fullmatch(re.sub(r"[^a-z]", "", key.casefold()))
            ):
                require_known(item, key)  # a preview: the analyzer says so, and `pulumi up` checks it
                if may_admit_roles_anywhere(item):
                    return Finding(key, "is a trust policy that may admit rolesanywhere.amazonaws.com")
            for text in (key, item):
                if isinstance(text, str) and any(m in text.casefold() for m in _MARKERS):
                    return Finding(place or "its inputs", f"mentions {_excerpt(text)}")
            if isinstance(item, str) and depth < _MAX_DECODE_DEPTH and _looks_like_document(item):
                try:
                    decoded = read_template(item, lenient=True)
                except UnreadableError:
                    continue
                if isinstance(decoded, Mapping | list):
                    pending.append((place, decoded, depth + 1))
    return None


def _looks_like_document(text: str) -> bool:
    start = text.lstrip()[:1]
    return start in ("{", "[") or "\n" in text


def _excerpt(text: str) -> str:
    folded = text.casefold()
    index = min(folded.find(m) for m in _MARKERS if m in folded)
    return repr(text[max(0, index - 20) : index + 40])
