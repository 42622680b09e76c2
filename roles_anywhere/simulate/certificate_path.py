"""Steps 1 and 2 of a Roles Anywhere session: the end-entity certificate, and its chain to the anchor.

Roles Anywhere refuses an end-entity certificate that is not X.509 v3, is a CA, lacks the
digitalSignature key usage, is signed with less than SHA-256 or is not valid at the time of the
request; then it needs a path from it, through at most five intermediates the client sends, to a
certificate in the trust anchor, each link a verified signature by a valid CA (CA:TRUE, keyCertSign).
A certificate whose issuer has the anchor's *name* but another key is not trusted: names are not keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

from roles_anywhere.bundle.ca_bundle import ALLOWED_SIGNATURE_HASHES, describe_name

MAX_INTERMEDIATES = 5


@dataclass(frozen=True)
class Check:
    """One fact checked, whether it holds, and (when not) what to change."""

    ok: bool
    detail: str
    fix: str = ""


def _validity(cert: x509.Certificate, at: datetime, what: str) -> Check:
    before, after = cert.not_valid_before_utc, cert.not_valid_after_utc
    if at < before:
        return Check(False, f"{what} is not valid yet: from {before.isoformat()}", "check the clock, or wait")
    if at > after:
        return Check(False, f"{what} expired at {after.isoformat()}", f"issue a new {what}")
    return Check(True, f"{what} valid {before.isoformat()} to {after.isoformat()}")


def _signature_hash(cert: x509.Certificate, what: str) -> Check:
    try:
        algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        algorithm = None
    if algorithm is None or not isinstance(algorithm, ALLOWED_SIGNATURE_HASHES):
        name = "an unsupported algorithm" if algorithm is None else algorithm.name.upper()
        return Check(False, f"{what} is signed with {name}", "Roles Anywhere requires SHA-256 or stronger")
    return Check(True, f"{what} signed with {algorithm.name.upper()}")


def _extension(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.ExtensionType | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def end_entity_checks(leaf: x509.Certificate, at: datetime) -> list[Check]:
    """Step 1: every rule Roles Anywhere applies to the certificate a client signs with."""
    checks = [
        Check(leaf.version == x509.Version.v3, f"X.509 {leaf.version.name}", "issue an X.509 v3 certificate"),
    ]
    constraints = _extension(leaf, x509.BasicConstraints)
    is_ca = isinstance(constraints, x509.BasicConstraints) and constraints.ca
    checks.append(
        Check(
            not is_ca,
            "a CA certificate (basicConstraints CA:TRUE)" if is_ca else "not a CA",
            "sign with an end-entity SVID, not with a CA certificate",
        )
    )
    usage = _extension(leaf, x509.KeyUsage)
    signs = isinstance(usage, x509.KeyUsage) and usage.digital_signature
    checks.append(
        Check(
            signs,
            "key usage includes digitalSignature" if signs else "key usage lacks digitalSignature",
            "issue the SVID with the digitalSignature key usage (Teleport's SVIDs have it)",
        )
    )
    checks.append(_signature_hash(leaf, "certificate"))
    checks.append(_validity(leaf, at, "certificate"))
    return checks


@dataclass(frozen=True)
class ChainResult:
    """Step 2: the verified path (leaf first, anchor certificate last), or why there is none."""

    checks: tuple[Check, ...]
    path: tuple[x509.Certificate, ...] = ()

    @property
    def ok(self) -> bool:
        """A path to an anchor certificate exists and every check on it holds."""
        return bool(self.path) and all(c.ok for c in self.checks)


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _issuer_checks(cert: x509.Certificate, at: datetime, what: str) -> list[Check]:
    constraints = _extension(cert, x509.BasicConstraints)
    usage = _extension(cert, x509.KeyUsage)
    is_ca = isinstance(constraints, x509.BasicConstraints) and constraints.ca
    signs = isinstance(usage, x509.KeyUsage) and usage.key_cert_sign
    return [
        Check(is_ca, f"{what} is {'' if is_ca else 'not '}a CA", f"{what} needs basicConstraints CA:TRUE"),
        Check(
            signs, f"{what} {'may' if signs else 'may not'} sign certificates", f"{what} needs keyCertSign"
        ),
        _signature_hash(cert, what),
        _validity(cert, at, what),
    ]


def verify_chain(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    at: datetime,
) -> ChainResult:
    """Find and verify the path leaf → intermediates → anchor certificate, as Roles Anywhere does."""
    if len(intermediates) > MAX_INTERMEDIATES:
        return ChainResult(
            (
                Check(
                    False,
                    f"{len(intermediates)} intermediate certificates given",
                    f"Roles Anywhere accepts at most {MAX_INTERMEDIATES}",
                ),
            )
        )
    path, checks, current, unused = [leaf], [], leaf, list(intermediates)
    while True:
        anchor = next((a for a in anchors if _signed_by(current, a)), None)
        if anchor is not None:
            name = describe_name(anchor.subject)
            checks.append(Check(True, f"signed by the trust anchor's CA {name}"))
            checks.extend(_issuer_checks(anchor, at, "anchor CA"))
            return ChainResult(tuple(checks), (*path, anchor))
        step = next((c for c in unused if _signed_by(current, c)), None)
        if step is None:
            checks.append(_no_path(current, unused, anchors))
            return ChainResult(tuple(checks))
        checks.append(Check(True, f"signed by intermediate {describe_name(step.subject)}"))
        checks.extend(_issuer_checks(step, at, f"intermediate {describe_name(step.subject)}"))
        path.append(step)
        unused.remove(step)
        current = step


def _no_path(
    current: x509.Certificate, unused: Sequence[x509.Certificate], anchors: Sequence[x509.Certificate]
) -> Check:
    issuer = describe_name(current.issuer)
    same_name = [c for c in (*anchors, *unused) if c.subject == current.issuer]
    if same_name:
        return Check(
            False,
            f"issued by a CA named {issuer}, but not signed by the key of the certificate with that name "
            "in the trust anchor",
            "the SVID comes from another CA with the same name (another cluster, or a CA rotated out of "
            "the anchor): update caBundle and run pulumi up, or use an SVID from this cluster",
        )
    return Check(
        False,
        f"issuer {issuer} is neither in the trust anchor nor among the intermediates given",
        "pass the intermediate certificates (--intermediates), or add the issuing CA to caBundle",
    )
