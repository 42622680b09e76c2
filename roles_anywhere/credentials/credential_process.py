"""``roles-anywhere credential-process``: the AWS CLI's ``credential_process``, in Python.

Flag-compatible with ``aws_signing_helper credential-process`` for the flags Teleport workloads use,
for hosts where the Go binary does not run (musl/Alpine, old glibc). It reads the SVID files on
every call (tbot rotates them in place), signs CreateSession with the SVID's key (``x509_sigv4``)
and prints the ``Version: 1`` JSON the AWS SDKs read. Credentials are printed only on stdout.
"""

from __future__ import annotations

import base64
import json
import ssl
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from roles_anywhere.bundle.fetch import bounded_body, ca_file_context
from roles_anywhere.bundle.x509_parsing import parse_certificates
from roles_anywhere.credentials.cache import CREDENTIAL_FIELDS
from roles_anywhere.credentials.x509_sigv4 import sign_request
from roles_anywhere.errors import ConfigError, load_json, read_user_bytes
from roles_anywhere.iam.arns import PROFILE_ARN, ROLE_ARN, TRUST_ANCHOR_ARN

DEFAULT_SESSION_SECONDS = 3_600
REQUEST_TIMEOUT = 30.0
MAX_RSA_BITS = 8_192
MAX_ANSWER_BYTES = 256 * 1024  # a CreateSession answer is a few kilobytes
MAX_MESSAGE_CHARACTERS = 500
try:  # cryptography reads ML-DSA keys since 47; older ones call them "not a PEM private key"
    from cryptography.hazmat.primitives.asymmetric import mldsa

    ML_DSA_KEYS: tuple[type, ...] = (
        mldsa.MLDSA44PrivateKey,
        mldsa.MLDSA65PrivateKey,
        mldsa.MLDSA87PrivateKey,
    )
except ImportError:  # pragma: no cover - older cryptography
    ML_DSA_KEYS = ()


