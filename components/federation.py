"""The whole federation: one trust anchor and every workload behind it — the public component.

No ``from __future__ import annotations``: Pulumi's component-provider host reads the annotations
(the outputs below and ``FederationArgs``) at run time to build the package schema.
"""

import inspect
from datetime import UTC, datetime
from typing import Any

import pulumi

from roles_anywhere import FEDERATION_TYPE
from roles_anywhere.bundle.ca_bundle import CaBundle, parse_pem_bundle
from roles_anywhere.config.naming import key_path
from roles_anywhere.config.ownership import Adoption, ownership_tags
from roles_anywhere.errors import RolesAnywhereError
from roles_anywhere.stack.outputs import WORKLOADS, ca_certificates, stack_outputs, workload_output
from roles_anywhere.stack.profiles import (
    SHARED_PROFILES,
    Placement,
    move_warnings,
    placements,
    share_profiles,
)
from roles_anywhere.stack.spec import Spec, load_spec

from .federation_args import FederationArgs, check_bundle_choice, config_values
from .previous_outputs import read_previous_profiles
from .resolved_outputs import resolved_tree
from .run_errors import ProgramError
from .stack_config import config_dir
from .trust_anchor import TrustAnchor, TrustAnchorArgs
from .workload import WorkloadAccess, WorkloadArgs, profile_resource


class Federation(pulumi.ComponentResource):
    """IAM Roles Anywhere for a Teleport cluster's workloads.

    One trust anchor holding the cluster's SPIFFE CA and, per workload, an IAM role that only its
    SPIFFE ID can assume through that anchor (``StringEquals`` on the SPIFFE ID, ``ArnEquals`` on the
    anchor), with a Roles Anywhere profile that vends it. Bad arguments stop the program with one
    line naming the argument, as a bad stack config does.
    """

    trust_anchor_arn: pulumi.Output[str]
    """The trust anchor's ARN."""
    role_arns: pulumi.Output[dict[str, str]]
    """Per workload, the ARN of its IAM role."""
    profile_arns: pulumi.Output[dict[str, str]]
    """Per workload, the ARN of the Roles Anywhere profile that vends its role."""
    stack_outputs: pulumi.Output[dict[str, Any]]
    """Everything ``roles-anywhere render --stack-outputs`` needs to render the Teleport, tbot and AWS
    CLI files; export it as one stack output per key."""

    def __init__(self, name: str, args: FederationArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        try:  # before registering anything: a bad argument leaves no half-made component
            spec, bundle = _validated(args)
            # where the last deployment put each workload: it stays there (stack.profiles, issue 22)
            previous, previous_source = read_previous_profiles(spec.cluster)
        except RolesAnywhereError as err:
            raise ProgramError(err) from err
        super().__init__(FEDERATION_TYPE, name, None, opts)
        for warning in spec.warnings:
            pulumi.log.warn(warning)
        self.spec = spec
        cluster, namespace = spec.cluster, spec.teleport.namespace
        tags = ownership_tags(cluster, namespace)  # who owns each resource: what an import is checked against
        anchor_id = spec.imports.trust_anchor
        self.trust_anchor = TrustAnchor(
            f"{name}-trust",
            TrustAnchorArgs(
                bundle_pem=spec.bundle.pem if bundle is None else bundle.apply(lambda b: b.pem),
                settings=spec.trust_anchor,
                tags=tags,
                import_id=anchor_id,
                adoption=None
                if anchor_id is None
                else Adoption("import.trustAnchor", "trust anchor", anchor_id, cluster, namespace),
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
                    cluster=cluster,
                    namespace=namespace,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for workload in spec.workloads
        }
        self.shared_profiles: dict[str, pulumi.CustomResource] = {}
        profiles = (
            share_profiles(spec.workloads, spec.name_prefix, previous.placements if previous else None)
            if shared
            else ()
        )
        shared_arns: dict[str, pulumi.Output[str]] = {}  # name -> ARN: which profile each profileArn is
        current: dict[str, Placement | None] = (
            dict(placements(profiles)) if shared else dict.fromkeys(self.workloads)
        )
        for warning in move_warnings(previous, current, where=previous_source):
            pulumi.log.warn(warning)
        if shared:
            for profile in profiles:
                profile_id = spec.imports.profile(profile.name)
                resource = profile_resource(
                    f"{name}-profile-{profile.settings_digest}-{profile.bucket}",
                    name=profile.name,
                    settings=profile.settings,
                    role_arns=[self.workloads[member].role_arn for member in profile.workloads],
                    tags={**dict(spec.stack_tags), **tags},
                    opts=pulumi.ResourceOptions(parent=self, import_=profile_id),
                    adoption=None
                    if profile_id is None
                    else Adoption(
                        key_path("import", "profiles", profile.name),
                        "profile",
                        profile_id,
                        cluster,
                        namespace,
                    ),
                )
                self.shared_profiles[profile.name] = resource
                shared_arns[profile.name] = resource.arn
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
            certificates=None if bundle is None else bundle.apply(ca_certificates),
        )
        self.outputs[SHARED_PROFILES] = shared_arns  # what the next deploy keeps each workload in
        self.trust_anchor_arn = self.trust_anchor.arn
        self.stack_outputs = resolved_tree(self.outputs)
        self.role_arns = self.stack_outputs.apply(lambda o: _per_workload(o, "roleArn"))
        self.profile_arns = self.stack_outputs.apply(lambda o: _per_workload(o, "profileArn"))
        self.register_outputs({"trustAnchorArn": self.trust_anchor_arn})


def _validated(args: FederationArgs) -> tuple[Spec, pulumi.Output[CaBundle] | None]:
    """The Spec for ``args``, and the bundle as an Output when it is another resource's output."""
    check_bundle_choice(args)
    values = config_values({key: value for key, value in args.items() if key != "ca_bundle"})
    pem = args.get("ca_bundle")
    later = isinstance(pem, pulumi.Output) or inspect.isawaitable(pem)
    if pem is not None and not later:
        values["caBundle"] = {"pem": pem}
    spec = load_spec(values, base_dir=config_dir(), stack=pulumi.get_stack(), bundle_later=later)
    return spec, pulumi.Output.from_input(pem).apply(_checked_bundle) if later else None


def _checked_bundle(pem: str | None) -> CaBundle:
    """The bundle from another resource's output, validated as the stack config's ``caBundle``."""
    try:
        bundle = parse_pem_bundle(pem if isinstance(pem, str) else "", key="caBundle", now=datetime.now(UTC))
    except RolesAnywhereError as err:
        raise ProgramError(err) from err
    for warning in bundle.warnings:
        pulumi.log.warn(warning)
    return bundle


def _per_workload(outputs: dict[str, Any], key: str) -> dict[str, str]:
    return {name: workload[key] for name, workload in outputs[WORKLOADS].items()}
