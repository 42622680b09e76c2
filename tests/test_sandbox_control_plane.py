"""The sandbox's control plane, driven by boto3's own ``rolesanywhere`` client."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from roles_anywhere.sandbox.server import Sandbox

from .certs import make_ca, pem_of
from .sandbox_helpers import fresh_ca, make_world


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as running:
        yield running


@pytest.fixture
def client(sandbox: Sandbox) -> Any:
    return sandbox.client("rolesanywhere")


def bundle_source(pem: str) -> dict[str, Any]:
    return {"sourceType": "CERTIFICATE_BUNDLE", "sourceData": {"x509CertificateData": pem}}


def error_of(call: Any, **params: Any) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as raised:
        call(**params)
    error = raised.value.response
    return error["Error"]["Code"], error["Error"]["Message"], error["ResponseMetadata"]["HTTPStatusCode"]


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket listening on ``port``, from the kernel's table (Linux)."""
    table = Path("/proc/net/tcp")
    if not table.exists():
        pytest.skip("needs /proc/net/tcp")
    found = set()
    for line in table.read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


def test_only_loopback_endpoints(sandbox: Sandbox) -> None:
    for service in ("rolesanywhere", "iam", "sts"):
        url = urlsplit(sandbox.endpoints[service])
        assert url.hostname == "127.0.0.1"
        assert url.port is not None
        assert listening_addresses(url.port) == {"127.0.0.1"}


def test_trust_anchor_lifecycle(client: Any) -> None:
    ca, rotated = fresh_ca(), fresh_ca(serial=77)
    created = client.create_trust_anchor(name="teleport", source=bundle_source(ca.pem), enabled=True)
    anchor = created["trustAnchor"]
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert (
        anchor["trustAnchorArn"]
        == f"arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/{anchor['trustAnchorId']}"
    )
    assert anchor["enabled"] is True
    assert {(s["event"], s["threshold"], s["configuredBy"]) for s in anchor["notificationSettings"]} == {
        ("CA_CERTIFICATE_EXPIRY", 45, "rolesanywhere.amazonaws.com"),
        ("END_ENTITY_CERTIFICATE_EXPIRY", 45, "rolesanywhere.amazonaws.com"),
    }
    key = anchor["trustAnchorId"]
    updated = client.update_trust_anchor(trustAnchorId=key, source=bundle_source(ca.pem + rotated.pem))[
        "trustAnchor"
    ]
    assert updated["trustAnchorArn"] == anchor["trustAnchorArn"]  # in place: same ARN
    assert updated["source"]["sourceData"]["x509CertificateData"] == ca.pem + rotated.pem
    assert client.disable_trust_anchor(trustAnchorId=key)["trustAnchor"]["enabled"] is False
    assert client.enable_trust_anchor(trustAnchorId=key)["trustAnchor"]["enabled"] is True
    assert client.get_trust_anchor(trustAnchorId=key)["trustAnchor"]["name"] == "teleport"
    assert key in [a["trustAnchorId"] for a in client.list_trust_anchors()["trustAnchors"]]
    client.delete_trust_anchor(trustAnchorId=key)
    assert error_of(client.get_trust_anchor, trustAnchorId=key) == (
        "ResourceNotFoundException",
        f"Trust anchor {key} not found",
        404,
    )


def test_notification_settings(client: Any) -> None:
    key = client.create_trust_anchor(name="n", source=bundle_source(fresh_ca().pem))["trustAnchor"][
        "trustAnchorId"
    ]
    changed = client.put_notification_settings(
        trustAnchorId=key,
        notificationSettings=[{"enabled": False, "event": "CA_CERTIFICATE_EXPIRY", "threshold": 90}],
    )["trustAnchor"]["notificationSettings"]
    ca_setting = next(s for s in changed if s["event"] == "CA_CERTIFICATE_EXPIRY")
    assert (ca_setting["enabled"], ca_setting["threshold"], ca_setting["configuredBy"]) == (
        False,
        90,
        "123456789012",
    )
    reset = client.reset_notification_settings(
        trustAnchorId=key, notificationSettingKeys=[{"event": "CA_CERTIFICATE_EXPIRY", "channel": "ALL"}]
    )["trustAnchor"]["notificationSettings"]
    ca_setting = next(s for s in reset if s["event"] == "CA_CERTIFICATE_EXPIRY")
    assert (ca_setting["enabled"], ca_setting["threshold"]) == (True, 45)


