"""IAM settings an enterprise account requires: boundary, path, tags, profile session settings (issue 14)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roles_anywhere.cli import main
from roles_anywhere.config import iam_settings

from .conftest import stack_config, write_stack

BOUNDARY = "arn:aws:iam::123456789012:policy/TeamBoundary"
OTHER_BOUNDARY = "arn:aws:iam::123456789012:policy/StrictBoundary"
SESSION_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::reports/*"}],
}


def planned(tmp_path: Path, capsys: pytest.CaptureFixture[str], **project: Any) -> dict[str, dict[str, Any]]:
    """The plan's resources by name (inputs only)."""
    assert main(["plan", "--json", "--config", str(write_stack(tmp_path, stack_config(**project)))]) == 0
    document = json.loads(capsys.readouterr().out)
    return {resource["name"]: resource["inputs"] for resource in document["resources"]}


def test_stack_wide_settings_reach_every_role_and_profile_and_a_workload_overrides_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    resources = planned(
        tmp_path,
        capsys,
        profileSharing="perWorkload",
        iam={
            "permissionsBoundary": BOUNDARY,
            "path": "/teleport/",
            "tags": {"CostCenter": "42", "Team": "a"},
        },
        profile={"sessionPolicy": SESSION_POLICY, "acceptRoleSessionName": True},
        workloads={
            "orders": {"spiffeId": "/svc/orders", "bots": ["dev-ci"]},
            "billing": {
                "spiffeId": "/svc/billing",
                "bots": ["dev-ci"],
                "permissionsBoundary": OTHER_BOUNDARY,
                "path": "/teleport/billing/",
                "tags": {"Team": "b"},
                "profile": {"acceptRoleSessionName": False, "requireInstanceProperties": True},
            },
        },
    )
    orders, billing = resources["roles-anywhere-orders-role"], resources["roles-anywhere-billing-role"]
    assert (orders["permissionsBoundary"], orders["path"]) == (BOUNDARY, "/teleport/")
    assert (billing["permissionsBoundary"], billing["path"]) == (OTHER_BOUNDARY, "/teleport/billing/")
    assert orders["tags"]["CostCenter"] == "42"
    assert orders["tags"]["Team"] == "a"
    assert billing["tags"]["Team"] == "b"
    assert billing["tags"]["ManagedBy"] == "teleport-roles-anywhere"
    orders_profile = resources["roles-anywhere-orders-profile"]
    billing_profile = resources["roles-anywhere-billing-profile"]
    assert json.loads(orders_profile["sessionPolicy"]) == SESSION_POLICY
    assert orders_profile["acceptRoleSessionName"] is True
    assert "requireInstanceProperties" not in orders_profile
    assert billing_profile["requireInstanceProperties"] is True
    assert "acceptRoleSessionName" not in billing_profile
    assert orders_profile["tags"]["CostCenter"] == "42"


def test_role_session_name_is_rendered_only_where_the_profile_accepts_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = stack_config(
        workloads={
            "orders": {
                "spiffeId": "/svc/orders",
                "bots": ["dev-ci"],
                "profile": {"acceptRoleSessionName": True},
            },
            "billing": {"spiffeId": "/svc/billing", "bots": ["dev-ci"]},
        }
    )
    assert (
        main(["render", "--config", str(write_stack(tmp_path, config)), "--out", str(tmp_path / "out")]) == 0
    )
    capsys.readouterr()
    aws_config = (tmp_path / "out" / "aws" / "config").read_text()
    orders, billing = aws_config.split("[profile billing]")[1].split("[profile orders]")[::-1]
    assert "--role-session-name teleport-orders" in orders
    assert "--role-session-name" not in billing