class SessionRefusedError(Exception):
    """CreateSession answered with an error: the service's code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"CreateSession refused (HTTP {status} {code}): {message}")
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class SessionRequest:
    """Everything one CreateSession call needs, read and checked."""

    certificate: x509.Certificate
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    intermediates: tuple[x509.Certificate, ...]
    trust_anchor_arn: str
    profile_arn: str
    role_arn: str
    session_duration: int = DEFAULT_SESSION_SECONDS
    role_session_name: str | None = None
    region: str = ""
    endpoint: str = ""

    def body(self) -> bytes:
        """The JSON body: duration and the three ARNs (and the session name if asked for)."""
        document: dict[str, Any] = {
            "durationSeconds": self.session_duration,
            "profileArn": self.profile_arn,
            "roleArn": self.role_arn,
            "trustAnchorArn": self.trust_anchor_arn,
        }
        if self.role_session_name is not None:
            document["roleSessionName"] = self.role_session_name
        return json.dumps(document).encode()


def _der_b64(certificate: x509.Certificate) -> str:
    return base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()


MAX_CREDENTIAL_FILE_BYTES = 1024 * 1024  # an SVID, its key or a chain is a few kilobytes


def load_certificate_file(path: Path, option: str) -> list[x509.Certificate]:
    """Every certificate in a PEM (or DER) file; a private key in it is refused unread."""
    where = f"{option} {path}"
    data = read_user_bytes(path, where, MAX_CREDENTIAL_FILE_BYTES)
    if b"PRIVATE KEY-----" in data:
        raise ConfigError(where, "contains a private key; give the certificate file only")
    try:
        return parse_certificates(data)
    except ValueError as err:
        raise ConfigError(where, str(err)) from None


def load_private_key(
    path: Path, password: str | None = None
) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    """The SVID's key: PEM (PKCS#8, PKCS#1 or SEC1), RSA or EC, encrypted only with ``password``.

    Never echoed.
    """
    where = f"--private-key {path}"
    data = read_user_bytes(path, where, MAX_CREDENTIAL_FILE_BYTES)
    try:
        # Validating an RSA key costs seconds at 16,384 bits (31 s measured); the size is capped below
        # and the key must match the certificate, so the costly self-check adds nothing here.
        key = serialization.load_pem_private_key(
            data, password=password.encode() if password else None, unsafe_skip_rsa_key_validation=True
        )
    except TypeError:
        if password:
            raise ConfigError(where, "is not encrypted; drop --pkcs8-password") from None
        raise ConfigError(
            where, "is encrypted; give --pkcs8-password (tbot and tsh write unencrypted keys)"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        reason = (
            "is not a PEM private key, or --pkcs8-password does not open it"
            if password
            else "is not a PEM private key"
        )
        raise ConfigError(where, reason) from None
    if isinstance(key, ML_DSA_KEYS):
        raise ConfigError(
            where,
            "is an ML-DSA key; roles-anywhere signs with RSA and EC keys (what Teleport issues), "
            "aws_signing_helper 1.8.0 or later with ML-DSA: use it for this key",
        )
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise ConfigError(where, "is neither an RSA nor an EC key")
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size > MAX_RSA_BITS:
        raise ConfigError(where, f"is a {key.key_size}-bit RSA key; at most {MAX_RSA_BITS} bits are accepted")
    return key


def _arn(value: str, pattern: Any, option: str) -> str:
    if not pattern.fullmatch(value):
        raise ConfigError(option, f"{value!r} is not a valid ARN for this option")
    return value


def build_request(
    *,
    certificate: Path,
    private_key: Path,
    intermediates: Path | None,
    trust_anchor_arn: str,
    profile_arn: str,
    role_arn: str,
    session_duration: int = DEFAULT_SESSION_SECONDS,
    role_session_name: str | None = None,
    region: str | None = None,
    endpoint: str | None = None,
    key_password: str | None = None,
) -> SessionRequest:
    """Read the files and check the flags; a mistake is a one-line ``ConfigError`` naming the flag."""
    anchor = TRUST_ANCHOR_ARN.fullmatch(trust_anchor_arn)
    if anchor is None:
        raise ConfigError("--trust-anchor-arn", f"{trust_anchor_arn!r} is not a trust anchor ARN")
    _arn(profile_arn, PROFILE_ARN, "--profile-arn")
    _arn(role_arn, ROLE_ARN, "--role-arn")
    if not 900 <= session_duration <= 43_200:
        raise ConfigError("--session-duration", f"must be 900-43200 seconds, got {session_duration}")
    leaf = load_certificate_file(certificate, "--certificate")[0]
    key = load_private_key(private_key, key_password)
    try:
        leaf_key = leaf.public_key()
    except (ValueError, UnsupportedAlgorithm):
        raise ConfigError(
            f"--certificate {certificate}", "holds a public key of an unsupported type"
        ) from None
    if leaf_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        raise ConfigError("--private-key", f"{private_key} is not the key of the certificate {certificate}")
    chain = tuple(load_certificate_file(intermediates, "--intermediates")) if intermediates else ()
    region = region or anchor["region"]
    suffix = "amazonaws.com.cn" if anchor["partition"] == "aws-cn" else "amazonaws.com"
    endpoint = (endpoint or f"https://rolesanywhere.{region}.{suffix}").rstrip("/")
    if "://" not in endpoint:
        endpoint = f"https://{endpoint}"
    if not endpoint.startswith("https://"):
        raise ConfigError("--endpoint", f"{endpoint!r} must be an https:// URL")
    try:
        if not endpoint.isprintable() or not httpx.URL(endpoint).host:
            raise ValueError(endpoint)
    except (ValueError, httpx.InvalidURL):
        raise ConfigError("--endpoint", f"{endpoint!r} is not a valid URL") from None
    return SessionRequest(
        certificate=leaf,
        key=key,
        intermediates=chain,
        trust_anchor_arn=trust_anchor_arn,
        profile_arn=profile_arn,
        role_arn=role_arn,
        session_duration=session_duration,
        role_session_name=role_session_name,
        region=region,
        endpoint=endpoint,
    )


def tls_verification(no_verify_ssl: bool, ca_bundle: Path | None) -> ssl.SSLContext | bool:
    """``False`` for ``--no-verify-ssl``, only ``--ca-bundle``'s CAs, or the system store.

    The credential cache keys each answer by this choice (``cache.cache_key``: ``none``, the bundle's
    digest, or ``system`` with ``SSL_CERT_FILE``/``SSL_CERT_DIR``, which OpenSSL's default store
    obeys); a change here must be made there too.
    """
    if no_verify_ssl:
        return False
    if ca_bundle is None:
        return ssl.create_default_context()
    return ca_file_context(ca_bundle, f"--ca-bundle {ca_bundle}")


def create_session(
    request: SessionRequest, *, verify: ssl.SSLContext | bool, with_proxy: bool = False
) -> dict[str, Any]:
    """POST /sessions, signed; return the first credential set, or raise ``SessionRefusedError``."""
    url = f"{request.endpoint}/sessions"
    body = request.body()
    headers = {"Content-Type": "application/json", "X-Amz-X509": _der_b64(request.certificate)}
    if request.intermediates:
        headers["X-Amz-X509-Chain"] = ",".join(_der_b64(c) for c in request.intermediates)
    signed = sign_request(
        method="POST",
        url=url,
        headers=headers,
        body=body,
        certificate=request.certificate,
        key=request.key,
        region=request.region,
    )
    status, error_type, answer = _post(url, body, signed, verify, with_proxy=with_proxy)
    if status >= 300:
        text = answer.decode("utf-8", errors="replace")
        try:
            document = load_json(text)
            message = str(document.get("message") or document.get("Message") or text)
        except (ValueError, AttributeError):
            message = text.strip() or "(empty answer)"
        code = error_type.split(":")[0][:100] or "UnknownError"
        raise SessionRefusedError(status, code, message[:MAX_MESSAGE_CHARACTERS])
    try:
        credentials = dict(load_json(answer.decode("utf-8"))["credentialSet"][0]["credentials"])
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        raise SessionRefusedError(status, "InvalidResponse", "no credentialSet in the answer") from None
    lacking = [name for name in CREDENTIAL_FIELDS if not isinstance(credentials.get(name), str)]
    if lacking:
        raise SessionRefusedError(
            status, "InvalidResponse", f"the credentials have no text {', '.join(lacking)}"
        )
    try:  # serve, update and the cache all compute with it
        expiration = datetime.fromisoformat(credentials["expiration"].replace("Z", "+00:00"))
        if expiration.tzinfo is None:
            raise ValueError(expiration)
    except ValueError:
        raise SessionRefusedError(
            status, "InvalidResponse", "the credentials' expiration is not an ISO 8601 time with a zone"
        ) from None
    return credentials


def _post(
    url: str, body: bytes, headers: dict[str, str], verify: ssl.SSLContext | bool, *, with_proxy: bool = False
) -> tuple[int, str, bytes]:
    """POST; the status, error-type header and body, read within ``REQUEST_TIMEOUT`` in all.

    The body is capped at ``MAX_ANSWER_BYTES``: a server that never stops sending is cut off.
    """
    deadline = time.monotonic() + REQUEST_TIMEOUT
    try:
        with (
            # HTTPS_PROXY & co. only with --with-proxy, as aws_signing_helper does
            httpx.Client(
                verify=verify, timeout=REQUEST_TIMEOUT, follow_redirects=False, trust_env=with_proxy
            ) as client,
            client.stream("POST", url, content=body, headers=headers) as response,
        ):
            answer = bounded_body(response, max_bytes=MAX_ANSWER_BYTES, deadline=deadline)
            if answer is None:
                raise ConfigError("--endpoint", f"{url}: the answer is larger than {MAX_ANSWER_BYTES} bytes")
            return response.status_code, response.headers.get("x-amzn-errortype", ""), answer
    except httpx.TimeoutException:
        raise ConfigError("--endpoint", f"{url}: no complete answer within {REQUEST_TIMEOUT:g} s") from None
    except httpx.HTTPError as err:
        raise ConfigError("--endpoint", f"cannot reach {url}: {err}") from None
