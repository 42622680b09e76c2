"""Read what ``simulate`` is asked about: certificates, a time, a trust policy file, the roles.

Every failure is a ``ConfigError`` naming the option or file. Key material is never echoed: a
certificate file that holds a private key is refused without showing any of it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509

from roles_anywhere.bundle.x509_parsing import parse_certificates
from roles_anywhere.errors import ConfigError, load_json, read_user_bytes
from roles_anywhere.iam.policy import trust_policy
from roles_anywhere.simulate.evaluate import RoleTarget
from roles_anywhere.stack.deployment import Deployment
from roles_anywhere.stack.spec import IAM_DEFAULT_MAX_SESSION, Spec

_PRIVATE_KEY = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")


def _read(path: Path, option: str) -> bytes:
    return read_user_bytes(path, f"{option} {path}", 1024 * 1024)


def load_certificates(path: Path, option: str) -> list[x509.Certificate]:
    """Every certificate in a PEM file (or the one in a DER file), in file order."""
    data = _read(path, option)
    where = f"{option} {path}"
    if _PRIVATE_KEY.search(data):
        raise ConfigError(
            where, "contains a private key; give the certificate file only (the key was not read)"
        )
    try:
        return parse_certificates(data)
    except ValueError as err:
        raise ConfigError(where, str(err)) from None


def load_leaf(path: Path) -> tuple[x509.Certificate, int]:
    """The end-entity certificate (the file's first) and how many more the file held."""
    certificates = load_certificates(path, "--certificate")
    return certificates[0], len(certificates) - 1


def parse_time(text: str | None) -> datetime:
    """``--at``: ISO-8601; without a time zone, UTC. Default: now."""
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ConfigError("--at", f"{text!r} is not an ISO-8601 time such as 2026-11-21T12:00:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def load_trust_policy(path: Path) -> dict[str, Any]:
    """A hand-written trust policy document (JSON) to evaluate instead of the generated one."""
    try:
        document = load_json(_read(path, "--trust-policy").decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise ConfigError(f"--trust-policy {path}", f"not a JSON policy document ({err})") from None
    if not isinstance(document, dict):
        raise ConfigError(f"--trust-policy {path}", "not a JSON policy document (expected an object)")
    return document


def bundle_drift(spec: Spec, deployment: Deployment) -> list[str]:
    """Warn when the config's CA bundle is not the one the deployed anchor holds."""
    deployed = {ca.sha256_fingerprint for ca in deployment.ca_certificates}
    configured = {c.fingerprint_sha256 for c in spec.bundle.certificates}
    if not deployed or deployed == configured:
        return []
    return [
        "caBundle differs from the deployed trust anchor's certificates (stack output caCertificates); "
        "the chain is checked against the config's bundle — run pulumi up to deploy it"
    ]


def role_targets(
    deployment: Deployment,
    *,
    role: str | None,
    custom_policy: tuple[dict[str, Any], str] | None = None,
    session_duration: int | None = None,
    role_session_name: str | None = None,
) -> list[RoleTarget]:
    """The roles to simulate, as deployed (or planned): generated trust policy unless one is given."""
    names = sorted(deployment.workloads)
    if role is not None and role not in deployment.workloads:
        raise ConfigError("--role", f"no workload {role!r} in the stack; it has: {', '.join(names)}")
    targets = []
    for name in [role] if role is not None else names:
        workload = deployment.workloads[name]
        policy, source = custom_policy or (
            trust_policy(workload.spiffe_id, deployment.trust_anchor_arn),
            f"generated trust policy of {workload.role_name}",
        )
        targets.append(
            RoleTarget(
                workload=name,
                role_arn=workload.role_arn,
                profile_arn=workload.profile_arn,
                trust_policy=policy,
                trust_policy_source=source,
                profile_role_arns=(workload.role_arn,),
                profile_duration=workload.session_duration,
                role_max_session=max(IAM_DEFAULT_MAX_SESSION, workload.session_duration),
                requested_duration=session_duration or workload.session_duration,
                accept_role_session_name=workload.accept_role_session_name,
                require_instance_properties=workload.require_instance_properties,
                # as the rendered credential_process line sends it, unless overridden
                role_session_name=role_session_name or workload.role_session_name,
            )
        )
    return targets
