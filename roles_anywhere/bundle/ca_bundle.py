"""CA bundles for a Roles Anywhere trust anchor, validated the way AWS validates them — and stricter.

AWS rejects a bad bundle only at deploy time, or worse, accepts one that can never verify an SVID.
We refuse it before anything is created. Messages never include key material: a private key found
in a bundle is named by its PEM label only.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from roles_anywhere.bundle.spiffe_bundle import looks_like_json, parse_spiffe_bundle
from roles_anywhere.bundle.x509_parsing import malformed
from roles_anywhere.errors import BundleError, ConfigError, read_user_bytes

MAX_CERTIFICATES = 2
MAX_BUNDLE_CHARS = 8000
MIN_RSA_BITS = 2048
EXPIRY_WARNING_DAYS = 45
ALLOWED_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384"}
ALLOWED_SIGNATURE_HASHES = (hashes.SHA256, hashes.SHA384, hashes.SHA512)

_PEM_BLOCK = re.compile(
    r"-----BEGIN (?P<label>[A-Z0-9 ]+)-----\r?\n(?P<body>.*?)-----END (?P=label)-----", re.DOTALL
)
_PRIVATE_KEY_MARKER = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")

_Fail = Callable[[str], BundleError]


@dataclass(frozen=True)
class CaCertificate:
    """One validated CA certificate and the facts users need to recognise it."""

    certificate: x509.Certificate
    pem: str
    subject: str
    key_description: str
    fingerprint_sha256: str
    not_before: datetime
    not_after: datetime


@dataclass(frozen=True)
class CaBundle:
    """A validated, de-duplicated, deterministically ordered bundle of at most two CA certificates."""

    certificates: tuple[CaCertificate, ...]
    warnings: tuple[str, ...] = ()

    @property
    def pem(self) -> str:
        """The PEM text sent to AWS: canonical encoding, so an unchanged bundle never shows a diff."""
        return "".join(cert.pem for cert in self.certificates)


MAX_BUNDLE_FILE_BYTES = 1024 * 1024  # two CA certificates are a few kilobytes


def load_bundle_file(path: Path, *, key: str, display: str, now: datetime | None = None) -> CaBundle:
    """Read and validate a PEM or SPIFFE bundle JSON file; errors name ``key`` and the file as written."""
    try:
        raw = read_user_bytes(path, display, MAX_BUNDLE_FILE_BYTES)
    except ConfigError as err:
        raise BundleError(key, f"{display}: {err.message}") from None
    return parse_bundle_bytes(raw, key=key, source=f"{display}: ", now=now)


def parse_bundle_bytes(raw: bytes, *, key: str, source: str = "", now: datetime | None = None) -> CaBundle:
    """PEM certificates or SPIFFE bundle JSON, recognised by content, validated as a trust anchor bundle."""
    if _PRIVATE_KEY_MARKER.search(raw.decode("latin-1")):
        raise _private_key_error(key, source)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BundleError(
            key, f"{source}is neither PEM nor SPIFFE bundle JSON (binary, or not UTF-8 text)"
        ) from None
    if looks_like_json(text):
        served = parse_spiffe_bundle(text, key=key, source=source)
        return validate_ca_certificates(served.certificates, key=key, source=source, now=now)
    if not text.isascii():
        raise BundleError(key, f"{source}is not PEM: it holds non-ASCII text")
    return parse_pem_bundle(text, key=key, source=source, now=now)


def parse_served_bundle(raw: bytes, *, key: str, source: str = "", now: datetime | None = None) -> CaBundle:
    """A bundle endpoint's answer: SPIFFE bundle JSON only (an HTML error page is not a bundle)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BundleError(key, f"{source}is not a SPIFFE bundle: the answer is not UTF-8 text") from None
    served = parse_spiffe_bundle(text, key=key, source=source)
    return validate_ca_certificates(served.certificates, key=key, source=source, now=now)


def _private_key_error(key: str, source: str) -> BundleError:
    return BundleError(
        key,
        f"{source}contains a private key; refusing it (a trust anchor needs only the CA certificate, "
        "and the key must never leave the CA)",
    )


def parse_pem_bundle(text: str, *, key: str, source: str = "", now: datetime | None = None) -> CaBundle:
    """Validate PEM text holding CA certificates. ``source`` prefixes messages (e.g. the file name)."""
    if _PRIVATE_KEY_MARKER.search(text):
        raise _private_key_error(key, source)
    blocks = list(_PEM_BLOCK.finditer(text))
    if not blocks:
        raise BundleError(key, f"{source}not PEM: no '-----BEGIN CERTIFICATE-----' block found")
    certificates: list[x509.Certificate] = []
    for number, block in enumerate(blocks, start=1):
        label = block.group("label")
        if label != "CERTIFICATE":
            raise BundleError(key, f"{source}block {number} is a {label!r}, not a CERTIFICATE")
        try:
            der = base64.b64decode("".join(block.group("body").split()), validate=True)
            certificates.append(x509.load_der_x509_certificate(der))
        except (ValueError, x509.InvalidVersion):
            raise BundleError(key, f"{source}block {number} is not a valid X.509 certificate") from None
    return validate_ca_certificates(certificates, key=key, source=source, now=now)


