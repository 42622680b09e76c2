"""Would Roles Anywhere give this SVID this role, and if not, exactly why — offline, step by step.

The steps are the order in which Roles Anywhere and STS decide (``../shared/reference``):
1. the end-entity certificate, 2. its chain to the trust anchor, 3. the session tags mapped from it,
4. the role's trust policy for the three STS actions, 5. the profile (role listed, enabled, duration).
Steps 1-3 depend only on the certificate and the anchor; 4-5 on each role. Every step is evaluated,
so the report shows the whole picture; the verdict names the first step that fails.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography import x509

from roles_anywhere.iam.trust_evaluation import TrustDecision, evaluate_trust_policy
from roles_anywhere.simulate.certificate_path import Check, end_entity_checks, verify_chain
from roles_anywhere.simulate.principal_tags import TagMapping, map_principal_tags

ROLE_SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}", re.ASCII)
MIN_SESSION = 900
MAX_SESSION = 43_200

STEP_TITLES = {
    "certificate": "end-entity certificate",
    "chain": "chain to the trust anchor",
    "session-tags": "session tags",
    "trust-policy": "role trust policy",
    "profile": "profile",
}
AWS_ERRORS = {
    "certificate": "AccessDeniedException: Untrusted signing certificate",
    "chain": "AccessDeniedException: Untrusted signing certificate",
    "session-tags": "AccessDeniedException: Some attributes failed to be mapped into session tags",
    "trust-policy": "AccessDeniedException: Unable to assume role for the given role ARN",
    "profile": "AccessDeniedException: the profile does not allow this role or duration",
}


@dataclass(frozen=True)
class Step:
    """One step of the decision: passed or not, what was found, and what to change."""

    name: str
    ok: bool
    details: tuple[str, ...]
    fix: str = ""

    @property
    def title(self) -> str:
        """Human name of the step."""
        return STEP_TITLES[self.name]

    def to_json(self) -> dict[str, Any]:
        """The step as JSON: name, ok, details, fix."""
        return {"step": self.name, "ok": self.ok, "details": list(self.details), "fix": self.fix or None}


@dataclass(frozen=True)
class RoleTarget:
    """One role as AWS holds it: ARNs, trust policy, and the profile that vends it."""

    workload: str
    role_arn: str
    profile_arn: str
    trust_policy: Mapping[str, Any]
    trust_policy_source: str
    profile_role_arns: tuple[str, ...]
    profile_duration: int
    role_max_session: int
    requested_duration: int
    profile_enabled: bool = True
    accept_role_session_name: bool = False
    require_instance_properties: bool = False
    role_session_name: str | None = None  # what the request names, if anything
    instance_properties: bool = False  # whether the request sends any


@dataclass(frozen=True)
class Verdict:
    """The answer for one role: every step, and whether all of them passed."""

    target: RoleTarget
    steps: tuple[Step, ...]
    trust: TrustDecision | None = field(default=None, compare=False)

    @property
    def allowed(self) -> bool:
        """All five steps passed."""
        return all(step.ok for step in self.steps)

    @property
    def failed_step(self) -> Step | None:
        """The first step that failed: the one to fix first."""
        return next((step for step in self.steps if not step.ok), None)

    def to_json(self) -> dict[str, Any]:
        """Verdict JSON: allowed, the reasons, the failing step and every step."""
        failed = self.failed_step
        return {
            "workload": self.target.workload,
            "roleArn": self.target.role_arn,
            "profileArn": self.target.profile_arn,
            "allowed": self.allowed,
            "failedStep": failed.name if failed else None,
            "awsError": AWS_ERRORS[failed.name] if failed else None,
            "reasons": [detail for step in self.steps if not step.ok for detail in _failures(step)],
            "steps": [step.to_json() for step in self.steps],
        }


@dataclass(frozen=True)
class CertificateFindings:
    """Steps 1-3, shared by every role."""

    steps: tuple[Step, ...]
    tags: TagMapping


def _step(name: str, checks: Sequence[Check]) -> Step:
    failed = [c for c in checks if not c.ok]
    return Step(
        name=name,
        ok=not failed,
        details=tuple(("✓ " if c.ok else "✗ ") + c.detail for c in checks),
        fix="; ".join(dict.fromkeys(c.fix for c in failed if c.fix)),
    )


def _failures(step: Step) -> list[str]:
    return [d.removeprefix("✗ ") for d in step.details if d.startswith("✗ ")] or [step.title + " failed"]


def certificate_findings(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    at: datetime,
) -> CertificateFindings:
    """Steps 1-3 for ``leaf``: its own rules, its chain to ``anchors``, its session tags."""
    chain = verify_chain(leaf, intermediates, anchors, at)
    tags = map_principal_tags(leaf)
    tag_checks = [Check(True, f"{name} = {value}") for name, value in sorted(tags.tags.items())]
    tag_checks += [
        Check(False, failure, "shorten or change that certificate field; AWS fails the whole session")
        for failure in tags.failures
    ]
    if not tags.tags:
        tag_checks.append(Check(True, "no attributes to map"))
    return CertificateFindings(
        steps=(
            _step("certificate", end_entity_checks(leaf, at)),
            _step("chain", chain.checks),
            _step("session-tags", tag_checks),
        ),
        tags=tags,
    )


def request_context(tags: Mapping[str, str], trust_anchor_arn: str) -> dict[str, list[str]]:
    """The condition keys STS sees when Roles Anywhere assumes a role for this certificate."""
    context = {"aws:SourceArn": [trust_anchor_arn], "aws:SourceAccount": [trust_anchor_arn.split(":")[4]]}
    for name, value in tags.items():
        context[f"aws:PrincipalTag/{name}"] = [value]
        context[f"aws:RequestTag/{name}"] = [value]
    return context


def _trust_step(target: RoleTarget, context: Mapping[str, Sequence[str]]) -> tuple[Step, TrustDecision]:
    decision = evaluate_trust_policy(target.trust_policy, context, source=target.trust_policy_source)
    if decision.allowed:
        granting = {
            r.label for a in decision.actions for r in a.statements if r.applies and r.effect == "Allow"
        }
        detail = f"✓ {', '.join(a.action for a in decision.actions)} allowed by {', '.join(sorted(granting))}"
        return Step("trust-policy", True, (detail,)), decision
    uri = next(iter(context.get("aws:PrincipalTag/x509SAN/URI", [])), None)
    fix = (
        "the role trusts another SPIFFE ID or trust anchor: use the SVID of the workload this role is for, "
        "or give this workload its own role in the stack config"
        if uri
        else "the certificate has no URI SAN: issue an X.509-SVID, whose SPIFFE ID is its first URI SAN"
    )
    return Step("trust-policy", False, tuple("✗ " + r for r in decision.reasons()), fix), decision


def _profile_step(target: RoleTarget) -> Step:
    requested = target.requested_duration
    effective = min(requested, target.profile_duration)
    listed = target.role_arn in target.profile_role_arns
    checks = [
        Check(
            listed,
            f"role {'is' if listed else 'is not'} in the profile's roleArns",
            "add the role ARN to the profile's roleArns (exact ARN; wildcards are not expanded)",
        ),
        Check(
            target.profile_enabled,
            "profile enabled" if target.profile_enabled else "profile disabled",
            "enable the profile",
        ),
        Check(
            MIN_SESSION <= requested <= MAX_SESSION,
            f"requested session {requested} s",
            f"request between {MIN_SESSION} and {MAX_SESSION} seconds",
        ),
        Check(
            effective <= target.role_max_session,
            f"session min(requested {requested} s, profile {target.profile_duration} s) = {effective} s "
            f"{'≤' if effective <= target.role_max_session else '>'} role MaxSessionDuration "
            f"{target.role_max_session} s",
            "raise the role's MaxSessionDuration or request a shorter session",
        ),
    ]
    return _step("profile", [*checks, *_session_request_checks(target)])


def _session_request_checks(target: RoleTarget) -> list[Check]:
    """The profile's rules on what the request carries: a role session name, instance properties."""
    checks = []
    name = target.role_session_name
    if name is not None:
        accepted = target.accept_role_session_name
        checks.append(
            Check(
                accepted,
                f"role session name {name!r} "
                + ("accepted" if accepted else "sent, but the profile does not accept one"),
                "set the profile's acceptRoleSessionName: true, or send no --role-session-name",
            )
        )
        if accepted:
            checks.append(
                Check(
                    ROLE_SESSION_NAME.fullmatch(name) is not None,
                    f"role session name {name!r} is 2-64 of letters, digits and =,.@_-",
                    "use 2-64 characters of letters, digits and =,.@_-",
                )
            )
    if target.require_instance_properties:
        sent = target.instance_properties
        checks.append(
            Check(
                sent,
                "the profile requires instance properties: "
                + ("the request sends them" if sent else "the request sends none"),
                "turn the profile's requireInstanceProperties off, or use a client that sends them",
            )
        )
    return checks


def simulate(
    findings: CertificateFindings, targets: Sequence[RoleTarget], trust_anchor_arn: str
) -> list[Verdict]:
    """A verdict per role, with steps 1-3 from ``findings`` and 4-5 evaluated for each role."""
    context = request_context(findings.tags.tags, trust_anchor_arn)
    verdicts = []
    for target in targets:
        trust_step, decision = _trust_step(target, context)
        verdicts.append(Verdict(target, (*findings.steps, trust_step, _profile_step(target)), decision))
    return verdicts
