"""``serve`` next to browsers and slow endpoints (issue 21): a rebound name or a web page gets nothing,
no client waits on AWS while valid credentials are held, nothing is served from an expired SVID, and a
malformed token TTL is a 400. Driven over real sockets with raw requests, so the headers are exactly
what a browser or an attacker would send."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from roles_anywhere.credentials.serve import (
    CONNECTION_SECONDS,
    MAX_CONNECTIONS,
    MAX_TOKEN_TTL,
    CredentialsUnavailableError,
    Fetched,
    HopLimitedServer,
    RefreshingCredentials,
    Tokens,
    imds_handler,
    peer_uid,
    token_ttl,
)

ROLE = "reader"


def credentials(access_key: str, lifetime: timedelta) -> dict[str, Any]:
    return {
        "accessKeyId": access_key,
        "secretAccessKey": "secret-" + access_key,
        "sessionToken": "token-" + access_key,
        "expiration": (datetime.now(UTC) + lifetime).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


class Endpoint:
    """A stand-in for CreateSession: answers, fails or stalls as the test says, and counts calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.lifetime = timedelta(hours=1)
        self.svid_lifetime = timedelta(hours=1)
        self.stall = threading.Event()  # set: calls block until released
        self.release = threading.Event()
        self.fail = False

    def __call__(self) -> Fetched:
        self.calls += 1
        if self.stall.is_set():
            self.release.wait(30)
        if self.fail:
            raise ConnectionError("endpoint down")
        return Fetched(
            credentials(f"AKIA{self.calls:04d}", self.lifetime), datetime.now(UTC) + self.svid_lifetime
        )


