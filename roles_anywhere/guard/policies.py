"""The CrossGuard policies (``pulumi-policy``) that guard any stack's Roles Anywhere resources.

Each policy's callback reads only what Pulumi hands a policy (type, inputs, options), so the same
objects run under ``pulumi preview --policy-pack policy-pack/`` and offline in ``roles-anywhere
plan --policy-pack`` (``guard.offline``). A value Pulumi does not know yet (a trust policy built
from an anchor ARN during a preview) is skipped then and checked at ``pulumi up``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from roles_anywhere.plan.mocks import PROFILE, ROLE, TRUST_ANCHOR

from .trust_rules import admitted_identity, trust_document, trust_problems, trusts_roles_anywhere

PACK_NAME = "teleport-roles-anywhere-guard"
EXPIRY_EVENTS = ("CA_CERTIFICATE_EXPIRY", "END_ENTITY_CERTIFICATE_EXPIRY")
MIN_SESSION, MAX_SESSION = 900, 43_200

EXACT_TRUST = "roles-anywhere-exact-trust"
UNIQUE_IDENTITY = "roles-anywhere-unique-identity"
ANCHOR_PROTECTED = "roles-anywhere-anchor-protected"
ANCHOR_NOTIFICATIONS = "roles-anywhere-anchor-notifications"
PROFILE_DURATION = "roles-anywhere-profile-duration"


def _exact_trust(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != ROLE:
        return
    document = trust_document(args.props.get("assumeRolePolicy"))
    if document is None or not trusts_roles_anywhere(document):
        return
    for problem in trust_problems(document):
        report(f"role {args.name}: the trust policy for Roles Anywhere {problem}", None)


def _unique_identity(args: StackValidationArgs, report: ReportViolation) -> None:
    first: dict[tuple[str, str], str] = {}
    for resource in args.resources:
        if resource.resource_type != ROLE:
            continue
        document = trust_document(resource.props.get("assumeRolePolicy"))
        admitted = admitted_identity(document) if document is not None else None
        if admitted is None:
            continue
        key = (admitted.spiffe_id, admitted.trust_anchor_arn)
        if key in first:
            report(
                f"roles {first[key]} and {resource.name} both admit {admitted.spiffe_id} through "
                f"{admitted.trust_anchor_arn}, so that SVID may take either; fix: give each workload its own "
                "SPIFFE ID, or keep one role",
                resource.urn,
            )
        else:
            first[key] = resource.name


def _anchor_protected(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == TRUST_ANCHOR and not args.opts.protect:
        report(
            f"trust anchor {args.name} is not protected, so a change that replaces it mints a new ARN and "
            "breaks every trust policy that names the old one; fix: protect=True (ResourceOptions)",
            None,
        )


def _anchor_notifications(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != TRUST_ANCHOR:
        return
    settings = args.props.get("notificationSettings")
    enabled = {
        str(s.get("event"))
        for s in (settings if isinstance(settings, list) else [])
        if isinstance(s, Mapping) and s.get("enabled", True) is not False
    }
    missing = [event for event in EXPIRY_EVENTS if event not in enabled]
    if missing:
        report(
            f"trust anchor {args.name} has no enabled notification for {', '.join(missing)}, so an expiring "
            "CA goes unnoticed; fix: notificationSettings with both events enabled (threshold in days)",
            None,
        )


def _profile_duration(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != PROFILE:
        return
    config = args.get_config()
    low, high = int(config.get("minSeconds", MIN_SESSION)), int(config.get("maxSeconds", MAX_SESSION))
    duration = args.props.get("durationSeconds", 3_600)
    if isinstance(duration, int | float) and not low <= duration <= high:
        report(
            f"profile {args.name} vends {int(duration)} s sessions, outside {low}-{high} s; fix: "
            f"durationSeconds between {low} and {high}",
            None,
        )


_DURATION_SCHEMA = PolicyConfigSchema(
    properties={
        "minSeconds": {"type": "integer", "minimum": MIN_SESSION, "maximum": MAX_SESSION},
        "maxSeconds": {"type": "integer", "minimum": MIN_SESSION, "maximum": MAX_SESSION},
    }
)

DEFAULT_LEVELS = {
    EXACT_TRUST: EnforcementLevel.MANDATORY,
    UNIQUE_IDENTITY: EnforcementLevel.MANDATORY,
    ANCHOR_PROTECTED: EnforcementLevel.MANDATORY,
    ANCHOR_NOTIFICATIONS: EnforcementLevel.ADVISORY,
    PROFILE_DURATION: EnforcementLevel.ADVISORY,
}

_RESOURCE_RULES: list[tuple[str, str, Callable[[ResourceValidationArgs, ReportViolation], None]]] = [
    (
        EXACT_TRUST,
        "A role that trusts rolesanywhere.amazonaws.com allows exactly sts:AssumeRole, sts:TagSession and "
        "sts:SetSourceIdentity, under StringEquals on one SPIFFE ID and ArnEquals on one trust anchor.",
        _exact_trust,
    ),
    (
        ANCHOR_PROTECTED,
        "Roles Anywhere trust anchors are protected: replacing one breaks every trust policy naming it.",
        _anchor_protected,
    ),
    (
        ANCHOR_NOTIFICATIONS,
        "Roles Anywhere trust anchors notify before the CA and end-entity certificates expire.",
        _anchor_notifications,
    ),
]


def policies() -> list[Policy]:
    """Every policy of the pack, at its default enforcement level (configurable per policy)."""
    made: list[Policy] = [
        ResourceValidationPolicy(name, description, validate, DEFAULT_LEVELS[name])
        for name, description, validate in _RESOURCE_RULES
    ]
    made.append(
        ResourceValidationPolicy(
            PROFILE_DURATION,
            "Roles Anywhere profiles vend sessions within a configured range (default 900-43,200 s).",
            _profile_duration,
            DEFAULT_LEVELS[PROFILE_DURATION],
            config_schema=_DURATION_SCHEMA,
        )
    )
    made.append(
        StackValidationPolicy(
            UNIQUE_IDENTITY,
            "No two roles admit the same SPIFFE ID through the same trust anchor.",
            _unique_identity,
            DEFAULT_LEVELS[UNIQUE_IDENTITY],
        )
    )
    return made


def levels(pack: list[Policy]) -> dict[str, Any]:
    """Policy name → its level in ``pack`` (for reports)."""
    return {policy.name: policy.enforcement_level for policy in pack}