def validate_ca_certificates(
    certificates: Sequence[x509.Certificate], *, key: str, source: str = "", now: datetime | None = None
) -> CaBundle:
    """Apply the Roles Anywhere trust anchor rules; return the bundle in canonical order."""
    moment = now or datetime.now(UTC)
    unique = _deduplicate(certificates)
    if len(unique) > MAX_CERTIFICATES:
        raise BundleError(
            key,
            f"{source}holds {len(unique)} distinct certificates; a Roles Anywhere trust anchor accepts "
            f"at most {MAX_CERTIFICATES} (the old and new CA during a rotation) "
            "and the quota cannot be raised",
        )
    validated = [_validate_one(cert, number, key=key, source=source, now=moment) for number, cert in unique]
    validated.sort(key=lambda c: (c.not_before, c.fingerprint_sha256))
    bundle = CaBundle(tuple(validated), tuple(_expiry_warnings(validated, key, source, moment)))
    if len(bundle.pem) > MAX_BUNDLE_CHARS:
        raise BundleError(
            key,
            f"{source}is {len(bundle.pem)} characters as PEM; "
            f"a trust anchor accepts at most {MAX_BUNDLE_CHARS}",
        )
    return bundle


def _deduplicate(certificates: Iterable[x509.Certificate]) -> list[tuple[int, x509.Certificate]]:
    seen: set[bytes] = set()
    unique = []
    for number, cert in enumerate(certificates, start=1):
        fingerprint = cert.fingerprint(hashes.SHA256())
        if fingerprint not in seen:
            seen.add(fingerprint)
            unique.append((number, cert))
    return unique


def _validate_one(
    cert: x509.Certificate, number: int, *, key: str, source: str, now: datetime
) -> CaCertificate:
    problem = malformed(cert)
    if problem:
        raise BundleError(
            key, f"{source}certificate {number} is not a well-formed X.509 certificate: {problem}"
        )
    subject = describe_name(cert.subject)
    where = f"{source}certificate {number} ({subject})"

    def fail(problem: str) -> BundleError:
        return BundleError(key, f"{where}: {problem}")

    if cert.version is not x509.Version.v3:
        raise fail("is not an X.509 v3 certificate")
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        raise fail("is not a CA: basicConstraints CA:TRUE is missing") from None
    if not constraints.ca:
        raise fail("is not a CA: basicConstraints says CA:FALSE (is this an SVID rather than the SPIFFE CA?)")
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise fail("has no keyUsage extension; a CA needs keyCertSign") from None
    if not usage.key_cert_sign:
        raise fail("keyUsage lacks keyCertSign, so it cannot sign SVIDs")
    key_description = _describe_key(cert, fail)
    _check_signature_hash(cert, fail)
    not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
    if now < not_before:
        raise fail(f"is not valid until {not_before:%Y-%m-%d %H:%M} UTC")
    if now > not_after:
        raise fail(f"expired on {not_after:%Y-%m-%d %H:%M} UTC")
    return CaCertificate(
        certificate=cert,
        pem=cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        subject=subject,
        key_description=key_description,
        fingerprint_sha256=hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest(),
        not_before=not_before,
        not_after=not_after,
    )


def describe_name(name: x509.Name) -> str:
    """RFC 4514 text with readable names for the attributes Teleport puts in its CA subjects."""
    return name.rfc4514_string({NameOID.SERIAL_NUMBER: "serialNumber"}) or "(empty subject)"


def _check_signature_hash(cert: x509.Certificate, fail: _Fail) -> None:
    try:
        algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        raise fail(
            f"uses an unsupported signature algorithm ({cert.signature_algorithm_oid.dotted_string})"
        ) from None
    if algorithm is None or not isinstance(algorithm, ALLOWED_SIGNATURE_HASHES):
        name = "no digest" if algorithm is None else algorithm.name.upper()
        raise fail(f"is signed with {name}; IAM Roles Anywhere requires SHA-256 or stronger")


def _describe_key(cert: x509.Certificate, fail: _Fail) -> str:
    try:
        public_key = cert.public_key()
    except (UnsupportedAlgorithm, ValueError):
        raise fail("has a public key type cryptography cannot read") from None
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < MIN_RSA_BITS:
            raise fail(f"has an RSA-{public_key.key_size} key; at least RSA-{MIN_RSA_BITS} is required")
        return f"RSA-{public_key.key_size}"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        curve = ALLOWED_CURVES.get(public_key.curve.name)
        if curve is None:
            raise fail(f"uses EC curve {public_key.curve.name}; only P-256 and P-384 are accepted")
        return f"EC {curve}"
    kind = type(public_key).__name__.removeprefix("_").removesuffix("PublicKey")
    raise fail(f"has an {kind} key; use RSA (≥ 2048 bits) or EC P-256/P-384")


def _expiry_warnings(certs: Iterable[CaCertificate], key: str, source: str, now: datetime) -> Iterable[str]:
    horizon = now + timedelta(days=EXPIRY_WARNING_DAYS)
    for cert in certs:
        if cert.not_after <= horizon:
            days = (cert.not_after - now).days
            yield (
                f"{key}: {source}CA {cert.subject} expires on {cert.not_after:%Y-%m-%d} (in {days} days); "
                "rotate the Teleport SPIFFE CA and update the trust anchor before then"
            )