@pytest.mark.parametrize(
    ("project", "message"),
    [
        (
            {"iam": {"permissionsBoundary": "arn:aws:iam::123456789012:role/NotAPolicy"}},
            "iam.permissionsBoundary: 'arn:aws:iam::123456789012:role/NotAPolicy' is not an IAM policy ARN",
        ),
        ({"iam": {"path": "teleport"}}, "iam.path: 'teleport' is not an IAM path"),
        ({"iam": {"tags": {f"k{i}": "v" for i in range(51)}}}, "iam.tags: 51 tags; AWS allows 50"),
        ({"iam": {"tags": {"ManagedBy": "me"}}}, "iam.tags: tag key 'ManagedBy' is set by this project"),
        (
            {"iam": {"tags": {"aws:owner": "me"}}},
            "iam.tags: tag key 'aws:owner': the 'aws:' prefix is reserved",
        ),
        ({"iam": {"tags": {"Team": "a;b"}}}, "iam.tags: tag 'Team': the value must be at most 256"),
        (
            {
                "profile": {
                    "sessionPolicy": {
                        "Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "x" * 2_100}],
                    }
                }
            },
            "profile.sessionPolicy: is 2",
        ),
        (
            {"profile": {"managedPolicyArns": [f"arn:aws:iam::aws:policy/P{i}" for i in range(11)]}},
            "profile.managedPolicyArns: lists 11 policies; STS applies at most 10 to a session",
        ),
        (
            {
                "iam": {"tags": {f"s{i}": "v" for i in range(40)}},
                "workloads": {
                    "orders": {"spiffeId": "/svc/orders", "tags": {f"w{i}": "v" for i in range(10)}}
                },
            },
            "workloads.orders.tags: with the stack's iam.tags: 50 tags; AWS allows 50",
        ),
    ],
    ids=[
        "boundary",
        "path",
        "51-tags",
        "our-tag",
        "aws-prefix",
        "tag-value",
        "session-policy-size",
        "session-managed",
        "merged-tags",
    ],
)
def test_bad_iam_settings_are_one_line_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], project: dict[str, Any], message: str
) -> None:
    code = main(["plan", "--config", str(write_stack(tmp_path, stack_config(**project)))])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(f"error: {message}"), captured.err


# Issue 22: tags AWS accepts. Each of these passed `plan` before and failed in AWS.
@pytest.mark.parametrize(
    ("project", "message"),
    [
        (
            {"iam": {"tags": {"managedBy": "me"}}},
            "iam.tags: tag key 'ManagedBy' is set by this project on every resource it creates (it records "
            "who manages it) (IAM tag keys ignore case, so 'managedBy' is 'ManagedBy'); choose another key",
        ),
        (
            {"workloads": {"orders": {"spiffeId": "/svc/orders", "tags": {"SPIFFEID": "x"}}}},
            "workloads.orders.tags: tag key 'SpiffeId' is set by this project on every resource it creates "
            "(it records who manages it) (IAM tag keys ignore case, so 'SPIFFEID' is 'SpiffeId'); choose "
            "another key",
        ),
        (
            {"iam": {"tags": {"TeleportNamespace": "other"}}},
            "iam.tags: tag key 'TeleportNamespace' is set by this project on every resource it creates (it "
            "records who manages it); choose another key",
        ),
        (
            {"iam": {"tags": {"Team": "a", "team": "b"}}},
            "iam.tags: tag keys 'Team' and 'team' are one key to IAM (tag keys ignore case); keep one of "
            "them",
        ),
        (
            {
                "iam": {"tags": {"Team": "a"}},
                "workloads": {"orders": {"spiffeId": "/svc/orders", "tags": {"team": "b"}}},
            },
            "workloads.orders.tags: tag key 'team' is the stack's iam.tags key 'Team' to IAM (tag keys "
            "ignore case), so the role would have both: spell it 'Team' to override the stack's value",
        ),
        (
            {"iam": {"tags": {"Équipe": "paiements"}}},
            "iam.tags: tag key 'Équipe': the stack's tags reach every Roles Anywhere profile, and Roles "
            "Anywhere tag keys allow only ASCII letters, digits, spaces and _ . : / = + - @; rename it",
        ),
        (
            {"iam": {"tags": {"Team": "paiements-é"}}},
            "iam.tags: tag 'Team': the stack's tags reach every Roles Anywhere profile, and Roles Anywhere "
            "tag values allow only ASCII letters, digits, spaces and _ . : / = + - @; change the value",
        ),
        (
            {
                "profileSharing": "perWorkload",
                "workloads": {"orders": {"spiffeId": "/svc/orders", "tags": {"Équipe": "x"}}},
            },
            "workloads.orders.tags: tag key 'Équipe': with profileSharing: perWorkload a workload's tags "
            "reach its Roles Anywhere profile, and Roles Anywhere tag keys allow only ASCII letters, digits, "
            "spaces and _ . : / = + - @; rename it",
        ),
        (
            {"iam": {"tags": {"Team": "a\nb"}}},
            "iam.tags: tag 'Team': the value must be at most 256 letters, digits, spaces and _ . : / = + - @ "
            "(no tabs, line breaks or other symbols)",
        ),
        (
            {"iam": {"tags": {"Cost\tCenter": "1"}}},
            "iam.tags: tag key 'Cost\\tCenter': use 1-128 letters, digits, spaces and _ . : / = + - @ (no "
            "tabs, line breaks or other symbols)",
        ),
        (
            {"workloads": {"orders": {"spiffeId": "/svc/orders", "tags": {"\U0001d400" * 65: "x"}}}},
            "workloads.orders.tags: tag key '" + "\U0001d400" * 60 + "': use 1-128 letters",
        ),
        ({"iam": {"tags": {"Team": "x" * 257}}}, "iam.tags: tag 'Team': the value must be at most 256"),
        ({"iam": {"tags": {"Team": "a\u2603b"}}}, "iam.tags: tag 'Team': the value must be at most 256"),
    ],
    ids=[
        "ours-other-case",
        "ours-upper-case",
        "namespace-tag",
        "same-key-two-cases",
        "stack-and-workload-cases",
        "non-ascii-key-on-profiles",
        "non-ascii-value-on-profiles",
        "non-ascii-key-per-workload-profile",
        "newline-in-value",
        "tab-in-key",
        "utf16-length",
        "value-too-long",
        "symbol-in-value",
    ],
)
def test_tags_aws_would_refuse_are_refused_at_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], project: dict[str, Any], message: str
) -> None:
    code = main(["plan", "--config", str(write_stack(tmp_path, stack_config(**project)))])
    captured = capsys.readouterr()
    assert (code, captured.out) == (2, "")
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(f"error: {message}"), captured.err


