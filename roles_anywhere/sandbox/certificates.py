"""Small X.509 builders the sandbox needs: its TLS identity and the demo's throwaway CA and SVIDs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

KEY_USAGES = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
)


def key_usage(**granted: bool) -> x509.KeyUsage:
    """A KeyUsage with only the named usages set (``key_cert_sign=True``…)."""
    unknown = set(granted) - set(KEY_USAGES)
    if unknown:
        raise TypeError(f"unknown key usages: {', '.join(sorted(unknown))}")
    return x509.KeyUsage(**{name: granted.get(name, False) for name in KEY_USAGES})


def issue(
    subject: x509.Name,
    extensions: Sequence[tuple[x509.ExtensionType, bool]],
    *,
    lifetime: timedelta,
    backdate: timedelta = timedelta(minutes=5),
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A fresh P-256 key and a certificate for it: self-signed, or signed by ``issuer`` (cert, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - backdate)
        .not_valid_after(now + lifetime)
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256()), key


def certificate_pem(certificate: x509.Certificate) -> bytes:
    """PEM of a certificate."""
    return certificate.public_bytes(serialization.Encoding.PEM)


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM, as tbot writes ``svid_key.pem``."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
