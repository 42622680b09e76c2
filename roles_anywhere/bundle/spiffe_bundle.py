"""SPIFFE trust bundles (a JWK Set) as Teleport's proxy and SPIRE serve them, read into X.509 CAs.

The format is the SPIFFE Trust Domain and Bundle standard: ``{"keys": [...]}``; each key with
``"use": "x509-svid"`` carries its CA certificate as the single element of ``x5c`` (standard base64
DER). Keys of any other use (Teleport also publishes ``jwt-svid`` keys) are not X.509 authorities
and are skipped, as go-spiffe does. The JWK's public key must be the certificate's own key (go-jose
refuses a mismatch too): a bundle where they differ has been assembled wrongly or tampered with.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from roles_anywhere.bundle.x509_parsing import malformed
from roles_anywhere.errors import BundleError, load_json

X509_SVID_USE = "x509-svid"
_PRIVATE_JWK_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "k")
_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}


@dataclass(frozen=True)
class SpiffeBundle:
    """The X.509 authorities of a bundle, in the order served, and the uses of the keys skipped."""

    certificates: tuple[x509.Certificate, ...]
    skipped_uses: tuple[str, ...] = ()


def looks_like_json(text: str) -> bool:
    """Whether ``text`` is (meant to be) a JSON document rather than PEM: it starts with ``{``."""
    return text.lstrip("\ufeff \t\r\n").startswith("{")


def parse_spiffe_bundle(text: str, *, key: str, source: str = "") -> SpiffeBundle:
    """The X.509 CAs in SPIFFE bundle JSON; anything that is not such a bundle is a ``BundleError``."""

    def fail(problem: str) -> BundleError:
        return BundleError(key, f"{source}is not a SPIFFE bundle: {problem}")

    try:
        document = load_json(text.lstrip("\ufeff"))
    except json.JSONDecodeError as err:
        raise fail(f"not valid JSON (line {err.lineno} column {err.colno}: {err.msg})") from None
    except ValueError as err:  # a repeated key or nesting too deep
        raise fail(str(err)) from None
    if not isinstance(document, dict):
        raise fail("the JSON is not an object")
    keys = document.get("keys")
    if not isinstance(keys, list):
        raise fail("it has no 'keys' list (expected a JWK Set such as /webapi/spiffe/bundle.json)")
    certificates: list[x509.Certificate] = []
    skipped: list[str] = []
    for number, jwk in enumerate(keys, start=1):
        if not isinstance(jwk, dict):
            raise fail(f"key {number} is not a JSON object")
        if any(private in jwk for private in _PRIVATE_JWK_MEMBERS):
            raise BundleError(
                key,
                f"{source}key {number} carries private key parameters; refusing the bundle "
                "(a trust bundle must hold public keys only)",
            )
        use = jwk.get("use")
        if use != X509_SVID_USE:
            skipped.append(repr(use[:40]) if isinstance(use, str) else "(no use)")
            continue
        certificates.append(_authority(jwk, number, fail))
    if not certificates:
        found = f" (found {', '.join(sorted(set(skipped)))})" if skipped else " (the key list is empty)"
        raise fail(f'it has no key with "use": "{X509_SVID_USE}"{found}')
    return SpiffeBundle(tuple(certificates), tuple(skipped))


def _authority(jwk: dict[str, Any], number: int, fail: Callable[[str], BundleError]) -> x509.Certificate:
    chain = jwk.get("x5c")
    if not isinstance(chain, list) or len(chain) != 1 or not isinstance(chain[0], str):
        count = len(chain) if isinstance(chain, list) else 0
        raise fail(f"x509-svid key {number} must carry exactly one certificate in 'x5c', found {count}")
    try:
        der = base64.b64decode(chain[0], validate=True)
        certificate = x509.load_der_x509_certificate(der)
    except (binascii.Error, ValueError, x509.InvalidVersion):
        raise fail(f"x509-svid key {number}: 'x5c' is not a base64 DER X.509 certificate") from None
    problem = malformed(certificate) or _key_mismatch(jwk, certificate)
    if problem:
        raise fail(f"x509-svid key {number}: {problem}")
    return certificate


def _b64url_int(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")
    except (binascii.Error, ValueError):
        return None


def _key_mismatch(jwk: dict[str, Any], certificate: x509.Certificate) -> str | None:
    """Why the JWK's public key is not the certificate's, or ``None`` when they agree."""
    try:
        public_key = certificate.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return "the certificate's public key cannot be read (malformed, or of an unsupported type)"
    if isinstance(public_key, rsa.RSAPublicKey):
        numbers = public_key.public_numbers()
        expected: dict[str, Any] = {"kty": "RSA", "n": numbers.n, "e": numbers.e}
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        point = public_key.public_numbers()
        curve = _CURVES.get(public_key.curve.name, public_key.curve.name)
        expected = {"kty": "EC", "crv": curve, "x": point.x, "y": point.y}
    else:
        return None  # other key types are refused by the CA checks with a better message
    for name, value in expected.items():
        given = jwk.get(name) if name in ("kty", "crv") else _b64url_int(jwk.get(name))
        if given != value:
            shown = f"{jwk.get(name)!r}" if name in ("kty", "crv") else "another value"
            return f"the JWK's {name!r} is {shown}, not the certificate's public key ({expected['kty']})"
    return None