def test_unicode_tags_reach_roles_but_not_shared_profiles(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """IAM takes any Unicode letter; with shared profiles a workload's tags stay on its role."""
    resources = planned(
        tmp_path,
        capsys,
        iam={"tags": {"Team": "payments"}},
        workloads={
            "orders": {
                "spiffeId": "/svc/orders",
                "bots": ["dev-ci"],
                "tags": {"Équipe": "paiements", "Team": "orders", "Space": "a\u00a0b"},
            }
        },
    )
    role = resources["roles-anywhere-orders-role"]
    assert role["tags"] == {
        "ManagedBy": "teleport-roles-anywhere",
        "SpiffeId": "spiffe://acme.teleport.sh/svc/orders",
        "Space": "a\u00a0b",
        "Team": "orders",
        "TeleportCluster": "acme.teleport.sh",
        "TeleportNamespace": "dev",
        "Équipe": "paiements",
    }
    (profile,) = [inputs for name, inputs in resources.items() if "-profile-" in name]
    assert profile["tags"] == {
        "ManagedBy": "teleport-roles-anywhere",
        "Team": "payments",
        "TeleportCluster": "acme.teleport.sh",
        "TeleportNamespace": "dev",
    }


def test_every_resource_names_its_stack_in_a_tag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The anchor, each role and each profile carry TeleportNamespace: what an import is checked against."""
    resources = planned(
        tmp_path,
        capsys,
        profileSharing="perWorkload",
        teleport={"namespace": "payments"},
        workloads={"orders": {"spiffeId": "/svc/orders", "bots": ["payments-ci"]}},
    )
    tagged = {name: inputs.get("tags", {}).get("TeleportNamespace") for name, inputs in resources.items()}
    assert tagged == {
        "roles-anywhere-trust-anchor": "payments",
        "roles-anywhere-orders-role": "payments",
        "roles-anywhere-orders-profile": "payments",
    }


def _botocore_pattern(service: str, shape: str) -> str:
    """A tag pattern as AWS publishes it in botocore's service model (the oracle, not our copy)."""
    import botocore.session  # noqa: PLC0415 - the sandbox extra's; only this test needs it

    model = botocore.session.get_session().get_service_model(service)
    return str(model.shape_for(shape).metadata["pattern"])


_TAG_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",))
    | st.sampled_from(list("_.:/=+-@ \t\néÉ\u2028ⅻ½")),
    min_size=1,
    max_size=12,
)


@given(key=_TAG_TEXT, value=_TAG_TEXT)
def test_iam_tag_rule_is_botocores_pattern(key: str, value: str) -> None:
    """Our IAM tag check accepts exactly what IAM's published patterns accept (Unicode classes and all)."""
    regex = pytest.importorskip("regex")  # Python's re has no \p{L}
    key_ok = regex.fullmatch(_botocore_pattern("iam", "tagKeyType"), key) is not None
    value_ok = regex.fullmatch(_botocore_pattern("iam", "tagValueType"), value) is not None
    reserved = key.lower().startswith("aws:") or key.lower() in {t.lower() for t in iam_settings.OUR_TAGS}
    try:
        iam_settings.tags({key: value})
        accepted = True
    except ValueError:
        accepted = False
    assert accepted == (key_ok and value_ok and not reserved)


@given(text=_TAG_TEXT)
def test_roles_anywhere_tag_rule_is_botocores_pattern(text: str) -> None:
    expected = re.fullmatch(_botocore_pattern("rolesanywhere", "TagKey"), text) is not None
    assert _botocore_pattern("rolesanywhere", "TagValue") == _botocore_pattern("rolesanywhere", "TagKey")
    try:
        iam_settings.profile_tags({text: "v"}, why="test")
        accepted = True
    except ValueError:
        accepted = False
    assert accepted == expected
