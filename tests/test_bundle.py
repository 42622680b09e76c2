"""CA bundle validation: every way a bundle can be unusable as a trust anchor, generated for real."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from roles_anywhere.bundle.ca_bundle import load_bundle_file, parse_pem_bundle
from roles_anywhere.errors import BundleError

from .certs import NOW, make_ca, pem_of, with_weak_signature

KEY = "caBundle.pem"


def parse(text: str) -> object:
    return parse_pem_bundle(text, key=KEY, now=NOW)


def refused(text: str) -> str:
    with pytest.raises(BundleError) as raised:
        parse_pem_bundle(text, key=KEY, now=NOW)
    assert raised.value.key == KEY
    return raised.value.message


@pytest.mark.parametrize(
    ("kind", "description"),
    [("ec-p256", "EC P-256"), ("ec-p384", "EC P-384"), ("rsa-2048", "RSA-2048"), ("rsa-3072", "RSA-3072")],
)
def test_teleport_shaped_cas_are_accepted(kind: str, description: str) -> None:
    ca = make_ca(key_kind=kind)
    bundle = parse_pem_bundle(ca.pem, key=KEY, now=NOW)
    (cert,) = bundle.certificates
    assert cert.key_description == description
    assert cert.subject == "CN=example.teleport.sh,O=example.teleport.sh"
    assert bundle.pem == ca.pem
    assert bundle.warnings == ()


def test_rotation_bundle_of_two_is_accepted_in_a_stable_order() -> None:
    old = make_ca(not_before=NOW - timedelta(days=900), serial=1)
    new = make_ca(not_before=NOW - timedelta(days=1), serial=2)
    one = parse_pem_bundle(old.pem + new.pem, key=KEY, now=NOW)
    other = parse_pem_bundle(new.pem + old.pem, key=KEY, now=NOW)
    assert one.pem == other.pem == old.pem + new.pem


def test_duplicates_are_removed_before_counting() -> None:
    ca = make_ca()
    bundle = parse_pem_bundle(ca.pem + ca.pem + ca.pem, key=KEY, now=NOW)
    assert len(bundle.certificates) == 1


def test_text_around_blocks_is_ignored_and_output_is_canonical() -> None:
    ca = make_ca()
    text = "subject=CN=example\n" + ca.pem.replace("\n", "\r\n") + "\ntrailing notes\n"
    assert parse_pem_bundle(text, key=KEY, now=NOW).pem == ca.pem


def test_more_than_two_certificates() -> None:
    message = refused(pem_of(*(make_ca(serial=i).certificate for i in range(1, 4))))
    assert message.startswith(
        "holds 3 distinct certificates; a Roles Anywhere trust anchor accepts at most 2"
    )


@pytest.mark.parametrize(
    "label",
    ["PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "OPENSSH PRIVATE KEY"],
)
def test_private_keys_are_refused_without_echoing_them(label: str) -> None:
    ca = make_ca()
    secret_body = ca.key_pem.splitlines()[1]
    key_block = ca.key_pem.replace("PRIVATE KEY", label)
    message = refused(ca.pem + key_block)
    assert message.startswith("contains a private key; refusing it")
    assert secret_body not in message
    assert "BEGIN" not in message


def test_a_private_key_with_no_end_line_is_still_refused() -> None:
    assert refused(
        make_ca().pem + "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC"
    ).startswith("contains a private key")


def test_not_pem() -> None:
    assert (
        refused("hello, I am not a certificate\n") == "not PEM: no '-----BEGIN CERTIFICATE-----' block found"
    )
    assert refused("") == "not PEM: no '-----BEGIN CERTIFICATE-----' block found"


def test_a_block_that_is_not_a_certificate() -> None:
    public_key = (
        "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n"
    )
    assert refused(make_ca().pem + public_key) == "block 2 is a 'PUBLIC KEY', not a CERTIFICATE"


@pytest.mark.parametrize("body", ["bm90IGEgY2VydA==", "!!!not base64!!!", ""])
def test_a_certificate_block_with_garbage_inside(body: str) -> None:
    text = f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"
    assert refused(text) == "block 1 is not a valid X.509 certificate"


SUBJECT = "certificate 1 (CN=example.teleport.sh,O=example.teleport.sh)"


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"ca": False}, "is not a CA: basicConstraints says CA:FALSE"),
        ({"ca": None}, "is not a CA: basicConstraints CA:TRUE is missing"),
        ({"key_cert_sign": False}, "keyUsage lacks keyCertSign, so it cannot sign SVIDs"),
        ({"key_cert_sign": None}, "has no keyUsage extension; a CA needs keyCertSign"),
        ({"key_kind": "rsa-1024"}, "has an RSA-1024 key; at least RSA-2048 is required"),
        ({"key_kind": "ec-p521"}, "uses EC curve secp521r1; only P-256 and P-384 are accepted"),
        ({"key_kind": "ec-k256"}, "uses EC curve secp256k1; only P-256 and P-384 are accepted"),
        ({"key_kind": "ed25519"}, "has an Ed25519 key; use RSA (≥ 2048 bits) or EC P-256/P-384"),
        (
            {"key_kind": "rsa-2048", "digest": hashes.SHA224()},
            "is signed with SHA224; IAM Roles Anywhere requires",
        ),
        ({"not_after": NOW - timedelta(seconds=1)}, "expired on 2026-11-21 11:59 UTC"),
        ({"not_before": NOW + timedelta(days=2)}, "is not valid until 2026-11-23 12:00 UTC"),
    ],
)
def test_unusable_ca_certificates(options: dict[str, object], problem: str) -> None:
    message = refused(make_ca(**options).pem)  # type: ignore[arg-type]
    assert message.startswith(f"{SUBJECT}: {problem}")


@pytest.mark.parametrize("algorithm", ["SHA1", "MD5"])
def test_weak_signature_hashes(algorithm: str) -> None:
    weak = with_weak_signature(make_ca(key_kind="rsa-2048"), algorithm)
    assert refused(pem_of(weak)) == (
        f"{SUBJECT}: is signed with {algorithm}; IAM Roles Anywhere requires SHA-256 or stronger"
    )


def test_the_second_certificate_is_named_when_it_is_the_bad_one() -> None:
    good, bad = make_ca(serial=1), make_ca(serial=2, ca=False)
    assert refused(good.pem + bad.pem).startswith("certificate 2 (CN=example.teleport.sh")


def test_more_than_8000_characters() -> None:
    padding = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x04" * 3500)
    big = []
    for serial in (1, 2):
        ca = make_ca(serial=serial)
        builder = (
            x509.CertificateBuilder()
            .subject_name(ca.certificate.subject)
            .issuer_name(ca.certificate.issuer)
            .public_key(ca.key.public_key())
            .serial_number(serial)
            .not_valid_before(ca.certificate.not_valid_before_utc)
            .not_valid_after(ca.certificate.not_valid_after_utc)
        )
        for extension in ca.certificate.extensions:
            builder = builder.add_extension(extension.value, extension.critical)
        big.append(builder.add_extension(padding, critical=False).sign(ca.key, hashes.SHA256()))
    message = refused(pem_of(*big))
    assert "characters as PEM; a trust anchor accepts at most 8000" in message


def test_expiring_soon_is_a_warning_not_an_error() -> None:
    bundle = parse_pem_bundle(make_ca(not_after=NOW + timedelta(days=10)).pem, key=KEY, now=NOW)
    (warning,) = bundle.warnings
    assert warning.startswith(
        "caBundle.pem: CA CN=example.teleport.sh,O=example.teleport.sh expires on 2026-12-01"
    )
    assert "(in 10 days)" in warning
    no_warning = parse_pem_bundle(make_ca(not_after=NOW + timedelta(days=46)).pem, key=KEY, now=NOW)
    assert no_warning.warnings == ()


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    def file_error(path: Path) -> str:
        with pytest.raises(BundleError) as raised:
            load_bundle_file(path, key="caBundle.file", display="ca/spiffe.pem", now=NOW)
        return str(raised.value)

    assert file_error(tmp_path / "missing.pem") == "caBundle.file: ca/spiffe.pem: file not found"
    assert file_error(tmp_path) == "caBundle.file: ca/spiffe.pem: not a regular file"
    der = tmp_path / "ca.der"
    der.write_bytes(bytes(range(256)))
    assert file_error(der) == (
        "caBundle.file: ca/spiffe.pem: is neither PEM nor SPIFFE bundle JSON (binary, or not UTF-8 text)"
    )
    good = tmp_path / "ca.pem"
    good.write_text(make_ca().pem)
    assert len(load_bundle_file(good, key="caBundle.file", display="x", now=NOW).certificates) == 1
