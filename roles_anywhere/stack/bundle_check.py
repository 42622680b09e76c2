"""``roles-anywhere bundle``: what the CA source serves now, and whether the deployed anchor matches it.

The trust anchor changes only when ``pulumi up`` runs. A scheduled job runs this check and, on
exit 1, ``pulumi up``: so a Teleport CA rotation reaches AWS before SVIDs from the new CA arrive,
and a CA the cluster stopped trusting leaves the anchor too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from roles_anywhere.bundle.ca_bundle import CaCertificate
from roles_anywhere.stack.deployment import DeployedCa, Deployment


@dataclass(frozen=True)
class BundleCheck:
    """The served CAs, compared with the deployed anchor when stack outputs were given."""

    key: str
    origin: str
    certificates: tuple[CaCertificate, ...]
    deployment: Deployment | None = None

    def in_anchor(self, cert: CaCertificate) -> bool | None:
        """Whether the deployed anchor holds ``cert``; ``None`` without stack outputs."""
        if self.deployment is None:
            return None
        return cert.fingerprint_sha256 in {ca.sha256_fingerprint for ca in self.deployment.ca_certificates}

    @property
    def missing(self) -> tuple[CaCertificate, ...]:
        """CAs the cluster trusts that the deployed anchor lacks: their SVIDs are refused by AWS."""
        return tuple(cert for cert in self.certificates if self.in_anchor(cert) is False)

    @property
    def not_served(self) -> tuple[DeployedCa, ...]:
        """CAs the anchor still trusts that the cluster no longer serves (rotated out, or foreign)."""
        if self.deployment is None:
            return ()
        served = {cert.fingerprint_sha256 for cert in self.certificates}
        return tuple(ca for ca in self.deployment.ca_certificates if ca.sha256_fingerprint not in served)

    @property
    def up_to_date(self) -> bool | None:
        """``None`` without stack outputs; else whether anchor and source hold the same CAs."""
        if self.deployment is None:
            return None
        return not self.missing and not self.not_served


def _time(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def format_check(check: BundleCheck, now: datetime) -> str:
    """The human report: one block per served CA, then the verdict on the deployed anchor."""
    count = len(check.certificates)
    lines = [f"{check.key} serves {count} CA certificate{'s' if count != 1 else ''} ({check.origin}):"]
    for cert in check.certificates:
        days = (cert.not_after - now).days
        lines += [
            "",
            f"  {cert.subject}",
            f"    key          {cert.key_description}",
            f"    sha256       {cert.fingerprint_sha256}",
            f"    valid        {_time(cert.not_before)} to {_time(cert.not_after)} ({days} days left)",
        ]
        deployed = check.in_anchor(cert)
        if deployed is not None:
            lines.append(f"    in anchor    {'yes' if deployed else 'NO: run pulumi up'}")
    lines.append("")
    if check.deployment is None:
        lines.append(
            "Pass --stack-outputs FILE (pulumi stack output --json) to compare with the deployed anchor."
        )
        return "\n".join(lines) + "\n"
    anchor = check.deployment.trust_anchor_arn
    if check.up_to_date:
        lines.append(f"The deployed trust anchor {anchor} holds exactly these CAs: nothing to do.")
    for cert in check.missing:
        lines.append(
            f"MISSING from the deployed trust anchor {anchor}: {cert.subject} "
            f"(sha256 {cert.fingerprint_sha256}). Run `pulumi up`: until then AWS refuses SVIDs it "
            "signed with 'Untrusted signing certificate'."
        )
    for ca in check.not_served:
        lines.append(
            f"NO LONGER SERVED but still trusted by {anchor}: {ca.subject} "
            f"(sha256 {ca.sha256_fingerprint}). Run `pulumi up` to remove it: the cluster stopped "
            "trusting it (a rotation finished, or it is another cluster's CA)."
        )
    return "\n".join(lines) + "\n"


def check_json(check: BundleCheck) -> dict[str, Any]:
    """The same report for scripts; ``deployed`` is ``null`` without stack outputs."""
    document: dict[str, Any] = {
        "source": {"key": check.key, "origin": check.origin},
        "certificates": [
            {
                "subject": cert.subject,
                "key": cert.key_description,
                "sha256Fingerprint": cert.fingerprint_sha256,
                "notBefore": cert.not_before.isoformat(),
                "notAfter": cert.not_after.isoformat(),
                "inDeployedAnchor": check.in_anchor(cert),
            }
            for cert in check.certificates
        ],
        "deployed": None,
    }
    if check.deployment is not None:
        document["deployed"] = {
            "trustAnchorArn": check.deployment.trust_anchor_arn,
            "upToDate": check.up_to_date,
            "missing": [cert.fingerprint_sha256 for cert in check.missing],
            "notServed": [
                {"subject": ca.subject, "sha256Fingerprint": ca.sha256_fingerprint} for ca in check.not_served
            ],
        }
    return document
