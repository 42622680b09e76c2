"""caBundle sources against real endpoints: a TLS server on 127.0.0.1 and real command scripts."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roles_anywhere import ALLOW_COMMANDS_ENV
from roles_anywhere.bundle.ca_bundle import parse_bundle_bytes
from roles_anywhere.bundle.sources import LoadedBundle, load_ca_bundle
from roles_anywhere.config.model import CaBundleConfig
from roles_anywhere.errors import BundleError, ConfigError
from roles_anywhere.stack.spec import load_spec

from .bundle_server import BundleServer, bundle_json, jwk, jwt_key, make_tls_identity, running_server
from .certs import NOW, make_ca, pem_of
from .conftest import base_values


@pytest.fixture(autouse=True)
def _commands_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests exercise caBundle.command itself; consent is tested in test_hostile_inputs."""
    monkeypatch.setenv(ALLOW_COMMANDS_ENV, "1")


OLD = make_ca(serial=1, not_before=NOW - timedelta(days=400))
NEW = make_ca(serial=2, key_kind="rsa-2048", not_before=NOW - timedelta(days=1))
THIRD = make_ca(serial=3)
EXPIRED = make_ca(serial=4, not_before=NOW - timedelta(days=800), not_after=NOW - timedelta(days=1))


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[BundleServer]:
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
    yield from running_server(tmp_path)


def load(config: dict[str, Any], base_dir: Path) -> LoadedBundle:
    return load_ca_bundle(CaBundleConfig.model_validate(config), base_dir=base_dir, now=NOW)


def refused(config: dict[str, Any], base_dir: Path) -> str:
    with pytest.raises(BundleError) as raised:
        load(config, base_dir)
    message = str(raised.value)
    assert "\n" not in message
    return message


def fingerprints(loaded: LoadedBundle) -> list[str]:
    return [cert.fingerprint_sha256 for cert in loaded.bundle.certificates]


def via_proxy(server: BundleServer, **extra: Any) -> dict[str, Any]:
    return {"proxy": server.address, "proxyCaFile": str(server.ca_file), **extra}


# --- the proxy's bundle.json -------------------------------------------------------------------------


def test_one_ca_from_the_proxy(server: BundleServer, tmp_path: Path) -> None:
    server.serve(bundle_json(OLD))
    loaded = load(via_proxy(server), tmp_path)
    assert loaded.origin == server.url
    assert loaded.key == "caBundle.proxy"
    assert loaded.bundle.pem == OLD.pem
    assert server.requests == ["/webapi/spiffe/bundle.json"]


def test_rotation_bundle_gives_both_cas_in_a_stable_order(server: BundleServer, tmp_path: Path) -> None:
    server.serve(bundle_json(NEW, OLD, extra_keys=(jwt_key(THIRD),)))
    first = load(via_proxy(server), tmp_path)
    server.serve(bundle_json(OLD, NEW, OLD))
    second = load(via_proxy(server), tmp_path)
    assert first.bundle.pem == second.bundle.pem == OLD.pem + NEW.pem
    assert [c.key_description for c in first.bundle.certificates] == ["EC P-256", "RSA-2048"]


def test_three_cas_explain_the_aws_limit(server: BundleServer, tmp_path: Path) -> None:
    server.serve(bundle_json(OLD, NEW, THIRD))
    message = refused(via_proxy(server), tmp_path)
    assert message.startswith(f"caBundle.proxy: {server.url}: holds 3 distinct certificates")
    assert "at most 2" in message
    assert "cannot be raised" in message


def test_an_expired_ca_is_refused(server: BundleServer, tmp_path: Path) -> None:
    server.serve(bundle_json(OLD, EXPIRED))
    assert "expired on" in refused(via_proxy(server), tmp_path)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("{not json", "is not a SPIFFE bundle: not valid JSON (line 1 column 2"),
        ("<html>Sign in to the Wi-Fi</html>", "is not a SPIFFE bundle: not valid JSON"),
        ('["keys"]', "is not a SPIFFE bundle: the JSON is not an object"),
        ('{"kes": []}', "is not a SPIFFE bundle: it has no 'keys' list"),
        ('{"keys": []}', 'it has no key with "use": "x509-svid" (the key list is empty)'),
        ('{"keys": [7]}', "key 1 is not a JSON object"),
        (OLD.pem, "is not a SPIFFE bundle: not valid JSON"),
    ],
)
def test_answers_that_are_not_a_bundle(server: BundleServer, tmp_path: Path, body: str, problem: str) -> None:
    server.serve(body)
    assert problem in refused(via_proxy(server), tmp_path)


