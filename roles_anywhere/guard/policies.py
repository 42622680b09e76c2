"""The CrossGuard policies (``pulumi-policy``) that guard any stack's Roles Anywhere resources.

Each policy's callback reads only what Pulumi hands a policy (type, inputs or, for the stack
policies, outputs; options), through ``documents.plain`` because under the CLI those are
pulumi-policy's proxies. The same objects run under ``pulumi preview --policy-pack policy-pack/``
and offline in ``roles-anywhere plan --policy-pack`` (``guard.offline``, behind the same analyzer).
A value Pulumi does not know yet (a trust policy built from an anchor ARN during a preview) raises
``UnknownValueError``: the analyzer says the policy could not run, and ``pulumi up`` checks it.
What cannot be read is refused, never skipped; so is any input a check did not foresee.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from roles_anywhere.outside_text import one_printable_line

from .anchors import AnchorContents, anchor_contents, foreign_cas, read_fingerprint_config, trust_domain_of
from .coverage import ANCHOR_ARN_PROPERTY, PROFILE_TYPES, ROLE_TRUST_PROPERTY, uncovered_finding
from .documents import UnreadableError, plain, property_of, require_known, unknown_path
from .trust_rules import Admitted, admitted_identity, trust_document, trust_problems, trusts_roles_anywhere

PACK_NAME = "teleport-roles-anywhere-guard"
EXPIRY_EVENTS = ("CA_CERTIFICATE_EXPIRY", "END_ENTITY_CERTIFICATE_EXPIRY")
MIN_SESSION, MAX_SESSION = 900, 43_200

EXACT_TRUST = "roles-anywhere-exact-trust"
COVERED_TYPES = "roles-anywhere-covered-types"
UNIQUE_IDENTITY = "roles-anywhere-unique-identity"
ANCHOR_CA = "roles-anywhere-anchor-ca"
ANCHOR_PROTECTED = "roles-anywhere-anchor-protected"
ANCHOR_NOTIFICATIONS = "roles-anywhere-anchor-notifications"
PROFILE_DURATION = "roles-anywhere-profile-duration"


def _say(report: ReportViolation, message: str, urn: str | None = None) -> None:
    """Every violation is one printable line (names and values from the stack may hold anything)."""
    report(one_printable_line(message), urn)


def _fail_closed(
    validate: Callable[[Any, ReportViolation], None],
) -> Callable[[Any, ReportViolation], None]:
    """A check that fails on an input nobody foresaw refuses it (one line) instead of passing it.

    Unknown values (a preview) still reach the analyzer, which says it could not run the policy.
    """

    @functools.wraps(validate)
    def run(args: Any, report: ReportViolation) -> None:
        try:
            validate(args, report)
        except UnknownValueError:
            raise
        except Exception as err:  # noqa: BLE001 - any failure is a refusal, never a pass
            subject = f"{args.resource_type} {args.name}" if hasattr(args, "name") else "the stack"
            _say(
                report,
                f"{subject}: the guard could not check it ({type(err).__name__}: {str(err)[:120]}), so it is "
                "refused; fix: write the resource's inputs in the documented form, or report this input",
            )

    return run


def _exact_trust(args: ResourceValidationArgs, report: ReportViolation) -> None:
    key = ROLE_TRUST_PROPERTY.get(args.resource_type)
    if key is None:
        return
    raw = plain(args.props).get(key)
    require_known(raw, key)
    try:
        document = trust_document(raw)
    except UnreadableError as err:
        _say(
            report,
            f"role {args.name}: the trust policy ({key}) cannot be read: {err}, so the guard cannot tell "
            f"whom it trusts; fix: {key} as one JSON object, each key once, no byte-order mark",
        )
        return
    if document is None or not trusts_roles_anywhere(document):
        return
    for problem in trust_problems(document):
        _say(report, f"role {args.name}: the trust policy for Roles Anywhere {problem}")


def _covered_types(args: ResourceValidationArgs, report: ReportViolation) -> None:
    allowed = args.get_config().get("allowedTypes", [])
    if args.resource_type in (allowed if isinstance(allowed, list) else []):
        return
    finding = uncovered_finding(args.resource_type, args.props)
    if finding is not None:
        _say(
            report,
            f"{args.resource_type} {args.name}: {finding.where} {finding.what}, and the guard checks Roles "
            f"Anywhere trust only in {' and '.join(ROLE_TRUST_PROPERTY)}; fix: make the role with one of "
            f"those, or list {args.resource_type} under allowedTypes of {COVERED_TYPES} once reviewed",
        )


def _roles(
    resources: Iterable[PolicyResource], unknown: list[UnknownValueError]
) -> list[tuple[str, str, Admitted]]:
    """(name, urn, what it admits) of every role whose trust policy names one SPIFFE ID and anchor."""
    found = []
    for resource in resources:
        key = ROLE_TRUST_PROPERTY.get(resource.resource_type)
        if key is None:
            continue
        raw = plain(resource.props).get(key)
        if _unknown(raw, key, unknown):
            continue
        try:
            document = trust_document(raw)
        except UnreadableError:
            continue  # roles-anywhere-exact-trust refuses it
        admitted = admitted_identity(document) if document is not None else None
        if admitted is not None:
            found.append((resource.name, resource.urn, admitted))
    return found


def _anchors(
    resources: Iterable[PolicyResource], unknown: list[UnknownValueError]
) -> dict[str, tuple[str, AnchorContents]]:
    """The stack's trust anchors by ARN (an output: the stack policy sees outputs): name, CAs."""
    found = {}
    for resource in resources:
        key = ANCHOR_ARN_PROPERTY.get(resource.resource_type)
        arn = property_of(resource.props, key) if key else None
        if key and not _unknown(arn, key, unknown) and isinstance(arn, str):
            found[arn] = (resource.name, anchor_contents(resource.props))
    return found


