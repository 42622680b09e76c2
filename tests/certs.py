"""Certificate factories for tests: Teleport-shaped CAs and SVIDs, and every way a CA can be wrong."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from roles_anywhere.sandbox.certificates import key_usage

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@dataclass
class Issued:
    certificate: x509.Certificate
    key: Any

    @property
    def pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def key_pem(self) -> str:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()


def make_key(kind: str = "ec-p256") -> Any:
    if kind == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "ec-p384":
        return ec.generate_private_key(ec.SECP384R1())
    if kind == "ec-p521":
        return ec.generate_private_key(ec.SECP521R1())
    if kind == "ec-k256":
        return ec.generate_private_key(ec.SECP256K1())
    if kind.startswith("rsa-"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(kind.removeprefix("rsa-")))
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(kind)


def make_ca(
    cluster: str = "example.teleport.sh",
    *,
    key: Any = None,
    key_kind: str = "ec-p256",
    digest: hashes.HashAlgorithm | None = None,
    ca: bool | None = True,
    key_cert_sign: bool | None = True,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    serial: int = 1000,
) -> Issued:
    """A self-signed CA shaped like Teleport's SPIFFE CA (CN=O=cluster, 10 years, certSign/cRLSign)."""
    key = key or make_key(key_kind)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, cluster),
            x509.NameAttribute(NameOID.COMMON_NAME, cluster),
        ]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before or NOW - timedelta(days=30))
        .not_valid_after(not_after or NOW + timedelta(days=3650))
    )
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    if key_cert_sign is not None:
        builder = builder.add_extension(
            key_usage(digital_signature=True, key_cert_sign=key_cert_sign, crl_sign=True),
            critical=True,
        )
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else (digest or hashes.SHA256())
    return Issued(builder.sign(key, algorithm), key)


_SHA256_RSA = bytes.fromhex("06092a864886f70d01010b")  # OID 1.2.840.113549.1.1.11 (sha256WithRSAEncryption)
WEAK_RSA_SIGNATURES = {
    "SHA1": bytes.fromhex("06092a864886f70d010105"),  # sha1WithRSAEncryption
    "MD5": bytes.fromhex("06092a864886f70d010104"),  # md5WithRSAEncryption
}


def _der(tag: int, body: bytes) -> bytes:
    length = len(body)
    if length < 0x80:
        return bytes([tag, length]) + body
    size = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


def with_weak_signature(issued: Issued, algorithm: str) -> x509.Certificate:
    """The same RSA certificate relabelled as signed with SHA-1 or MD5.

    cryptography (rightly) refuses to sign with them, so the OID is swapped in the DER. The
    signature bytes do not match, which does not matter: the algorithm is what AWS refuses.
    """
    oid = WEAK_RSA_SIGNATURES[algorithm]
    tbs = issued.certificate.tbs_certificate_bytes.replace(_SHA256_RSA, oid)
    algorithm_id = _der(0x30, oid + b"\x05\x00")
    signature = _der(0x03, b"\x00" + issued.certificate.signature)
    return x509.load_der_x509_certificate(_der(0x30, tbs + algorithm_id + signature))


def pem_of(*certificates: x509.Certificate) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certificates)


def make_intermediate(
    issuer: Issued,
    name: str = "intermediate",
    *,
    key_kind: str = "ec-p256",
    not_after: datetime | None = None,
) -> Issued:
    """An intermediate CA signed by ``issuer`` (CA:TRUE, keyCertSign)."""
    key = make_key(key_kind)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(issuer.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=10))
        .not_valid_after(not_after or NOW + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            key_usage(key_cert_sign=True, crl_sign=True),
            critical=True,
        )
        .sign(issuer.key, hashes.SHA256())
    )
    return Issued(certificate, key)


def make_svid(
    issuer: Issued,
    *uris: str,
    key_kind: str = "ec-p256",
    common_name: str | None = None,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    ca: bool = False,
    digital_signature: bool = True,
    dns: tuple[str, ...] = (),
) -> Issued:
    """An X.509-SVID shaped like Teleport's: URI SAN(s), CA:FALSE, serverAuth+clientAuth, 1 hour."""
    key = make_key(key_kind)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)] if common_name else [])
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(u) for u in uris]
    names += [x509.DNSName(d) for d in dns]
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or NOW - timedelta(minutes=1))
        .not_valid_after(not_after or NOW + timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            key_usage(
                digital_signature=digital_signature, key_encipherment=not digital_signature, key_cert_sign=ca
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH, x509.OID_CLIENT_AUTH]), critical=False)
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=not common_name)
    return Issued(builder.sign(issuer.key, hashes.SHA256()), key)
