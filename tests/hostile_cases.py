"""The hostile-input corpus: every input the CLI reads, written by an attacker (issue 13).

Each ``Case`` plants its files in a fresh ``World`` (a sandbox folder tree with a stack folder, an
output folder, a folder of files that must stay untouched, HOME and TMPDIR) and returns the
command line to run. ``tests/test_hostile_suite.py`` runs each as a process under a memory and CPU
limit and checks the outcome; ``benchmarks/hostile_inputs.py`` times the same corpus.

``SECRET`` is a private key planted in many of the cases (in CA files, stack files, server answers,
command output); no byte of it may ever be printed.
"""

from __future__ import annotations

import base64
import functools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from roles_anywhere import PROJECT
from roles_anywhere.config.stack_file import MAX_STACK_FILE_BYTES

from .bundle_server import BundleServer, bundle_json
from .certs import make_ca, make_svid
from .conftest import CA

SECRET = ec.generate_private_key(ec.SECP256R1())
SECRET_DER = SECRET.private_bytes(
    serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
)
SECRET_PEM = SECRET.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
).decode()
SECRET_B64 = base64.b64encode(SECRET_DER).decode()
SECRET_LINES = "\n".join(SECRET_B64[i : i + 64] for i in range(0, len(SECRET_B64), 64))

