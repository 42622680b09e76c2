"""Deploy a stack into a running sandbox: the real program, with mocks that call the sandbox.

Each resource the program registers is created in the sandbox through boto3 (Roles Anywhere on the
sandbox endpoint, IAM on moto), and the mock returns what the sandbox answered. Dependent inputs,
such as the anchor ARN inside every trust policy, therefore carry the sandbox's real values, and
the stack outputs are what ``pulumi stack output --json`` would print after a real deploy.

Deploying again into the same ``--out`` folder behaves like ``pulumi up`` on an existing stack: its
``outputs.json`` plays the part of Pulumi's state. The anchor and the profiles it lists are updated in
place (same ARNs), roles by name, and the roles and profiles of workloads no longer in the config are
deleted. Nothing another deploy made is touched.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator
from typing import Any

from roles_anywhere.config.iam_settings import NAMESPACE_TAG
from roles_anywhere.config.stack_file import StackFile
from roles_anywhere.plan.mocks import (
    PROFILE,
    ROLE,
    ROLE_POLICY,
    ROLE_POLICY_ATTACHMENT,
    TRUST_ANCHOR,
    DeterministicAwsMocks,
)
from roles_anywhere.plan.run import Plan, run_program
from roles_anywhere.stack.spec import load_spec

from ..errors import RolesAnywhereError
from .server import DUMMY_CREDENTIALS


class SandboxDeployError(RolesAnywhereError):
    """The sandbox holds something this deploy would collide with."""


def _tag_list(tags: dict[str, str] | None) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in sorted((tags or {}).items())]


_KINDS = {
    TRUST_ANCHOR: "trust anchor",
    PROFILE: "profile",
    ROLE: "role",
    ROLE_POLICY: "inline policy",
    ROLE_POLICY_ATTACHMENT: "policy attachment",
}


def _answer(err: Exception) -> str:
    """What the sandbox (AWS's API) answered, in its own words; or why it could not be asked."""
    response = getattr(err, "response", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        operation = getattr(err, "operation_name", "the call")
        return f"{operation} was refused: {error.get('Code', '?')}: {error.get('Message', '')}"
    return str(err)


def _refusal(args: Any, err: Exception) -> str:
    """One line: which resource, and what the sandbox answered."""
    kind = _KINDS.get(args.typ, args.typ)
    if args.custom is None:
        what = f"reading the existing {kind} {args.resource_id} (to adopt it)"
    else:
        inputs = args.inputs or {}
        physical = inputs.get("name") or inputs.get("policyArn") or args.name
        what = f"{kind} {physical} ({args.name})"
    return f"sandbox-deploy: {what}: {_answer(err)}"


@contextlib.contextmanager
def _sandbox_answers(what: str) -> Iterator[None]:
    """A failed sandbox call outside a resource (a check, a clean-up) as one line too."""
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - see SandboxMocks

    try:
        yield
    except (BotoCoreError, ClientError) as err:
        raise SandboxDeployError(f"sandbox-deploy: {what}: {_answer(err)}") from None


class SandboxMocks(DeterministicAwsMocks):
    """Answers resource registrations by creating the resources in the sandbox."""

    def __init__(self, endpoints: dict[str, Any], previous: dict[str, Any] | None = None) -> None:
        super().__init__(region=endpoints["region"], account_id=endpoints["accountId"])
        import boto3  # noqa: PLC0415 - heavy, and only deploys need it

        options = {"region_name": endpoints["region"], **DUMMY_CREDENTIALS}
        self.rolesanywhere = boto3.client(
            "rolesanywhere", endpoint_url=endpoints["rolesanywhere"], verify=endpoints["caFile"], **options
        )
        self.iam = boto3.client("iam", endpoint_url=endpoints["iam"], **options)
        previous = previous or {}
        self.previous_anchor: str | None = previous.get("trustAnchorArn")
        self.previous_workloads: dict[str, dict[str, Any]] = {
            w["roleName"]: w for w in (previous.get("workloads") or {}).values() if "roleName" in w
        }
        self.anchor_arn: str | None = None
        self.roles: set[str] = set()
        self.profiles: set[str] = set()
        self.attached: dict[str, set[str]] = {}
        self.inline: dict[str, set[str]] = {}

    def new_resource(self, args: Any) -> tuple[str | None, dict[Any, Any]]:
        """Create (or read) the resource in the sandbox; a refusal is one line naming it, not a crash."""
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - see __init__

        try:
            return super().new_resource(args)
        except (BotoCoreError, ClientError) as err:
            raise SandboxDeployError(_refusal(args, err)) from None

    def read(self, token: str, resource_id: str) -> dict[str, Any]:
        """What the sandbox holds for a resource the stack is about to adopt: its real tags."""
        if token == TRUST_ANCHOR:
            anchor = self.rolesanywhere.get_trust_anchor(trustAnchorId=resource_id)["trustAnchor"]
            return self._read_tagged(anchor["trustAnchorArn"], anchor["name"])
        if token == PROFILE:
            profile = self.rolesanywhere.get_profile(profileId=resource_id)["profile"]
            return self._read_tagged(profile["profileArn"], profile["name"])
        if token == ROLE:
            role = self.iam.get_role(RoleName=resource_id)["Role"]
            tags = {tag["Key"]: tag["Value"] for tag in role.get("Tags", [])}
            return {"arn": role["Arn"], "name": role["RoleName"], "path": role["Path"], "tags": tags}
        return super().read(token, resource_id)

    def _read_tagged(self, arn: str, name: str) -> dict[str, Any]:
        listed = self.rolesanywhere.list_tags_for_resource(resourceArn=arn)["tags"]
        return {"arn": arn, "name": name, "tags": {tag["key"]: tag["value"] for tag in listed}}

    def _computed(
        self, token: str, name: str, inputs: dict[str, Any], *, import_id: str = ""
    ) -> tuple[str, dict[str, Any]]:
        if token == TRUST_ANCHOR:
            return self._trust_anchor(inputs, import_id)
        if token == PROFILE:
            return self._profile(inputs, import_id)
        if token == ROLE:
            return self._role(inputs, adopted=bool(import_id))
        if token == ROLE_POLICY_ATTACHMENT:
            self.iam.attach_role_policy(RoleName=inputs["role"], PolicyArn=inputs["policyArn"])
            self.attached.setdefault(inputs["role"], set()).add(inputs["policyArn"])
            return f"{inputs['role']}-{name}", {}
        if token == ROLE_POLICY:
            policy = inputs["policy"]
            self.iam.put_role_policy(
                RoleName=inputs["role"],
                PolicyName=inputs["name"],
                PolicyDocument=policy if isinstance(policy, str) else json.dumps(policy),
            )
            self.inline.setdefault(inputs["role"], set()).add(inputs["name"])
            return f"{inputs['role']}:{inputs['name']}", {}
        return super()._computed(token, name, inputs, import_id=import_id)

    def _trust_anchor(self, inputs: dict[str, Any], import_id: str) -> tuple[str, dict[str, Any]]:
        source = {
            "sourceType": inputs["source"]["sourceType"],
            "sourceData": {"x509CertificateData": inputs["source"]["sourceData"]["x509CertificateData"]},
        }
        existing = self._existing("trust_anchor", "trustAnchorId", self.previous_anchor)
        if import_id and existing is None:  # adopted, as Pulumi's import does: read, then updated
            existing = self.rolesanywhere.get_trust_anchor(trustAnchorId=import_id)["trustAnchor"]
        if existing is None:
            anchor = self.rolesanywhere.create_trust_anchor(
                name=inputs["name"],
                enabled=inputs.get("enabled", False),
                source=source,
                notificationSettings=inputs.get("notificationSettings", []),
                tags=_tag_list(inputs.get("tags")),
            )["trustAnchor"]
        else:  # in place: same id, same ARN, as the provider's UpdateTrustAnchor
            anchor = self.rolesanywhere.update_trust_anchor(
                trustAnchorId=existing["trustAnchorId"], name=inputs["name"], source=source
            )["trustAnchor"]
            self._retag(anchor["trustAnchorArn"], inputs.get("tags"))
        self.anchor_arn = anchor["trustAnchorArn"]
        return anchor["trustAnchorId"], {"arn": anchor["trustAnchorArn"], "tagsAll": inputs.get("tags", {})}

    def _profile(self, inputs: dict[str, Any], import_id: str) -> tuple[str, dict[str, Any]]:
        if import_id:  # adopted, as Pulumi's import does: read, then updated
            existing: dict[str, Any] | None = self.rolesanywhere.get_profile(profileId=import_id)["profile"]
        else:
            earlier = self.previous_workloads.get(inputs["name"], {}).get("profileArn")
            namespace = (inputs.get("tags") or {}).get(NAMESPACE_TAG)
            existing = self._existing("profile", "profileId", earlier) or self._profile_named(
                inputs["name"], namespace
            )
        settings = {
            "roleArns": inputs["roleArns"],
            "durationSeconds": inputs.get("durationSeconds", 3_600),
            "acceptRoleSessionName": bool(inputs.get("acceptRoleSessionName", False)),
            "managedPolicyArns": list(inputs.get("managedPolicyArns", [])),
        }
        if "sessionPolicy" in inputs:
            settings["sessionPolicy"] = inputs["sessionPolicy"]
        if existing is None and inputs.get("requireInstanceProperties"):
            settings["requireInstanceProperties"] = True
        if existing is None:
            profile = self.rolesanywhere.create_profile(
                name=inputs["name"],
                enabled=inputs.get("enabled", False),
                tags=_tag_list(inputs.get("tags")),
                **settings,
            )["profile"]
        else:
            profile = self.rolesanywhere.update_profile(profileId=existing["profileId"], **settings)[
                "profile"
            ]
            self._retag(profile["profileArn"], inputs.get("tags"))
        self.profiles.add(profile["profileArn"])
        return profile["profileId"], {"arn": profile["profileArn"], "tagsAll": inputs.get("tags", {})}

    def _profile_named(self, name: str, namespace: str | None) -> dict[str, Any] | None:
        """A profile an earlier deploy of this stack made under ``name`` (shared ones are not per workload).

        Profile names are not unique in AWS: another stack's profile of the same name, told apart by its
        ``TeleportNamespace`` tag, is never this stack's to update.
        """
        for page in self.rolesanywhere.get_paginator("list_profiles").paginate():
            for profile in page.get("profiles", []):
                if profile.get("name") != name:
                    continue
                tags = self._read_tagged(profile["profileArn"], name)["tags"]
                if tags.get(NAMESPACE_TAG) == namespace:
                    return dict(profile)
        return None

    def _retag(self, arn: str, tags: dict[str, str] | None) -> None:
        """Tags as the config says, as the provider's update does (an adopted resource gets ours)."""
        if tags:
            self.rolesanywhere.tag_resource(resourceArn=arn, tags=_tag_list(tags))

    def _role(self, inputs: dict[str, Any], *, adopted: bool) -> tuple[str, dict[str, Any]]:
        name = inputs["name"]
        role = self.iam.get_role(RoleName=name)["Role"] if adopted else self._earlier_role(name)
        if role is None:
            role = self._create_role(inputs)
        else:
            self.iam.update_assume_role_policy(RoleName=name, PolicyDocument=inputs["assumeRolePolicy"])
            self.iam.update_role(RoleName=name, MaxSessionDuration=inputs.get("maxSessionDuration", 3_600))
            if inputs.get("tags"):
                self.iam.tag_role(
                    RoleName=name, Tags=[{"Key": k, "Value": v} for k, v in sorted(inputs["tags"].items())]
                )
        self.roles.add(name)
        outputs = {"arn": role["Arn"], "uniqueId": role["RoleId"], "tagsAll": inputs.get("tags", {})}
        return role["RoleName"], outputs

    def _earlier_role(self, name: str) -> dict[str, Any] | None:
        """The role of the same name an earlier deploy of this stack made, if the sandbox still has it."""
        if name not in self.previous_workloads:
            return None
        try:
            role: dict[str, Any] = self.iam.get_role(RoleName=name)["Role"]
        except self.iam.exceptions.NoSuchEntityException:
            return None
        return role

    def check_no_collision(self, role_names: Iterable[str]) -> None:
        """Refuse, before anything is created, a role another deploy made (no state says it is ours)."""
        for name in role_names:
            if name in self.previous_workloads:
                continue
            try:
                self.iam.get_role(RoleName=name)
            except self.iam.exceptions.NoSuchEntityException:
                continue
            raise SandboxDeployError(
                f"role {name} already exists in the sandbox and is not in this --out folder's "
                "outputs.json (another stack's?); deploy into that stack's folder or rename"
            )

    def _create_role(self, inputs: dict[str, Any]) -> dict[str, Any]:
        role: dict[str, Any] = self.iam.create_role(
            RoleName=inputs["name"],
            Path=inputs.get("path", "/"),
            AssumeRolePolicyDocument=inputs["assumeRolePolicy"],
            Description=inputs.get("description", ""),
            MaxSessionDuration=inputs.get("maxSessionDuration", 3_600),
            Tags=[{"Key": k, "Value": v} for k, v in sorted(inputs.get("tags", {}).items())],
            **(
                {"PermissionsBoundary": inputs["permissionsBoundary"]}
                if inputs.get("permissionsBoundary")
                else {}
            ),
        )["Role"]
        return role

    def _existing(self, kind: str, id_key: str, arn: str | None) -> dict[str, Any] | None:
        """The resource an earlier deploy made, if the sandbox still has it (a restarted one may not)."""
        if arn is None:
            return None
        getter = getattr(self.rolesanywhere, f"get_{kind}")
        try:
            found: dict[str, Any] = getter(**{id_key: arn})[kind.replace("_a", "A")]
        except self.rolesanywhere.exceptions.ResourceNotFoundException:
            return None
        return found

    def remove_what_the_config_dropped(self) -> list[str]:
        """Delete what the config dropped; return a line per deleted role or profile.

        The workloads of the previous deploy that are gone lose their role and profile; the roles
        that stay lose the managed and inline policies the config no longer lists.
        """
        deleted: list[str] = []
        for name in sorted(self.roles):
            attached = self.iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
            for arn in {p["PolicyArn"] for p in attached} - self.attached.get(name, set()):
                self.iam.detach_role_policy(RoleName=name, PolicyArn=arn)
            inline = set(self.iam.list_role_policies(RoleName=name)["PolicyNames"])
            for policy in inline - self.inline.get(name, set()):
                self.iam.delete_role_policy(RoleName=name, PolicyName=policy)
        for name, workload in sorted(self.previous_workloads.items()):
            if name in self.roles:
                continue
            if self._existing("profile", "profileId", workload.get("profileArn")) is not None:
                self.rolesanywhere.delete_profile(profileId=workload["profileArn"])
                deleted.append(f"profile {name}")
            try:
                for policy in self.iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
                    self.iam.detach_role_policy(RoleName=name, PolicyArn=policy["PolicyArn"])
                for policy_name in self.iam.list_role_policies(RoleName=name)["PolicyNames"]:
                    self.iam.delete_role_policy(RoleName=name, PolicyName=policy_name)
                self.iam.delete_role(RoleName=name)
                deleted.append(f"role {name}")
            except self.iam.exceptions.NoSuchEntityException:
                pass
        return deleted


def deploy_stack(
    stack_file: StackFile, endpoints: dict[str, Any], previous: dict[str, Any] | None = None
) -> tuple[Plan, list[str]]:
    """Run the program for a stack file against the sandbox: what it deployed, and what it deleted.

    ``previous`` is the stack outputs of the last deploy of this stack (its ``outputs.json``).
    """
    spec = load_spec(stack_file.project_values(), base_dir=stack_file.path.parent, stack=stack_file.stack)
    mocks = SandboxMocks(endpoints, previous)
    adopted = dict(spec.imports.roles)  # exist by design; whose they are is checked on their tags
    with _sandbox_answers("looking for roles another deploy made"):  # before creating anything
        mocks.check_no_collision(w.role_name for w in spec.workloads if w.name not in adopted)
    plan = run_program(
        config=stack_file.config,
        stack=stack_file.stack,
        region=endpoints["region"],
        account_id=endpoints["accountId"],
        config_dir=stack_file.path.parent,
        mocks=mocks,
    )
    with _sandbox_answers("removing what the config dropped"):
        return plan, mocks.remove_what_the_config_dropped()
