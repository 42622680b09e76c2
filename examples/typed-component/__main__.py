"""A platform team's program: its own resources, plus Roles Anywhere for Teleport as one typed component.

The Teleport SPIFFE CA reaches the component as another resource's output: this program publishes it
in an SSM parameter for other teams and hands the parameter's value to ``Federation``. Any
``pulumi.Input[str]`` works (a ``StackReference`` output from the Teleport team's stack, say).
"""

from pathlib import Path

import pulumi
import pulumi_aws as aws

from roles_anywhere.components.federation import Federation
from roles_anywhere.components.federation_args import FederationArgs

config = pulumi.Config()  # this project's namespace: platform-infra:*
team = config.require("team")

ca = aws.ssm.Parameter(
    "teleport-spiffe-ca",
    type="String",
    value=Path(config.require("caFile")).read_text(encoding="utf-8"),
    description="The Teleport cluster's SPIFFE CA, for every team that trusts its SVIDs",
)

args: FederationArgs = {
    "cluster": config.require("cluster"),
    "ca_bundle": ca.value,
    "name_prefix": f"{team}-",
    "iam": {"path": f"/{team}/", "tags": {"Team": team}},
    "workloads": {
        "orders": {
            "spiffe_id": "/svc/orders",
            "managed_policy_arns": ["arn:aws:iam::aws:policy/AmazonDynamoDBReadOnlyAccess"],
            "bots": [f"{team}-ci"],
        },
        "billing": {
            "spiffe_id": "/svc/billing",
            "inline_policy": {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::invoices/*"}
                ],
            },
            "session_duration": 7200,
            "bots": [f"{team}-ci"],
        },
    },
}
federation = Federation("teleport", args)

pulumi.export("trustAnchorArn", federation.trust_anchor_arn)
pulumi.export("roleArns", federation.role_arns)
pulumi.export("profileArns", federation.profile_arns)
# Everything `roles-anywhere render --stack-outputs` reads, under one output:
#   pulumi stack output rolesAnywhere --json > outputs.json
#   roles-anywhere render --stack-outputs outputs.json --out …
pulumi.export("rolesAnywhere", federation.stack_outputs)
pulumi.export("spiffeCaParameter", ca.name)
