"""IAM policy documents for Roles Anywhere roles, built in one place so every role gets the same shape.

The trust policy is exact by construction: ``StringEquals`` on the SPIFFE ID (never ``StringLike``,
whose ``*`` crosses ``/``) and ``ArnEquals`` on the one trust anchor, so only that workload's SVID,
verified through that anchor, can assume the role.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

ROLES_ANYWHERE_SERVICE = "rolesanywhere.amazonaws.com"
TRUST_ACTIONS = ("sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity")
SPIFFE_ID_TAG_KEY = "aws:PrincipalTag/x509SAN/URI"
SOURCE_ARN_KEY = "aws:SourceArn"
POLICY_VERSION = "2012-10-17"


def trust_policy(spiffe_id: str, trust_anchor_arn: str) -> dict[str, Any]:
    """The role trust policy admitting exactly ``spiffe_id``, and only through ``trust_anchor_arn``."""
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": "TeleportWorkloadIdentity",
                "Effect": "Allow",
                "Principal": {"Service": ROLES_ANYWHERE_SERVICE},
                "Action": list(TRUST_ACTIONS),
                "Condition": {
                    "StringEquals": {SPIFFE_ID_TAG_KEY: spiffe_id},
                    "ArnEquals": {SOURCE_ARN_KEY: trust_anchor_arn},
                },
            }
        ],
    }


def policy_json(document: Mapping[str, Any]) -> str:
    """Serialise a policy document the same way every time (stable diffs in ``pulumi preview``)."""
    return json.dumps(document, indent=2, ensure_ascii=False)


def trust_policy_json(spiffe_id: str, trust_anchor_arn: str) -> str:
    """``trust_policy`` as the JSON string ``aws.iam.Role.assume_role_policy`` takes."""
    return policy_json(trust_policy(spiffe_id, trust_anchor_arn))


def policy_size(document: Mapping[str, Any]) -> int:
    """Characters IAM counts against its policy size quotas (whitespace outside strings is not counted)."""
    return len(json.dumps(document, separators=(",", ":"), ensure_ascii=False))