ANCHOR = "arn:aws:rolesanywhere:us-east-2:123456789012:trust-anchor/0b5c5a2e-6f3e-4c1f-9d7a-2f1b8e0c4d11"
PROFILE = "arn:aws:rolesanywhere:us-east-2:123456789012:profile/1b5c5a2e-6f3e-4c1f-9d7a-2f1b8e0c4d11"
ROLE = "arn:aws:iam::123456789012:role/tra-orders"
SPIFFE_ID = "spiffe://acme.teleport.sh/svc/orders"
ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x1b[31m\x9b1m"
SVID = make_svid(CA, SPIFFE_ID)
OTHER_CA = make_ca("acme.teleport.sh")
FOREIGN_SVID = make_svid(OTHER_CA, SPIFFE_ID)


def secret_fragments() -> list[str]:
    """Every 16-character window (step 8) of the planted keys' base64, and raw DER windows."""
    fragments: list[str] = []
    for body, der in ((SECRET_B64, SECRET_DER), (_b64_of_key(SVID.key), b"")):
        fragments += [body[i : i + 16] for i in range(0, len(body) - 16, 8)]
        fragments += [der[i : i + 12].decode("latin-1") for i in range(0, len(der) - 12, 12)]
    return fragments


def _b64_of_key(key: Any) -> str:
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return base64.b64encode(der).decode()


class World:
    """A sandbox tree: ``work/`` (the stack folder, cwd), ``work/out/``, ``outside/``, ``home/``, ``tmp/``."""

    def __init__(self, root: Path, server: BundleServer, outputs: dict[str, Any]) -> None:
        self.root, self.server, self.base_outputs = root, server, outputs
        self.work, self.outside = root / "work", root / "outside"
        self.out = self.work / "out"
        for folder in (self.work, self.outside, root / "home", root / "tmp"):
            folder.mkdir(parents=True)
        self.write("ca.pem", CA.pem)
        self.write("svid.pem", SVID.pem)
        self.write("svid.key", SVID.key_pem)
        (self.outside / "precious.txt").write_text("keep me\n")
        (self.outside / "secret.key").write_text(SECRET_PEM)

    def write(self, name: str, data: str | bytes) -> str:
        path = self.work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return str(path)

    def special(self, name: str, kind: str) -> str:
        """A FIFO, a folder, or a link (``link:TARGET``) named ``name`` in the stack folder."""
        path = self.work / name
        if kind == "fifo":
            os.mkfifo(path)
        elif kind == "dir":
            path.mkdir()
        elif kind.startswith("link:"):
            path.symlink_to(kind.removeprefix("link:"))
        return str(path)

    def stack(self, raw: str | bytes | None = None, **project: Any) -> str:
        """``Pulumi.dev.yaml``: the raw text, or a valid config with ``project`` keys replaced."""
        if raw is not None:
            return self.write("Pulumi.dev.yaml", raw)
        config: dict[str, Any] = {
            "aws:region": "us-east-2",
            f"{PROJECT}:cluster": "acme.teleport.sh",
            f"{PROJECT}:caBundle": {"file": "ca.pem"},
            f"{PROJECT}:workloads": {"orders": {"spiffeId": "/svc/orders", "bots": ["tra-ci"]}},
            f"{PROJECT}:namePrefix": "tra-",
        }
        config.update({f"{PROJECT}:{key}": value for key, value in project.items()})
        return self.write("Pulumi.dev.yaml", yaml.safe_dump({"config": config}))

    def outputs(self, change: Callable[[dict[str, Any]], Any] | None = None, raw: str | None = None) -> str:
        """``outputs.json``: raw text, or the base stack's outputs after ``change``."""
        if raw is None:
            document = json.loads(json.dumps(self.base_outputs))
            if change is not None:
                change(document)
            raw = json.dumps(document)
        return self.write("outputs.json", raw)

    def serve(self, body: str | bytes, **answer: Any) -> str:
        """Make the test server answer ``body`` on the bundle path and /sessions; return its CA file."""
        self.server.serve(body, **answer)
        self.server.serve(body, path="/sessions", **answer)
        return str(self.server.ca_file)


@dataclass(frozen=True)
class Case:
    """One hostile input: ``build`` plants it and returns the CLI arguments."""

    name: str
    build: Callable[[World], list[str]]
    exits: tuple[int, ...] = (2,)
    says: str = ""


def plan(world: World) -> list[str]:
    return ["plan", "--config", str(world.work / "Pulumi.dev.yaml")]


def render(world: World) -> list[str]:
    return ["render", "--config", str(world.work / "Pulumi.dev.yaml"), "--out", str(world.out)]


def simulate(world: World, *extra: str) -> list[str]:
    config = str(world.work / "Pulumi.dev.yaml")
    return ["simulate", "--config", config, "--certificate", str(world.work / "svid.pem"), *extra]


def bundle(world: World) -> list[str]:
    return ["bundle", "--config", str(world.work / "Pulumi.dev.yaml")]


def process(world: World, *extra: str, certificate: str = "svid.pem", key: str = "svid.key") -> list[str]:
    return [
        "credential-process",
        "--certificate",
        str(world.work / certificate),
        "--private-key",
        str(world.work / key),
        "--trust-anchor-arn",
        ANCHOR,
        "--profile-arn",
        PROFILE,
        "--role-arn",
        ROLE,
        *extra,
    ]


def _raw_stack(text: str | bytes) -> Callable[[World], list[str]]:
    def build(world: World) -> list[str]:
        world.stack(text)
        return plan(world)

    return build


def _stack_with(command: Callable[[World], list[str]] = plan, **project: Any) -> Callable[[World], list[str]]:
    def build(world: World) -> list[str]:
        world.stack(**project)
        return command(world)

    return build


# --- Stack files: YAML itself -------------------------------------------------------------------------

_BOMB = "config:\n  a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"  {chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(9)
)
_VALID = yaml.safe_dump(
    {
        "config": {
            f"{PROJECT}:cluster": "acme.teleport.sh",
            f"{PROJECT}:caBundle": {"file": "ca.pem"},
            f"{PROJECT}:workloads": {"orders": {"spiffeId": "/svc/orders"}},
        }
    }
)
_HEAD = f"config:\n  {PROJECT}:cluster: acme.teleport.sh\n  {PROJECT}:caBundle: {{file: ca.pem}}\n"
YAML_CASES = [
    Case("yaml-alias-bomb", _raw_stack(_BOMB), says="alias"),
    Case("yaml-one-alias", _raw_stack(_VALID + "  x: &x 1\n  y: *x\n"), says="alias"),
    Case("yaml-recursive-alias", _raw_stack("config: &c\n  self: *c\n"), says="alias"),
    Case("yaml-merge-key", _raw_stack(_VALID + "  z:\n    <<: {a: 1}\n"), says="merge"),
    Case(
        "yaml-python-tag", _raw_stack("config: !!python/object/apply:os.system ['touch pwned']\n"), says="tag"
    ),
    Case("yaml-binary-tag", _raw_stack(_VALID + "  b: !!binary aGVsbG8=\n"), says="tag"),
    Case("yaml-custom-tag", _raw_stack(_VALID + "  r: !Ref other\n"), says="tag"),
    Case("yaml-set-tag", _raw_stack(_VALID + "  s: !!set {a, b}\n"), says="tag"),
    Case("yaml-repeated-config", _raw_stack(_VALID + "config: {}\n"), says="repeats"),
    Case(
        "yaml-repeated-workloads",
        _raw_stack(_VALID + f"  {PROJECT}:workloads:\n    evil: {{spiffeId: /evil}}\n"),
        says="repeats",
    ),
    Case(
        "yaml-repeated-key-same-line",
        _raw_stack(_HEAD + f"  {PROJECT}:workloads: {{a: {{spiffeId: /a}}, a: {{spiffeId: /evil}}}}\n"),
        says="repeats",
    ),
    Case("yaml-repeated-int-key", _raw_stack(_VALID + "  m:\n    1: a\n    01: b\n"), says="quote it"),
    Case("yaml-deep-flow", _raw_stack("config:\n  x: " + "[" * 20_000 + "]" * 20_000 + "\n"), says="nest"),
    Case("yaml-deep-65", _raw_stack("config:\n  x: " + "[" * 65 + "]" * 65 + "\n"), says="nested"),
    Case(
        "yaml-deep-block",
        _raw_stack(
            "config:\n" + "".join(" " * (i + 1) + f"k{i}:\n" for i in range(300)) + "  " * 300 + "v\n"
        ),
    ),
    Case(
        "yaml-over-cap", _raw_stack("config:\n" + "#" * (MAX_STACK_FILE_BYTES + 1) + "\n"), says="larger than"
    ),
    Case("yaml-dense", _raw_stack("config:\n  x: [" + "a," * 600_000 + "]\n"), says="YAML events"),
    Case("yaml-1mib-one-line", _raw_stack("config: " + "a" * (1024 * 1024 - 20)), says="config"),
    Case("yaml-binary-garbage", _raw_stack(bytes(range(256)) * 40)),
    Case("yaml-invalid-utf8", _raw_stack(b"config:\n  x: \xff\xfe\xfd\n"), says="UTF-8"),
    Case("yaml-utf16-bom", _raw_stack("config:\n  x: 1\n".encode("utf-16"))),
    Case("yaml-nul-bytes", _raw_stack("config:\n  x: a\x00b\n")),
    Case("yaml-empty", _raw_stack("")),
    Case("yaml-only-comments", _raw_stack("# nothing here\n")),
    Case("yaml-config-list", _raw_stack("config:\n  - a\n  - b\n")),
    Case("yaml-top-scalar", _raw_stack("just a string\n")),
    Case("yaml-top-list", _raw_stack("- config\n")),
    Case("yaml-config-null", _raw_stack("config: null\n")),
    Case("yaml-two-documents", _raw_stack(_VALID + "---\n" + _VALID)),
    Case("yaml-long-key", _raw_stack("config:\n  " + "k" * 100_000 + ": 1\n")),
    Case("yaml-escape-key", _raw_stack(f'config:\n  "{ESCAPES}cluster": x\n')),
    Case("yaml-unclosed-quote", _raw_stack('config:\n  x: "never closed\n')),
    Case("yaml-tab-indent", _raw_stack("config:\n\tx: 1\n")),
    Case(
        "yaml-key-in-comment-and-value",
        _raw_stack(f"config:\n  x: |\n    {SECRET_LINES.replace(chr(10), chr(10) + '    ')}\n"),
    ),
]


# --- Stack files: values ------------------------------------------------------------------------------


def _workloads(**workloads: Any) -> dict[str, Any]:
    return {"workloads": workloads}


def _orders(**fields: Any) -> Callable[[World], list[str]]:
    """A stack whose one workload has ``fields`` besides its SPIFFE ID."""
    return _stack_with(**_workloads(orders={"spiffeId": "/a", **fields}))


def _policy(statement: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [statement]}


VALUE_CASES = [
    Case("cluster-trailing-dot", _stack_with(cluster="acme.teleport.sh."), says="cluster"),
    Case("cluster-escapes", _stack_with(cluster=f"acme{ESCAPES}.teleport.sh"), says="cluster"),
    Case("cluster-url", _stack_with(cluster="https://acme.teleport.sh:443"), says="cluster"),
    Case("cluster-mapping", _stack_with(cluster={"name": "acme.teleport.sh"}), says="cluster"),
    Case("cluster-list", _stack_with(cluster=["a", "b"]), says="cluster"),
    Case("cluster-secret", _stack_with(cluster=SECRET_B64), says="cluster"),
    Case("workloads-list", _stack_with(workloads=["orders"]), says="workloads"),
    Case("workloads-empty", _stack_with(workloads={}), says="workloads"),
    Case(
        "workloads-6000",
        _stack_with(workloads={f"w{i}": {"spiffeId": f"/w/{i}"} for i in range(6000)}),
        says="at most 5000",
    ),
    Case(
        "workload-name-traversal",
        _stack_with(**_workloads(**{"../../etc/x": {"spiffeId": "/a"}})),
        says="workloads",
    ),
    Case("workload-name-slash", _stack_with(**_workloads(**{"a/b": {"spiffeId": "/a"}})), says="workloads"),
    Case(
        "workload-name-escapes",
        _stack_with(**_workloads(**{f"a{ESCAPES}": {"spiffeId": "/a"}})),
        says="workloads",
    ),
    Case(
        "workload-name-long",
        _stack_with(**_workloads(**{"a" * 10_000: {"spiffeId": "/a"}})),
        says="workloads",
    ),
    Case(
        "workload-name-secret",
        _stack_with(**_workloads(**{SECRET_B64: {"spiffeId": "/a"}})),
        says="workloads",
    ),
    Case("spiffe-dotdot", _stack_with(**_workloads(orders={"spiffeId": "/svc/../admin"})), says="spiffeId"),
    Case("spiffe-percent", _stack_with(**_workloads(orders={"spiffeId": "/svc/%2e%2e"})), says="spiffeId"),
    Case("spiffe-query", _stack_with(**_workloads(orders={"spiffeId": "/svc?x=1"})), says="spiffeId"),
    Case(
        "spiffe-foreign-domain",
        _stack_with(**_workloads(orders={"spiffeId": "spiffe://evil.example/svc"})),
        says="spiffeId",
    ),
    Case("spiffe-empty", _stack_with(**_workloads(orders={"spiffeId": ""})), says="spiffeId"),
    Case("spiffe-wildcard", _stack_with(**_workloads(orders={"spiffeId": "/svc/*"})), says="spiffeId"),
    Case(
        "spiffe-escapes", _stack_with(**_workloads(orders={"spiffeId": f"/svc/{ESCAPES}"})), says="spiffeId"
    ),
    # a key pasted as it sits in a PEM file (lines of base64): a run of base64 alone is, about one time
    # in twenty (no '+' in a fresh key's 184 characters), a valid SPIFFE path, so the case was flaky
    Case(
        "spiffe-secret", _stack_with(**_workloads(orders={"spiffeId": "/" + SECRET_LINES})), says="spiffeId"
    ),
    Case(
        "spiffe-duplicate",
        _stack_with(**_workloads(a={"spiffeId": "/svc/x"}, b={"spiffeId": "/svc/x"})),
        says="spiffeId",
    ),
    Case("unknown-workload-key", _orders(trustAll=True)),
    Case(
        "inline-policy-20k",
        _stack_with(
            **_workloads(
                orders={
                    "spiffeId": "/a",
                    "inlinePolicy": _policy(
                        {
                            "Effect": "Allow",
                            "Action": "s3:GetObject",
                            "Resource": "arn:aws:s3:::" + "x" * 20_000,
                        }
                    ),
                }
            )
        ),
        says="10240",
    ),
    Case(
        "inline-policy-sid",
        _stack_with(
            **_workloads(
                orders={
                    "spiffeId": "/a",
                    "inlinePolicy": _policy(
                        {"Sid": "a b", "Effect": "Allow", "Action": "s3:*", "Resource": "*"}
                    ),
                }
            )
        ),
        says="Sid",
    ),
    Case(
        "inline-policy-string",
        _orders(inlinePolicy="{not json"),
        says="inlinePolicy",
    ),
    Case(
        "inline-policy-effect",
        _stack_with(
            **_workloads(
                orders={
                    "spiffeId": "/a",
                    "inlinePolicy": _policy({"Effect": "Maybe", "Action": "*", "Resource": "*"}),
                }
            )
        ),
        says="inlinePolicy",
    ),
    Case(
        "managed-policy-junk",
        _orders(managedPolicyArns=["not-an-arn"]),
        says="managedPolicyArns",
    ),
    Case(
        "session-duration-huge",
        _orders(sessionDuration=10**30),
        says="sessionDuration",
    ),
    Case(
        "session-duration-negative",
        _orders(sessionDuration=-5),
        says="sessionDuration",
    ),
    Case(
        "session-duration-text",
        _orders(sessionDuration="1h"),
        says="sessionDuration",
    ),
    Case(
        "bots-not-list",
        _orders(bots="tra-ci"),
        says="bots",
    ),
    Case(
        "bot-escapes",
        _orders(bots=[f"tra-{ESCAPES}"]),
        says="bots",
    ),
    Case(
        "bot-other-namespace",
        _orders(bots=["prod-ci"]),
        says="bots",
    ),
    Case("namespace-bad", _stack_with(teleport={"namespace": "Has Spaces"}), says="namespace"),
    Case("name-prefix-bad", _stack_with(namePrefix="../../"), says="namePrefix"),
    Case("account-id-bad", _stack_with(accountId="12345"), says="accountId"),
    Case("artifacts-absolute", _stack_with(artifactsDir="/etc/cron.d"), says="artifactsDir"),
    Case("artifacts-dotdot", _stack_with(artifactsDir="../../outside"), says="artifactsDir"),
    Case("artifacts-home", _stack_with(artifactsDir="~/.ssh"), says="artifactsDir"),
    Case("unknown-project-key", _stack_with(trustEverything=True), says="trustEverything"),
    Case("trust-anchor-junk", _stack_with(trustAnchor={"notificationDays": "soon"}), says="trustAnchor"),
]


# --- CA bundle sources --------------------------------------------------------------------------------


def _ca_file(
    content: str | bytes = b"", command: Callable[[World], list[str]] = plan, *, kind: str = ""
) -> Callable[[World], list[str]]:
    """``caBundle.file`` naming a planted file with ``content``, or a special file of ``kind``."""

    def build(world: World) -> list[str]:
        if kind:
            world.special("ca-x.pem", kind)
        else:
            world.write("ca-x.pem", content)
        world.stack(caBundle={"file": "ca-x.pem"})
        return command(world)

    return build


def _ca_special(kind: str, command: Callable[[World], list[str]] = plan) -> Callable[[World], list[str]]:
    return _ca_file(command=command, kind=kind)


def _ca_path(path: str, command: Callable[[World], list[str]] = plan) -> Callable[[World], list[str]]:
    def build(world: World) -> list[str]:
        world.stack(caBundle={"file": path})
        return command(world)

    return build


def _many_cas() -> str:
    return "".join(make_ca(f"c{i}.example").pem for i in range(5))


def _leaf_pem() -> str:
    return make_svid(CA, SPIFFE_ID).pem


BUNDLE_FILE_CASES = [
    Case("ca-dev-zero", _ca_path("/dev/zero"), says="not a regular file"),
    Case("ca-dev-urandom", _ca_path("/dev/urandom"), says="not a regular file"),
    Case("ca-missing", _ca_path("missing.pem"), says="not found"),
    Case("ca-fifo", _ca_special("fifo"), says="not a regular file"),
    Case("ca-folder", _ca_special("dir"), says="caBundle"),
    Case("ca-link-dev-zero", _ca_special("link:/dev/zero"), says="not a regular file"),
    Case("ca-link-loop", _ca_special("link:ca-x.pem"), says="caBundle"),
    Case("ca-20mib", _ca_file(b"A" * (20 * 1024 * 1024)), says="larger than"),
    Case("ca-only-secret", _ca_file(SECRET_PEM), says="private key"),
    Case("ca-with-secret", _ca_file(CA.pem + SECRET_PEM), says="private key"),
    Case("ca-secret-bare-base64", _ca_file(SECRET_LINES + "\n"), says="caBundle"),
    Case("ca-secret-der", _ca_file(SECRET_DER), says="caBundle"),
    Case("ca-garbage", _ca_file(b"\x00\x01garbage" * 100), says="caBundle"),
    Case("ca-empty", _ca_file(b""), says="caBundle"),
    Case(
        "ca-escapes",
        _ca_file(f"-----BEGIN CERTIFICATE-----\n{ESCAPES}\n-----END CERTIFICATE-----\n"),
        says="caBundle",
    ),
    Case("ca-five-cas", _ca_file(_many_cas()), says="caBundle"),
    Case("ca-leaf-not-ca", _ca_file(_leaf_pem()), says="caBundle"),
    Case("ca-truncated", _ca_file(CA.pem[: len(CA.pem) // 2]), says="caBundle"),
    Case("ca-dev-zero-render", _ca_path("/dev/zero", render), says="not a regular file"),
    Case("ca-fifo-simulate", _ca_special("fifo", simulate), says="not a regular file"),
    Case("ca-fifo-bundle", _ca_special("fifo", bundle), says="not a regular file"),
    Case("ca-fifo-render", _ca_special("fifo", render), says="not a regular file"),
    Case("ca-secret-bundle", _ca_file(SECRET_PEM, bundle), says="private key"),
    Case("ca-secret-simulate", _ca_file(SECRET_PEM, simulate), says="private key"),
    Case("pem-with-secret", _stack_with(caBundle={"pem": CA.pem + SECRET_PEM}), says="private key"),
    Case("pem-garbage", _stack_with(caBundle={"pem": "hello"}), says="caBundle"),
    Case("two-sources", _stack_with(caBundle={"pem": CA.pem, "file": "ca.pem"}), says="caBundle"),
    Case("unknown-source", _stack_with(caBundle={"ftp": "x"}), says="caBundle"),
]


def _command(
    argv: list[str], *, allow: bool, command: Callable[[World], list[str]] = plan
) -> Callable[[World], list[str]]:
    def build(world: World) -> list[str]:
        world.write("ca.sh", "#!/bin/sh\n" + " ".join(argv) + "\n")
        (world.work / "ca.sh").chmod(0o755)
        world.stack(caBundle={"command": ["./ca.sh"], "timeout": 1})
        return [*command(world), *(["--allow-commands"] if allow else [])]

    return build


def _secret_on_stderr(form: str) -> str:
    if form == "pem":
        return f"printf '%s\\n' '{SECRET_PEM}' >&2; exit 3"
    if form == "lines":
        return f"printf '%s\\n' '{SECRET_LINES}' >&2; exit 3"
    return f"printf 'oops {SECRET_B64} oops' >&2; exit 3"


COMMAND_CASES = [
    Case("command-no-consent-plan", _command(["touch pwned"], allow=False), says="--allow-commands"),
    Case(
        "command-no-consent-render",
        _command(["touch pwned"], allow=False, command=render),
        says="--allow-commands",
    ),
    Case(
        "command-no-consent-simulate",
        _command(["touch pwned"], allow=False, command=simulate),
        says="--allow-commands",
    ),
    Case(
        "command-no-consent-bundle",
        _command(["touch pwned"], allow=False, command=bundle),
        says="--allow-commands",
    ),
    Case("command-endless-output", _command(["cat /dev/zero"], allow=True), says="more than"),
    Case("command-endless-stderr", _command(["cat /dev/zero >&2"], allow=True), says="caBundle.command"),
    Case("command-sleeps", _command(["sleep 30"], allow=True), says="caBundle.command"),
    Case("command-child-sleeps", _command(["(sleep 30 &) ; sleep 30"], allow=True), says="caBundle.command"),
    Case(
        "command-secret-pem-stderr", _command([_secret_on_stderr("pem")], allow=True), says="caBundle.command"
    ),
    Case(
        "command-secret-lines-stderr",
        _command([_secret_on_stderr("lines")], allow=True),
        says="caBundle.command",
    ),
    Case(
        "command-secret-run-stderr", _command([_secret_on_stderr("run")], allow=True), says="caBundle.command"
    ),
    Case("command-secret-stdout", _command([f"printf '%s' '{SECRET_PEM}'"], allow=True), says="private key"),
    Case(
        "command-escapes-stderr",
        _command(["printf 'bad\\033]0;pwned\\007\\033[2J' >&2; exit 1"], allow=True),
        says="caBundle.command",
    ),
    Case(
        "command-binary-stderr",
        _command(["head -c 3000 /dev/urandom >&2; exit 1"], allow=True),
        says="caBundle.command",
    ),
    Case("command-empty", _command(["true"], allow=True), says="caBundle.command"),
    Case("command-garbage", _command(["echo not a bundle"], allow=True), says="caBundle.command"),
]


def _url(
    body: str | bytes, *, trusted: bool = True, command: Callable[[World], list[str]] = plan, **answer: Any
) -> Callable[[World], list[str]]:
    def build(world: World) -> list[str]:
        ca_file = world.serve(body, **answer)
        source: dict[str, Any] = {"bundleUrl": world.server.url, "timeout": 1}
        if trusted:
            source["proxyCaFile"] = ca_file
        world.stack(caBundle=source)
        return command(world)

    return build


def _url_value(url: str) -> Callable[[World], list[str]]:
    def build(world: World) -> list[str]:
        world.stack(caBundle={"bundleUrl": url, "timeout": 1})
        return plan(world)

    return build


def _proxy_ca(kind: str) -> Callable[[World], list[str]]:
    def build(world: World) -> list[str]:
        if kind == "secret":
            world.write("proxy-ca.pem", SECRET_PEM)
        else:
            world.special("proxy-ca.pem", kind)
        world.stack(caBundle={"bundleUrl": world.server.url, "proxyCaFile": "proxy-ca.pem", "timeout": 1})
        return plan(world)

    return build


_JWK_WITH_D = json.dumps(
    {"keys": [{"kty": "EC", "crv": "P-256", "x": "a", "y": "b", "d": SECRET_B64, "use": "x509-svid"}]}
)
URL_CASES = [
    Case("url-http", _url_value("http://127.0.0.1:1/webapi/spiffe/bundle.json"), says="caBundle"),
    Case("url-file", _url_value("file:///etc/passwd"), says="caBundle"),
    Case("url-userinfo", _url_value("https://user:pass@127.0.0.1:1/x"), says="caBundle"),
    Case("url-refused", _url_value("https://127.0.0.1:1/webapi/spiffe/bundle.json"), says="refused"),
    Case("url-escapes", _url_value(f"https://127.0.0.1:1/{ESCAPES}"), says="caBundle"),
    Case("url-untrusted-tls", _url(bundle_json(CA), trusted=False), says="not trusted"),
    Case("url-404-escapes", _url(f"not found {ESCAPES}", status=404), says="404"),
    Case("url-500-secret", _url(SECRET_PEM, status=500), says="500"),
    Case(
        "url-redirect-escapes",
        _url("", status=302, headers={"Location": f"https://evil.example/{ESCAPES}"}),
        says="caBundle.bundleUrl",
    ),
    Case(
        "url-redirect", _url("", status=301, headers={"Location": "https://evil.example/b"}), says="redirect"
    ),
    Case("url-junk", _url(b"\x00\x01junk" + ESCAPES.encode()), says="caBundle"),
    Case("url-json-not-bundle", _url('{"keys": "nope"}'), says="caBundle"),
    Case("url-json-duplicate-keys", _url('{"keys": [], "keys": []}'), says="twice"),
    Case("url-json-deep", _url("[" * 100_000), says="caBundle"),
    Case("url-huge", _url(b"x" * (3 * 1024 * 1024)), says="larger than"),
    Case("url-trickle", _url(bundle_json(CA), chunk_delay=0.2), says="caBundle"),
    Case("url-slow-headers", _url(bundle_json(CA), delay=5), says="caBundle"),
    Case("url-jwk-private", _url(_JWK_WITH_D), says="caBundle"),
    Case("url-secret-body", _url(SECRET_PEM), says="caBundle"),
    Case("url-bundle-command", _url(f"nope {ESCAPES}", status=403, command=bundle), says="403"),
    Case("proxy-ca-fifo", _proxy_ca("fifo"), says="not a regular file"),
    Case("proxy-ca-dev-zero", _proxy_ca("link:/dev/zero"), says="not a regular file"),
    Case("proxy-ca-secret", _proxy_ca("secret"), says="private key"),
]


# --- Stack outputs ------------------------------------------------------------------------------------


def _outputs(
    change: Callable[[dict[str, Any]], Any] | None = None, raw: str | None = None, kind: str = ""
) -> Callable[[World], list[str]]:
    def build(world: World) -> list[str]:
        path = world.special("outputs.json", kind) if kind else world.outputs(change, raw)
        return ["render", "--stack-outputs", path, "--out", str(world.out)]

    return build


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = document
        for part in parents:
            node = node[part]
        node[last] = value

    return change


def _rename_workload(name: str) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        (only,) = document["workloads"].values()
        document["workloads"] = {name: only}

    return change


OUTPUT_CASES = [
    Case("outputs-junk", _outputs(raw="not json"), says="outputs.json"),
    Case("outputs-empty", _outputs(raw=""), says="outputs.json"),
    Case("outputs-list", _outputs(raw="[]"), says="outputs.json"),
    Case("outputs-deep", _outputs(raw="[" * 100_000), says="nested"),
    Case("outputs-duplicate", _outputs(raw='{"cluster": "a", "cluster": "b"}'), says="twice"),
    Case("outputs-nan", _outputs(raw='{"cluster": NaN}'), says="outputs.json"),
    Case("outputs-dev-zero", _outputs(kind="link:/dev/zero"), says="not a regular file"),
    Case("outputs-fifo", _outputs(kind="fifo"), says="not a regular file"),
    Case("outputs-folder", _outputs(kind="dir"), says="outputs.json"),
    Case("outputs-huge", _outputs(raw='{"x": "' + "a" * (20 * 1024 * 1024) + '"}'), says="larger than"),
    Case("outputs-missing-keys", _outputs(raw='{"cluster": "acme.teleport.sh"}'), says="outputs.json"),
    Case("outputs-anchor-junk", _outputs(_set("trustAnchorArn", f"arn:{ESCAPES}")), says="trustAnchorArn"),
    Case("outputs-anchor-secret", _outputs(_set("trustAnchorArn", SECRET_B64)), says="trustAnchorArn"),
    Case("outputs-cluster-other", _outputs(_set("cluster", "evil..example")), says="trust domain"),
    Case("outputs-workload-traversal", _outputs(_rename_workload("../../../outside/x")), says="outputs.json"),
    Case("outputs-workload-absolute", _outputs(_rename_workload("/etc/cron.d/x")), says="outputs.json"),
    Case("outputs-workload-escapes", _outputs(_rename_workload(f"x{ESCAPES}")), says="outputs.json"),
    Case("outputs-workloads-list", _outputs(_set("workloads", [1, 2])), says="workloads"),
    Case("outputs-teleport-junk", _outputs(_set("teleport", "nope")), says="teleport"),
    Case("outputs-aws-junk", _outputs(_set("aws", {"credentials": f"{ESCAPES}"})), says="aws"),
    Case(
        "outputs-ca-certificates-junk",
        _outputs(_set("caCertificates", [{"pem": SECRET_PEM}])),
        says="caCertificates",
    ),
]


# --- Output folders -----------------------------------------------------------------------------------


def _out(plant: Callable[[World], None]) -> Callable[[World], list[str]]:
    def build(world: World) -> list[str]:
        world.stack()
        plant(world)
        return render(world)

    return build


def _rendered_then(plant: Callable[[World], None]) -> Callable[[World], None]:
    """Plant after a genuine earlier render (so there is a manifest to tamper with)."""

    def prepare(world: World) -> None:
        from roles_anywhere.cli import main  # noqa: PLC0415 - a genuine render, in-process

        with open(os.devnull, "w") as quiet:
            saved = os.dup(1), os.dup(2)
            os.dup2(quiet.fileno(), 1)
            os.dup2(quiet.fileno(), 2)
            try:
                assert main([*render(world)]) == 0
            finally:
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
        plant(world)

    return prepare


def _link_folder(name: str) -> Callable[[World], None]:
    def plant(world: World) -> None:
        folder = world.out / name
        for path in sorted(folder.rglob("*"), reverse=True):
            path.unlink() if not path.is_dir() else path.rmdir()
        folder.rmdir()
        folder.symlink_to(world.outside)
        manifest = world.out / ".roles-anywhere-files"
        manifest.write_text(manifest.read_text() + f"{name}/precious.txt\n")

    return plant


def _manifest(content: str | bytes | None = None, kind: str = "") -> Callable[[World], None]:
    def plant(world: World) -> None:
        manifest = world.out / ".roles-anywhere-files"
        manifest.unlink()
        if kind == "fifo":
            os.mkfifo(manifest)
        elif kind.startswith("link:"):
            manifest.symlink_to(kind.removeprefix("link:"))
        else:
            assert content is not None
            manifest.write_bytes(content.encode() if isinstance(content, str) else content)

    return plant


def _plain(plant: Callable[[World], None]) -> Callable[[World], None]:
    def prepare(world: World) -> None:
        world.out.mkdir()
        plant(world)

    return prepare


OUT_CASES = [
    Case("out-is-a-file", _out(lambda w: w.out.write_text("x")), says="not a folder"),
    Case("out-teleport-linked", _out(_rendered_then(_link_folder("teleport"))), says="link"),
    Case("out-aws-linked", _out(_rendered_then(_link_folder("aws"))), says="link"),
    Case("out-tsh-linked", _out(_rendered_then(_link_folder("tsh"))), says="link"),
    Case(
        "out-teleport-is-file", _out(_plain(lambda w: (w.out / "teleport").write_text("x"))), says="teleport"
    ),
    Case(
        "out-foreign-readme",
        _out(_plain(lambda w: (w.out / "README.md").write_text("mine"))),
        says="not written by",
    ),
    Case(
        "out-planted-link-file",
        _out(_plain(lambda w: (w.out / "README.md").symlink_to(w.outside / "precious.txt"))),
        says="not written by",
    ),
    Case(
        "manifest-traversal",
        _out(_rendered_then(_manifest("../outside/precious.txt\n"))),
        says="not a file name",
    ),
    Case("manifest-absolute", _out(_rendered_then(_manifest("/etc/passwd\n"))), says="not a file name"),
    Case("manifest-invalid-utf8", _out(_rendered_then(_manifest(b"\xff\xfe\n"))), says="UTF-8"),
    Case("manifest-huge", _out(_rendered_then(_manifest("a\n" * (3 * 1024 * 1024)))), says="larger than"),
    Case("manifest-fifo", _out(_rendered_then(_manifest(kind="fifo"))), says=".roles-anywhere-files"),
    Case(
        "manifest-link-outside",
        _out(_rendered_then(_manifest(kind="link:../../outside/precious.txt"))),
        says="link",
    ),
    Case("manifest-link-dev-zero", _out(_rendered_then(_manifest(kind="link:/dev/zero"))), says="link"),
    Case(
        "manifest-names-itself",
        _out(_rendered_then(_manifest(".roles-anywhere-files\n"))),
        says="not a file name",
    ),
]


# --- simulate inputs ----------------------------------------------------------------------------------


def _sim_file(
    option: str, content: str | bytes = b"", kind: str = "", exits: tuple[int, ...] = (2,)
) -> Callable[[World], list[str]]:
    def build(world: World) -> list[str]:
        world.stack()
        name = f"sim-{option.strip('-')}"
        path = world.special(name, kind) if kind else world.write(name, content)
        args = simulate(world)
        if option == "--certificate":
            args[args.index("--certificate") + 1] = path
            return args
        return [*args, option, path]

    return build


def _sim_args(*extra: str) -> Callable[[World], list[str]]:
    def build(world: World) -> list[str]:
        world.stack()
        return simulate(world, *extra)

    return build


SIMULATE_CASES = [
    Case("sim-cert-dev-zero", _sim_file("--certificate", kind="link:/dev/zero"), says="not a regular file"),
    Case("sim-cert-fifo", _sim_file("--certificate", kind="fifo"), says="not a regular file"),
    Case("sim-cert-folder", _sim_file("--certificate", kind="dir"), says="--certificate"),
    Case("sim-cert-secret", _sim_file("--certificate", SECRET_PEM), says="private key"),
    Case("sim-cert-secret-der", _sim_file("--certificate", SECRET_DER), says="--certificate"),
    Case("sim-cert-junk", _sim_file("--certificate", f"junk {ESCAPES}"), says="--certificate"),
    Case("sim-cert-empty", _sim_file("--certificate", b""), says="--certificate"),
    Case("sim-cert-huge", _sim_file("--certificate", b"A" * (20 * 1024 * 1024)), says="larger than"),
    Case("sim-foreign-svid", _sim_file("--certificate", FOREIGN_SVID.pem), exits=(1,), says="denied"),
    Case("sim-intermediates-fifo", _sim_file("--intermediates", kind="fifo"), says="not a regular file"),
    Case("sim-intermediates-secret", _sim_file("--intermediates", SECRET_PEM), says="private key"),
    Case("sim-trust-policy-junk", _sim_file("--trust-policy", "{nope"), says="--trust-policy"),
    Case("sim-trust-policy-dup", _sim_file("--trust-policy", '{"Version": 1, "Version": 2}'), says="twice"),
    Case("sim-trust-policy-deep", _sim_file("--trust-policy", "[" * 100_000), says="nested"),
    Case(
        "sim-trust-policy-dev-zero",
        _sim_file("--trust-policy", kind="link:/dev/zero"),
        says="not a regular file",
    ),
    Case("sim-at-junk", _sim_args("--at", f"yesterday{ESCAPES}"), says="--at"),
    Case("sim-role-unknown", _sim_args("--role", f"nope{ESCAPES}"), says="--role"),
    Case("sim-duration-junk", _sim_args("--session-duration", "99999999999"), exits=(1,), says="denied"),
    Case("sim-stack-outputs-fifo", _sim_file("--stack-outputs", kind="fifo"), says="not a regular file"),
]


# --- credential-process -------------------------------------------------------------------------------


def _cp_file(which: str, content: str | bytes = b"", kind: str = "") -> Callable[[World], list[str]]:
    def build(world: World) -> list[str]:
        name = "cp-" + which
        if kind:
            world.special(name, kind)
        else:
            world.write(name, content)
        return process(world, **{which: name})

    return build


def _cp_args(*extra: str, **replace: str) -> Callable[[World], list[str]]:
    def build(world: World) -> list[str]:
        args = process(world, *extra)
        for option, value in replace.items():
            args[args.index("--" + option.replace("_", "-")) + 1] = value
        return args

    return build


def _cp_server(body: str | bytes, *, trusted: bool = True, **answer: Any) -> Callable[[World], list[str]]:
    def build(world: World) -> list[str]:
        ca_file = world.serve(body, **answer)
        extra = ["--endpoint", f"https://{world.server.address}"]
        if trusted:
            extra += ["--ca-bundle", ca_file]
        return process(world, *extra)

    return build


def _encrypted_key() -> bytes:
    return SVID.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"password"),
    )


CREDENTIAL_CASES = [
    Case("cp-cert-dev-zero", _cp_file("certificate", kind="link:/dev/zero"), says="not a regular file"),
    Case("cp-key-dev-zero", _cp_file("key", kind="link:/dev/zero"), says="not a regular file"),
    Case("cp-cert-fifo", _cp_file("certificate", kind="fifo"), says="not a regular file"),
    Case("cp-key-fifo", _cp_file("key", kind="fifo"), says="not a regular file"),
    Case("cp-cert-missing", _cp_args(certificate="/nonexistent/svid.pem"), says="not found"),
    Case("cp-cert-holds-key", _cp_file("certificate", SECRET_PEM), says="private key"),
    Case("cp-key-holds-cert", _cp_file("key", SVID.pem), says="--private-key"),
    Case("cp-key-bare-base64", _cp_file("key", SECRET_LINES), says="--private-key"),
    Case("cp-key-encrypted", _cp_file("key", _encrypted_key()), says="encrypted"),
    Case("cp-key-mismatch", _cp_file("key", SECRET_PEM), says="not the key"),
    Case("cp-key-huge", _cp_file("key", b"A" * (20 * 1024 * 1024)), says="larger than"),
    Case(
        "cp-intermediates-fifo",
        lambda w: [*process(w), "--intermediates", w.special("i.pem", "fifo")],
        says="not a regular file",
    ),
    Case("cp-anchor-junk", _cp_args(trust_anchor_arn=f"arn:{ESCAPES}"), says="--trust-anchor-arn"),
    Case("cp-anchor-secret", _cp_args(trust_anchor_arn=SECRET_B64), says="--trust-anchor-arn"),
    Case("cp-role-junk", _cp_args(role_arn="*"), says="--role-arn"),
    Case("cp-duration-junk", _cp_args("--session-duration", "5"), says="--session-duration"),
    Case("cp-endpoint-http", _cp_args("--endpoint", "http://127.0.0.1:1"), says="https"),
    Case("cp-endpoint-refused", _cp_args("--endpoint", "https://127.0.0.1:1"), says="--endpoint"),
    Case(
        "cp-ca-bundle-secret",
        lambda w: [*process(w), "--ca-bundle", w.write("cab.pem", SECRET_PEM)],
        says="--ca-bundle",
    ),
    Case(
        "cp-ca-bundle-fifo",
        lambda w: [*process(w), "--ca-bundle", w.special("cab.pem", "fifo")],
        says="--ca-bundle",
    ),
    Case("cp-untrusted-tls", _cp_server("{}", trusted=False), says="--endpoint", exits=(1, 2)),
    Case(
        "cp-403-escapes",
        _cp_server(json.dumps({"message": f"denied {ESCAPES}"}), status=403),
        exits=(1,),
        says="403",
    ),
    Case(
        "cp-403-secret", _cp_server(json.dumps({"message": SECRET_PEM}), status=403), exits=(1,), says="403"
    ),
    Case("cp-500-bare-secret", _cp_server(SECRET_B64, status=500), exits=(1,), says="500"),
    Case("cp-500-raw-der", _cp_server(SECRET_DER, status=500), exits=(1,), says="500"),
    Case("cp-huge-answer", _cp_server(b"x" * (3 * 1024 * 1024)), says="larger than"),
    Case("cp-200-junk", _cp_server(f"junk{ESCAPES}"), exits=(1,), says="credentialSet"),
    Case(
        "cp-200-duplicate-keys",
        _cp_server('{"credentialSet": [], "credentialSet": []}'),
        exits=(1,),
        says="credentialSet",
    ),
    Case("cp-200-deep", _cp_server("[" * 100_000), exits=(1,), says="credentialSet"),
    Case(
        "cp-error-type-escapes",
        _cp_server("{}", status=400, headers={"x-amzn-ErrorType": "Bad\x1b[2J"}),
        exits=(1,),
        says="400",
    ),
]


# --- bundle --stack-outputs ---------------------------------------------------------------------------


def _bundle_outputs(
    raw: str | None = None, change: Callable[[dict[str, Any]], Any] | None = None
) -> Callable[[World], list[str]]:
    def build(world: World) -> list[str]:
        world.stack()
        return [*bundle(world), "--stack-outputs", world.outputs(change, raw)]

    return build


BUNDLE_CASES = [
    Case("bundle-outputs-junk", _bundle_outputs("nope"), says="outputs.json"),
    Case(
        "bundle-outputs-other-cluster",
        _bundle_outputs(change=_set("cluster", "other.example")),
        says="trust domain",
    ),
    Case("bundle-outputs-duplicate", _bundle_outputs('{"cluster": 1, "cluster": 2}'), says="twice"),
    Case(
        "bundle-outputs-no-cas",
        _bundle_outputs(change=lambda d: d.pop("caCertificates")),
        says="caCertificates",
    ),
]


# --- Found by a review that attacked the first version of this suite ----------------------------------


def _split_secret(width: int) -> list[str]:
    return [SECRET_B64[i : i + width] for i in range(0, len(SECRET_B64), width)]


def _render_to(out: Callable[[World], str], *, warn: bool = False) -> Callable[[World], list[str]]:
    """``render --config`` into the folder ``out`` returns (planted by it), the stack optionally warning."""

    def build(world: World) -> list[str]:
        world.stack(**({"workloads": {"orders": {"spiffeId": "/svc/orders"}}} if warn else {}))
        return ["render", "--config", str(world.work / "Pulumi.dev.yaml"), "--out", out(world)]

    return build


def _dangling(world: World) -> str:
    (world.work / "gone").symlink_to(world.work / "nowhere")
    return "gone"


def _self_link(world: World) -> str:
    (world.work / "loop").symlink_to("loop")
    return "loop"


def _under_file(world: World) -> str:
    (world.work / "plain").write_text("x")
    return "plain/sub"


def _linked_parent(world: World) -> str:
    (world.work / "gen").symlink_to(world.outside)
    return "gen/dev"


def _foreign_readme(world: World) -> str:
    world.out.mkdir()
    (world.out / "README.md").write_text("mine")
    return str(world.out)


def _duplicate_extension_svid() -> bytes:
    """The SVID with its keyUsage OID rewritten to basicConstraints': two of one extension."""
    der = SVID.certificate.public_bytes(serialization.Encoding.DER)
    return der.replace(bytes.fromhex("0603551d0f"), bytes.fromhex("0603551d13"), 1)


def _unsupported_key_svid() -> bytes:
    der = SVID.certificate.public_bytes(serialization.Encoding.DER)
    return der.replace(bytes.fromhex("06072a8648ce3d0201"), bytes.fromhex("06072a8648ce3d0209"))


@functools.cache
def _big_rsa_key() -> str:
    key = rsa.generate_private_key(65537, 8_704)  # over the 8,192-bit cap, quick enough to make
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _big_key(world: World) -> list[str]:
    world.write("cp-big.key", _big_rsa_key())
    return process(world, key="cp-big.key")


def _five_thousand(world: World) -> list[str]:
    workloads = {f"w{i}": {"spiffeId": f"/svc/w{i}", "bots": ["tra-ci"]} for i in range(5_000)}
    world.stack(workloads=workloads, quotas={"iamRoles": 5_000})
    return plan(world)


def _many_outputs(document: dict[str, Any]) -> None:
    (only,) = document["workloads"].values()
    document["workloads"] = {f"w{i}": only for i in range(5_001)}


def _sim_extra_certificate(world: World) -> list[str]:
    world.stack()
    world.write("sim-two.pem", FOREIGN_SVID.pem + OTHER_CA.pem)
    args = simulate(world)
    args[args.index("--certificate") + 1] = str(world.work / "sim-two.pem")
    return args


_WIDE = "\n".join(_split_secret(60))
REVIEW_CASES = [
    Case("secret-in-users-60-lines", _orders(users=["\n".join(_split_secret(60))]), says="users"),
    Case("secret-in-users-64-lines", _orders(users=["\n".join(_split_secret(64))]), says="users"),
    Case("secret-over-bot-items", _orders(bots=_split_secret(40)), says="bots"),
    Case("secret-in-role-flag", _sim_args("--role", "\n".join(_split_secret(60))), says="--role"),
    Case("secret-in-at-flag", _sim_args("--at", "\n".join(_split_secret(64))), says="--at"),
    Case(
        "secret-in-anchor-flag",
        _cp_args(trust_anchor_arn="\n".join(_split_secret(60))),
        says="--trust-anchor-arn",
    ),
    Case("yaml-int-5000-digits", _raw_stack(_VALID + "  x:y: " + "9" * 5_000 + "\n"), says="cannot be read"),
    Case("yaml-hex-5000-digits", _raw_stack(_VALID + "  x:y: 0x" + "f" * 5_000 + "\n"), says="too long"),
    Case("yaml-february-30", _raw_stack(_VALID + "  x:y: 2001-02-30\n"), says="cannot be read"),
    Case(
        "yaml-date-key",
        _raw_stack(_HEAD + f"  {PROJECT}:workloads:\n    2020-01-01: {{spiffeId: /svc/first}}\n"),
        says="quote it",
    ),
    Case(
        "yaml-int-and-text-key",
        _raw_stack(
            _HEAD
            + f"  {PROJECT}:workloads:\n    1: {{spiffeId: /svc/first}}\n    '1': {{spiffeId: /svc/second}}\n"
        ),
        says="quote it",
    ),
    Case(
        "yaml-bool-and-text-key", _raw_stack(_VALID + "  m:\n    true: a\n    'true': b\n"), says="quote it"
    ),
    Case("yaml-null-and-text-key", _raw_stack(_VALID + "  m:\n    ~: a\n    'null': b\n"), says="quote it"),
    Case("plan-5000-workloads-in-300-mib", _five_thousand, says="address space"),
    Case("outputs-5001-workloads", _outputs(_many_outputs), says="workloads"),
    Case("outputs-workload-name-300", _outputs(_rename_workload("a" * 300)), says="outputs.json"),
    Case("manifest-dot-slash", _out(_rendered_then(_manifest("./README.md\n"))), says="not a file name"),
    Case(
        "manifest-double-slash",
        _out(_rendered_then(_manifest("teleport//apply.sh\n"))),
        says="not a file name",
    ),
    Case("manifest-trailing-slash", _out(_rendered_then(_manifest("README.md/\n"))), says="not a file name"),
    Case(
        "manifest-dot-self",
        _out(_rendered_then(_manifest("./.roles-anywhere-files\n"))),
        says="not a file name",
    ),
    Case("manifest-nul", _out(_rendered_then(_manifest("a\x00b\n"))), says="not a file name"),
    Case("manifest-long-name", _out(_rendered_then(_manifest("a" * 300 + "\n"))), says="not a file name"),
    Case("manifest-deep", _out(_rendered_then(_manifest("d/" * 3_000 + "f\n"))), says="not a file name"),
    Case(
        "manifest-25000-entries",
        _out(_rendered_then(_manifest("".join(f"f{i}\n" for i in range(25_000))))),
        says="lists",
    ),
    Case("out-dangling-link", _render_to(_dangling), says="link or not a folder"),
    Case("out-self-link", _render_to(_self_link), says="link or not a folder"),
    Case("out-under-a-file", _render_to(_under_file), says="link or not a folder"),
    Case("out-name-too-long", _render_to(lambda w: "x" * 300), says="cannot write"),
    Case("out-through-committed-link", _render_to(_linked_parent), says="link"),
    Case("out-foreign-file-and-warnings", _render_to(_foreign_readme, warn=True), says="warning"),
    Case("sim-extra-certificate-denied", _sim_extra_certificate, exits=(1,), says="warning"),
    Case("cp-unsupported-key-type", _cp_file("certificate", _unsupported_key_svid()), says="--certificate"),
    Case("cp-duplicate-extension", _cp_file("certificate", _duplicate_extension_svid()), says="twice"),
    Case("sim-duplicate-extension", _sim_file("--certificate", _duplicate_extension_svid()), says="twice"),
    Case("cp-endpoint-bad-ipv6", _cp_args("--endpoint", "https://[::1"), says="--endpoint"),
    Case("cp-endpoint-escape", _cp_args("--endpoint", f"https://a{ESCAPES}b"), says="--endpoint"),
    Case("cp-rsa-over-cap", _big_key, says="at most 8192 bits"),
]


CASES = (
    YAML_CASES
    + VALUE_CASES
    + BUNDLE_FILE_CASES
    + COMMAND_CASES
    + URL_CASES
    + OUTPUT_CASES
    + OUT_CASES
    + SIMULATE_CASES
    + CREDENTIAL_CASES
    + BUNDLE_CASES
    + REVIEW_CASES
)