def _unknown(value: Any, key: str, unknown: list[UnknownValueError]) -> bool:
    """Note a value not known yet (a preview) so the policy says so after checking everything else."""
    if unknown_path(value, (key,)) is None:
        return False
    try:
        require_known(value, key)
    except UnknownValueError as err:
        unknown.append(err)
    return True


def _unique_identity(args: StackValidationArgs, report: ReportViolation) -> None:
    unknown: list[UnknownValueError] = []
    anchors = _anchors(args.resources, unknown)
    first: dict[tuple[str, str], str] = {}
    for name, urn, admitted in _roles(args.resources, unknown):
        anchor = anchors.get(admitted.trust_anchor_arn)
        cas = anchor[1].cas if anchor is not None else ()
        keys = [
            (admitted.spiffe_id, admitted.trust_anchor_arn),
            *((admitted.spiffe_id, ca.sha256) for ca in cas),
        ]
        other = next((first[k] for k in keys if k in first), None)
        if other is not None:
            _say(
                report,
                f"roles {other} and {name} both admit {admitted.spiffe_id} through "
                f"{admitted.trust_anchor_arn} (or an anchor holding the same CA), so that SVID may take "
                "either; fix: give each workload its own SPIFFE ID, or keep one role",
                urn,
            )
        for k in keys:
            first.setdefault(k, name)
    if unknown:
        raise unknown[0]


def _anchor_ca(args: StackValidationArgs, report: ReportViolation) -> None:
    config = args.get_config()
    fingerprints = None
    if "caFingerprints" in config:
        read = read_fingerprint_config(config["caFingerprints"])
        if isinstance(read, str):
            _say(report, f"policy config of {ANCHOR_CA}: {read}; fix: the config, then run again")
            return
        fingerprints = read
    unknown: list[UnknownValueError] = []
    anchors = _anchors(args.resources, unknown)
    for name, urn, admitted in _roles(args.resources, unknown):
        domain = trust_domain_of(admitted.spiffe_id)
        anchor = anchors.get(admitted.trust_anchor_arn)
        where = f"role {name} admits {admitted.spiffe_id} through trust anchor {admitted.trust_anchor_arn}"
        if anchor is None:
            _say(
                report,
                f"{where}, which is not in this stack, so the guard cannot see which CA it holds; fix: "
                "manage (or pulumi import) that anchor in this stack",
                urn,
            )
            continue
        anchor_name, contents = anchor
        if contents.unreadable is not None:
            _say(
                report,
                f"{where} ({anchor_name}), but {contents.unreadable}; fix: a {domain} anchor whose source is "
                f"a CERTIFICATE_BUNDLE of {domain}'s CA",
                urn,
            )
            continue
        if fingerprints is not None and domain not in fingerprints:
            _say(
                report,
                f"{where} ({anchor_name}), but caFingerprints in the policy config names no CA for {domain}; "
                f"fix: add caFingerprints.{domain} with the SHA-256 fingerprints of {domain}'s CA",
                urn,
            )
            continue
        for ca in foreign_cas(domain, contents, fingerprints):
            shape = (
                "named in caFingerprints"
                if fingerprints is not None
                else f"CN=O={domain}, or one URI SAN spiffe://{domain}"
            )
            _say(
                report,
                f"{where} ({anchor_name}), which trusts {ca.label}, not a CA of {domain} ({shape}), so "
                f"whoever holds that CA's key can sign an SVID with this ID; fix: pin an anchor that holds "
                f"only {domain}'s CA, or, if this CA is {domain}'s, add its fingerprint to "
                f"caFingerprints.{domain} in this policy's config",
                urn,
            )
    if unknown:
        raise unknown[0]


