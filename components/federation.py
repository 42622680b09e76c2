"""The whole federation: one trust anchor and every workload behind it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from roles_anywhere import FEDERATION_TYPE
from roles_anywhere.stack.outputs import stack_outputs, workload_output
from roles_anywhere.stack.spec import Spec

from .trust_anchor import TrustAnchor, TrustAnchorArgs
from .workload import WorkloadAccess, WorkloadArgs


@dataclass
class FederationArgs:
    """The validated stack spec."""

    spec: Spec


class Federation(pulumi.ComponentResource):
    """Composes the trust anchor and one ``WorkloadAccess`` per workload."""

    def __init__(self, name: str, args: FederationArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(FEDERATION_TYPE, name, None, opts)
        spec = args.spec
        tags = {"ManagedBy": "teleport-roles-anywhere", "TeleportCluster": spec.cluster}
        self.trust_anchor = TrustAnchor(
            f"{name}-trust",
            TrustAnchorArgs(bundle_pem=spec.bundle.pem, settings=spec.trust_anchor, tags=tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.workloads = {
            workload.name: WorkloadAccess(
                f"{name}-{workload.name}",
                WorkloadArgs(workload=workload, trust_anchor_arn=self.trust_anchor.arn, tags=tags),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for workload in spec.workloads
        }
        self.outputs: dict[str, Any] = stack_outputs(
            spec,
            trust_anchor_arn=self.trust_anchor.arn,
            workloads={
                name: workload_output(
                    spec.workload(name), role_arn=access.role_arn, profile_arn=access.profile_arn
                )
                for name, access in self.workloads.items()
            },
        )
        self.register_outputs(self.outputs)