def test_keys_of_another_use_are_skipped(server: BundleServer, tmp_path: Path) -> None:
    other = jwk(THIRD.certificate, use="sig")
    server.serve(bundle_json(OLD, extra_keys=(jwt_key(NEW), other)))
    assert fingerprints(load(via_proxy(server), tmp_path)) == fingerprints(
        LoadedBundle(load({"pem": OLD.pem}, tmp_path).bundle, "", "")
    )
    server.serve(bundle_json(extra_keys=(jwt_key(NEW), other)))
    assert "no key with \"use\": \"x509-svid\" (found 'jwt-svid', 'sig')" in refused(
        via_proxy(server), tmp_path
    )


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ({"x5c": []}, "x509-svid key 1 must carry exactly one certificate in 'x5c', found 0"),
        ({"x5c": "abc"}, "found 0"),
        ({"x5c": ["!!"]}, "'x5c' is not a base64 DER X.509 certificate"),
        ({"crv": "P-384"}, "the JWK's 'crv' is 'P-384'"),
        ({"kty": "RSA"}, "the JWK's 'kty' is 'RSA'"),
        ({"x": "AAAA"}, "the JWK's 'x' is another value"),
        ({"d": "c2VjcmV0"}, "carries private key parameters"),
    ],
)
def test_malformed_authorities(
    server: BundleServer, tmp_path: Path, override: dict[str, Any], problem: str
) -> None:
    server.serve(json.dumps({"keys": [jwk(OLD.certificate, **override)]}))
    message = refused(via_proxy(server), tmp_path)
    assert problem in message
    assert "c2VjcmV0" not in message


def test_two_certificates_in_one_x5c(server: BundleServer, tmp_path: Path) -> None:
    double = jwk(OLD.certificate)
    double["x5c"] = double["x5c"] + jwk(NEW.certificate)["x5c"]
    server.serve(json.dumps({"keys": [double]}))
    assert "exactly one certificate in 'x5c', found 2" in refused(via_proxy(server), tmp_path)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (500, "answered HTTP 500 Internal Server Error; expected 200 with the SPIFFE bundle"),
        (404, "answered HTTP 404 Not Found; expected 200 with the SPIFFE bundle (wrong host or path?)"),
        (403, "answered HTTP 403 Forbidden; expected 200 with the SPIFFE bundle"),
    ],
)
def test_non_200_answers(server: BundleServer, tmp_path: Path, status: int, expected: str) -> None:
    server.serve("oops", status=status)
    assert refused(via_proxy(server), tmp_path) == f"caBundle.proxy: {server.url}: {expected}"


def test_redirects_are_not_followed(server: BundleServer, tmp_path: Path) -> None:
    server.serve(bundle_json(OLD), path="/elsewhere")
    server.serve("", status=302, headers={"Location": "/elsewhere"})
    message = refused(via_proxy(server), tmp_path)
    assert "answered HTTP 302 Found, a redirect to /elsewhere" in message
    assert server.requests == ["/webapi/spiffe/bundle.json"]


def test_a_slow_answer_hits_the_timeout(server: BundleServer, tmp_path: Path) -> None:
    server.serve(bundle_json(OLD), delay=20)
    started = time.monotonic()
    message = refused(via_proxy(server, timeout=1), tmp_path)
    assert message == f"caBundle.proxy: {server.url}: no complete answer within 1 s (caBundle.timeout)"
    assert time.monotonic() - started < 15  # we gave up; the server was still sleeping


def test_a_trickled_body_hits_the_same_deadline(server: BundleServer, tmp_path: Path) -> None:
    server.serve(bundle_json(OLD), chunk_delay=0.2)  # every byte arrives within the read timeout
    started = time.monotonic()
    assert "no complete answer within 1 s" in refused(via_proxy(server, timeout=1), tmp_path)
    assert time.monotonic() - started < 15


def test_an_oversized_answer_is_refused(server: BundleServer, tmp_path: Path) -> None:
    server.serve(b"{" + b" " * (1 << 20) + b"}")
    assert "the answer is larger than 1048576 bytes" in refused(via_proxy(server), tmp_path)


