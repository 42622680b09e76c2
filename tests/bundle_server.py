"""A Teleport-proxy look-alike on 127.0.0.1: serves ``/webapi/spiffe/bundle.json`` over real TLS.

The server's certificate comes from a throwaway TLS CA generated here, so tests choose whether the
client trusts it (``proxyCaFile``, ``SSL_CERT_FILE``) or not. Each path answers what the test sets:
a status, a body, a delay before the headers, or a body trickled slower than the client's deadline.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from .certs import Issued, key_usage, make_ca

BUNDLE_PATH = "/webapi/spiffe/bundle.json"


def _b64url(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8 or 1, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwk(certificate: x509.Certificate, use: str = "x509-svid", **overrides: Any) -> dict[str, Any]:
    """A JWK as go-spiffe marshals a bundle authority: key parameters, ``use`` and ``x5c``."""
    public_key = certificate.public_key()
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        numbers = public_key.public_numbers()
        curve = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}[public_key.curve.name]
        key: dict[str, Any] = {
            "kty": "EC",
            "crv": curve,
            "x": _b64url(numbers.x),
            "y": _b64url(numbers.y),
        }
    elif isinstance(public_key, rsa.RSAPublicKey):
        rsa_numbers = public_key.public_numbers()
        key = {"kty": "RSA", "n": _b64url(rsa_numbers.n), "e": _b64url(rsa_numbers.e)}
    else:  # pragma: no cover - tests only use RSA and EC
        raise TypeError(type(public_key))
    key["use"] = use
    key["x5c"] = [base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()]
    key.update(overrides)
    return key


def bundle_json(*authorities: Issued, extra_keys: tuple[dict[str, Any], ...] = ()) -> str:
    """A SPIFFE bundle as Teleport's proxy serves it: X.509 authorities, JWT keys, sequence and hint."""
    keys = [jwk(issued.certificate) for issued in authorities] + list(extra_keys)
    return json.dumps({"keys": keys, "spiffe_sequence": 1, "spiffe_refresh_hint": 300}, indent=2)


def jwt_key(issued: Issued) -> dict[str, Any]:
    """A ``jwt-svid`` key like the ones Teleport publishes beside its X.509 authorities."""
    key = jwk(issued.certificate, use="jwt-svid", kid="jwt-key-1")
    del key["x5c"]
    return key


@dataclass
class Answer:
    """What one path answers."""

    status: int = 200
    body: bytes = b""
    delay: float = 0.0
    chunk_delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


def make_tls_identity(folder: Path, name: str = "tls") -> tuple[Path, Path, Path]:
    """A TLS CA and a server certificate for 127.0.0.1/localhost: (ca.pem, server.pem, server.key)."""
    ca = make_ca(f"{name} test CA", not_before=datetime.now(UTC) - timedelta(days=1))
    server_key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca.certificate.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH]), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    paths = folder / f"{name}-ca.pem", folder / f"{name}-server.pem", folder / f"{name}-server.key"
    paths[0].write_text(ca.pem)
    paths[1].write_text(Issued(server, server_key).pem)
    paths[2].write_text(Issued(server, server_key).key_pem)
    return paths


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        answer = self.server.answers.get(self.path, Answer(404, b"not found"))
        self.server.requests.append(self.path)
        if answer.delay and self.server.stopping.wait(answer.delay):
            return
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if not answer.chunk_delay:
            self.wfile.write(answer.body)
            return
        for offset in range(len(answer.body)):
            if self.server.stopping.wait(answer.chunk_delay):
                return
            self.wfile.write(answer.body[offset : offset + 1])
            self.wfile.flush()

    def do_POST(self) -> None:
        """The same answers for POST (a CreateSession look-alike); the request body is read and dropped."""
        length = self.headers.get("Content-Length", "0")
        self.rfile.read(int(length) if length.isdigit() else 0)
        self.do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    answers: dict[str, Answer]
    requests: list[str]
    stopping: threading.Event

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that refuse our certificate abort the handshake: expected, not noise


class BundleServer:
    """A started HTTPS server on 127.0.0.1 with a random free port; ``close`` stops it."""

    def __init__(self, folder: Path) -> None:
        self.ca_file, certificate, key = make_tls_identity(folder)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificate, key)
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._server.answers = {}
        self._server.requests = []
        self._server.stopping = threading.Event()
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``: what ``caBundle.proxy`` takes."""
        return f"127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        """The bundle URL a Teleport proxy at ``address`` serves."""
        return f"https://{self.address}{BUNDLE_PATH}"

    @property
    def requests(self) -> list[str]:
        return self._server.requests

    def serve(self, body: str | bytes, *, path: str = BUNDLE_PATH, **answer: Any) -> None:
        data = body.encode() if isinstance(body, str) else body
        self._server.answers[path] = Answer(body=data, **answer)

    def close(self) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def running_server(folder: Path) -> Iterator[BundleServer]:
    """Generator for a pytest fixture: the server runs for one test and is always stopped."""
    server = BundleServer(folder)
    try:
        yield server
    finally:
        server.close()
