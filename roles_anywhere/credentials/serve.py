"""``serve``: credentials that keep working while tbot rotates the SVID, over IMDSv2 on 127.0.0.1.

``serve`` answers as EC2's IMDSv2 does, on 127.0.0.1 (``aws_signing_helper serve``'s paths and
rules: a token from ``PUT /latest/api/token`` with a TTL of 1-21,600 s, required on every read;
a token request carrying ``X-Forwarded-For`` is refused; at most 256 live tokens). An application
points its SDK at it with ``AWS_EC2_METADATA_SERVICE_ENDPOINT``. Each refresh reads the SVID files
again, and a changed SVID (tbot rotated it) is a reason to refresh, as is expiry within five minutes.

Beyond the Go helper, for a service that sits next to browsers and other users' processes:
- **DNS rebinding.** A web page whose name is rebound to 127.0.0.1 can make a browser send the token
  ``PUT`` (no CORS preflight for it) and read the answers. Only ``Host: 127.0.0.1:<port>``,
  ``localhost:<port>`` or ``[::1]:<port>`` is answered, and any request carrying ``Origin`` or a
  ``Sec-Fetch-*`` header (browsers send them; SDKs never do) is refused.
- **No client waits on AWS.** Refreshes run in a background thread, one at a time, never holding the
  lock the request handlers take; while valid credentials are held they are answered at once, and a
  failed refresh is retried with exponential back-off (1 s doubling to 5 min), not per request.
- **Nothing from an expired SVID.** Once the SVID the credentials came from has expired, or the
  credentials themselves, the answer is 503 with the reason, as the credential cache does.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
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
PROC_NET_TCP = "/proc/net/tcp"
FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 300.0
MIN_REFRESH_SECONDS = 30.0  # between two successful refreshes, unless tbot wrote a new SVID
MAX_CONNECTIONS = 64  # open at once; beyond it the oldest is dropped (a slow client cannot hold them all)
CONNECTION_SECONDS = 5.0  # the longest a connection may stay open: an IMDS request takes milliseconds
REFUSALS_LOG_SECONDS = 60.0
REQUEST_WAIT_SECONDS = 0.5  # how long a request without valid credentials waits for a refresh in flight
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"


class CredentialsUnavailableError(RuntimeError):
    """No valid credentials can be answered now; the message says why."""


@dataclass(frozen=True)
class Fetched:
    """One CreateSession answer and the end of the SVID it was obtained with."""

    credentials: dict[str, Any]
    svid_not_after: datetime


def _fingerprint(path: Path) -> str | None:
    from roles_anywhere.credentials.cache import read_regular_file  # noqa: PLC0415

    data = read_regular_file(str(path))  # never blocks on a FIFO or reads a device forever
    return None if data is None else hashlib.sha256(data).hexdigest()


def _expiration(credentials: dict[str, Any]) -> datetime:
    moment = datetime.fromisoformat(str(credentials["expiration"]).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class RefreshingCredentials:
    """The current credentials for one role, refreshed when due; thread-safe.

    The lock guards only the fields: no file read or network call is made while holding it, so a
    slow or failing endpoint never makes a reader wait for the lock.
    """

    fetch: Callable[[], Fetched]  # reads the SVID files and calls CreateSession
    certificate: Path
    log: Callable[[str], None]
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    monotonic: Callable[[], float] = time.monotonic
    credentials: dict[str, Any] | None = None
    svid_not_after: datetime | None = None
    updated: datetime | None = None
    svid: str | None = None
    fetches: int = 0
    failures: int = 0
    retry_at: float = 0.0
    retry_svid: str | None = None  # the SVID the back-off applies to: a new one is tried at once
    _refreshing: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _finished: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self._finished = threading.Condition(self._lock)

    def prime(self) -> None:
        """The first credentials, fetched now; whatever fails is raised (a clear error at start-up)."""
        svid = _fingerprint(self.certificate)
        fetched = self.fetch()
        with self._lock:
            message = self._keep(fetched, svid)
        self.log(message)

    def current(self) -> dict[str, Any]:
        """Fresh credentials, refreshing first (and waiting for it) when due: for ``update``."""
        if self._start_refresh_if_due():
            self._run_refresh()
        with self._lock:
            while self._refreshing:
                self._finished.wait()
            return self._usable()

    def for_request(self, wait: float = REQUEST_WAIT_SECONDS) -> dict[str, Any]:
        """Credentials for an HTTP request, never waiting on AWS while valid ones are held.

        A due refresh starts in the background. Only when nothing valid is held does the request
        wait, at most ``wait`` seconds, for a refresh already in flight.
        """
        if self._start_refresh_if_due():
            threading.Thread(target=self._run_refresh, name="refresh", daemon=True).start()
        with self._lock:
            try:
                return self._usable()
            except CredentialsUnavailableError:
                if not self._refreshing:
                    raise
            self._finished.wait_for(lambda: not self._refreshing, timeout=wait)
            return self._usable()

    def _usable(self) -> dict[str, Any]:
        """The held credentials if they and their SVID are still valid (caller holds the lock)."""
        if self.credentials is None:
            raise CredentialsUnavailableError(
                "no credentials yet: CreateSession has not succeeded (see the log)"
            )
        moment = self.now()
        if self.svid_not_after is not None and self.svid_not_after <= moment:
            raise CredentialsUnavailableError(
                f"the SVID these credentials came from expired at {self.svid_not_after:%Y-%m-%dT%H:%M:%SZ};"
                " waiting for tbot to write a fresh one"
            )
        if _expiration(self.credentials) <= moment:
            raise CredentialsUnavailableError(
                "the credentials expired and no refresh has succeeded since (see the log)"
            )
        return self.credentials

    def _start_refresh_if_due(self) -> bool:
        """Claim the one refresh slot if a refresh is due and allowed now (back-off after failures)."""
        svid = _fingerprint(self.certificate)  # read before taking the lock
        with self._lock:
            waiting = self.monotonic() < self.retry_at and svid == self.retry_svid
            if self._refreshing or not self._due(svid) or waiting:
                return False
            self._refreshing = True
            return True

    def _due(self, svid: str | None) -> bool:
        if self.credentials is None:
            return True
        if _expiration(self.credentials) - REFRESH_BEFORE <= self.now():
            return True
        if self.svid_not_after is not None and self.svid_not_after <= self.now():
            return True
        return svid != self.svid  # tbot rotated the SVID

    def _run_refresh(self) -> None:
        """Fetch without the lock; then record the answer, or the failure and when to try again."""
        svid = _fingerprint(self.certificate)
        try:
            fetched: Fetched | None = self.fetch()
            error = ""
        except Exception as err:  # noqa: BLE001 - keep serving what is still valid; say why
            fetched, error = None, f"{type(err).__name__}: {err}"
        with self._lock:
            try:
                if fetched is not None:
                    message = self._keep(fetched, svid)
                else:
                    self.failures += 1
                    doublings = min(self.failures - 1, 16)  # 2**16 s is past the cap; no float overflow
                    delay = min(FIRST_RETRY_SECONDS * 2**doublings, MAX_RETRY_SECONDS)
                    self.retry_at, self.retry_svid = self.monotonic() + delay, svid
                    message = f"refresh failed: {error}; next attempt in {delay:g} s"
            finally:
                self._refreshing = False
                self._finished.notify_all()
        self.log(message)  # outside the lock: a blocked stderr must not stall the handlers

    def _keep(self, fetched: Fetched, svid: str | None) -> str:
        """Hold a fresh answer (caller holds the lock); the line to log."""
        self.credentials, self.svid_not_after = fetched.credentials, fetched.svid_not_after
        self.updated, self.svid = self.now(), svid
        self.fetches += 1
        # Not again for a while, even if these are already due (an endpoint answering credentials that
        # expire within five minutes would otherwise be asked at every request); a new SVID still is.
        self.failures, self.retry_at, self.retry_svid = 0, self.monotonic() + MIN_REFRESH_SECONDS, svid
        return f"credentials refreshed (until {fetched.credentials.get('expiration')})"


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


def token_ttl(text: str | None) -> int | None:
    """The TTL a token request asks for (1-21,600 s; absent means the most), or None if malformed.

    ASCII digits only: ``str.isdigit`` accepts ``'²'``, on which ``int`` fails.
    """
    if text is None:
        return MAX_TOKEN_TTL
    if not (0 < len(text) <= 5 and text.isascii() and text.isdigit()):
        return None
    ttl = int(text)
    return ttl if 1 <= ttl <= MAX_TOKEN_TTL else None


def allowed_hosts(port: int) -> frozenset[str]:
    """The ``Host`` values a local SDK sends for this port; a rebound name is none of them."""
    names = ("127.0.0.1", "localhost", "[::1]")
    hosts = {f"{name}:{port}" for name in names}
    if port == 80:  # a client may leave the default port out
        hosts.update(names)
    return frozenset(hosts)


def browser_or_rebound(headers: Message, port: int) -> str | None:
    """Why a request must be refused as coming from a browser or a rebound name; None if it is local."""
    hosts = headers.get_all("Host") or []
    if len(hosts) != 1 or hosts[0].strip().lower() not in allowed_hosts(port):
        return "Host is not this endpoint's local address"
    if headers.get("Origin") is not None:
        return "requests from web pages (Origin) are refused"
    if any(name.lower().startswith("sec-fetch-") for name in headers):
        return "requests from browsers (Sec-Fetch-*) are refused"
    return None


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

        def _refused(self) -> bool:
            """Answer 403 to a browser or a rebound name; True if so."""
            reason = browser_or_rebound(self.headers, self.connection.getsockname()[1])
            if reason is not None:
                self._answer(403, f"forbidden: {reason}")
            return reason is not None

        def do_PUT(self) -> None:
            if self._refused():
                return
            if self.path.rstrip("/") != TOKEN_PATH:
                self._answer(404, "not found")
                return
            if self.headers.get("X-Forwarded-For") is not None:
                self._answer(400, "unable to process requests with X-Forwarded-For header")
                return
            ttl = token_ttl(self.headers.get(TTL_HEADER))
            if ttl is None:
                self._answer(400, "invalid token TTL")
                return
            self._answer(200, tokens.issue(ttl), **{TTL_HEADER: str(ttl)})

        def do_GET(self) -> None:
            if self._refused():
                return
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
                credentials = source.for_request()
            except CredentialsUnavailableError as err:
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
            if not self._refused():
                self._answer(405, "method not allowed")

    return Handler


def peer_uid(connection: socket.socket, table: str = PROC_NET_TCP) -> int | None:
    """The uid that owns the other end of a loopback TCP connection, from Linux's socket table.

    The client's socket is the row whose local address is the connection's peer and whose remote
    address is ours. None when there is no such row (not Linux, or the client already left).
    """
    try:
        local = _proc_address(*connection.getpeername()[:2])
        remote = _proc_address(*connection.getsockname()[:2])
        with open(table, encoding="ascii") as rows:
            for row in rows:
                fields = row.split()
                # ESTABLISHED (01) with a socket inode: a closed client's TIME_WAIT row reads uid 0
                if len(fields) > 9 and fields[1] == local and fields[2] == remote:
                    return int(fields[7]) if fields[3] == "01" and fields[9] != "0" else None
    except (OSError, ValueError):
        return None
    return None


def _proc_address(host: str, port: int) -> str:
    """``127.0.0.1``, 9911 as /proc/net/tcp prints it: the address as a native-endian word, in hex."""
    return f"{int.from_bytes(socket.inet_aton(host), sys.byteorder):08X}:{port:04X}"


class HopLimitedServer(ThreadingHTTPServer):
    """127.0.0.1 only; every answer's IP TTL set to the hop limit, as the Go helper does.

    A local process must not be able to starve the others: at most ``MAX_CONNECTIONS`` are open at
    once (a new one drops the oldest), none stays open longer than ``CONNECTION_SECONDS``, and a client
    that hangs up early is not a traceback. With ``allowed_uids``, a connection from a process of any
    other user is closed unanswered; the check runs in the connection's own thread and refusals are
    logged at most once a minute, so neither a flood nor a stalled log reader holds up the accept loop.
    """

    daemon_threads = True
    request_queue_size = 128  # socketserver's 5 drops a burst of connects: each then waits 1 s to retry
    hop_limit = DEFAULT_HOP_LIMIT
    allowed_uids: frozenset[int] | None = None
    log: Callable[[str], None] = staticmethod(lambda _message: None)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._open: dict[socket.socket, float] = {}
        self._open_lock = threading.Lock()
        self._refused = 0
        self._refusals_logged_at = float("-inf")
        threading.Thread(target=self._reap, name="reaper", daemon=True).start()

    def get_request(self) -> tuple[socket.socket, Any]:
        """Accept, cap the TTL of the connection's packets, and make room under the connection cap."""
        connection, address = super().get_request()
        connection.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, self.hop_limit)
        with self._open_lock:
            while len(self._open) >= MAX_CONNECTIONS:
                oldest = min(self._open, key=self._open.__getitem__)
                del self._open[oldest]
                _hang_up(oldest)
            self._open[connection] = time.monotonic()
        return connection, address

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """In the connection's thread: refuse another user's process, then answer."""
        if self.allowed_uids is not None:
            uid = peer_uid(request)
            if uid not in self.allowed_uids:
                self._note_refusal(uid)
                self.shutdown_request(request)
                return
        super().process_request_thread(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        """Close, and forget the connection."""
        with self._open_lock:
            self._open.pop(request, None)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up or timed out is not worth a traceback on stderr."""
        return

    def _note_refusal(self, uid: int | None) -> None:
        with self._open_lock:
            self._refused += 1
            now = time.monotonic()
            if now - self._refusals_logged_at < REFUSALS_LOG_SECONDS:
                return
            count, self._refused, self._refusals_logged_at = self._refused, 0, now
        who = "an unknown user" if uid is None else f"uid {uid}"
        self.log(
            f"refused {count} connection{'s' if count > 1 else ''} from other users (the last from {who})"
        )

    def _reap(self) -> None:
        """Hang up connections open longer than ``CONNECTION_SECONDS`` (a client sending a byte at a time)."""
        while True:
            time.sleep(1.0)
            limit = time.monotonic() - CONNECTION_SECONDS
            with self._open_lock:
                stale = [connection for connection, opened in self._open.items() if opened < limit]
                for connection in stale:
                    del self._open[connection]
            for connection in stale:
                _hang_up(connection)


def _hang_up(connection: socket.socket) -> None:
    """End a connection another thread is serving: its reads and writes then fail, and it closes it."""
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)


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
    serve.add_argument(
        "--allow-uid",
        type=int,
        action="append",
        metavar="UID",
        help="answer only processes of this user (repeatable; Linux); default: any local process",
    )
    serve.set_defaults(handler=run_serve)


def refreshing_source(args: argparse.Namespace) -> RefreshingCredentials:
    """Credentials for these flags, read from the SVID files at every refresh."""
    from roles_anywhere.credentials.command import session_inputs  # noqa: PLC0415
    from roles_anywhere.credentials.credential_process import create_session, tls_verification  # noqa: PLC0415

    session_inputs(args)  # a bad flag or file is one line now, not a failed refresh later

    def fetch() -> Fetched:
        request = session_inputs(args)
        verify = tls_verification(args.no_verify_ssl, args.ca_bundle)
        credentials = create_session(request, verify=verify, with_proxy=args.with_proxy)
        return Fetched(credentials, request.certificate.not_valid_after_utc)

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
    if args.allow_uid and not os.path.exists(PROC_NET_TCP):
        raise ConfigError("--allow-uid", f"needs {PROC_NET_TCP} (Linux) to tell who connects")
    from roles_anywhere.credentials.credential_process import SessionRefusedError  # noqa: PLC0415

    source = refreshing_source(args)
    role_name = args.role_arn.rsplit("/", 1)[-1]
    try:  # the port first: a taken one is one line, with nothing asked of AWS
        server = HopLimitedServer(("127.0.0.1", args.port), imds_handler(source, role_name, Tokens()))
    except OSError as err:
        raise ConfigError("--port", f"cannot listen on 127.0.0.1:{args.port}: {err.strerror}") from None
    try:
        source.prime()  # the first credentials, or a clear failure before answering anyone
    except SessionRefusedError as err:
        server.server_close()
        print(f"error: {one_printable_line(str(err))}", file=sys.stderr)
        return 1
    except BaseException:
        server.server_close()
        raise
    server.hop_limit = args.hop_limit
    if args.allow_uid:
        server.allowed_uids = frozenset(args.allow_uid)
        server.log = source.log
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