def test_nothing_listening(server: BundleServer, tmp_path: Path) -> None:
    port = int(server.address.rsplit(":", 1)[1])
    server.close()
    message = refused({"proxy": f"127.0.0.1:{port}", "timeout": 2}, tmp_path)
    assert message == (
        f"caBundle.proxy: cannot fetch https://127.0.0.1:{port}/webapi/spiffe/bundle.json: "
        "connection refused (nothing listens on that port)"
    )


def test_an_unresolvable_host(tmp_path: Path) -> None:
    message = refused({"proxy": "proxy.invalid", "timeout": 5}, tmp_path)
    assert message.startswith(
        "caBundle.proxy: cannot fetch https://proxy.invalid:443/webapi/spiffe/bundle.json"
    )


def test_private_proxy_certificate_needs_proxy_ca_file(server: BundleServer, tmp_path: Path) -> None:
    server.serve(bundle_json(OLD))
    message = refused({"proxy": server.address}, tmp_path)
    assert "the server's TLS certificate is not trusted (unable to get local issuer certificate)" in message
    assert message.endswith("if the proxy uses a private CA, set caBundle.proxyCaFile to that CA's PEM file")


def test_the_wrong_proxy_ca_file(server: BundleServer, tmp_path: Path) -> None:
    server.serve(bundle_json(OLD))
    other_ca, _, _ = make_tls_identity(tmp_path, "other")
    message = refused({"proxy": server.address, "proxyCaFile": str(other_ca)}, tmp_path)
    assert "not trusted" in message
    assert "check that caBundle.proxyCaFile holds the CA that issued the proxy's certificate" in message


def test_the_system_trust_store_is_used(
    server: BundleServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.serve(bundle_json(OLD))
    monkeypatch.setenv("SSL_CERT_FILE", str(server.ca_file))  # OpenSSL's default store, redirected
    assert load({"proxy": server.address}, tmp_path).bundle.pem == OLD.pem


def test_proxy_ca_file_problems(server: BundleServer, tmp_path: Path) -> None:
    server.serve(bundle_json(OLD))
    (tmp_path / "garbage.pem").write_text("hello")
    (tmp_path / "with-key.pem").write_text(OLD.pem + OLD.key_pem)
    assert refused({"proxy": server.address, "proxyCaFile": "missing.pem"}, tmp_path) == (
        "caBundle.proxyCaFile: missing.pem: file not found"
    )
    assert refused({"proxy": server.address, "proxyCaFile": "garbage.pem"}, tmp_path) == (
        "caBundle.proxyCaFile: garbage.pem: not a PEM file of CA certificates"
    )
    message = refused({"proxy": server.address, "proxyCaFile": "with-key.pem"}, tmp_path)
    assert (
        message == "caBundle.proxyCaFile: with-key.pem: contains a private key; give the CA certificate only"
    )


def test_bundle_url_serves_any_path(server: BundleServer, tmp_path: Path) -> None:
    server.serve(bundle_json(OLD, NEW), path="/spire/bundle")
    url = f"https://{server.address}/spire/bundle"
    loaded = load({"bundleUrl": url, "proxyCaFile": str(server.ca_file)}, tmp_path)
    assert (loaded.origin, loaded.key) == (url, "caBundle.bundleUrl")
    assert loaded.bundle.pem == OLD.pem + NEW.pem


# --- a command -----------------------------------------------------------------------------------------


def script(folder: Path, body: str, name: str = "export.sh") -> Path:
    path = folder / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def test_command_printing_pem(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text(OLD.pem + NEW.pem)
    path = script(tmp_path, 'cat "$(dirname "$0")/ca.pem"\n')
    loaded = load({"command": [str(path)]}, tmp_path)
    assert loaded.bundle.pem == OLD.pem + NEW.pem
    assert (loaded.origin, loaded.key) == (f"`{path}`", "caBundle.command")


def test_command_printing_bundle_json_runs_in_the_config_folder(tmp_path: Path) -> None:
    (tmp_path / "bundle.json").write_text(bundle_json(NEW))
    script(tmp_path, "cat bundle.json\n")
    assert load({"command": ["./export.sh"]}, tmp_path).bundle.pem == NEW.pem


def test_command_arguments_are_not_shell_words(tmp_path: Path) -> None:
    (tmp_path / "a b.pem").write_text(OLD.pem)
    assert load({"command": ["cat", "a b.pem"]}, tmp_path).bundle.pem == OLD.pem


def test_command_printing_garbage(tmp_path: Path) -> None:
    path = script(tmp_path, "echo 'Cluster: example'\n")
    message = refused({"command": [str(path)]}, tmp_path)
    assert message == (
        f"caBundle.command: output of `{path}`: not PEM: no '-----BEGIN CERTIFICATE-----' block found"
    )


def test_command_exiting_non_zero_shows_its_stderr(tmp_path: Path) -> None:
    path = script(
        tmp_path,
        'echo \'ERROR: access denied to perform action "read" on "cert_authority"\' >&2\n'
        "echo 'hint: tsh login' >&2\nexit 3\n",
    )
    assert refused({"command": [str(path), "--type", "tls-spiffe"]}, tmp_path) == (
        f"caBundle.command: `{path} --type tls-spiffe` exited with status 3; stderr: "
        'ERROR: access denied to perform action "read" on "cert_authority" | hint: tsh login'
    )


def test_command_stderr_with_pem_is_not_echoed(tmp_path: Path) -> None:
    (tmp_path / "key.pem").write_text(OLD.key_pem)
    path = script(tmp_path, 'cat "$(dirname "$0")/key.pem" >&2\nexit 1\n')
    message = refused({"command": [str(path)]}, tmp_path)
    assert message.endswith("exited with status 1; its stderr holds PEM data, not shown")
    assert "PRIVATE" not in message


def test_command_printing_a_private_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / "both.pem").write_text(OLD.pem + OLD.key_pem)
    message = refused({"command": ["cat", "both.pem"]}, tmp_path)
    assert "contains a private key" in message
    assert OLD.key_pem.splitlines()[1] not in message


def test_a_hanging_command_is_stopped_with_its_children(tmp_path: Path) -> None:
    path = script(tmp_path, "sleep 60\n")  # sh forks sleep, which holds the pipes open
    started = time.monotonic()
    message = refused({"command": [str(path)], "timeout": 1}, tmp_path)
    assert message == (
        f"caBundle.command: `{path}` did not finish within 1 s and was stopped "
        "(raise caBundle.timeout if it is just slow)"
    )
    assert time.monotonic() - started < 30


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["no-such-tctl-here"], "cannot run `no-such-tctl-here`: 'no-such-tctl-here' not found on PATH"),
        (["./missing.sh"], "cannot run `./missing.sh`: './missing.sh' not found"),
    ],
)
def test_command_that_cannot_run(tmp_path: Path, argv: list[str], expected: str) -> None:
    assert refused({"command": argv}, tmp_path) == f"caBundle.command: {expected}"


