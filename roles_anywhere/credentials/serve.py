"""``serve``: credentials that keep working while tbot rotates the SVID, over IMDSv2 on 127.0.0.1.

``serve`` answers as EC2's IMDSv2 does, on 127.0.0.1 (``aws_signing_helper serve``'s paths and
rules: a token from ``PUT /latest/api/token`` with a TTL of 1-21,600 s, required on every read;
a token request carrying ``X-Forwarded-For`` is refused; at most 256 live tokens). An application
points its SDK at it with ``AWS_EC2_METADATA_SERVICE_ENDPOINT``. Unlike the Go helper, which reads
the certificate once at start-up, each refresh reads the SVID files again, and a changed SVID (tbot
rotated it) is a reason to refresh, as is expiry within five minutes. When a refresh fails, credentials
that are still valid keep being served.

``update`` (``credentials.update``) keeps a profile of the shared credentials file fresh.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from roles_anywhere.outside_text import one_printable_line

DEFAULT_PORT = 9911
DEFAULT_HOP_LIMIT = 64
REFRESH_BEFORE = timedelta(minutes=5)
MAX_TOKEN_TTL = 21_600
MAX_TOKENS = 256
TOKEN_PATH = "/latest/api/token"  # noqa: S105 - a URL path, not a secret
CREDENTIALS_PATH = "/latest/meta-data/iam/security-credentials"
SVID_POLL_SECONDS = 10.0


def _fingerprint(path: Path) -> str | None:
    from roles_anywhere.credentials.cache import read_regular_file  # noqa: PLC0415

    data = read_regular_file(str(path))  # never blocks on a FIFO or reads a device forever
    return None if data is None else hashlib.sha256(data).hexdigest()


@dataclass
class RefreshingCredentials:
    """The current credentials for one role, fetched again when due; thread-safe."""

    fetch: Callable[[], dict[str, Any]]  # reads the SVID files and calls CreateSession
    certificate: Path
    log: Callable[[str], None]
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    credentials: dict[str, Any] | None = None
    updated: datetime | None = None
    svid: str | None = None
    fetches: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def current(self) -> dict[str, Any]:
        """Fresh credentials; refreshed first when due. Raises when none valid can be had."""
        with self._lock:
            if self._due():
                self._refresh()
            if self.credentials is None or self._expires() <= self.now():
                raise RuntimeError("no valid credentials (see the log)")
            return self.credentials

    def _expires(self) -> datetime:
        assert self.credentials is not None  # noqa: S101 - checked by callers
        return datetime.fromisoformat(str(self.credentials["expiration"]).replace("Z", "+00:00"))

    def _due(self) -> bool:
        if self.credentials is None:
            return True
        if self._expires() - REFRESH_BEFORE <= self.now():
            return True
        return _fingerprint(self.certificate) != self.svid  # tbot rotated the SVID

    def _refresh(self) -> None:
        svid = _fingerprint(self.certificate)
        try:
            credentials = self.fetch()
        except Exception as err:  # noqa: BLE001 - keep serving what is still valid; say why
            self.log(f"refresh failed: {type(err).__name__}: {err}")
            return
        self.credentials, self.updated, self.svid = credentials, self.now(), svid
        self.fetches += 1
        self.log(f"credentials refreshed (until {credentials.get('expiration')})")


@dataclass
class Tokens:
    """IMDSv2 session tokens: random, expiring, at most ``MAX_TOKENS`` alive."""

    now: Callable[[], float] = time.monotonic
    _live: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def issue(self, ttl: int) -> str:
        """A new token valid for ``ttl`` seconds."""
        token = secrets.token_urlsafe(75)  # 100 characters, as the Go helper's
        with self._lock:
            moment = self.now()
            self._live = {t: end for t, end in self._live.items() if end > moment}
            if len(self._live) >= MAX_TOKENS:
                del self._live[min(self._live, key=self._live.__getitem__)]
            self._live[token] = moment + ttl
        return token

    def valid(self, token: str | None) -> bool:
        """Whether ``token`` was issued here and has not expired."""
        if not token:
            return False
        with self._lock:
            end = self._live.get(token)
            return end is not None and end > self.now()


def imds_handler(
    source: RefreshingCredentials, role_name: str, tokens: Tokens
) -> type[BaseHTTPRequestHandler]:
    """The request handler: IMDSv2's token, role-name and credentials paths, nothing else."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "roles-anywhere"
        sys_version = ""
        timeout = 10

        def log_message(self, format: str, *args: Any) -> None:
            return  # one line per request would be noise; refreshes are logged

        def _answer(self, status: int, body: str, content_type: str = "text/plain", **headers: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def do_PUT(self) -> None:
            if self.path.rstrip("/") != TOKEN_PATH:
                self._answer(404, "not found")
                return
            if self.headers.get("X-Forwarded-For") is not None:
                self._answer(400, "unable to process requests with X-Forwarded-For header")
                return
            text = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds") or str(MAX_TOKEN_TTL)
            if not text.isdigit() or not 1 <= int(text) <= MAX_TOKEN_TTL:
                self._answer(400, "invalid token TTL")
                return
            token = tokens.issue(int(text))
            self._answer(200, token, **{"X-aws-ec2-metadata-token-ttl-seconds": text})

        def do_GET(self) -> None:
            path = self.path.rstrip("/")
            if path not in (CREDENTIALS_PATH, f"{CREDENTIALS_PATH}/{role_name}"):
                self._answer(404, "not found")
                return
            if not tokens.valid(self.headers.get("X-aws-ec2-metadata-token")):
                self._answer(401, "unauthorized")
                return
            if path == CREDENTIALS_PATH:
                self._answer(200, role_name)
                return
            try:
                credentials = source.current()
            except RuntimeError as err:
                self._answer(503, str(err))
                return
            document = {
                "Code": "Success",
                "LastUpdated": (source.updated or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "Type": "AWS-HMAC",
                "AccessKeyId": credentials["accessKeyId"],
                "SecretAccessKey": credentials["secretAccessKey"],
                "Token": credentials["sessionToken"],
                "Expiration": credentials["expiration"],
            }
            self._answer(200, json.dumps(document), "application/json")

        def do_POST(self) -> None:
            self._answer(405, "method not allowed")

    return Handler


class HopLimitedServer(ThreadingHTTPServer):
    """127.0.0.1 only; every answer's IP TTL set to the hop limit, as the Go helper does."""

    daemon_threads = True
    hop_limit = DEFAULT_HOP_LIMIT

    def get_request(self) -> tuple[socket.socket, Any]:
        """Accept, then cap the TTL of the connection's packets."""
        connection, address = super().get_request()
        connection.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, self.hop_limit)
        return connection, address


def add_commands(commands: Any, add_credential_flags: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register ``serve``."""
    serve = commands.add_parser("serve", help="an IMDSv2 endpoint on 127.0.0.1 that follows SVID rotation")
    add_credential_flags(serve)
    serve.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}; 0 picks a free one"
    )
    serve.add_argument(
        "--hop-limit", type=int, default=DEFAULT_HOP_LIMIT, help="IP TTL of the answers (default 64)"
    )
    serve.set_defaults(handler=run_serve)


def refreshing_source(args: argparse.Namespace) -> RefreshingCredentials:
    """Credentials for these flags, read from the SVID files at every refresh."""
    from roles_anywhere.credentials.command import session_inputs  # noqa: PLC0415
    from roles_anywhere.credentials.credential_process import create_session, tls_verification  # noqa: PLC0415

    session_inputs(args)  # a bad flag or file is one line now, not a failed refresh later

    def fetch() -> dict[str, Any]:
        verify = tls_verification(args.no_verify_ssl, args.ca_bundle)
        return create_session(session_inputs(args), verify=verify, with_proxy=args.with_proxy)

    def log(message: str) -> None:
        print(
            f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} {one_printable_line(message)}",
            file=sys.stderr,
            flush=True,
        )

    return RefreshingCredentials(fetch=fetch, certificate=args.certificate, log=log)


def run_serve(args: argparse.Namespace) -> int:
    """Serve until SIGTERM or Ctrl-C."""
    from roles_anywhere.errors import ConfigError  # noqa: PLC0415
    from roles_anywhere.signals import stop_on_signals  # noqa: PLC0415

    if not 0 <= args.port <= 65_535:
        raise ConfigError("--port", f"must be 0-65535, got {args.port}")
    if not 1 <= args.hop_limit <= 255:
        raise ConfigError("--hop-limit", f"must be 1-255, got {args.hop_limit}")
    source = refreshing_source(args)
    source.current()  # the first credentials, or a clear failure before listening
    role_name = args.role_arn.rsplit("/", 1)[-1]
    server = HopLimitedServer(("127.0.0.1", args.port), imds_handler(source, role_name, Tokens()))
    server.hop_limit = args.hop_limit
    port = server.server_address[1]
    print(f"export AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:{port}/", flush=True)
    stopping = stop_on_signals()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    while not stopping:
        time.sleep(0.5)
    server.shutdown()
    server.server_close()
    return 0