class Served:
    """A running serve endpoint on an ephemeral port, over a fake CreateSession."""

    def __init__(self, tmp_path: Path, port: int = 0) -> None:
        self.certificate = tmp_path / "svid.pem"
        self.certificate.write_text("first SVID")
        self.endpoint = Endpoint()
        self.lines: list[str] = []
        self.clock = [0.0]
        self.source = RefreshingCredentials(
            fetch=self.endpoint,
            certificate=self.certificate,
            log=self.lines.append,
            monotonic=lambda: self.clock[0],
        )
        self.source.prime()
        self.server = HopLimitedServer(("127.0.0.1", port), imds_handler(self.source, ROLE, Tokens()))
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.endpoint.release.set()
        self.server.shutdown()
        self.server.server_close()

    def raw(self, request: bytes) -> tuple[int, bytes]:
        """Send ``request`` as is; the status and body of the answer."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as connection:
            connection.sendall(request)
            data = b""
            while chunk := connection.recv(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        return int(head.split()[1]), body

    def request(self, method: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        headers = {"Host": f"127.0.0.1:{self.port}", **(headers or {})}
        lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items()), "Connection: close"]
        return self.raw(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def token(self, **headers: str) -> str:
        status, body = self.request("PUT", "/latest/api/token", headers)
        assert status == 200, body
        return body.decode()

    def credentials(self, token: str | None = None, **headers: str) -> tuple[int, bytes]:
        token = token or self.token()
        return self.request(
            "GET",
            f"/latest/meta-data/iam/security-credentials/{ROLE}",
            {"X-aws-ec2-metadata-token": token, **headers},
        )


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    endpoint = Served(tmp_path)
    yield endpoint
    endpoint.close()


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1:{port}", True),
        ("localhost:{port}", True),
        ("LocalHost:{port}", True),
        ("[::1]:{port}", True),
        ("attacker.example:{port}", False),  # a name rebound to 127.0.0.1
        ("attacker.example", False),
        ("127.0.0.1", False),  # not the port the SDK is pointed at
        ("127.0.0.1:1", False),
        ("127.0.0.1:{port}.attacker.example", False),
        ("localhost.:{port}", False),
        ("", False),
    ],
)
def test_only_the_local_address_is_answered(served: Served, host: str, allowed: bool) -> None:
    host = host.format(port=served.port)
    status, body = served.request("PUT", "/latest/api/token", {"Host": host})
    assert (status == 200) is allowed, body
    token = served.token()
    base = "/latest/meta-data/iam/security-credentials/"
    for path in (base, base + ROLE):
        status, body = served.request("GET", path, {"Host": host, "X-aws-ec2-metadata-token": token})
        assert (status == 200) is allowed, body
        if not allowed:
            assert status == 403
            assert body == b"forbidden: Host is not this endpoint's local address"
            assert b"AKIA" not in body


def test_a_request_without_or_with_two_host_headers_is_refused(served: Served) -> None:
    status, _ = served.raw(b"PUT /latest/api/token HTTP/1.0\r\n\r\n")
    assert status == 403
    twice = f"Host: 127.0.0.1:{served.port}\r\nHost: attacker.example\r\n".encode()
    status, _ = served.raw(b"PUT /latest/api/token HTTP/1.1\r\n" + twice + b"Connection: close\r\n\r\n")
    assert status == 403


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ({"Origin": "http://attacker.example"}, b"requests from web pages (Origin) are refused"),
        ({"Origin": "null"}, b"requests from web pages (Origin) are refused"),
        ({"Sec-Fetch-Site": "cross-site"}, b"requests from browsers (Sec-Fetch-*) are refused"),
        ({"Sec-Fetch-Mode": "no-cors"}, b"requests from browsers (Sec-Fetch-*) are refused"),
        ({"sec-fetch-dest": "empty"}, b"requests from browsers (Sec-Fetch-*) are refused"),
    ],
)
def test_a_browser_is_refused_even_on_the_right_host(
    served: Served, header: dict[str, str], reason: bytes
) -> None:
    assert served.request("PUT", "/latest/api/token", header) == (403, b"forbidden: " + reason)
    status, body = served.credentials(**header)
    assert (status, body) == (403, b"forbidden: " + reason)
    assert served.request("POST", "/latest/api/token", header)[0] == 403


@pytest.mark.parametrize(
    ("text", "ttl"),
    [
        (None, MAX_TOKEN_TTL),
        ("1", 1),
        ("60", 60),
        ("21600", 21_600),
        ("0", None),
        ("21601", None),
        ("-1", None),
        ("+60", None),
        (" 60", None),
        ("6e1", None),
        ("60.0", None),
        ("", None),
        ("\xb2", None),  # '²': str.isdigit() is true, int() fails
        ("\u0661\u0662", None),  # Arabic-Indic digits: int() would accept them
        ("9" * 5000, None),
    ],
)
def test_token_ttl(text: str | None, ttl: int | None) -> None:
    assert token_ttl(text) == ttl


def test_a_malformed_ttl_is_a_400_not_a_traceback(served: Served) -> None:
    request = (
        f"PUT /latest/api/token HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\n".encode()
        + b"X-aws-ec2-metadata-token-ttl-seconds: \xb2\r\nConnection: close\r\n\r\n"
    )
    assert served.raw(request) == (400, b"invalid token TTL")
    assert served.token(**{"X-aws-ec2-metadata-token-ttl-seconds": "60"})  # and it still serves


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    start = time.monotonic()
    result = call()
    return time.monotonic() - start, result


def test_a_stalled_refresh_never_makes_a_client_wait(served: Served) -> None:
    """Credentials held and valid, a refresh due (tbot rotated the SVID), CreateSession stalls: every
    request is answered at once with what is held, and only one CreateSession is in flight."""
    token = served.token()
    served.endpoint.stall.set()
    served.certificate.write_text("rotated SVID")
    answers: list[tuple[float, tuple[int, bytes]]] = []

    def client() -> None:
        answers.append(timed(lambda: served.credentials(token)))

    threads = [threading.Thread(target=client) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(answers) == 20
    assert max(seconds for seconds, _ in answers) < 1.0
    assert all(status == 200 and b'"AccessKeyId": "AKIA0001"' in body for _, (status, body) in answers)
    assert served.endpoint.calls == 2  # the start-up call and one refresh, still stalled
    served.endpoint.release.set()
    deadline = time.monotonic() + 5
    while b"AKIA0002" not in served.credentials(token)[1]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert served.endpoint.calls == 2


def test_failed_refreshes_back_off_and_valid_credentials_keep_being_served(served: Served) -> None:
    token = served.token()
    served.endpoint.fail = True
    served.certificate.write_text("rotated SVID")  # a refresh is due from now on
    for _ in range(30):
        seconds, (status, body) = timed(lambda: served.credentials(token))
        assert seconds < 1.0
        assert status == 200
        assert b"AKIA0001" in body
    wait_for_refresh(served)
    assert served.endpoint.calls == 2  # one attempt, not one per request
    assert served.lines[-1] == "refresh failed: ConnectionError: endpoint down; next attempt in 1 s"
    delays = []
    for _ in range(4):
        served.clock[0] = served.source.retry_at  # the back-off has passed
        served.credentials(token)
        wait_for_refresh(served)
        delays.append(served.lines[-1].rsplit("in ", 1)[1])
    assert delays == ["2 s", "4 s", "8 s", "16 s"]
    for _ in range(100):  # capped at five minutes
        served.source.failures += 1
    served.clock[0] = served.source.retry_at
    served.credentials(token)
    wait_for_refresh(served)
    assert served.lines[-1].endswith("next attempt in 300 s")
    served.endpoint.fail = False
    served.clock[0] = served.source.retry_at
    served.credentials(token)
    wait_for_refresh(served)
    assert served.lines[-1].startswith("credentials refreshed")
    assert served.source.failures == 0


def wait_for_refresh(served: Served) -> None:
    deadline = time.monotonic() + 5
    while served.source._refreshing:
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_nothing_is_served_once_the_svid_expired(served: Served) -> None:
    token = served.token()
    served.endpoint.fail = True
    expired = datetime.now(UTC) - timedelta(seconds=1)
    served.source.svid_not_after = expired
    seconds, (status, body) = timed(lambda: served.credentials(token))
    assert seconds < 1.0
    assert status == 503
    assert body.decode() == (
        f"the SVID these credentials came from expired at {expired:%Y-%m-%dT%H:%M:%SZ}; "
        "waiting for tbot to write a fresh one"
    )
    served.endpoint.fail = False
    served.clock[0] = served.source.retry_at
    deadline = time.monotonic() + 5
    while (answer := served.credentials(token))[0] != 200:  # a fresh SVID: served again
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert b"AKIA" in answer[1]


def test_expired_credentials_are_not_served(served: Served) -> None:
    token = served.token()
    served.endpoint.fail = True
    served.source.credentials = credentials("AKIAOLD", -timedelta(seconds=1))
    status, body = served.credentials(token)
    assert status == 503
    assert body.startswith(b"the credentials expired")  # (or a refresh was in flight and failed)


def test_without_valid_credentials_a_request_waits_briefly_for_a_refresh_in_flight(tmp_path: Path) -> None:
    lines: list[str] = []
    endpoint = Endpoint()
    endpoint.lifetime = timedelta(minutes=4)  # always due: within five minutes of expiry
    (tmp_path / "svid.pem").write_text("svid")
    source = RefreshingCredentials(fetch=endpoint, certificate=tmp_path / "svid.pem", log=lines.append)
    endpoint.stall.set()
    started = time.monotonic()
    with pytest.raises(CredentialsUnavailableError, match="no credentials yet"):
        source.for_request(wait=0.3)
    assert 0.25 < time.monotonic() - started < 1.0
    endpoint.release.set()
    deadline = time.monotonic() + 5
    while True:
        try:
            assert source.for_request(wait=0.3)["accessKeyId"] == "AKIA0001"
            break
        except CredentialsUnavailableError:
            assert time.monotonic() < deadline


def test_the_peer_of_a_loopback_connection_is_its_owner(tmp_path: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    with listener, socket.create_connection(listener.getsockname(), timeout=5) as client:
        accepted, _ = listener.accept()
        with accepted:
            assert peer_uid(accepted) == os.getuid()
            assert peer_uid(client) == os.getuid()  # either end: the table has both
            (tmp_path / "empty").write_text("")
            assert peer_uid(accepted, str(tmp_path / "empty")) is None


@pytest.mark.parametrize("allowed", [True, False])
def test_allow_uid_answers_only_that_users_processes(served: Served, allowed: bool) -> None:
    served.server.allowed_uids = frozenset({os.getuid() if allowed else os.getuid() + 4242})
    served.server.log = served.lines.append
    if allowed:
        assert served.credentials()[0] == 200
        return
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as connection:
        connection.sendall(
            f"PUT /latest/api/token HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\n\r\n".encode()
        )
        assert connection.recv(1024) == b""  # closed unanswered
    deadline = time.monotonic() + 5
    while not served.lines:  # logged from the connection's own thread
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert served.lines[-1] == f"refused 1 connection from other users (the last from uid {os.getuid()})"


SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin:/bin")  # one another user may run (not in /root)


@pytest.mark.skipif(
    os.geteuid() != 0 or SYSTEM_PYTHON is None,
    reason="needs root and a system python3",
)
def test_another_local_user_is_refused_with_allow_uid(served: Served) -> None:
    served.server.allowed_uids = frozenset({0})
    served.server.log = served.lines.append
    client = (
        "import socket,sys\n"
        f"c=socket.create_connection(('127.0.0.1',{served.port}),timeout=5)\n"
        f"c.sendall(b'PUT /latest/api/token HTTP/1.1\\r\\nHost: 127.0.0.1:{served.port}\\r\\n\\r\\n')\n"
        "sys.stdout.write(repr(c.recv(1024)))\n"
    )
    result = subprocess.run(
        [str(SYSTEM_PYTHON), "-c", client], user=65534, capture_output=True, text=True, timeout=30, check=True
    )
    assert result.stdout == "b''"
    assert served.lines[-1] == "refused 1 connection from other users (the last from uid 65534)"
    assert served.credentials()[0] == 200  # root, allowed


def test_the_back_off_is_capped_and_never_overflows(served: Served) -> None:
    """2**1024 does not fit a float: after ~85 h of outage the back-off used to vanish."""
    token = served.token()
    served.endpoint.fail = True
    served.certificate.write_text("rotated SVID")
    served.source.failures = 5_000
    served.clock[0] = served.source.retry_at
    served.credentials(token)
    wait_for_refresh(served)
    assert served.lines[-1].endswith("next attempt in 300 s")
    calls = served.endpoint.calls
    answers = [served.credentials(token)[0] for _ in range(20)]
    assert answers == [200] * 20
    assert served.endpoint.calls == calls  # backing off: no CreateSession per request


def test_a_fresh_svid_is_tried_at_once_whatever_the_back_off(served: Served) -> None:
    token = served.token()
    served.endpoint.fail = True
    served.source.svid_not_after = datetime.now(UTC) - timedelta(seconds=1)  # tbot is late
    served.clock[0] = 1_000.0
    served.credentials(token)
    wait_for_refresh(served)
    served.source.failures = 30
    served.source.retry_at = served.clock[0] + 300  # backing off for five minutes
    assert served.credentials(token)[0] == 503
    calls = served.endpoint.calls
    served.endpoint.fail = False
    served.certificate.write_text("a fresh SVID from tbot")
    deadline = time.monotonic() + 5
    while served.credentials(token)[0] != 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert served.endpoint.calls == calls + 1


def test_credentials_already_due_do_not_cause_a_refresh_storm(tmp_path: Path) -> None:
    """Credentials that expire within five minutes: one CreateSession per 30 s, not one per request."""
    endpoint = Endpoint()
    endpoint.lifetime = timedelta(minutes=4)
    (tmp_path / "svid.pem").write_text("svid")
    clock = [0.0]
    source = RefreshingCredentials(
        fetch=endpoint, certificate=tmp_path / "svid.pem", log=lambda _: None, monotonic=lambda: clock[0]
    )
    source.prime()
    for _ in range(200):
        assert source.for_request()["accessKeyId"] == "AKIA0001"
    assert endpoint.calls == 1
    clock[0] = 31.0
    source.for_request()
    deadline = time.monotonic() + 5
    while endpoint.calls < 2 or source._refreshing:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    for _ in range(200):
        source.for_request()
    assert endpoint.calls == 2


@pytest.mark.parametrize(
    ("state", "inode", "uid"),
    [("01", "123456", 1000), ("06", "0", None), ("08", "123456", None), ("01", "0", None)],
)
def test_only_a_live_connections_row_names_its_user(
    tmp_path: Path, state: str, inode: str, uid: int | None
) -> None:
    """A client that closed at once leaves a TIME_WAIT row whose uid reads 0: it must not pass for root."""
    listener = socket.create_server(("127.0.0.1", 0))
    with listener, socket.create_connection(listener.getsockname(), timeout=5):
        accepted, _ = listener.accept()
        with accepted:
            peer, ours = accepted.getpeername(), accepted.getsockname()
            row = (
                f"   1: {_address(*peer)} {_address(*ours)} {state} 00000000:00000000 00:00000000 "
                f"00000000  1000        0 {inode} 1 0000000000000000 20 4 30 10 -1\n"
            )
            table = tmp_path / "tcp"
            table.write_text("  sl  local_address rem_address   st ...\n" + row)
            assert peer_uid(accepted, str(table)) == uid


def _address(host: str, port: int) -> str:
    return f"{int.from_bytes(socket.inet_aton(host), sys.byteorder):08X}:{port:04X}"


def test_idle_connections_cannot_starve_a_client(served: Served) -> None:
    """A local process holding hundreds of half-sent requests: a client is still answered at once."""
    idle = []
    try:
        for _ in range(300):
            connection = socket.create_connection(("127.0.0.1", served.port), timeout=5)
            connection.sendall(b"GET /latest/api/token HTTP/1.1\r\n")  # and never the rest
            idle.append(connection)
        seconds, (status, _) = timed(served.credentials)
        assert status == 200
        assert seconds < 1.0
        assert (
            len(served.server._open) <= MAX_CONNECTIONS
        )  # the oldest were dropped: no descriptor exhaustion
        hung_up = sum(1 for connection in idle if was_hung_up(connection))
        assert hung_up >= 300 - MAX_CONNECTIONS
    finally:
        for connection in idle:
            connection.close()


def test_a_connection_that_trickles_is_hung_up(served: Served) -> None:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", served.port), timeout=15) as connection:
        connection.sendall(b"PUT /latest/api/token HTTP/1.1\r\n")
        while True:
            try:
                connection.sendall(b"X-Slow: 1\r\n")
            except OSError:
                break
            if was_hung_up(connection):
                break
            time.sleep(0.5)
            assert time.monotonic() - started < 12, "never hung up"
    assert time.monotonic() - started < CONNECTION_SECONDS + 3


def was_hung_up(connection: socket.socket) -> bool:
    """Whether the server closed this connection (a read would return end-of-file now)."""
    try:
        return connection.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK) == b""
    except (BlockingIOError, TimeoutError):
        return False
    except ConnectionResetError:
        return True
