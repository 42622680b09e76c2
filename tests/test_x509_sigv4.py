"""X.509 SigV4: our canonical request equals botocore's SigV4, and signatures verify only untampered."""

from __future__ import annotations

import hashlib
import urllib.parse
from datetime import UTC, datetime

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given
from hypothesis import strategies as st

from roles_anywhere.credentials.x509_sigv4 import (
    SignatureError,
    canonical_request,
    parse_authorization,
    sign_request,
    string_to_sign,
    verify_signature,
)

from .certs import make_ca, make_svid

CA = make_ca()
SCOPE = "20261121/us-east-1/rolesanywhere/aws4_request"
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
HEADER_VALUE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=30).filter(
    str.strip
)


@given(
    path=st.lists(st.text("abcXYZ-_.~ %/", min_size=1, max_size=8), max_size=3).map(
        lambda p: "/" + "/".join(p)
    ),
    query=st.dictionaries(
        st.text("abc=&+ ", min_size=1, max_size=5), st.text("xyz/: ", max_size=5), max_size=3
    ),
    values=st.lists(HEADER_VALUE, min_size=1, max_size=3),
    body=st.binary(max_size=64),
)
def test_canonical_request_matches_botocore(
    path: str, query: dict[str, str], values: list[str], body: bytes
) -> None:
    headers = {"host": "rolesanywhere.us-east-1.amazonaws.com", "x-amz-date": "20261121T120000Z"}
    headers.update({f"x-test-{i}": value for i, value in enumerate(values)})
    url = "https://rolesanywhere.us-east-1.amazonaws.com" + urllib.parse.quote(path, safe="/")
    encoded_query = urllib.parse.urlencode(query, quote_via=urllib.parse.quote)  # %20, as SigV4 wants
    request = AWSRequest(
        method="POST", url=url + (f"?{encoded_query}" if encoded_query else ""), data=body, headers=headers
    )
    auth = SigV4Auth(Credentials("a", "b"), "rolesanywhere", "us-east-1")
    request.context["timestamp"] = "20261121T120000Z"
    expected = auth.canonical_request(request)
    names = tuple(sorted(headers))
    assert names == tuple(auth.headers_to_sign(request))
    ours = canonical_request("POST", urllib.parse.urlsplit(url).path, encoded_query, headers, names, body)
    assert ours == expected


@pytest.mark.parametrize("key_kind", ["ec-p256", "ec-p384", "rsa-2048"])
def test_sign_then_verify_and_tamper(key_kind: str) -> None:
    svid = make_svid(CA, "spiffe://example.teleport.sh/svc/a", key_kind=key_kind)
    url = "https://127.0.0.1:8443/sessions"
    body = b'{"durationSeconds": 3600}'
    headers = sign_request(
        method="POST",
        url=url,
        headers={"Content-Type": "application/json", "X-Amz-X509": "leaf"},
        body=body,
        certificate=svid.certificate,
        key=svid.key,
        region="us-east-1",
        now=NOW,
    )
    authorization = parse_authorization(headers["Authorization"])
    assert authorization.serial == svid.certificate.serial_number
    assert authorization.scope == "20261121/us-east-1/rolesanywhere/aws4_request"
    assert authorization.algorithm == (
        "AWS4-X509-RSA-SHA256" if key_kind.startswith("rsa") else "AWS4-X509-ECDSA-SHA256"
    )
    assert authorization.signed_headers == ("content-type", "host", "x-amz-date", "x-amz-x509")

    def verify(**changes: object) -> None:
        arguments: dict[str, object] = {
            "method": "POST",
            "path": "/sessions",
            "query": "",
            "headers": headers,
            "body": body,
        }
        arguments.update(changes)
        verify_signature(authorization, certificate=svid.certificate, **arguments)  # type: ignore[arg-type]

    verify()
    for changes in (
        {"body": body + b" "},
        {"headers": {**headers, "X-Amz-X509": "other"}},
        {"path": "/sessions/"},
        {"query": "a=b"},
        {"method": "PUT"},
    ):
        with pytest.raises(SignatureError, match="does not verify"):
            verify(**changes)
    other = make_svid(CA, "spiffe://example.teleport.sh/svc/a", key_kind=key_kind)
    with pytest.raises(SignatureError, match="serial number"):
        verify_signature(
            authorization,
            certificate=other.certificate,
            method="POST",
            path="/sessions",
            query="",
            headers=headers,
            body=body,
        )


def test_signed_headers_must_cover_the_certificate() -> None:
    authorization = parse_authorization(
        "AWS4-X509-ECDSA-SHA256 Credential=1/20261121/us-east-1/rolesanywhere/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=00"
    )
    with pytest.raises(SignatureError, match="SignedHeaders lacks x-amz-x509"):
        verify_signature(
            authorization, certificate=CA.certificate, method="POST", path="/", query="", headers={}, body=b""
        )


@pytest.mark.parametrize(
    "header",
    [
        f"AWS4-HMAC-SHA256 Credential=AKIA/{SCOPE}, SignedHeaders=host, Signature=00",
        f"AWS4-X509-RSA-SHA256 Credential=12ab/{SCOPE}, SignedHeaders=host, Signature=00",
        "",
    ],
)
def test_malformed_authorization(header: str) -> None:
    with pytest.raises(SignatureError, match="not an AWS4-X509 signature"):
        parse_authorization(header)


def test_string_to_sign_shape() -> None:
    text = string_to_sign(
        "AWS4-X509-RSA-SHA256", "20261121T120000Z", "20261121/r/rolesanywhere/aws4_request", "c"
    )
    assert text.splitlines() == [
        "AWS4-X509-RSA-SHA256",
        "20261121T120000Z",
        "20261121/r/rolesanywhere/aws4_request",
        hashlib.sha256(b"c").hexdigest(),
    ]
