"""Pulumi mocks that answer like AWS would, deterministically: same config, same ARNs, same plan.

Identifiers are UUIDv5 of account, region, type and logical name, so a reviewer's diff of two plans
shows only what the config change did.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from typing import Any

import pulumi

TRUST_ANCHOR = "aws:rolesanywhere/trustAnchor:TrustAnchor"
PROFILE = "aws:rolesanywhere/profile:Profile"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ROLE_POLICY_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
GET_CALLER_IDENTITY = "aws:index/getCallerIdentity:getCallerIdentity"
GET_REGION = "aws:index/getRegion:getRegion"
GET_PARTITION = "aws:index/getPartition:getPartition"
_NAMESPACE = uuid.UUID("6f0c9a52-3f0e-5c8a-9d59-0d8f4b6f6b1e")


def partition_for(region: str) -> str:
    """The ARN partition a region belongs to."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


class DeterministicAwsMocks(pulumi.runtime.Mocks):
    """Answers resource registrations with the ids and ARNs AWS would return, and records inputs."""

    def __init__(self, *, region: str, account_id: str) -> None:
        self.region = region
        self.account_id = account_id
        self.partition = partition_for(region)
        self.inputs: dict[tuple[str, str], dict[str, Any]] = {}

    def _uuid(self, token: str, name: str) -> str:
        return str(uuid.uuid5(_NAMESPACE, f"{self.account_id}/{self.region}/{token}/{name}"))

    def _regional_arn(self, kind: str, resource_id: str) -> str:
        return f"arn:{self.partition}:rolesanywhere:{self.region}:{self.account_id}:{kind}/{resource_id}"

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[Any, Any]]:
        """Return (id, state) for a resource, as the AWS provider would after a create (or a read)."""
        token, name, inputs = args.typ, args.name, _plain(args.inputs)
        if args.custom is None and args.resource_id:  # Resource.get: the SDK's mocks mark reads so
            return args.resource_id, self.read(token, args.resource_id)
        key = (token, name)
        if key in self.inputs:
            raise RuntimeError(f"two resources of type {token} are both named {name!r}")
        self.inputs[key] = inputs
        if not args.custom:
            return "", {}
        resource_id, computed = self._computed(token, name, inputs, import_id=args.resource_id or "")
        return resource_id, {**inputs, **computed}

    def read(self, token: str, resource_id: str) -> dict[str, Any]:
        """What AWS holds for an existing resource (``Resource.get``, before an import).

        Offline there is no AWS: the resource is taken to be hand-made, with the ARN its ID gives and no
        tags (so no owner to refuse); ``pulumi up`` reads the real ones. Subclasses answer for a sandbox
        or for a test's world.
        """
        if token in (TRUST_ANCHOR, PROFILE):
            kind = "trust-anchor" if token == TRUST_ANCHOR else "profile"
            return {"arn": self._regional_arn(kind, resource_id), "tags": {}, "tagsAll": {}}
        if token == ROLE:
            return {
                "arn": f"arn:{self.partition}:iam::{self.account_id}:role/{resource_id}",
                "name": resource_id,
                "tags": {},
                "tagsAll": {},
            }
        return {}

    def _computed(
        self, token: str, name: str, inputs: dict[str, Any], *, import_id: str = ""
    ) -> tuple[str, dict[str, Any]]:
        """The id and computed outputs of a created resource, or of an adopted one (``import_id``)."""
        if token in (TRUST_ANCHOR, PROFILE):
            resource_id = import_id or self._uuid(token, name)  # adopted: its ARN is the one it has
            kind = "trust-anchor" if token == TRUST_ANCHOR else "profile"
            physical = inputs.get("name") or name
            return resource_id, {
                "arn": self._regional_arn(kind, resource_id),
                "name": physical,
                "tagsAll": inputs.get("tags", {}),
            }
        if token == ROLE:
            physical = inputs.get("name") or f"{name}-{self._uuid(token, name)[:7]}"
            path = inputs.get("path") or "/"
            digest = hashlib.sha256(f"{self.account_id}/{physical}".encode()).digest()
            return physical, {
                "arn": f"arn:{self.partition}:iam::{self.account_id}:role{path}{physical}",
                "name": physical,
                "uniqueId": "AROA" + base64.b32encode(digest).decode()[:17],
                "tagsAll": inputs.get("tags", {}),
            }
        if token == ROLE_POLICY:
            physical = inputs.get("name") or name
            return f"{inputs.get('role')}:{physical}", {"name": physical}
        if token == ROLE_POLICY_ATTACHMENT:
            return f"{inputs.get('role')}-{self._uuid(token, name)[:8]}", {"name": name}
        return self._uuid(token, name), {"name": inputs.get("name") or name}

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]] | None]:
        """Answer the data sources a program may read: caller identity, region, partition."""
        if args.token == GET_CALLER_IDENTITY:
            return {
                "accountId": self.account_id,
                "arn": f"arn:{self.partition}:iam::{self.account_id}:user/plan",
                "id": self.account_id,
                "userId": "AIDAPLAN",
            }, None
        if args.token == GET_REGION:
            return {"name": self.region, "region": self.region, "id": self.region}, None
        if args.token == GET_PARTITION:
            return {"partition": self.partition, "id": self.partition, "dnsSuffix": "amazonaws.com"}, None
        return {}, None


def _plain(value: Any) -> Any:
    """Inputs as the user wrote them, in a stable key order.

    Protobuf carries every number as a float (3600 → 3600.0) and maps in no fixed order.
    """
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _plain(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value
