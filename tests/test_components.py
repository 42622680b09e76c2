"""The components under Pulumi's unit-test mocks: the resources they create and exactly what they send."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pulumi
import pytest

from roles_anywhere.components.federation import Federation
from roles_anywhere.components.federation_args import FederationArgs, federation_args
from roles_anywhere.components.trust_anchor import TrustAnchor, TrustAnchorArgs
from roles_anywhere.components.workload import WorkloadAccess, WorkloadArgs
from roles_anywhere.iam.policy import trust_policy
from roles_anywhere.plan.mocks import ROLE, ROLE_POLICY, ROLE_POLICY_ATTACHMENT, DeterministicAwsMocks
from roles_anywhere.plan.run import mocked_runtime
from roles_anywhere.stack.spec import Spec, load_spec

from .certs import NOW
from .conftest import base_values

ANCHOR_ARN = "arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/00000000-0000-4000-8000-000000000000"


@pytest.fixture
def mocks() -> Iterator[DeterministicAwsMocks]:
    aws_mocks = DeterministicAwsMocks(region="eu-west-1", account_id="111122223333")
    with mocked_runtime(aws_mocks, stack="unit"):
        yield aws_mocks


@pytest.fixture
def spec() -> Spec:
    return load_spec(base_values(), stack="dev", base_dir=Path(), now=NOW)


def sent(mocks: DeterministicAwsMocks, token: str) -> dict[str, dict[str, Any]]:
    return {name: inputs for (t, name), inputs in mocks.inputs.items() if t == token}


@pulumi.runtime.test
def test_role_trust_policy_is_exactly_the_spiffe_id_through_the_anchor(
    mocks: DeterministicAwsMocks, spec: Spec
) -> Any:
    access = WorkloadAccess("w-api", WorkloadArgs(workload=spec.workload("api"), trust_anchor_arn=ANCHOR_ARN))

    def check(values: list[Any]) -> None:
        policy, max_session, role_arn = values
        assert json.loads(policy) == {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "TeleportWorkloadIdentity",
                    "Effect": "Allow",
                    "Principal": {"Service": "rolesanywhere.amazonaws.com"},
                    "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"],
                    "Condition": {
                        "StringEquals": {
                            "aws:PrincipalTag/x509SAN/URI": "spiffe://example.teleport.sh/svc/api"
                        },
                        "ArnEquals": {"aws:SourceArn": ANCHOR_ARN},
                    },
                }
            ],
        }
        assert max_session == 7200
        assert role_arn == "arn:aws:iam::111122223333:role/api"

    return pulumi.Output.all(
        access.role.assume_role_policy, access.role.max_session_duration, access.role_arn
    ).apply(check)


@pulumi.runtime.test
def test_profile_vends_exactly_the_role(mocks: DeterministicAwsMocks, spec: Spec) -> Any:
    access = WorkloadAccess("w-api", WorkloadArgs(workload=spec.workload("api"), trust_anchor_arn=ANCHOR_ARN))

    def check(values: list[Any]) -> None:
        role_arns, duration, enabled, role_arn, profile_arn = values
        assert role_arns == [role_arn]
        assert duration == 7200
        assert enabled is True
        assert profile_arn.startswith("arn:aws:rolesanywhere:eu-west-1:111122223333:profile/")

    return pulumi.Output.all(
        access.profile.role_arns,
        access.profile.duration_seconds,
        access.profile.enabled,
        access.role_arn,
        access.profile_arn,
    ).apply(check)


@pulumi.runtime.test
def test_permissions_are_separate_attachment_and_inline_resources(
    mocks: DeterministicAwsMocks, spec: Spec
) -> Any:
    access = WorkloadAccess("w-api", WorkloadArgs(workload=spec.workload("api"), trust_anchor_arn=ANCHOR_ARN))

    def check(_: Any) -> None:
        attachments = sent(mocks, ROLE_POLICY_ATTACHMENT)
        assert attachments == {
            "w-api-ReadOnlyAccess": {"policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess", "role": "api"}
        }
        (inline,) = sent(mocks, ROLE_POLICY).values()
        assert inline["role"] == "api"
        assert inline["name"] == "inline"
        assert json.loads(inline["policy"]) == base_values()["workloads"]["api"]["inlinePolicy"]
        role = sent(mocks, ROLE)["w-api-role"]
        assert "managedPolicyArns" not in role  # deprecated on Role; attachments instead
        assert "inlinePolicies" not in role

    assert access.inline_policy is not None
    # Wait for every resource the check reads: the inline policy registers independently of the rest.
    return pulumi.Output.all(
        access.profile.arn, access.inline_policy.id, *(a.id for a in access.attachments)
    ).apply(check)


@pulumi.runtime.test
def test_a_workload_without_policies_creates_only_role_and_profile(
    mocks: DeterministicAwsMocks, spec: Spec
) -> Any:
    access = WorkloadAccess(
        "w-worker", WorkloadArgs(workload=spec.workload("worker"), trust_anchor_arn=ANCHOR_ARN)
    )
    assert access.attachments == []
    assert access.inline_policy is None
    return access.profile.arn.apply(lambda _: None)


@pulumi.runtime.test
def test_trust_anchor_pins_every_setting(mocks: DeterministicAwsMocks, spec: Spec) -> Any:
    anchor = TrustAnchor("ta", TrustAnchorArgs(bundle_pem=spec.bundle.pem, settings=spec.trust_anchor))

    def check(values: list[Any]) -> None:
        source, notifications, enabled, name = values
        assert source["source_type"] == "CERTIFICATE_BUNDLE"
        assert source["source_data"]["x509_certificate_data"] == spec.bundle.pem
        assert enabled is True
        assert name == "teleport-example-teleport-sh"
        assert sorted((n["event"], n["threshold"], n["enabled"], n["channel"]) for n in notifications) == [
            ("CA_CERTIFICATE_EXPIRY", 45, True, "ALL"),
            ("END_ENTITY_CERTIFICATE_EXPIRY", 45, True, "ALL"),
        ]

    assert anchor.anchor._protect is True
    return pulumi.Output.all(
        anchor.anchor.source, anchor.anchor.notification_settings, anchor.anchor.enabled, anchor.anchor.name
    ).apply(check)


@pulumi.runtime.test
def test_federation_wires_every_role_to_the_one_anchor(mocks: DeterministicAwsMocks) -> Any:
    federation = Federation("fed", cast(FederationArgs, federation_args(base_values())))
    assert set(federation.workloads) == {"api", "worker"}

    def check(values: list[Any]) -> None:
        anchor_arn, *policies = values
        for policy, workload in zip(policies, ("api", "worker"), strict=True):
            expected = trust_policy(f"spiffe://example.teleport.sh/svc/{workload}", anchor_arn)
            assert json.loads(policy) == expected

    return pulumi.Output.all(
        federation.trust_anchor.arn,
        federation.workloads["api"].role.assume_role_policy,
        federation.workloads["worker"].role.assume_role_policy,
    ).apply(check)
