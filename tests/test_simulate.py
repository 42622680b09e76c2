"""The simulator against a matrix of certificates generated with cryptography, and a Hypothesis property."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from cryptography import x509
from hypothesis import given, settings
from hypothesis import strategies as st

from roles_anywhere.errors import ConfigError
from roles_anywhere.simulate.evaluate import Verdict, certificate_findings, simulate
from roles_anywhere.simulate.inputs import role_targets
from roles_anywhere.stack.deployment import Deployment, load_deployment

from .certs import NOW, Issued, make_ca, make_intermediate, make_svid

CLUSTER = "example.teleport.sh"
ANCHOR_ARN = (
    f"arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/{uuid.uuid5(uuid.NAMESPACE_URL, 'a')}"
)
CA_EC = make_ca(CLUSTER)
CA_RSA = make_ca(CLUSTER, key_kind="rsa-2048")
WORKLOADS = {"api": "/svc/api", "worker": "/svc/worker", "api-admin": "/svc/api/admin"}


def deployment_for(workloads: dict[str, str], session: int = 3600) -> Deployment:
    def profile(name: str) -> str:
        return f"arn:aws:rolesanywhere:eu-west-1:111122223333:profile/{uuid.uuid5(uuid.NAMESPACE_URL, name)}"

    outputs: dict[str, Any] = {
        "cluster": CLUSTER,
        "trustAnchorArn": ANCHOR_ARN,
        "teleport": {"mode": "workload-identity", "namespace": "test", "proxy": f"{CLUSTER}:443", "bots": {}},
        "aws": {"signingHelper": "aws_signing_helper", "credentials": "process"},
        "workloads": {
            name: {
                "spiffeId": f"spiffe://{CLUSTER}{path}",
                "roleName": name,
                "roleArn": f"arn:aws:iam::111122223333:role/{name}",
                "profileArn": profile(name),
                "sessionDuration": session,
                "svidDirectory": f"/opt/machine-id/{name}",
                "bots": [],
                "users": [],
                "svidTtl": "1h",
            }
            for name, path in workloads.items()
        },
    }
    return load_deployment(outputs, source="test")


DEPLOYMENT = deployment_for(WORKLOADS)


def run(
    svid: Issued | x509.Certificate,
    *,
    anchors: Sequence[Issued] = (CA_EC,),
    intermediates: Sequence[Issued] = (),
    deployment: Deployment = DEPLOYMENT,
    at_offset: timedelta = timedelta(0),
    **targets: Any,
) -> dict[str, Verdict]:
    leaf = svid if isinstance(svid, x509.Certificate) else svid.certificate
    findings = certificate_findings(
        leaf, [i.certificate for i in intermediates], [a.certificate for a in anchors], NOW + at_offset
    )
    chosen = role_targets(deployment, role=None, **targets)
    return {v.target.workload: v for v in simulate(findings, chosen, deployment.trust_anchor_arn)}


def allowed(verdicts: dict[str, Verdict]) -> set[str]:
    return {name for name, verdict in verdicts.items() if verdict.allowed}


def failed(verdicts: dict[str, Verdict], workload: str) -> str | None:
    step = verdicts[workload].failed_step
    return step.name if step else None


def svid_for(path: str, issuer: Issued = CA_EC, **kwargs: Any) -> Issued:
    return make_svid(issuer, f"spiffe://{CLUSTER}{path}", **kwargs)


@pytest.mark.parametrize("ca", [CA_EC, CA_RSA], ids=["ec-p256", "rsa-2048"])
@pytest.mark.parametrize("key_kind", ["ec-p256", "rsa-2048"])
def test_teleport_shaped_cas_allow_exactly_the_svids_own_role(ca: Issued, key_kind: str) -> None:
    verdicts = run(svid_for("/svc/api", ca, key_kind=key_kind), anchors=[ca])
    assert allowed(verdicts) == {"api"}
    assert failed(verdicts, "worker") == "trust-policy"
    assert failed(verdicts, "api-admin") == "trust-policy"


def test_rotation_bundle_trusts_svids_of_both_cas() -> None:
    old, new = make_ca(CLUSTER, serial=1), make_ca(CLUSTER, serial=2)
    for issuer in (old, new):
        assert allowed(run(svid_for("/svc/worker", issuer), anchors=[old, new])) == {"worker"}
    verdicts = run(svid_for("/svc/worker", new), anchors=[old])
    assert allowed(verdicts) == set()
    assert failed(verdicts, "worker") == "chain"
    assert (
        "not signed by the key of the certificate with that name" in verdicts["worker"].steps[1].details[-1]
    )


def test_intermediates_with_and_without_the_chain() -> None:
    intermediate = make_intermediate(CA_EC)
    svid = svid_for("/svc/api", intermediate)
    assert allowed(run(svid, intermediates=[intermediate])) == {"api"}
    without = run(svid)
    assert failed(without, "api") == "chain"
    chain = without["api"].steps[1]
    assert chain.details == (
        "✗ issuer CN=intermediate is neither in the trust anchor nor among the intermediates given",
    )
    assert "--intermediates" in chain.fix


def test_two_levels_of_intermediates_and_the_limit_of_five() -> None:
    first = make_intermediate(CA_EC, "first")
    second = make_intermediate(first, "second")
    assert allowed(run(svid_for("/svc/api", second), intermediates=[second, first])) == {"api"}
    too_many = [make_intermediate(CA_EC, f"i{n}") for n in range(6)]
    verdicts = run(svid_for("/svc/api", too_many[0]), intermediates=too_many)
    assert failed(verdicts, "api") == "chain"
    assert verdicts["api"].steps[1].fix == "Roles Anywhere accepts at most 5"


def test_expired_intermediate_fails_the_chain() -> None:
    intermediate = make_intermediate(CA_EC, not_after=NOW - timedelta(days=1))
    verdicts = run(svid_for("/svc/api", intermediate), intermediates=[intermediate])
    assert failed(verdicts, "api") == "chain"
    assert any("intermediate CN=intermediate expired" in d for d in verdicts["api"].steps[1].details)


@pytest.mark.parametrize(
    ("kwargs", "offset", "detail"),
    [
        ({"not_after": NOW - timedelta(minutes=1)}, timedelta(0), "certificate expired at"),
        ({}, timedelta(hours=2), "certificate expired at"),
        ({"not_before": NOW + timedelta(minutes=5)}, timedelta(0), "certificate is not valid yet"),
        ({"ca": True}, timedelta(0), "a CA certificate (basicConstraints CA:TRUE)"),
        ({"digital_signature": False}, timedelta(0), "key usage lacks digitalSignature"),
    ],
)
def test_end_entity_rules(kwargs: dict[str, Any], offset: timedelta, detail: str) -> None:
    verdicts = run(svid_for("/svc/api", **kwargs), at_offset=offset)
    assert allowed(verdicts) == set()
    assert failed(verdicts, "api") == "certificate"
    assert any(d.startswith("✗ " + detail) for d in verdicts["api"].steps[0].details)
    assert verdicts["api"].to_json()["awsError"] == "AccessDeniedException: Untrusted signing certificate"


def test_foreign_ca_with_the_same_subject_is_not_trusted() -> None:
    foreign = make_ca(CLUSTER)
    assert foreign.certificate.subject == CA_EC.certificate.subject
    verdicts = run(svid_for("/svc/api", foreign))
    assert allowed(verdicts) == set()
    assert failed(verdicts, "api") == "chain"


def test_only_the_first_uri_san_is_mapped() -> None:
    first_api = make_svid(CA_EC, f"spiffe://{CLUSTER}/svc/api", f"spiffe://{CLUSTER}/svc/worker")
    assert allowed(run(first_api)) == {"api"}
    first_worker = make_svid(CA_EC, f"spiffe://{CLUSTER}/svc/worker", f"spiffe://{CLUSTER}/svc/api")
    assert allowed(run(first_worker)) == {"worker"}


@pytest.mark.parametrize(
    "uri",
    [
        f"spiffe://{CLUSTER}/svc/API",  # case
        f"SPIFFE://{CLUSTER}/svc/api",
        f"spiffe://{CLUSTER.upper()}/svc/api",
        f"spiffe://{CLUSTER}/svc/ap",  # prefix
        f"spiffe://{CLUSTER}/svc",
        f"spiffe://{CLUSTER}/svc/api2",  # suffix
        f"spiffe://{CLUSTER}/svc/api/",
        f"spiffe://{CLUSTER}/svc/api/x",
        f"spiffe://other.{CLUSTER}/svc/api",
    ],
)
def test_spiffe_ids_that_differ_in_any_way_are_denied(uri: str) -> None:
    verdicts = run(make_svid(CA_EC, uri))
    assert allowed(verdicts) == set()
    assert {failed(verdicts, name) for name in WORKLOADS} == {"trust-policy"}


def test_no_uri_san_is_denied_with_the_reason() -> None:
    verdicts = run(make_svid(CA_EC, common_name="api", dns=("api.example.com",)))
    assert allowed(verdicts) == set()
    assert "no such key" in verdicts["api"].to_json()["reasons"][0]
    assert "no URI SAN" in verdicts["api"].steps[3].fix


@pytest.mark.parametrize(
    ("svid", "problem"),
    [
        (
            lambda: make_svid(CA_EC, f"spiffe://{CLUSTER}/svc/" + "a" * 300),
            "x509SAN/URI is 333 characters; session tag values allow at most 256",
        ),
        (lambda: svid_for("/svc/api", common_name="api!"), "x509Subject/CN contains '!'"),
    ],
)
def test_unmappable_attributes_fail_the_session(svid: Any, problem: str) -> None:
    verdicts = run(svid())
    assert failed(verdicts, "api") == "session-tags"
    tags_step = verdicts["api"].steps[2]
    assert not tags_step.ok
    assert any(problem in d for d in tags_step.details)
    assert allowed(verdicts) == set()


def test_principal_tags_as_aws_maps_them() -> None:
    verdicts = run(
        make_svid(CA_EC, f"spiffe://{CLUSTER}/svc/api", common_name="api", dns=("a.example", "b.example"))
    )
    details = verdicts["api"].steps[2].details
    assert details == (
        f"✓ x509Issuer/CN = {CLUSTER}",
        f"✓ x509Issuer/O = {CLUSTER}",
        "✓ x509SAN/DNS = a.example",
        f"✓ x509SAN/URI = spiffe://{CLUSTER}/svc/api",
        "✓ x509Subject/CN = api",
    )


def test_profile_rules() -> None:
    svid = svid_for("/svc/api")
    long_sessions = deployment_for(WORKLOADS, session=7200)
    assert allowed(run(svid, deployment=long_sessions)) == {"api"}
    too_long = run(svid, deployment=long_sessions, session_duration=50_000)
    assert failed(too_long, "api") == "profile"
    findings = certificate_findings(svid.certificate, [], [CA_EC.certificate], NOW)
    (target,) = role_targets(DEPLOYMENT, role="api")
    outside = replace(target, profile_role_arns=("arn:aws:iam::111122223333:role/other",))
    disabled = replace(target, profile_enabled=False)
    capped = replace(target, requested_duration=7200, profile_duration=7200, role_max_session=3600)
    for bad, detail in (
        (outside, "✗ role is not in the profile's roleArns"),
        (disabled, "✗ profile disabled"),
        (capped, "✗ session min(requested 7200 s, profile 7200 s) = 7200 s > role MaxSessionDuration 3600 s"),
    ):
        (verdict,) = simulate(findings, [bad], ANCHOR_ARN)
        assert verdict.failed_step is not None
        assert verdict.failed_step.name == "profile"
        assert detail in verdict.failed_step.details
    request_more = replace(target, requested_duration=7200)  # capped at the profile's 3600: allowed
    assert simulate(findings, [request_more], ANCHOR_ARN)[0].allowed


def test_the_profiles_session_name_and_instance_property_rules() -> None:
    svid = svid_for("/svc/api")
    findings = certificate_findings(svid.certificate, [], [CA_EC.certificate], NOW)
    (target,) = role_targets(DEPLOYMENT, role="api")
    assert target.role_session_name is None  # nothing rendered when the profile does not accept one
    named = replace(target, role_session_name="teleport-api")
    accepting = replace(named, accept_role_session_name=True)
    requiring = replace(target, require_instance_properties=True)
    for bad, detail in (
        (named, "✗ role session name 'teleport-api' sent, but the profile does not accept one"),
        (
            replace(accepting, role_session_name="a b"),
            "✗ role session name 'a b' is 2-64 of letters, digits and =,.@_-",
        ),
        (requiring, "✗ the profile requires instance properties: the request sends none"),
    ):
        (verdict,) = simulate(findings, [bad], ANCHOR_ARN)
        assert verdict.failed_step is not None
        assert verdict.failed_step.name == "profile"
        assert detail in verdict.failed_step.details
    for good in (accepting, replace(requiring, instance_properties=True)):
        assert simulate(findings, [good], ANCHOR_ARN)[0].allowed


def test_verdict_json_shape() -> None:
    verdict = run(svid_for("/svc/worker"))["api"]
    document = verdict.to_json()
    assert document["allowed"] is False
    assert document["failedStep"] == "trust-policy"
    assert [s["step"] for s in document["steps"]] == [
        "certificate",
        "chain",
        "session-tags",
        "trust-policy",
        "profile",
    ]
    assert document["roleArn"] == "arn:aws:iam::111122223333:role/api"


PATH_SEGMENTS = st.sampled_from(["a", "A", "ab", "b", "a.b", "a-b"])
PATHS = st.lists(PATH_SEGMENTS, min_size=1, max_size=3).map(lambda parts: "/" + "/".join(parts))


@settings(max_examples=40)
@given(st.dictionaries(st.sampled_from(["w1", "w2", "w3", "w4", "w5"]), PATHS, min_size=1, max_size=5))
def test_every_svid_is_allowed_exactly_for_the_roles_of_its_spiffe_id(workloads: dict[str, str]) -> None:
    if len(set(workloads.values())) < len(workloads):
        with pytest.raises(ConfigError, match=r"the SPIFFE ID of workload 'w\d' too"):
            deployment_for(workloads)  # one SVID would assume several roles: refused (issue 11, finding 4)
        return
    deployment = deployment_for(workloads)
    for path in set(workloads.values()):
        verdicts = run(svid_for(path), deployment=deployment)
        assert allowed(verdicts) == {name for name, p in workloads.items() if p == path}
        for name, verdict in verdicts.items():
            if not verdict.allowed:
                assert failed(verdicts, name) == "trust-policy"


def test_repeated_rdns_are_joined_and_the_first_directory_name_is_mapped() -> None:
    from cryptography.hazmat.primitives import hashes  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    from roles_anywhere.simulate.principal_tags import map_principal_tags  # noqa: PLC0415

    from .certs import make_key  # noqa: PLC0415

    key = make_key()
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "platform"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "payments"),
            x509.NameAttribute(NameOID.COMMON_NAME, "api"),
            x509.NameAttribute(NameOID.PSEUDONYM, "not-mapped"),
        ]
    )
    names = [
        x509.DirectoryName(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "first")])),
        x509.DirectoryName(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "second")])),
        x509.UniformResourceIdentifier(f"spiffe://{CLUSTER}/svc/api"),
    ]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(CA_EC.certificate.subject)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(NOW - timedelta(minutes=1))
        .not_valid_after(NOW + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(CA_EC.key, hashes.SHA256())
    )
    assert map_principal_tags(certificate).tags == {
        "x509Subject/OU": "platform/payments",
        "x509Subject/CN": "api",
        "x509Issuer/O": CLUSTER,
        "x509Issuer/CN": CLUSTER,
        "x509SAN/URI": f"spiffe://{CLUSTER}/svc/api",
        "x509SAN/Name/CN": "first",
    }
    verdicts = run(certificate)
    assert failed(verdicts, "api") == "certificate"  # no key usage extension at all: not digitalSignature
