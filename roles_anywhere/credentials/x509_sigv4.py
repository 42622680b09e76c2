"""Roles Anywhere's X.509 SigV4: the signature a CreateSession request carries, made and checked.

It is SigV4 with the HMAC chain replaced by the certificate's private key: the canonical request
and string to sign are SigV4's, the algorithm is ``AWS4-X509-RSA-SHA256`` (PKCS#1 v1.5) or
``AWS4-X509-ECDSA-SHA256`` (DER ECDSA), and the credential is the certificate's serial number in
decimal. ``sign_request`` is what ``credential-process`` sends; ``verify_request`` is what the
sandbox checks. They share the canonical form, and the sandbox is also tested against
``iam-rolesanywhere-session``, an implementation we did not write.
"""

from __future__ import annotations

import hashlib
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

SERVICE = "rolesanywhere"
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
RSA_ALGORITHM = "AWS4-X509-RSA-SHA256"
ECDSA_ALGORITHM = "AWS4-X509-ECDSA-SHA256"
REQUIRED_SIGNED_HEADERS = frozenset({"host", "x-amz-date", "x-amz-x509"})

_AUTHORIZATION = re.compile(
    r"(?P<algorithm>AWS4-X509-(?:RSA|ECDSA)-SHA256) "
    r"Credential=(?P<serial>\d+)/(?P<date>\d{8})/(?P<region>[a-z0-9-]+)/(?P<service>[a-z0-9-]+)"
    r"/aws4_request, ?"
    r"SignedHeaders=(?P<signed>[a-z0-9-]+(?:;[a-z0-9-]+)*), ?"
    r"Signature=(?P<signature>[0-9a-f]+)"
)


class SignatureError(ValueError):
    """Why a request's X.509 signature does not verify (for the sandbox log; AWS says less)."""


@dataclass(frozen=True)
class Authorization:
    """The parsed ``Authorization`` header of a CreateSession request."""

    algorithm: str
    serial: int
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: bytes

    @property
    def scope(self) -> str:
        """``YYYYMMDD/region/rolesanywhere/aws4_request``."""
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


def parse_authorization(header: str) -> Authorization:
    """Parse the header; anything else is a ``SignatureError``."""
    match = _AUTHORIZATION.fullmatch(header.strip())
    if match is None:
        raise SignatureError("the Authorization header is not an AWS4-X509 signature")
    return Authorization(
        algorithm=match["algorithm"],
        serial=int(match["serial"]),
        date=match["date"],
        region=match["region"],
        service=match["service"],
        signed_headers=tuple(match["signed"].split(";")),
        signature=bytes.fromhex(match["signature"]) if len(match["signature"]) % 2 == 0 else b"",
    )


def canonical_request(  # noqa: PLR0917 - SigV4's six parts, in SigV4's order
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    signed_headers: tuple[str, ...],
    body: bytes,
) -> str:
    """SigV4's canonical request (headers are looked up by lower-case name)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    canonical_headers = "".join(
        f"{name}:{' '.join(lowered.get(name, '').split())}\n" for name in signed_headers
    )
    return "\n".join(
        [
            method.upper(),
            urllib.parse.quote(_normalize_path(path), safe="/~"),
            _canonical_query(query),
            canonical_headers,
            ";".join(signed_headers),
            hashlib.sha256(body).hexdigest(),
        ]
    )


def _normalize_path(path: str) -> str:
    """SigV4's path normalisation for services other than S3: no empty, ``.`` or ``..`` segments."""
    segments: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment not in ("", "."):
            segments.append(segment)
    trailing = "/" if path.endswith("/") and segments else ""
    return "/" + "/".join(segments) + trailing


def _canonical_query(query: str) -> str:
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    encoded = sorted(
        (urllib.parse.quote(key, safe="-_.~"), urllib.parse.quote(value, safe="-_.~")) for key, value in pairs
    )
    return "&".join(f"{key}={value}" for key, value in encoded)


def string_to_sign(algorithm: str, amz_date: str, scope: str, canonical: str) -> str:
    """The four lines the private key signs."""
    return "\n".join([algorithm, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])


def algorithm_for(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    """``AWS4-X509-RSA-SHA256`` or ``AWS4-X509-ECDSA-SHA256`` for the key type."""
    return RSA_ALGORITHM if isinstance(key, rsa.RSAPrivateKey) else ECDSA_ALGORITHM


def sign_request(
    *,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    certificate: x509.Certificate,
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    region: str,
    now: datetime | None = None,
) -> dict[str, str]:
    """Headers to send: ``headers`` plus Host, X-Amz-Date and Authorization, signing every header given."""
    parts = urllib.parse.urlsplit(url)
    amz_date = (now or datetime.now(UTC)).strftime(AMZ_DATE_FORMAT)
    signed = {**headers, "Host": parts.netloc, "X-Amz-Date": amz_date}
    names = tuple(sorted(name.lower() for name in signed))
    algorithm = algorithm_for(key)
    scope = f"{amz_date[:8]}/{region}/{SERVICE}/aws4_request"
    canonical = canonical_request(method, parts.path, parts.query, signed, names, body)
    message = string_to_sign(algorithm, amz_date, scope, canonical).encode()
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    else:
        signature = key.sign(message, ec.ECDSA(hashes.SHA256()))
    signed["Authorization"] = (
        f"{algorithm} Credential={certificate.serial_number}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature.hex()}"
    )
    return signed


def verify_signature(
    authorization: Authorization,
    *,
    certificate: x509.Certificate,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
) -> None:
    """Check the signature against the certificate's public key; ``SignatureError`` says why not."""
    missing = REQUIRED_SIGNED_HEADERS - set(authorization.signed_headers)
    if missing:
        raise SignatureError(f"SignedHeaders lacks {', '.join(sorted(missing))}")
    if list(authorization.signed_headers) != sorted(set(authorization.signed_headers)):
        raise SignatureError("SignedHeaders must be sorted, lower-case and without duplicates")
    lowered = {name.lower() for name in headers}
    absent = [name for name in authorization.signed_headers if name not in lowered]
    if absent:
        raise SignatureError(f"signed header(s) {', '.join(absent)} not in the request")
    if authorization.serial != certificate.serial_number:
        raise SignatureError("the Credential serial number is not the X-Amz-X509 certificate's")
    amz_date = next(value for name, value in headers.items() if name.lower() == "x-amz-date")
    canonical = canonical_request(method, path, query, headers, authorization.signed_headers, body)
    message = string_to_sign(authorization.algorithm, amz_date, authorization.scope, canonical).encode()
    public_key = certificate.public_key()
    try:
        if isinstance(public_key, rsa.RSAPublicKey) and authorization.algorithm == RSA_ALGORITHM:
            public_key.verify(authorization.signature, message, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(public_key, ec.EllipticCurvePublicKey) and authorization.algorithm == ECDSA_ALGORITHM:
            public_key.verify(authorization.signature, message, ec.ECDSA(hashes.SHA256()))
        else:
            raise SignatureError(f"{authorization.algorithm} does not match the certificate's key type")
    except InvalidSignature:
        raise SignatureError("the signature does not verify with the certificate's public key") from None
