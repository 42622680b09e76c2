"""Step 3: the session tags Roles Anywhere derives from a certificate with its default mapping.

Every supported subject and issuer RDN becomes ``x509Subject/<RDN>`` / ``x509Issuer/<RDN>`` (values
of a repeated RDN joined by ``/``); of the SANs only the **first** URI, the first DNS name and the
first directory name are mapped (``x509SAN/URI``, ``x509SAN/DNS``, ``x509SAN/Name/<RDN>``). A value
longer than 256 characters, or with a character outside STS's tag set, fails the whole session
("Some attributes failed to be mapped into session tags"). The supported RDN list is AWS's documented
short names; an attribute outside it is not mapped (an assumption: AWS does not publish the list).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID

MAX_TAG_VALUE = 256
TAG_PUNCTUATION = frozenset("_.:/=+-@")
SUPPORTED_RDNS = {
    NameOID.COMMON_NAME: "CN",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.COUNTRY_NAME: "C",
    NameOID.STATE_OR_PROVINCE_NAME: "ST",
    NameOID.LOCALITY_NAME: "L",
    NameOID.DOMAIN_COMPONENT: "DC",
    NameOID.SERIAL_NUMBER: "serialNumber",
    NameOID.EMAIL_ADDRESS: "emailAddress",
    NameOID.USER_ID: "UID",
}
SPIFFE_ID_TAG = "x509SAN/URI"


@dataclass(frozen=True)
class TagMapping:
    """The session tags (name → value) and the tags that could not be mapped, with why."""

    tags: dict[str, str]
    failures: tuple[str, ...]


def tag_value_problem(value: str) -> str | None:
    """Why STS would refuse ``value`` as a session tag value, or ``None``."""
    if len(value) > MAX_TAG_VALUE:
        return f"is {len(value)} characters; session tag values allow at most {MAX_TAG_VALUE}"
    for char in value:
        if char not in TAG_PUNCTUATION and unicodedata.category(char)[0] not in "LZN":
            return f"contains {char!r}, which session tags do not allow (letters, digits, spaces, _.:/=+-@)"
    return None


def _name_tags(prefix: str, name: x509.Name) -> dict[str, str]:
    grouped: dict[str, list[str]] = {}
    for attribute in name:
        short = SUPPORTED_RDNS.get(attribute.oid)
        if short is not None and isinstance(attribute.value, str):
            grouped.setdefault(short, []).append(attribute.value)
    return {f"{prefix}/{key}": "/".join(values) for key, values in grouped.items()}


def _san_tags(cert: x509.Certificate) -> dict[str, str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return {}
    tags: dict[str, str] = {}
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    if uris:
        tags[SPIFFE_ID_TAG] = uris[0]
    dns = san.get_values_for_type(x509.DNSName)
    if dns:
        tags["x509SAN/DNS"] = dns[0]
    directories = san.get_values_for_type(x509.DirectoryName)
    if directories:
        tags.update(_name_tags("x509SAN/Name", directories[0]))
    return tags


def map_principal_tags(cert: x509.Certificate) -> TagMapping:
    """AWS's default attribute mapping of ``cert`` into session tags."""
    tags = {
        **_name_tags("x509Subject", cert.subject),
        **_name_tags("x509Issuer", cert.issuer),
        **_san_tags(cert),
    }
    failures = tuple(
        f"{name} {problem}"
        for name, value in tags.items()
        if (problem := tag_value_problem(value)) is not None
    )
    return TagMapping(tags, failures)


def uri_sans(cert: x509.Certificate) -> list[str]:
    """Every URI SAN, in order (only the first is mapped, which matters when there are several)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return list(san.get_values_for_type(x509.UniformResourceIdentifier))
