"""Start and stop a sandbox: moto (IAM, STS) and the Roles Anywhere endpoint, both on 127.0.0.1.

Ports are chosen free by the OS. The Roles Anywhere endpoint speaks HTTPS with a self-signed
certificate for 127.0.0.1/localhost, written next to the endpoints file so clients can trust it.
With a state directory, Roles Anywhere resources are saved on every change and IAM roles (with
their policies) when the sandbox stops, so a restart brings them back with the same ARNs.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.x509.oid import NameOID

from .certificates import certificate_pem, issue, key_pem
from .policy_gate import MintedSessions, PolicyGate
from .state import SandboxState

HOST = "127.0.0.1"
MOTO_ACCOUNT_ID = "123456789012"
ENDPOINTS_FILE = "endpoints.json"
IAM_SNAPSHOT = "iam.json"
DUMMY_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}  # moto accepts any
log = logging.getLogger("roles_anywhere.sandbox")


def write_tls_identity(folder: Path) -> tuple[Path, Path]:
    """A self-signed server certificate for 127.0.0.1 and localhost: (certificate, key). Reused if present."""
    certificate, key_file = folder / "sandbox-tls.pem", folder / "sandbox-tls.key"
    if certificate.exists() and key_file.exists():
        loaded = x509.load_pem_x509_certificate(certificate.read_bytes())
        if loaded.not_valid_after_utc > datetime.now(UTC) + timedelta(days=1):
            return certificate, key_file
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "roles-anywhere sandbox")])
    addresses = [x509.IPAddress(ipaddress.ip_address(HOST)), x509.DNSName("localhost")]
    extensions = [
        (x509.SubjectAlternativeName(addresses), False),
        (x509.BasicConstraints(ca=True, path_length=0), True),
    ]
    cert, key = issue(name, extensions, lifetime=timedelta(days=30))
    folder.mkdir(parents=True, exist_ok=True)
    key_file.write_bytes(key_pem(key))
    key_file.chmod(0o600)
    certificate.write_bytes(certificate_pem(cert))
    return certificate, key_file


@dataclass
class Sandbox:
    """A running sandbox; use as a context manager or call ``start``/``stop``."""

    region: str = "us-east-1"
    state_dir: Path | None = None
    endpoints_file: Path | None = None
    endpoints: dict[str, Any] = field(default_factory=dict)
    _servers: list[Any] = field(default_factory=list, repr=False)
    _threads: list[threading.Thread] = field(default_factory=list, repr=False)
    _scratch: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self, service: str) -> Any:
        """A boto3 client for ``iam``, ``sts`` (moto) or ``rolesanywhere`` (this sandbox)."""
        import boto3  # noqa: PLC0415 - boto3 is heavy; only the sandbox needs it

        endpoint = self.endpoints[service]
        verify = self.endpoints["caFile"] if service == "rolesanywhere" else None
        return boto3.client(
            service, region_name=self.region, endpoint_url=endpoint, verify=verify, **DUMMY_CREDENTIALS
        )

    def start(self) -> Sandbox:
        """Start moto and the endpoint, restore saved state, and publish the endpoints."""
        os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
        from moto.moto_server.werkzeug_app import (  # noqa: PLC0415
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server  # noqa: PLC0415

        from .app import create_app  # noqa: PLC0415

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request is noise here
        minted = MintedSessions()
        gate = PolicyGate(DomainDispatcherApplication(create_backend_app), minted, iam=None)
        moto = make_server(HOST, 0, gate, threaded=True, request_handler=MotoRequestHandler)
        self._serve(moto, "roles-anywhere-sandbox-aws")
        moto_url = f"http://{HOST}:{moto.server_port}"
        # moto's backends live in this process: start from empty even if another sandbox ran here
        httpx.post(f"{moto_url}/moto-api/reset", timeout=30).raise_for_status()
        folder = self.state_dir
        if folder is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="roles-anywhere-sandbox-")
            folder = Path(self._scratch.name)
        certificate, key = write_tls_identity(folder)
        self.endpoints = {
            "region": self.region,
            "accountId": MOTO_ACCOUNT_ID,
            "iam": moto_url,
            "sts": moto_url,
            "caFile": str(certificate.resolve()),
        }
        iam, sts = self.client("iam"), self.client("sts")
        gate.iam = iam
        self._restore_iam(iam)
        state = SandboxState.load(self.region, MOTO_ACCOUNT_ID, self.state_dir)
        server = make_server(
            HOST,
            0,
            create_app(state, iam, sts, minted),
            threaded=True,
            ssl_context=(str(certificate), str(key)),
        )
        self._serve(server, "roles-anywhere-sandbox")
        self.endpoints["rolesanywhere"] = f"https://{HOST}:{server.server_port}"
        if self.endpoints_file is not None:
            self.endpoints_file.parent.mkdir(parents=True, exist_ok=True)
            self.endpoints_file.write_text(json.dumps(self.endpoints, indent=2) + "\n")
        return self

    def _serve(self, server: Any, name: str) -> None:
        self._servers.append(server)
        thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        """Save IAM (with a state directory) and stop every server this sandbox started."""
        if self.state_dir is not None and "iam" in self.endpoints:
            try:
                self._snapshot_iam(self.client("iam"))
            except Exception:  # stopping must not fail because saving did
                log.exception("could not save IAM state")
        for server in reversed(self._servers):
            if hasattr(server, "shutdown"):
                server.shutdown()
                if hasattr(server, "server_close"):
                    server.server_close()
            else:
                server.stop()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers.clear()
        self._threads.clear()
        if self.endpoints_file is not None and self.endpoints_file.exists():
            self.endpoints_file.unlink()
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None

    def _snapshot_iam(self, iam: Any) -> None:
        assert self.state_dir is not None  # noqa: S101 - checked by the caller
        roles = []
        for page in iam.get_paginator("list_roles").paginate():
            for role in page["Roles"]:
                name = role["RoleName"]
                full = iam.get_role(RoleName=name)["Role"]
                roles.append(
                    {
                        "RoleName": name,
                        "Path": full.get("Path", "/"),
                        "AssumeRolePolicyDocument": full["AssumeRolePolicyDocument"],
                        "MaxSessionDuration": full.get("MaxSessionDuration", 3600),
                        "Description": full.get("Description", ""),
                        "PermissionsBoundary": (full.get("PermissionsBoundary") or {}).get(
                            "PermissionsBoundaryArn"
                        ),
                        "Tags": full.get("Tags", []),
                        "Attached": [
                            p["PolicyArn"]
                            for p in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
                        ],
                        "Inline": {
                            policy: iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
                            for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]
                        },
                    }
                )
        (self.state_dir / IAM_SNAPSHOT).write_text(json.dumps(roles, indent=2, default=str))

    def _restore_iam(self, iam: Any) -> None:
        path = self.state_dir / IAM_SNAPSHOT if self.state_dir else None
        if path is None or not path.exists():
            return
        for role in json.loads(path.read_text()):
            document = role["AssumeRolePolicyDocument"]
            iam.create_role(
                RoleName=role["RoleName"],
                Path=role["Path"],
                AssumeRolePolicyDocument=document if isinstance(document, str) else json.dumps(document),
                MaxSessionDuration=role["MaxSessionDuration"],
                Description=role["Description"],
                Tags=role.get("Tags", []),
                **(
                    {"PermissionsBoundary": role["PermissionsBoundary"]}
                    if role.get("PermissionsBoundary")
                    else {}
                ),
            )
            for arn in role["Attached"]:
                iam.attach_role_policy(RoleName=role["RoleName"], PolicyArn=arn)
            for name, policy in role["Inline"].items():
                iam.put_role_policy(
                    RoleName=role["RoleName"],
                    PolicyName=name,
                    PolicyDocument=policy if isinstance(policy, str) else json.dumps(policy),
                )
