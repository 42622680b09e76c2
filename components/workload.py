"""One workload's AWS side: an IAM role only its SPIFFE ID can assume, and the profile that vends it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from roles_anywhere import WORKLOAD_TYPE
from roles_anywhere.config.iam_settings import SPIFFE_ID_TAG
from roles_anywhere.config.naming import key_path, policy_arn_suffixes
from roles_anywhere.config.ownership import Adoption
from roles_anywhere.iam.policy import trust_policy_json
from roles_anywhere.stack.spec import ProfileSettings, Workload

from .adoption import after_ownership_check

INLINE_POLICY_NAME = "inline"


@dataclass
class WorkloadArgs:
    """The resolved workload and the ARN of the trust anchor its SVIDs must come through."""

    workload: Workload
    trust_anchor_arn: pulumi.Input[str]
    tags: Mapping[str, str] = field(default_factory=dict)
    shared_profile: bool = False  # a shared profile (made by Federation) lists this role instead
    import_role: str | None = None  # an existing role to adopt (its name)
    import_profile: str | None = None  # an existing profile to adopt (its ID)
    cluster: str = ""  # with an import: the stack the adopted resources must belong to
    namespace: str = ""


def profile_resource(
    resource_name: str,
    *,
    name: str,
    settings: ProfileSettings,
    role_arns: pulumi.Input[list[pulumi.Input[str]]],
    tags: Mapping[str, str],
    opts: pulumi.ResourceOptions,
    adoption: Adoption | None = None,
) -> aws.rolesanywhere.Profile:
    """A Roles Anywhere profile with ``settings``: one workload's, or shared by equal settings.

    With ``opts.import_`` and ``adoption``, the existing profile is read and its tags judged first.
    """
    profile_name: pulumi.Input[str] = name
    if opts.import_ is not None and adoption is not None:
        existing = aws.rolesanywhere.Profile.get(
            f"{resource_name}-existing", opts.import_, opts=pulumi.ResourceOptions(parent=opts.parent)
        )
        profile_name = after_ownership_check(adoption, (existing.tags, existing.tags_all), name)
    return aws.rolesanywhere.Profile(
        resource_name,
        name=profile_name,
        role_arns=role_arns,
        duration_seconds=settings.duration_seconds,
        session_policy=settings.session_policy_json,
        managed_policy_arns=list(settings.managed_policy_arns) or None,
        accept_role_session_name=settings.accept_role_session_name or None,
        require_instance_properties=settings.require_instance_properties or None,
        enabled=True,
        tags=dict(tags),
        opts=opts,
    )


class WorkloadAccess(pulumi.ComponentResource):
    """Role (exact trust policy), its permissions, and a Roles Anywhere profile for it."""

    role_arn: pulumi.Output[str]
    profile_arn: pulumi.Output[str]

    def __init__(self, name: str, args: WorkloadArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(WORKLOAD_TYPE, name, None, opts)
        workload = args.workload
        spiffe_id = str(workload.spiffe_id)
        tags = {**dict(workload.tags), **args.tags, SPIFFE_ID_TAG: spiffe_id}  # ours last: never replaced
        child = pulumi.ResourceOptions(parent=self)

        role_name: pulumi.Input[str] = workload.role_name
        if args.import_role is not None:
            existing = aws.iam.Role.get(
                f"{name}-existing-role", args.import_role, opts=pulumi.ResourceOptions(parent=self)
            )
            adoption = self._adoption(args, "role", args.import_role, path=workload.path)
            role_name = after_ownership_check(
                adoption, (existing.tags, existing.tags_all), workload.role_name, existing.path, existing.name
            )
        self.role = aws.iam.Role(
            f"{name}-role",
            name=role_name,
            description=f"Assumed through IAM Roles Anywhere by the Teleport workload {spiffe_id}",
            assume_role_policy=pulumi.Output.from_input(args.trust_anchor_arn).apply(
                lambda anchor_arn: trust_policy_json(spiffe_id, anchor_arn)
            ),
            max_session_duration=workload.max_session_duration,
            path=workload.path,
            permissions_boundary=workload.permissions_boundary,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, import_=args.import_role),
        )
        self.attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-{suffix}",
                role=self.role.name,
                policy_arn=arn,
                opts=child,
            )
            for arn, suffix in policy_arn_suffixes(workload.managed_policy_arns).items()
        ]
        self.inline_policy = (
            aws.iam.RolePolicy(
                f"{name}-inline-policy",
                role=self.role.name,
                name=INLINE_POLICY_NAME,
                policy=workload.inline_policy_json,
                opts=child,
            )
            if workload.inline_policy_json is not None
            else None
        )
        self.role_arn = self.role.arn
        self.profile: aws.rolesanywhere.Profile | None = None
        self.profile_arn: pulumi.Output[str] = pulumi.Output.from_input("")  # set by Federation when shared
        if not args.shared_profile:
            self.profile = profile_resource(
                f"{name}-profile",
                name=workload.profile_name,
                settings=workload.profile,
                role_arns=[self.role.arn],
                tags=tags,
                opts=pulumi.ResourceOptions(parent=self, import_=args.import_profile),
                adoption=None
                if args.import_profile is None
                else self._adoption(args, "profile", args.import_profile),
            )
            self.profile_arn = self.profile.arn

    @staticmethod
    def _adoption(args: WorkloadArgs, kind: str, resource_id: str, path: str | None = None) -> Adoption:
        """What an adopted role or profile of this workload must be: this stack's, for this SPIFFE ID."""
        workload = args.workload
        section = "roles" if kind == "role" else "profiles"
        return Adoption(
            key=key_path("import", section, workload.name),
            kind=kind,
            resource_id=resource_id,
            cluster=args.cluster,
            namespace=args.namespace,
            spiffe_id=str(workload.spiffe_id),
            path=path,
        )
