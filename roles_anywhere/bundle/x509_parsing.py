"""Certificates from bytes someone else wrote, parsed completely before anything trusts them.

``cryptography`` parses a certificate's fields lazily: ``load_der_x509_certificate`` accepts bytes
whose subject or extensions are broken, and the ``ValueError`` surfaces later, wherever a field is
first read (a report, a log line). Every field this project reads is touched here once, so a broken
certificate is refused where it is loaded, in one line.
"""

from __future__ import annotations

import contextlib
import re

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm

_LOCATION = re.compile(r'location: \["?([A-Za-z_]+)')


def malformed(certificate: x509.Certificate) -> str | None:
    """Why ``certificate`` cannot be read in full (``"its subject cannot be parsed"``), or ``None``."""
    try:
        _ = (certificate.version, certificate.serial_number, certificate.subject, certificate.issuer)
        _ = (certificate.not_valid_before_utc, certificate.not_valid_after_utc)
        _ = [extension.value for extension in certificate.extensions]
        with contextlib.suppress(UnsupportedAlgorithm):  # unusual key or signature: callers name it
            _ = (certificate.public_key(), certificate.signature_hash_algorithm)
    except x509.InvalidVersion:
        return "its X.509 version is invalid"
    except x509.DuplicateExtension as err:
        return f"it holds the extension {err.oid.dotted_string} twice"
    except x509.UnsupportedGeneralNameType:
        return "it holds a name of a type that cannot be read"
    except ValueError as err:
        found = _LOCATION.search(str(err))
        return f"its {found.group(1) if found else 'content'} cannot be parsed"
    return None


def parse_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate of a PEM file, or the one of a DER file, each readable in full.

    ``ValueError`` (with a message for the user) when there is none or one is broken.
    """
    if b"-----BEGIN" in data:
        try:
            certificates = x509.load_pem_x509_certificates(data)
        except (ValueError, x509.InvalidVersion):
            raise ValueError("is not a PEM certificate file (no readable CERTIFICATE block)") from None
    else:
        try:
            certificates = [x509.load_der_x509_certificate(data)]
        except (ValueError, x509.InvalidVersion):
            raise ValueError("is neither a PEM nor a DER X.509 certificate") from None
    for number, certificate in enumerate(certificates, start=1):
        problem = malformed(certificate)
        if problem:
            raise ValueError(f"certificate {number} is not a well-formed X.509 certificate: {problem}")
    return certificates