def _anchor_protected(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type in ANCHOR_ARN_PROPERTY and not args.opts.protect:
        _say(
            report,
            f"trust anchor {args.name} is not protected, so a change that replaces it mints a new ARN and "
            "breaks every trust policy that names the old one; fix: protect=True (ResourceOptions)",
        )


def _anchor_notifications(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in ANCHOR_ARN_PROPERTY:
        return
    settings = plain(args.props).get("notificationSettings")
    require_known(settings, "notificationSettings")
    enabled = {
        str(s.get("event"))
        for s in (settings if isinstance(settings, list) else [])
        if isinstance(s, Mapping) and s.get("enabled", True) is not False
    }
    missing = [event for event in EXPIRY_EVENTS if event not in enabled]
    if missing:
        _say(
            report,
            f"trust anchor {args.name} has no enabled notification for {', '.join(missing)}, so an expiring "
            "CA goes unnoticed; fix: notificationSettings with both events enabled (threshold in days)",
        )


def _profile_duration(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in PROFILE_TYPES:
        return
    config = args.get_config()
    low, high = int(config.get("minSeconds", MIN_SESSION)), int(config.get("maxSeconds", MAX_SESSION))
    duration = plain(args.props).get("durationSeconds", 3_600)
    require_known(duration, "durationSeconds")
    if isinstance(duration, int | float) and not low <= duration <= high:
        _say(
            report,
            f"profile {args.name} vends {int(duration)} s sessions, outside {low}-{high} s; fix: "
            f"durationSeconds between {low} and {high}",
        )


_DURATION_SCHEMA = PolicyConfigSchema(
    properties={
        "minSeconds": {"type": "integer", "minimum": MIN_SESSION, "maximum": MAX_SESSION},
        "maxSeconds": {"type": "integer", "minimum": MIN_SESSION, "maximum": MAX_SESSION},
    }
)

_COVERED_SCHEMA = PolicyConfigSchema(
    properties={"allowedTypes": {"type": "array", "items": {"type": "string"}}}
)
_CA_SCHEMA = PolicyConfigSchema(
    properties={
        "caFingerprints": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        }
    }
)

DEFAULT_LEVELS = {
    EXACT_TRUST: EnforcementLevel.MANDATORY,
    COVERED_TYPES: EnforcementLevel.MANDATORY,
    UNIQUE_IDENTITY: EnforcementLevel.MANDATORY,
    ANCHOR_CA: EnforcementLevel.MANDATORY,
    ANCHOR_PROTECTED: EnforcementLevel.MANDATORY,
    ANCHOR_NOTIFICATIONS: EnforcementLevel.ADVISORY,
    PROFILE_DURATION: EnforcementLevel.ADVISORY,
}

_RESOURCE_RULES: list[
    tuple[str, str, Callable[[ResourceValidationArgs, ReportViolation], None], PolicyConfigSchema | None]
] = [
    (
        EXACT_TRUST,
        "A role that trusts rolesanywhere.amazonaws.com allows exactly sts:AssumeRole, sts:TagSession and "
        "sts:SetSourceIdentity, under StringEquals on one SPIFFE ID and ArnEquals on one trust anchor.",
        _exact_trust,
        None,
    ),
    (
        COVERED_TYPES,
        "Roles Anywhere trust is made only with resource types the guard reads (aws:iam/role:Role, "
        "aws-native:iam:Role); any other resource that may reach Roles Anywhere is refused.",
        _covered_types,
        _COVERED_SCHEMA,
    ),
    (
        ANCHOR_PROTECTED,
        "Roles Anywhere trust anchors are protected: replacing one breaks every trust policy naming it.",
        _anchor_protected,
        None,
    ),
    (
        ANCHOR_NOTIFICATIONS,
        "Roles Anywhere trust anchors notify before the CA and end-entity certificates expire.",
        _anchor_notifications,
        None,
    ),
    (
        PROFILE_DURATION,
        "Roles Anywhere profiles vend sessions within a configured range (default 900-43,200 s).",
        _profile_duration,
        _DURATION_SCHEMA,
    ),
]
_STACK_RULES: list[
    tuple[str, str, Callable[[StackValidationArgs, ReportViolation], None], PolicyConfigSchema | None]
] = [
    (
        UNIQUE_IDENTITY,
        "No two roles admit the same SPIFFE ID through the same trust anchor, or anchors holding one CA.",
        _unique_identity,
        None,
    ),
    (
        ANCHOR_CA,
        "The trust anchor a role pins holds only the CA of the SPIFFE ID's trust domain (Teleport's CA "
        "for that cluster, or the CAs the policy config names).",
        _anchor_ca,
        _CA_SCHEMA,
    ),
]


def policies() -> list[Policy]:
    """Every policy of the pack, at its default enforcement level (configurable per policy)."""
    made: list[Policy] = [
        ResourceValidationPolicy(
            name, description, _fail_closed(validate), DEFAULT_LEVELS[name], config_schema=schema
        )
        for name, description, validate, schema in _RESOURCE_RULES
    ]
    made += [
        StackValidationPolicy(
            name, description, _fail_closed(validate), DEFAULT_LEVELS[name], config_schema=schema
        )
        for name, description, validate, schema in _STACK_RULES
    ]
    return made


def levels(pack: list[Policy]) -> dict[str, Any]:
    """Policy name → its level in ``pack`` (for reports)."""
    return {policy.name: policy.enforcement_level for policy in pack}
