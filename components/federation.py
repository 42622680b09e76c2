"""The whole federation: one trust anchor and every workload behind it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from roles_anywhere import FEDERATION_TYPE
from roles_anywhere.stack.outputs import stack_outputs, workload_output
from roles_anywhere.stack.profiles import share_profiles
from roles_anywhere.stack.spec import Spec

from .trust_anchor import TrustAnchor, TrustAnchorArgs
from .workload import WorkloadAccess, WorkloadArgs, profile_resource


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
            TrustAnchorArgs(
                bundle_pem=spec.bundle.pem,
                settings=spec.trust_anchor,
                tags=tags,
                import_id=spec.imports.trust_anchor,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        shared = spec.profile_sharing == "shared"
        self.workloads = {
            workload.name: WorkloadAccess(
                f"{name}-{workload.name}",
                WorkloadArgs(
                    workload=workload,
                    trust_anchor_arn=self.trust_anchor.arn,
                    tags=tags,
                    shared_profile=shared,
                    import_role=spec.imports.role(workload.name),
                    import_profile=None if shared else spec.imports.profile(workload.name),
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for workload in spec.workloads
        }
        self.shared_profiles: dict[str, pulumi.CustomResource] = {}
        if shared:
            for profile in share_profiles(spec.workloads, spec.name_prefix):
                resource = profile_resource(
                    f"{name}-profile-{profile.settings_digest}-{profile.bucket}",
                    name=profile.name,
                    settings=profile.settings,
                    role_arns=[self.workloads[member].role_arn for member in profile.workloads],
                    tags={**dict(spec.stack_tags), **tags},
                    opts=pulumi.ResourceOptions(parent=self, import_=spec.imports.profile(profile.name)),
                )
                self.shared_profiles[profile.name] = resource
                for member in profile.workloads:
                    self.workloads[member].profile_arn = resource.arn
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
        self.register_outputs({})