def test_command_that_is_not_executable(tmp_path: Path) -> None:
    path = script(tmp_path, "exit 0\n")
    path.chmod(0o644)
    assert refused({"command": [str(path)]}, tmp_path).endswith("is not executable")


def test_command_printing_nothing(tmp_path: Path) -> None:
    path = script(tmp_path, "echo 'no CA yet' >&2\n")
    message = refused({"command": [str(path)]}, tmp_path)
    assert "printed nothing on stdout" in message
    assert message.endswith("; stderr: no CA yet")


def test_tctl_auth_export_warns_about_rotations(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "ca.pem").write_text(OLD.pem)
    script(bin_dir, f"cat {tmp_path / 'ca.pem'}\n", name="tctl")
    loaded = load({"command": [str(bin_dir / "tctl"), "auth", "export", "--type", "tls-spiffe"]}, tmp_path)
    assert loaded.bundle.pem == OLD.pem
    assert len(loaded.warnings) == 1
    assert "prints only the active SPIFFE CA" in loaded.warnings[0]
    assert "Prefer caBundle.proxy" in loaded.warnings[0]


# --- files ---------------------------------------------------------------------------------------------


def test_a_bundle_json_file_is_recognised_by_content(tmp_path: Path) -> None:
    (tmp_path / "bundle.json").write_text(bundle_json(NEW, OLD, extra_keys=(jwt_key(THIRD),)))
    (tmp_path / "bundle.pem").write_text("\n" + pem_of(NEW.certificate, OLD.certificate))
    from_json = load({"file": "bundle.json"}, tmp_path)
    from_pem = load({"file": "bundle.pem"}, tmp_path)
    assert from_json.bundle.pem == from_pem.bundle.pem == OLD.pem + NEW.pem
    assert (from_json.origin, from_json.key) == ("bundle.json", "caBundle.file")


def test_a_broken_bundle_json_file(tmp_path: Path) -> None:
    (tmp_path / "bundle.json").write_text('{"keys": [{"use": "x509-svid"}]}')
    assert refused({"file": "bundle.json"}, tmp_path) == (
        "caBundle.file: bundle.json: is not a SPIFFE bundle: "
        "x509-svid key 1 must carry exactly one certificate in 'x5c', found 0"
    )