def test_pagination_with_boto3_paginator(client: Any) -> None:
    names = {f"page-{i}" for i in range(7)}
    for name in names:
        client.create_trust_anchor(name=name, source=bundle_source(fresh_ca().pem))
    first = client.list_trust_anchors(pageSize=3)
    assert len(first["trustAnchors"]) == 3
    assert (
        client.list_trust_anchors(pageSize=3, nextToken=first["nextToken"])["trustAnchors"][0]
        not in first["trustAnchors"]
    )
    pages = list(client.get_paginator("list_trust_anchors").paginate())
    listed = [a["name"] for page in pages for a in page["trustAnchors"]]
    assert names <= set(listed)
    assert len(listed) == len({a["trustAnchorId"] for page in pages for a in page["trustAnchors"]})


def test_profile_lifecycle_and_tags(client: Any) -> None:
    role = "arn:aws:iam::123456789012:role/orders"
    profile = client.create_profile(
        name="orders", roleArns=[role], durationSeconds=7200, tags=[{"key": "team", "value": "payments"}]
    )["profile"]
    assert (profile["enabled"], profile["durationSeconds"], profile["roleArns"]) == (False, 7200, [role])
    key, arn = profile["profileId"], profile["profileArn"]
    assert client.enable_profile(profileId=key)["profile"]["enabled"] is True
    assert client.update_profile(profileId=key, durationSeconds=3600)["profile"]["durationSeconds"] == 3600
    client.tag_resource(resourceArn=arn, tags=[{"key": "env", "value": "dev"}])
    assert client.list_tags_for_resource(resourceArn=arn)["tags"] == [
        {"key": "env", "value": "dev"},
        {"key": "team", "value": "payments"},
    ]
    client.untag_resource(resourceArn=arn, tagKeys=["team"])
    assert client.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "env", "value": "dev"}]
    too_many = [{"key": f"k{i}", "value": "v"} for i in range(200)]
    assert error_of(client.tag_resource, resourceArn=arn, tags=too_many)[0] == "TooManyTagsException"
    client.delete_profile(profileId=key)
    assert error_of(client.list_tags_for_resource, resourceArn=arn)[0] == "ResourceNotFoundException"


@pytest.mark.parametrize(
    ("pem", "problem"),
    [
        (
            lambda: pem_of(*(fresh_ca(serial=n).certificate for n in (1, 2, 3))),
            "holds 3 distinct certificates",
        ),
        (lambda: fresh_ca(ca=False).pem, "is not a CA"),
        (lambda: fresh_ca(key_cert_sign=False).pem, "keyCertSign"),
        (
            lambda: make_ca().pem.replace("CERTIFICATE-----\n", "CERTIFICATE-----\nAAAA", 1),
            "not a valid X.509",
        ),
        (lambda: fresh_ca().pem + fresh_ca().key_pem, "contains a private key"),
    ],
)
def test_trust_anchor_rules(client: Any, pem: Any, problem: str) -> None:
    code, message, status = error_of(client.create_trust_anchor, name="bad", source=bundle_source(pem()))
    assert (code, status) == ("ValidationException", 400)
    assert problem in message
    assert "PRIVATE KEY-----\nMI" not in message


def test_model_constraints_are_enforced(client: Any) -> None:
    code, message, _ = error_of(client.create_profile, name="bad/name", roleArns=[])
    assert (code, message) == ("ValidationException", "name does not match the pattern [ a-zA-Z0-9-_]*")
    long_bundle = "x" * 8001
    code, message, _ = error_of(client.create_trust_anchor, name="long", source=bundle_source(long_bundle))
    assert code == "ValidationException"
    code, message, _ = error_of(
        client.create_trust_anchor,
        name="acm",
        source={"sourceType": "AWS_ACM_PCA", "sourceData": {"acmPcaArn": "x"}},
    )
    assert "CERTIFICATE_BUNDLE" in message


