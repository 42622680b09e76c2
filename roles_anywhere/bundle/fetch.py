"""Fetch a SPIFFE bundle over HTTPS: verified TLS, no redirects, a hard deadline, a size cap.

TLS is verified against the system trust store (OpenSSL's default paths, which honour
``SSL_CERT_FILE``), or only against ``caBundle.proxyCaFile`` for a proxy with a private certificate.
``HTTPS_PROXY``/``NO_PROXY`` are honoured, so the fetch works from CI runners behind a proxy.
Redirects are refused rather than followed: the configured URL is the one that was reviewed.
"""

from __future__ import annotations

import re
import socket
import ssl
import time
from pathlib import Path

import httpx

from roles_anywhere.errors import BundleError, ConfigError, read_user_bytes

_PRIVATE_KEY = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
PROXY_CA_KEY = "caBundle.proxyCaFile"


def ca_file_context(ca_file: Path, where: str) -> ssl.SSLContext:
    """A TLS context that trusts only the CA certificates in ``ca_file`` (bounded read, no keys).

    Errors are ``ConfigError(where, …)``; a file holding a private key is refused unread further.
    """
    data = read_user_bytes(ca_file, where, 1024 * 1024)
    if _PRIVATE_KEY.search(data):
        raise ConfigError(where, "contains a private key; give the CA certificate only")
    try:
        return ssl.create_default_context(cadata=data.decode("ascii"))
    except (ssl.SSLError, UnicodeDecodeError, ValueError):
        raise ConfigError(where, "not a PEM file of CA certificates") from None


def tls_context(ca_file: Path | None, display: str | None = None) -> ssl.SSLContext:
    """The system trust store, or only the CA certificates in ``ca_file``."""
    if ca_file is None:
        return ssl.create_default_context()
    where = display or str(ca_file)
    try:
        return ca_file_context(ca_file, where)
    except ConfigError as err:
        raise BundleError(PROXY_CA_KEY, f"{where}: {err.message}") from None


def fetch_bundle(
    url: str,
    *,
    key: str,
    ca_file: Path | None,
    ca_file_display: str | None,
    timeout: float,
    max_bytes: int,
) -> bytes:
    """GET ``url`` and return the body of a 200 answer; any other outcome is one clear ``BundleError``."""
    context = tls_context(ca_file, ca_file_display)
    deadline = time.monotonic() + timeout
    try:
        with (
            httpx.Client(verify=context, timeout=httpx.Timeout(timeout), follow_redirects=False) as client,
            client.stream("GET", url, headers={"Accept": "application/json"}) as response,
        ):
            _check_status(response, url, key)
            body = bounded_body(response, max_bytes=max_bytes, deadline=deadline)
            if body is None:
                raise _too_big(url, key, max_bytes)
            return body
    except httpx.TimeoutException:
        raise BundleError(key, f"{url}: no complete answer within {timeout:g} s (caBundle.timeout)") from None
    except httpx.HTTPError as err:
        raise BundleError(key, f"cannot fetch {url}: {_describe(err, ca_file is not None)}") from None


def bounded_body(response: httpx.Response, *, max_bytes: int, deadline: float) -> bytes | None:
    """A streamed answer's body read up to ``max_bytes`` (``None`` past it) and before ``deadline``.

    httpx's timeout applies per read, so a server trickling a byte at a time would never time out;
    the deadline (``time.monotonic()``) bounds the whole body. Past it, ``httpx.ReadTimeout``.
    """
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        return None
    body = bytearray()
    for chunk in response.iter_bytes():
        body.extend(chunk)
        if len(body) > max_bytes:
            return None
        if time.monotonic() > deadline:
            raise httpx.ReadTimeout("deadline passed while reading the body")
    return bytes(body)


def _check_status(response: httpx.Response, url: str, key: str) -> None:
    if response.status_code == 200:
        return
    reason = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
    if response.is_redirect:
        target = response.headers.get("location", "?")
        raise BundleError(
            key, f"{url}: answered {reason}, a redirect to {target}; configure the final https URL instead"
        )
    hint = " (wrong host or path?)" if response.status_code == 404 else ""
    raise BundleError(key, f"{url}: answered {reason}; expected 200 with the SPIFFE bundle{hint}")


def _too_big(url: str, key: str, max_bytes: int) -> BundleError:
    return BundleError(key, f"{url}: the answer is larger than {max_bytes} bytes; not a SPIFFE bundle")


def _describe(err: httpx.HTTPError, private_ca: bool) -> str:
    """The root cause in words: refused, unknown host, untrusted certificate, protocol error."""
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            detail = cause.verify_message or "certificate verify failed"
            hint = (
                "check that caBundle.proxyCaFile holds the CA that issued the proxy's certificate"
                if private_ca
                else "if the proxy uses a private CA, set caBundle.proxyCaFile to that CA's PEM file"
            )
            return f"the server's TLS certificate is not trusted ({detail}); {hint}"
        if isinstance(cause, ssl.SSLError):
            return f"TLS handshake failed ({cause.reason or cause})"
        if isinstance(cause, socket.gaierror):
            return "the host name does not resolve"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused (nothing listens on that port)"
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror.lower()
        cause = cause.__cause__ or cause.__context__
    return str(err) or type(err).__name__
