"""``simulate`` output: the steps with ✓/✗ for people, a verdict per role as JSON for machines."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from roles_anywhere.bundle.ca_bundle import describe_name
from roles_anywhere.simulate.evaluate import (
    AWS_ERRORS,
    STEP_TITLES,
    CertificateFindings,
    Step,
    Verdict,
)
from roles_anywhere.simulate.principal_tags import uri_sans


def certificate_summary(leaf: x509.Certificate) -> dict[str, Any]:
    """What identifies the SVID: its SPIFFE ID(s), names, serial, validity, fingerprint."""
    return {
        "uriSans": uri_sans(leaf),
        "subject": describe_name(leaf.subject),
        "issuer": describe_name(leaf.issuer),
        "serialNumber": str(leaf.serial_number),
        "notBefore": leaf.not_valid_before_utc.isoformat(),
        "notAfter": leaf.not_valid_after_utc.isoformat(),
        "sha256Fingerprint": leaf.fingerprint(hashes.SHA256()).hex(),
    }


def report_json(
    leaf: x509.Certificate,
    findings: CertificateFindings,
    verdicts: Sequence[Verdict],
    at: datetime,
    anchor: str,
) -> dict[str, Any]:
    """The ``--json`` document."""
    return {
        "certificate": certificate_summary(leaf),
        "at": at.isoformat(),
        "trustAnchorArn": anchor,
        "sessionTags": dict(sorted(findings.tags.tags.items())),
        "allowed": [v.target.workload for v in verdicts if v.allowed],
        "roles": [v.to_json() for v in verdicts],
    }


def _step_lines(number: int, step: Step) -> list[str]:
    lines = [f"  {'✓' if step.ok else '✗'} {number}. {STEP_TITLES[step.name]}"]
    lines += [f"       {detail}" for detail in step.details]
    if step.fix:
        lines.append(f"       fix: {step.fix}")
    return lines


def format_report(
    leaf: x509.Certificate,
    findings: CertificateFindings,
    verdicts: Sequence[Verdict],
    at: datetime,
    anchor: str,
) -> str:
    """Steps 1-3 once, then per role steps 4-5 and the verdict naming the first failing step."""
    summary = certificate_summary(leaf)
    spiffe = ", ".join(summary["uriSans"]) or "(no URI SAN)"
    lines = [
        f"SVID {spiffe}",
        f"  subject {summary['subject']}; issuer {summary['issuer']}; serial {summary['serialNumber']}",
        f"  valid {summary['notBefore']} to {summary['notAfter']}",
        f"Checked at {at.isoformat()} against trust anchor {anchor}",
        "",
    ]
    for number, step in enumerate(findings.steps, start=1):
        lines += _step_lines(number, step)
    for verdict in verdicts:
        lines.append("")
        failed = verdict.failed_step
        if failed is None:
            lines.append(f"{verdict.target.workload}: ALLOWED → {verdict.target.role_arn}")
        else:
            number = list(STEP_TITLES).index(failed.name) + 1
            target = verdict.target
            lines.append(f"{target.workload}: DENIED at step {number} ({failed.title}) → {target.role_arn}")
            lines.append(f"  AWS would answer: {AWS_ERRORS[failed.name]}")
        for number, step in enumerate(verdict.steps[len(findings.steps) :], start=len(findings.steps) + 1):
            lines += _step_lines(number, step)
    allowed = [v.target.workload for v in verdicts if v.allowed]
    lines += ["", f"Allowed: {', '.join(allowed) if allowed else 'none'} ({len(allowed)} of {len(verdicts)})"]
    return "\n".join(lines) + "\n"