def test_operations_the_sandbox_does_not_implement_say_so(client: Any) -> None:
    code, message, status = error_of(client.list_crls)
    assert (code, status) == ("NotImplementedException", 501)
    assert message == "ListCrls is not implemented by the sandbox"


def test_state_survives_a_restart(tmp_path: Path) -> None:
    # the module's sandbox shares moto's process-wide backend: run the restart test on its own state
    world_ca = fresh_ca()
    with Sandbox(state_dir=tmp_path) as first:
        world = make_world(first, world_ca)
        workload = world.workload("/svc/kept")
        first.client("iam").create_role(
            RoleName="bounded",
            AssumeRolePolicyDocument='{"Version": "2012-10-17", "Statement": []}',
            PermissionsBoundary="arn:aws:iam::aws:policy/IAMReadOnlyAccess",
            Tags=[{"Key": "Team", "Value": "a"}],
        )
    with Sandbox(state_dir=tmp_path) as second:
        bounded = second.client("iam").get_role(RoleName="bounded")["Role"]
        assert bounded["PermissionsBoundary"]["PermissionsBoundaryArn"].endswith("/IAMReadOnlyAccess")
        assert bounded["Tags"] == [{"Key": "Team", "Value": "a"}]
        anchors = second.client("rolesanywhere").list_trust_anchors()["trustAnchors"]
        assert [a["trustAnchorArn"] for a in anchors] == [world.anchor_arn]
        profile = second.client("rolesanywhere").list_profiles()["profiles"][0]
        assert profile["profileArn"] == workload.profile_arn
        role = second.client("iam").get_role(RoleName=workload.role_arn.rsplit("/", 1)[1])["Role"]
        assert role["Arn"] == workload.role_arn
        assert world.anchor_arn in str(role["AssumeRolePolicyDocument"])


def test_every_id_route_takes_the_arn_too(client: Any) -> None:
    """botocore's model allows an ARN wherever an id goes (it URL-encodes the slash)."""
    anchor = client.create_trust_anchor(
        name="by-arn",
        source={"sourceType": "CERTIFICATE_BUNDLE", "sourceData": {"x509CertificateData": fresh_ca().pem}},
    )["trustAnchor"]
    anchor_arn = anchor["trustAnchorArn"]
    assert (
        client.get_trust_anchor(trustAnchorId=anchor_arn)["trustAnchor"]["trustAnchorId"]
        == anchor["trustAnchorId"]
    )
    assert client.enable_trust_anchor(trustAnchorId=anchor_arn)["trustAnchor"]["enabled"] is True
    assert client.disable_trust_anchor(trustAnchorId=anchor_arn)["trustAnchor"]["enabled"] is False
    assert (
        client.update_trust_anchor(trustAnchorId=anchor_arn, name="renamed")["trustAnchor"]["name"]
        == "renamed"
    )
    profile = client.create_profile(name="by-arn", roleArns=[], enabled=False)["profile"]
    profile_arn = profile["profileArn"]
    assert client.get_profile(profileId=profile_arn)["profile"]["profileId"] == profile["profileId"]
    assert client.enable_profile(profileId=profile_arn)["profile"]["enabled"] is True
    assert client.disable_profile(profileId=profile_arn)["profile"]["enabled"] is False
    assert (
        client.update_profile(profileId=profile_arn, durationSeconds=1800)["profile"]["durationSeconds"]
        == 1800
    )
    client.delete_profile(profileId=profile_arn)
    client.delete_trust_anchor(trustAnchorId=anchor_arn)
    assert error_of(client.get_profile, profileId=profile_arn)[0] == "ResourceNotFoundException"
    assert error_of(client.get_trust_anchor, trustAnchorId=anchor_arn)[0] == "ResourceNotFoundException"
