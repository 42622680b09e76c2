"""A running sandbox for a test module, and helpers to set up anchors, roles, profiles and SVIDs in it."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from roles_anywhere.iam.policy import trust_policy
from roles_anywhere.sandbox.server import Sandbox

from .certs import Issued, make_ca, make_svid

CLUSTER = "sandbox.teleport.sh"


def fresh_ca(**options: Any) -> Issued:
    """A Teleport-shaped CA valid around the real clock (the sandbox checks against now)."""
    return make_ca(CLUSTER, not_before=datetime.now(UTC) - timedelta(days=1), **options)


def fresh_svid(ca: Issued, spiffe_id: str, **options: Any) -> Issued:
    """An SVID valid now (unless the test says otherwise)."""
    now = datetime.now(UTC)
    options.setdefault("not_before", now - timedelta(minutes=1))
    options.setdefault("not_after", now + timedelta(hours=1))
    return make_svid(ca, spiffe_id, **options)


@dataclass
class Workload:
    """One workload set up in the sandbox: its SPIFFE ID, role and profile."""

    spiffe_id: str
    role_arn: str
    profile_arn: str


@dataclass
class World:
    """A trust anchor for ``ca`` in ``sandbox``; ``workload`` adds roles and profiles to it."""

    sandbox: Sandbox
    ca: Issued
    anchor_arn: str

    def workload(
        self,
        path: str,
        *,
        duration: int = 3_600,
        max_session: int = 3_600,
        role_arns: list[str] | None = None,
    ) -> Workload:
        name = f"w-{uuid.uuid4().hex[:10]}"
        spiffe_id = f"spiffe://{CLUSTER}{path}"
        role = self.sandbox.client("iam").create_role(
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps(trust_policy(spiffe_id, self.anchor_arn)),
            MaxSessionDuration=max_session,
        )["Role"]
        profile = self.sandbox.client("rolesanywhere").create_profile(
            name=name,
            roleArns=role_arns if role_arns is not None else [role["Arn"]],
            durationSeconds=duration,
            enabled=True,
        )["profile"]
        return Workload(spiffe_id, role["Arn"], profile["profileArn"])


def make_world(sandbox: Sandbox, ca: Issued | None = None) -> World:
    """A fresh CA (unless given) and an enabled trust anchor holding it."""
    ca = ca or fresh_ca()
    anchor = sandbox.client("rolesanywhere").create_trust_anchor(
        name=f"anchor-{uuid.uuid4().hex[:8]}",
        enabled=True,
        source={"sourceType": "CERTIFICATE_BUNDLE", "sourceData": {"x509CertificateData": ca.pem}},
    )["trustAnchor"]
    return World(sandbox, ca, anchor["trustAnchorArn"])
