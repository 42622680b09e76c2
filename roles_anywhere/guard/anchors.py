"""Which CA a trust anchor of the stack holds, and whether it is the CA of the SPIFFE ID a role pins.

An anchor admits every certificate its CAs sign, so a role that pins ``spiffe://acme/svc/orders``
through an anchor holding another cluster's CA is taken by whoever controls that CA: it can sign
an SVID with any URI. The anchor a role pins must therefore hold only CAs of the ID's trust domain:
the CAs the policy config names by SHA-256 fingerprint (``caFingerprints``), or, without one,
certificates that name that trust domain: Teleport's SPIFFE CA (subject ``CN=<cluster>,
O=<cluster>``) or a SPIFFE signing certificate whose one URI SAN is ``spiffe://<trust domain>`` (what
SPIRE writes). Names are what anyone can write into a certificate, so fingerprints are the real check.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from .documents import plain

CERTIFICATE_BUNDLE = "CERTIFICATE_BUNDLE"
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class AnchorCa:
    """One CA certificate of an anchor, as the messages name it."""

    sha256: str
    common_names: tuple[str, ...]
    organizations: tuple[str, ...]
    uris: tuple[str, ...] = ()

    def names(self, trust_domain: str) -> bool:
        """Whether the certificate names ``trust_domain`` as Teleport or SPIFFE CAs do."""
        teleport = self.common_names == (trust_domain,) and self.organizations == (trust_domain,)
        return teleport or self.uris in {(f"spiffe://{trust_domain}",), (f"spiffe://{trust_domain}/",)}

    @property
    def label(self) -> str:
        """``CN=…, O=… (sha256 …)``."""
        names = ", ".join(
            [
                *(f"CN={n}" for n in self.common_names),
                *(f"O={n}" for n in self.organizations),
                *(f"URI:{u}" for u in self.uris),
            ]
        )
        return f"{names or 'an empty subject'} (sha256 {self.sha256})"


@dataclass(frozen=True)
class AnchorContents:
    """What an anchor holds: its CAs, or why the guard cannot tell."""

    cas: tuple[AnchorCa, ...]
    unreadable: str | None = None


def anchor_contents(props: Any) -> AnchorContents:
    """The CA certificates in an anchor's ``source`` (pulumi-aws and aws-native spell it alike)."""
    source = plain(props).get("source") if isinstance(plain(props), Mapping) else None
    if not isinstance(source, Mapping):
        return AnchorContents((), "it has no source")
    source_type = source.get("sourceType")
    data = source.get("sourceData")
    pem = data.get("x509CertificateData") if isinstance(data, Mapping) else None
    if source_type != CERTIFICATE_BUNDLE or not isinstance(pem, str):
        return AnchorContents(
            (), f"its source is {source_type!s:.40}, not a certificate bundle the guard can read"
        )
    try:
        certificates = x509.load_pem_x509_certificates(pem.encode())
        cas = tuple(_describe(cert) for cert in certificates)
    except ValueError as err:
        return AnchorContents((), f"its certificate bundle cannot be read ({str(err)[:80]})")
    return AnchorContents(cas)


def normalised_fingerprint(text: str) -> str:
    """``AB:CD:…`` or ``abcd…`` → ``abcd…`` (64 lowercase hex digits, or the text unchanged)."""
    return re.sub(r"[\s:]", "", text).lower()


def read_fingerprint_config(raw: Any) -> dict[str, frozenset[str]] | str:
    """``caFingerprints``: trust domain → SHA-256 fingerprints, or why the config is wrong."""
    raw = plain(raw)
    if not isinstance(raw, Mapping):
        return "caFingerprints must map trust domains to lists of SHA-256 fingerprints"
    config: dict[str, frozenset[str]] = {}
    for domain, fingerprints in raw.items():
        items = fingerprints if isinstance(fingerprints, list) else [fingerprints]
        found = [normalised_fingerprint(f) for f in items if isinstance(f, str)]
        if len(found) != len(items) or not all(_FINGERPRINT.fullmatch(f) for f in found):
            return f"caFingerprints.{domain}: each fingerprint is 64 hex digits (SHA-256 of the DER)"
        config[str(domain)] = frozenset(found)
    return config


def foreign_cas(
    trust_domain: str, contents: AnchorContents, fingerprints: Mapping[str, frozenset[str]] | None
) -> list[AnchorCa]:
    """The CAs in ``contents`` that are not ``trust_domain``'s."""
    if fingerprints is not None:
        allowed = fingerprints.get(trust_domain, frozenset())
        return [ca for ca in contents.cas if ca.sha256 not in allowed]
    return [ca for ca in contents.cas if not ca.names(trust_domain)]


def trust_domain_of(spiffe_id: str) -> str:
    """``spiffe://acme.teleport.sh/svc/orders`` → ``acme.teleport.sh``."""
    return spiffe_id.removeprefix("spiffe://").split("/", 1)[0]


def _describe(certificate: x509.Certificate) -> AnchorCa:
    der = certificate.public_bytes(serialization.Encoding.DER)

    def values(oid: x509.ObjectIdentifier) -> tuple[str, ...]:
        return tuple(str(a.value) for a in certificate.subject.get_attributes_for_oid(oid))

    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = tuple(names.get_values_for_type(x509.UniformResourceIdentifier))
    except x509.ExtensionNotFound:
        uris = ()
    return AnchorCa(
        hashlib.sha256(der).hexdigest(),
        values(NameOID.COMMON_NAME),
        values(NameOID.ORGANIZATION_NAME),
        uris,
    )
