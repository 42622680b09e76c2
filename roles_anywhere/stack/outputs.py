"""The stack outputs' shape: a contract read back by ``render --stack-outputs`` and by users' scripts.

The outputs carry everything the renderers need (ARNs, SPIFFE IDs and the Teleport/AWS client
settings), so ``pulumi stack output --json`` alone is enough to render the artefacts again.
Values may be Pulumi Outputs or plain strings; these functions only arrange them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from roles_anywhere.bundle.ca_bundle import CaBundle
from roles_anywhere.stack.spec import Spec, Workload

TRUST_ANCHOR_ARN = "trustAnchorArn"
TRUST_ANCHOR = "trustAnchor"
CLUSTER = "cluster"
WORKLOADS = "workloads"
CA_CERTIFICATES = "caCertificates"
TELEPORT = "teleport"
AWS = "aws"
ARTIFACTS = "artifacts"


def workload_output(workload: Workload, *, role_arn: Any, profile_arn: Any) -> dict[str, Any]:
    """Per workload: its SPIFFE ID and the ARNs a client needs to use it."""
    return {
        "spiffeId": str(workload.spiffe_id),
        "roleName": workload.role_name,
        "roleArn": role_arn,
        "profileArn": profile_arn,
        "sessionDuration": workload.session_duration,
        "svidDirectory": workload.svid_directory,
        "bots": list(workload.bots),
        "users": list(workload.users),
        "svidTtl": workload.svid_ttl,
        "path": workload.path,
        "permissionsBoundary": workload.permissions_boundary,
        "acceptRoleSessionName": workload.profile.accept_role_session_name,
        "requireInstanceProperties": workload.profile.require_instance_properties,
        **({"servePort": workload.serve_port} if workload.serve_port is not None else {}),
    }


def ca_certificates(bundle: CaBundle) -> list[dict[str, str]]:
    """The ``caCertificates`` output: what users need to recognise each CA (no certificate body)."""
    return [
        {
            "subject": cert.subject,
            "sha256Fingerprint": cert.fingerprint_sha256,
            "notAfter": cert.not_after.isoformat(),
            "key": cert.key_description,
        }
        for cert in bundle.certificates
    ]


def stack_outputs(
    spec: Spec, *, trust_anchor_arn: Any, workloads: Mapping[str, Any], certificates: Any = None
) -> dict[str, Any]:
    """All stack outputs, keyed as ``pulumi stack output --json`` will print them.

    ``certificates``: the ``caCertificates`` value when the bundle is not in ``spec`` (an Output).
    """
    return {
        CLUSTER: spec.cluster,
        TRUST_ANCHOR_ARN: trust_anchor_arn,
        TRUST_ANCHOR: {
            "name": spec.trust_anchor.name,
            "caExpiryNotificationDays": spec.trust_anchor.ca_expiry_notification_days,
            "certificateExpiryNotificationDays": spec.trust_anchor.certificate_expiry_notification_days,
        },
        CA_CERTIFICATES: ca_certificates(spec.bundle) if certificates is None else certificates,
        TELEPORT: {
            "mode": spec.teleport.mode,
            "namespace": spec.teleport.namespace,
            "proxy": spec.teleport.proxy,
            "bots": {
                bot.name: {"joinMethod": bot.join_method, "token": bot.token, "storagePath": bot.storage_path}
                for bot in spec.teleport.bots
            },
        },
        AWS: {
            "signingHelper": spec.aws.signing_helper,
            "credentials": spec.aws.credentials,
            **(
                {"servePort": spec.aws.serve_port, "serveHelper": spec.aws.serve_helper}
                if spec.aws.credentials == "serve"
                else {}
            ),
            **{
                key: value
                for key, value in (
                    ("endpoint", spec.aws.endpoint),
                    ("endpointCaFile", spec.aws.endpoint_ca_file),
                    ("endpointUrl", spec.aws.endpoint_url),
                )
                if value is not None
            },
        },
        WORKLOADS: dict(workloads),
    }
