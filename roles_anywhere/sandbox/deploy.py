"""Deploy a stack into a running sandbox: the real ``__main__`` program, with mocks that call the sandbox.

Each resource the program registers is created in the sandbox through boto3 (Roles Anywhere on the
sandbox endpoint, IAM on moto), and the mock returns what the sandbox answered. Dependent inputs,
such as the anchor ARN inside every trust policy, therefore carry the sandbox's real values, and
the stack outputs are what ``pulumi stack output --json`` would print after a real deploy.
"""

from __future__ import annotations

import json
from typing import Any

from ..mocks import (
    PROFILE,
    ROLE,
    ROLE_POLICY,
    ROLE_POLICY_ATTACHMENT,
    TRUST_ANCHOR,
    DeterministicAwsMocks,
)
from ..plan import Plan, run_program
from ..spec import load_spec
from ..stack_file import StackFile
from .server import DUMMY_CREDENTIALS


def _tag_list(tags: dict[str, str] | None) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in sorted((tags or {}).items())]


class SandboxMocks(DeterministicAwsMocks):
    """Answers resource registrations by creating the resources in the sandbox."""

    def __init__(self, endpoints: dict[str, Any]) -> None:
        super().__init__(region=endpoints["region"], account_id=endpoints["accountId"])
        import boto3  # noqa: PLC0415 - heavy, and only deploys need it

        options = {"region_name": endpoints["region"], **DUMMY_CREDENTIALS}
        self.rolesanywhere = boto3.client(
            "rolesanywhere", endpoint_url=endpoints["rolesanywhere"], verify=endpoints["caFile"], **options
        )
        self.iam = boto3.client("iam", endpoint_url=endpoints["iam"], **options)

    def _computed(self, token: str, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if token == TRUST_ANCHOR:
            anchor = self.rolesanywhere.create_trust_anchor(
                name=inputs["name"],
                enabled=inputs.get("enabled", False),
                source={
                    "sourceType": inputs["source"]["sourceType"],
                    "sourceData": {
                        "x509CertificateData": inputs["source"]["sourceData"]["x509CertificateData"]
                    },
                },
                notificationSettings=inputs.get("notificationSettings", []),
                tags=_tag_list(inputs.get("tags")),
            )["trustAnchor"]
            return anchor["trustAnchorId"], {
                "arn": anchor["trustAnchorArn"],
                "tagsAll": inputs.get("tags", {}),
            }
        if token == PROFILE:
            profile = self.rolesanywhere.create_profile(
                name=inputs["name"],
                roleArns=inputs["roleArns"],
                durationSeconds=inputs.get("durationSeconds", 3_600),
                enabled=inputs.get("enabled", False),
                tags=_tag_list(inputs.get("tags")),
            )["profile"]
            return profile["profileId"], {"arn": profile["profileArn"], "tagsAll": inputs.get("tags", {})}
        if token == ROLE:
            role = self.iam.create_role(
                RoleName=inputs["name"],
                Path=inputs.get("path", "/"),
                AssumeRolePolicyDocument=inputs["assumeRolePolicy"],
                Description=inputs.get("description", ""),
                MaxSessionDuration=inputs.get("maxSessionDuration", 3_600),
                Tags=[{"Key": k, "Value": v} for k, v in sorted(inputs.get("tags", {}).items())],
            )["Role"]
            return role["RoleName"], {
                "arn": role["Arn"],
                "uniqueId": role["RoleId"],
                "tagsAll": inputs.get("tags", {}),
            }
        if token == ROLE_POLICY_ATTACHMENT:
            self.iam.attach_role_policy(RoleName=inputs["role"], PolicyArn=inputs["policyArn"])
            return f"{inputs['role']}-{name}", {}
        if token == ROLE_POLICY:
            policy = inputs["policy"]
            self.iam.put_role_policy(
                RoleName=inputs["role"],
                PolicyName=inputs["name"],
                PolicyDocument=policy if isinstance(policy, str) else json.dumps(policy),
            )
            return f"{inputs['role']}:{inputs['name']}", {}
        return super()._computed(token, name, inputs)


def deploy_stack(stack_file: StackFile, endpoints: dict[str, Any]) -> Plan:
    """Run the program for a stack file against the sandbox; the resources exist afterwards."""
    load_spec(
        stack_file.project_values(), base_dir=stack_file.path.parent, stack=stack_file.stack
    )  # fail before creating anything
    return run_program(
        config=stack_file.config,
        stack=stack_file.stack,
        region=endpoints["region"],
        account_id=endpoints["accountId"],
        config_dir=stack_file.path.parent,
        mocks=SandboxMocks(endpoints),
    )