# --- the caBundle keys themselves ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ca_bundle", "error"),
    [
        ({"bundleUrl": "http://spire.example.com/bundle"}, "caBundle.bundleUrl: must be an https:// URL"),
        (
            {"bundleUrl": "https://user:pw@spire.example.com/"},
            "caBundle.bundleUrl: must not carry user:password",
        ),
        (
            {"bundleUrl": "https://spire.example.com:99999/"},
            "caBundle.bundleUrl: 'https://spire.example.com:99999/' has an invalid port",
        ),
        ({"bundleUrl": "https:///bundle"}, "caBundle.bundleUrl: '' is not a host name"),
        (
            {"proxy": "https://teleport.example.com"},
            "caBundle.proxy: 'https://teleport.example.com' is not HOST:PORT",
        ),
        ({"proxy": "teleport.example.com:0"}, "caBundle.proxy: port '0' is not a number from 1 to 65535"),
        ({"command": []}, "caBundle.command: must name a program"),
        ({"command": "tctl auth export"}, "caBundle.command: must be a valid list"),
        ({"command": [""]}, "caBundle.command: the program name (item 0) is empty"),
        (
            {"proxy": "t.example.com", "timeout": 0},
            "caBundle.timeout: must be between 1 and 600 seconds, got 0",
        ),
        ({"proxy": "t.example.com", "timeout": 1.5}, "caBundle.timeout: must be a whole number"),
        (
            {"file": "ca.pem", "proxyCaFile": "p.pem"},
            "caBundle: 'proxyCaFile' applies only to 'proxy' and 'bundleUrl', not to 'file'",
        ),
        (
            {"pem": "x", "timeout": 5},
            "caBundle: 'timeout' applies only to 'proxy', 'bundleUrl' and 'command', not to 'pem'",
        ),
        (
            {"proxy": "t.example.com", "command": ["tctl"]},
            "caBundle: give exactly one source: 'proxy', 'bundleUrl', 'command', 'file', 'pem' "
            "(found proxy, command)",
        ),
        ({"proxyCaFile": "p.pem"}, "caBundle: give exactly one source"),
        ({"proxi": "t.example.com"}, "caBundle.proxi: unknown key (did you mean 'proxy'?)"),
    ],
)
def test_ca_bundle_key_mistakes(ca_bundle: dict[str, Any], error: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_spec({**base_values(), "caBundle": ca_bundle}, stack="dev", base_dir=Path(), now=NOW)
    assert str(raised.value).startswith(error), str(raised.value)


def test_the_spec_records_where_the_bundle_came_from(server: BundleServer, tmp_path: Path) -> None:
    server.serve(bundle_json(OLD, NEW))
    spec = load_spec(
        {**base_values(), "caBundle": via_proxy(server)}, stack="dev", base_dir=tmp_path, now=NOW
    )
    assert spec.bundle_origin == server.url
    assert spec.bundle.pem == OLD.pem + NEW.pem


# --- robustness: whatever a server or command sends, the answer is a bundle or one BundleError ----------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
JWK_MEMBERS = st.dictionaries(
    st.sampled_from(["kty", "crv", "x", "y", "n", "e", "use", "x5c", "kid"]),
    JSON_VALUES | st.sampled_from(["x509-svid", "EC", "RSA", "P-256", [jwk(OLD.certificate)["x5c"][0]]]),
    max_size=9,
)


@given(
    keys=st.lists(JWK_MEMBERS, max_size=3),
    extra=st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=3),
)
def test_any_bundle_json_is_accepted_or_refused_in_one_line(
    keys: list[dict[str, Any]], extra: dict[str, Any]
) -> None:
    document = json.dumps({**extra, "keys": keys}).encode()
    try:
        outcome = parse_bundle_bytes(document, key="caBundle.file", source="x: ", now=NOW).pem
    except BundleError as err:
        outcome = str(err)
    # OLD is the only certificate the strategy can produce; anything else is one line naming the key
    assert outcome == OLD.pem or (outcome.startswith("caBundle.file: x: ") and "\n" not in outcome)


@given(st.binary(max_size=200))
def test_any_bytes_are_accepted_or_refused_in_one_line(data: bytes) -> None:
    with pytest.raises(BundleError) as raised:
        parse_bundle_bytes(data, key="caBundle.command", now=NOW)
    assert "\n" not in str(raised.value)
