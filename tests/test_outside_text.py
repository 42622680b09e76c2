"""Outside text is printed inert: no control characters, and no key material however it is dressed."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import given
from hypothesis import strategies as st

from roles_anywhere.outside_text import one_printable_line, printable_lines

PKCS8 = serialization.PrivateFormat.PKCS8
TRADITIONAL = serialization.PrivateFormat.TraditionalOpenSSL
KEYS = {
    "ec-pkcs8": (ec.generate_private_key(ec.SECP256R1()), PKCS8),
    "ec-sec1": (ec.generate_private_key(ec.SECP384R1()), TRADITIONAL),
    "rsa-pkcs8": (rsa.generate_private_key(65537, 2048), PKCS8),
    "rsa-pkcs1": (rsa.generate_private_key(65537, 2048), TRADITIONAL),
    "ed25519": (ed25519.Ed25519PrivateKey.generate(), PKCS8),
}


def _der(name: str) -> bytes:
    key, form = KEYS[name]
    return key.private_bytes(serialization.Encoding.DER, form, serialization.NoEncryption())


def _dressings(der: bytes) -> dict[str, str]:
    body = base64.b64encode(der).decode()
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return {
        "one run": body,
        "pem lines without header": lines,
        "inside a sentence": f"could not parse {body} as a bundle",
        "raw der": der.decode("latin-1"),
        "pem block": f"-----BEGIN PRIVATE KEY-----\n{lines}\n-----END PRIVATE KEY-----",
        "pem cut before its end": f"-----BEGIN EC PRIVATE KEY-----\n{lines[:70]}",
    }


@pytest.mark.parametrize("key", sorted(KEYS))
def test_key_material_is_never_printed_however_it_is_dressed(key: str) -> None:
    der = _der(key)
    body = base64.b64encode(der).decode()
    for dressing, text in _dressings(der).items():
        shown = one_printable_line(f"error from the server: {text}")
        assert shown.startswith("error from the server: "), dressing
        assert "not shown" in shown, dressing
        for start in range(0, len(body) - 16, 8):
            assert body[start : start + 16] not in shown, (dressing, shown)
        assert der[8:24].decode("latin-1") not in shown, dressing


def test_ordinary_diagnostics_are_kept_whole() -> None:
    text = (
        "curl: (7) Failed to connect to proxy.example.com port 443 after 3 ms: /usr/local/lib/python3.11 "
        "sha256 " + "ab" * 32 + " CN=Teleport SPIFFE CA, O=example.teleport.sh"
    )
    assert one_printable_line(text) == text


def test_a_long_base64_run_is_not_shown_even_without_structure() -> None:
    """A key cut in the middle has no DER header left, so length alone hides it."""
    body = base64.b64encode(_der("rsa-pkcs8")).decode()[400:700]
    assert one_printable_line(f"x {body} y") == "x [base64 data not shown] y"


@given(st.text())
def test_any_text_becomes_one_line_without_control_characters(text: str) -> None:
    shown = one_printable_line(text)
    assert all(c.isprintable() for c in shown)


@given(st.text())
def test_reports_keep_their_lines_and_lose_every_other_control_character(text: str) -> None:
    shown = printable_lines(text)
    assert shown.count("\n") == text.count("\n")
    assert all(c.isprintable() for c in shown.replace("\n", ""))


@pytest.mark.parametrize("width", [12, 16, 30, 60, 64])
def test_a_key_split_into_pieces_is_not_shown_from_any_piece(width: int) -> None:
    """repr() of a key over lines shows "\\n" between pieces; a list shows "', '"; middles have no header."""
    body = base64.b64encode(_der("rsa-pkcs8")).decode()
    pieces = [body[i : i + width] for i in range(0, len(body), width)]
    for text in (
        repr("\n".join(pieces)),
        repr(pieces),
        " | ".join(pieces),
        repr(pieces[3:]),
        repr(pieces[5:10]),
    ):
        shown = one_printable_line(f"error: workloads.orders.users: {text} is not a user name")
        assert shown.startswith("error: workloads.orders.users: ")
        assert not any(body[i : i + 16] in shown for i in range(len(body) - 16)), shown
