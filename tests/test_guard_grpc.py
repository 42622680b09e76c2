"""The policy pack as the Pulumi CLI runs it: `policy-pack/__main__.py` started as a process, serving
pulumi-policy's analyzer over gRPC, asked with the engine's own requests (Configure, Analyze with a
resource's inputs, AnalyzeStack with every resource's outputs). So every policy sees what it sees
under `pulumi preview`/`up`: proxies, not dicts and lists; numbers as floats; unknowns as sentinels.

Every trust-policy trick runs through every way a program can write a role's trust policy: a
pulumi-aws role with JSON text or an object, an aws-native role with an object or JSON text."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives import hashes
from pulumi.runtime import proto
from pulumi.runtime.proto import analyzer_pb2_grpc
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from roles_anywhere.guard import policies as guard

from .certs import make_ca, pem_of
from .conftest import ROOT

PACK = ROOT / "policy-pack"
CLUSTER = "acme.teleport.sh"
SPIFFE = f"spiffe://{CLUSTER}/svc/orders"
ANCHOR = "arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/0f0e0d0c-1111-2222-3333-444455556666"
OTHER_ANCHOR = (
    "arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
)
ACME_CA = make_ca(CLUSTER)
OTHER_CA = make_ca("other.teleport.sh", serial=2000)
ACTIONS = ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"]
LEVEL_NAMES = {proto.ADVISORY: "advisory", proto.MANDATORY: "mandatory", proto.DISABLED: "disabled"}


@dataclass(frozen=True)
class Diagnostic:
    policy: str
    level: str
    urn: str
    message: str  # the policy's own message, without the description the analyzer puts first


@dataclass
class Pack:
    """A client of the running pack, as the engine is one."""

    stub: Any
    descriptions: dict[str, str] = field(default_factory=dict)

    def configure(self, config: dict[str, dict[str, Any]] | None = None) -> None:
        """Every policy at its default level, with ``config``'s settings (``{policy: {key: value}}``)."""
        request = proto.ConfigureAnalyzerRequest()
        for name, level in guard.DEFAULT_LEVELS.items():
            settings = dict((config or {}).get(name, {}))
            level_name = settings.pop("enforcementLevel", level.value)
            request.policyConfig[name].enforcementLevel = {v: k for k, v in LEVEL_NAMES.items()}[level_name]
            request.policyConfig[name].properties.update(settings)
        self.stub.Configure(request)

    def analyze(
        self, type_: str, props: dict[str, Any], name: str = "subject", *, protect: bool = False
    ) -> list[Diagnostic]:
        request = proto.AnalyzeRequest(type=type_, urn=urn(type_, name), name=name)
        request.properties.update(props)
        request.options.protect = protect
        return self._read(self.stub.Analyze(request))

    def analyze_stack(self, *resources: tuple[str, str, dict[str, Any]]) -> list[Diagnostic]:
        """``resources``: (type, name, outputs)."""
        request = proto.AnalyzeStackRequest()
        for type_, name, outputs in resources:
            added = request.resources.add(type=type_, urn=urn(type_, name), name=name)
            added.properties.update(outputs)
            added.options.protect = True
        return self._read(self.stub.AnalyzeStack(request))

    def _read(self, response: Any) -> list[Diagnostic]:
        found = []
        for d in response.diagnostics:
            # The analyzer's framing: the description, then our message (a preview's "can't run" has none).
            message = str(d.message).removeprefix(f"{d.description}\n")
            found.append(Diagnostic(d.policyName, LEVEL_NAMES[d.enforcementLevel], d.urn, message))
        return found


def urn(type_: str, name: str) -> str:
    return f"urn:pulumi:dev::hostile::{type_}::{name}"


@pytest.fixture(scope="module")
def pack() -> Iterator[Pack]:
    """The pack's own process, started as the CLI starts it; it prints its port and serves gRPC."""
    process = subprocess.Popen(
        [sys.executable, "-u", str(PACK / "__main__.py")],
        cwd=PACK,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=30)
        client = Pack(analyzer_pb2_grpc.AnalyzerStub(channel))
        yield client
        channel.close()
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def client(pack: Pack) -> Pack:
    pack.configure()
    return pack


def statement(**extra: Any) -> dict[str, Any]:
    exact = {
        "Effect": "Allow",
        "Principal": {"Service": "rolesanywhere.amazonaws.com"},
        "Action": ACTIONS,
        "Condition": {
            "StringEquals": {"aws:PrincipalTag/x509SAN/URI": SPIFFE},
            "ArnEquals": {"aws:SourceArn": ANCHOR},
        },
    }
    exact.update(extra)
    return {k: v for k, v in exact.items() if v is not None}


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


# The four ways a program can hand a role its trust policy.
WRITERS: dict[str, Callable[[Any], tuple[str, dict[str, Any]]]] = {
    "aws-json": lambda d: (
        "aws:iam/role:Role",
        {"assumeRolePolicy": d if isinstance(d, str) else json.dumps(d)},
    ),
    "aws-object": lambda d: ("aws:iam/role:Role", {"assumeRolePolicy": d}),
    "native-object": lambda d: ("aws-native:iam:Role", {"assumeRolePolicyDocument": d}),
    "native-json": lambda d: (
        "aws-native:iam:Role",
        {"assumeRolePolicyDocument": d if isinstance(d, str) else json.dumps(d)},
    ),
}
TEXT_ONLY = {"aws-json", "native-json"}

LOOSE: dict[str, tuple[Any, str]] = {
    "no-condition": (policy(statement(Condition=None)), "has no condition"),
    "string-like": (
        policy(
            statement(
                Condition={
                    "StringLike": {"aws:PrincipalTag/x509SAN/URI": f"spiffe://{CLUSTER}/*"},
                    "ArnEquals": {"aws:SourceArn": ANCHOR},
                }
            )
        ),
        "uses StringLike",
    ),
    "upper-case-service": (
        policy(statement(Principal={"Service": "ROLESANYWHERE.AMAZONAWS.COM"}, Condition=None)),
        "spells the service principal 'ROLESANYWHERE.AMAZONAWS.COM'",
    ),
    "padded-service": (
        policy(statement(Principal={"Service": " rolesanywhere.amazonaws.com"})),
        "spells the service principal",
    ),
    "china-suffix": (
        policy(statement(Principal={"Service": "rolesanywhere.amazonaws.com.cn"}, Condition=None)),
        "spells the service principal",
    ),
    "wildcard-service": (
        policy(statement(Principal={"Service": "*.amazonaws.com"}, Condition=None)),
        "spells the service principal",
    ),
    "service-list": (
        policy(statement(Principal={"Service": ["ec2.amazonaws.com", "rolesanywhere.amazonaws.com"]})),
        "trusts more principals than rolesanywhere.amazonaws.com (ec2.amazonaws.com)",
    ),
    "service-and-aws": (
        policy(
            statement(
                Principal={"Service": "rolesanywhere.amazonaws.com", "AWS": "arn:aws:iam::999988887777:root"}
            )
        ),
        "also trusts AWS principals",
    ),
    "principal-star": (policy(statement(Principal="*")), "trusts every principal"),
    "aws-star": (policy(statement(Principal={"AWS": "*"}, Condition=None)), "trusts every principal"),
    "aws-star-in-list": (
        policy(statement(Principal={"AWS": ["arn:aws:iam::999988887777:root", " *"]})),
        "trusts every principal",
    ),
    "not-principal": (
        policy(statement(Principal=None, NotPrincipal={"AWS": "arn:aws:iam::999988887777:root"})),
        "uses NotPrincipal",
    ),
    "for-any-value-string-like": (
        policy(
            statement(
                Condition={
                    "StringEquals": {"aws:PrincipalTag/x509SAN/URI": SPIFFE},
                    "ForAnyValue:StringLike": {"aws:PrincipalTag/x509SAN/URI": "spiffe://*"},
                    "ArnEquals": {"aws:SourceArn": ANCHOR},
                }
            )
        ),
        "uses ForAnyValue:StringLike",
    ),
    "string-equals-ignore-case": (
        policy(
            statement(
                Condition={
                    "StringEqualsIgnoreCase": {"aws:PrincipalTag/x509SAN/URI": SPIFFE},
                    "ArnEquals": {"aws:SourceArn": ANCHOR},
                }
            )
        ),
        "does not pin one SPIFFE ID with StringEquals",
    ),
    "two-ids": (
        policy(
            statement(
                Condition={
                    "StringEquals": {"aws:PrincipalTag/x509SAN/URI": [SPIFFE, SPIFFE + "-2"]},
                    "ArnEquals": {"aws:SourceArn": ANCHOR},
                }
            )
        ),
        "does not pin one SPIFFE ID",
    ),
    "arn-like-anchor": (
        policy(
            statement(
                Condition={
                    "StringEquals": {"aws:PrincipalTag/x509SAN/URI": SPIFFE},
                    "ArnLike": {"aws:SourceArn": "arn:aws:rolesanywhere:*"},
                }
            )
        ),
        "uses ArnLike",
    ),
    "if-exists": (
        policy(
            statement(
                Condition={
                    "StringEqualsIfExists": {"aws:PrincipalTag/x509SAN/URI": SPIFFE},
                    "ArnEquals": {"aws:SourceArn": ANCHOR},
                }
            )
        ),
        "holds when the key is missing",
    ),
    "not-action": (policy(statement(Action=None, NotAction="iam:*")), "uses NotAction"),
    "action-wildcard": (policy(statement(Action="sts:*")), "uses a wildcard action"),
    "lower-case-effect": (policy(statement(Effect="allow", Condition=None)), 'has "Effect": "allow"'),
    "lower-case-principal-key": (
        policy({**statement(Principal=None), "principal": {"Service": "rolesanywhere.amazonaws.com"}}),
        "has the element 'principal'",
    ),
    "lower-case-service-key": (
        policy(statement(Principal={"service": "rolesanywhere.amazonaws.com"}, Condition=None)),
        "also trusts service principals",
    ),
    "lower-case-statement-key": (
        {"Version": "2012-10-17", "statement": [statement(Condition=None)]},
        "has the element 'statement'",
    ),
    "zero-width-statement-key": (
        {"Version": "2012-10-17", "Statement\u200b": [statement(Condition=None)]},
        "has the element 'Statement\\u200b'",  # shown escaped: messages are one printable line
    ),
    "unknown-statement-element": (
        policy({**statement(), "Conditions": {"Bool": {"aws:SecureTransport": "true"}}}),
        "has the element 'Conditions'",
    ),
    "single-statement-object": (
        {"Version": "2012-10-17", "Statement": statement(Condition=None)},
        "has no condition",
    ),
    "second-statement-for-everyone": (
        policy(
            statement(),
            {
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:PrincipalAccount": "111122223333"}},
            },
        ),
        "has 2 Allow statements for Roles Anywhere",
    ),
    "service-not-text": (
        policy(statement(Principal={"Service": ["rolesanywhere.amazonaws.com", {"x": 1}]})),
        "has a Service principal that is not text",
    ),
    "statement-not-object": (policy(statement(), "rolesanywhere.amazonaws.com"), "is the text"),
}

UNREADABLE: dict[str, tuple[str, str]] = {
    "byte-order-mark": ("\ufeff" + json.dumps(policy(statement(Condition=None))), "byte-order mark"),
    "duplicate-keys": (
        '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": '
        '"rolesanywhere.amazonaws.com"}, "Action": "sts:AssumeRole", "Condition": {"StringEquals": '
        '{"aws:PrincipalTag/x509SAN/URI": "' + SPIFFE + '"}}, "Condition": {}}]}',
        "appears twice",
    ),
    "not-json": ("Statement: [Allow rolesanywhere]", "not JSON"),
    "json-array": (json.dumps([policy(statement(Condition=None))]), "a list, not a JSON object"),
    "trailing-garbage": (json.dumps(policy(statement())) + " //", "not JSON"),
}


def exact_trust(found: list[Diagnostic]) -> list[Diagnostic]:
    return [d for d in found if d.policy == guard.EXACT_TRUST]


def assert_one_line_with_fix(found: list[Diagnostic], name: str) -> None:
    for d in found:
        assert "\n" not in d.message, d.message
        assert "\r" not in d.message, d.message
        assert name in d.message, d.message
        assert "fix:" in d.message, d.message


@pytest.mark.parametrize("writer", sorted(WRITERS))
@pytest.mark.parametrize("case", sorted(LOOSE))
def test_every_trick_through_every_role_type_is_refused(client: Pack, case: str, writer: str) -> None:
    document, says = LOOSE[case]
    type_, props = WRITERS[writer](document)
    found = client.analyze(type_, props, name=f"{case}-{writer}")
    refused = exact_trust(found)
    assert refused, found
    assert {d.level for d in refused} == {"mandatory"}
    assert any(says in d.message for d in refused), [d.message for d in refused]
    assert_one_line_with_fix(refused, f"role {case}-{writer}:")


@pytest.mark.parametrize("writer", sorted(TEXT_ONLY))
@pytest.mark.parametrize("case", sorted(UNREADABLE))
def test_a_trust_policy_that_cannot_be_read_is_refused_not_skipped(
    client: Pack, case: str, writer: str
) -> None:
    text, says = UNREADABLE[case]
    type_, props = WRITERS[writer](text)
    (refused,) = exact_trust(client.analyze(type_, props, name=case))
    assert refused.level == "mandatory"
    assert refused.message.startswith(f"role {case}: the trust policy (")
    assert "cannot be read" in refused.message, refused.message
    assert says in refused.message, refused.message
    assert_one_line_with_fix([refused], case)


@pytest.mark.parametrize("writer", sorted(WRITERS))
@pytest.mark.parametrize(
    "document",
    [
        policy(statement()),
        policy(statement(Principal={"Service": ["rolesanywhere.amazonaws.com"] * 2})),
        policy(
            statement(),
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sts:AssumeRole",
                "Condition": {"Bool": {"x": "y"}},
            },
        ),
        {"Version": "2012-10-17", "Statement": statement()},
    ],
    ids=["exact", "repeated-service", "with-deny", "single-statement"],
)
def test_exact_trust_policies_pass_through_every_role_type(client: Pack, writer: str, document: Any) -> None:
    type_, props = WRITERS[writer](document)
    assert client.analyze(type_, props) == []


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_roles_for_other_principals_are_not_the_guards_business(client: Pack, writer: str) -> None:
    ec2 = policy(
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"},
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "sts:AssumeRole",
            "Condition": {"StringNotEquals": {"aws:SourceAccount": "111122223333"}},
        },
    )
    type_, props = WRITERS[writer](ec2)
    assert client.analyze(type_, props) == []


SECRET_SIG = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270"}


def test_a_secret_trust_policy_is_read_as_the_cli_hands_it(client: Pack) -> None:
    """pulumi.Output.secret(...) arrives wrapped; the analyzer unwraps it before the policy sees it."""
    loose = {**SECRET_SIG, "value": json.dumps(policy(statement(Condition=None)))}
    (refused,) = exact_trust(client.analyze("aws:iam/role:Role", {"assumeRolePolicy": loose}, name="secret"))
    assert "has no condition" in refused.message


def test_a_trust_policy_not_known_yet_is_checked_at_up_not_passed(client: Pack) -> None:
    """During a preview the analyzer says it cannot run the policy; nothing mandatory, nothing silent."""
    nested = policy(
        statement(Condition={"StringEquals": {"aws:PrincipalTag/x509SAN/URI": UNKNOWN_STRING_VALUE}})
    )
    for type_, props in (
        ("aws:iam/role:Role", {"assumeRolePolicy": UNKNOWN_STRING_VALUE}),
        ("aws-native:iam:Role", {"assumeRolePolicyDocument": nested}),
    ):
        (said,) = client.analyze(type_, props)
        assert said.policy == guard.EXACT_TRUST
        assert said.level == "advisory"
        assert "can't run policy 'roles-anywhere-exact-trust'" in said.message
        assert "during preview" in said.message


# --- anchors and profiles of both providers ---------------------------------------------------------

NOTIFY = [
    {"event": e, "threshold": 45, "channel": "ALL", "enabled": True}
    for e in ("CA_CERTIFICATE_EXPIRY", "END_ENTITY_CERTIFICATE_EXPIRY")
]


def anchor_props(pem: str = ACME_CA.pem, **extra: Any) -> dict[str, Any]:
    props = {
        "name": "a",
        "enabled": True,
        "source": {"sourceType": "CERTIFICATE_BUNDLE", "sourceData": {"x509CertificateData": pem}},
        "notificationSettings": NOTIFY,
    }
    return {**props, **extra}


@pytest.mark.parametrize(
    "type_", ["aws:rolesanywhere/trustAnchor:TrustAnchor", "aws-native:rolesanywhere:TrustAnchor"]
)
def test_anchors_of_both_providers_must_be_protected_and_notify(client: Pack, type_: str) -> None:
    assert client.analyze(type_, anchor_props(), name="anchor", protect=True) == []
    (unprotected,) = client.analyze(type_, anchor_props(), name="anchor", protect=False)
    assert unprotected.policy == guard.ANCHOR_PROTECTED
    assert unprotected.level == "mandatory"
    assert unprotected.message.startswith("trust anchor anchor is not protected")
    (quiet,) = client.analyze(type_, anchor_props(notificationSettings=[]), name="anchor", protect=True)
    assert quiet.policy == guard.ANCHOR_NOTIFICATIONS
    assert quiet.level == "advisory"


@pytest.mark.parametrize("type_", ["aws:rolesanywhere/profile:Profile", "aws-native:rolesanywhere:Profile"])
def test_profiles_of_both_providers_keep_durations_in_range(client: Pack, type_: str) -> None:
    assert client.analyze(type_, {"roleArns": [], "durationSeconds": 3600}, name="p") == []
    (long,) = client.analyze(type_, {"roleArns": [], "durationSeconds": 86_400}, name="p")
    assert long.policy == guard.PROFILE_DURATION
    assert (
        long.message
        == "profile p vends 86400 s sessions, outside 900-43200 s; fix: durationSeconds between 900 and 43200"
    )


# --- the anchor a role pins holds the CA of the SPIFFE ID's trust domain -----------------------------

ROLE_OUT = ("aws:iam/role:Role", "orders", {"assumeRolePolicy": json.dumps(policy(statement()))})


def aws_anchor(name: str, arn: str, pem: str) -> tuple[str, str, dict[str, Any]]:
    return ("aws:rolesanywhere/trustAnchor:TrustAnchor", name, {**anchor_props(pem), "arn": arn})


def native_anchor(name: str, arn: str, pem: str) -> tuple[str, str, dict[str, Any]]:
    return ("aws-native:rolesanywhere:TrustAnchor", name, {**anchor_props(pem), "trustAnchorArn": arn})


def anchor_ca(found: list[Diagnostic]) -> list[Diagnostic]:
    return [d for d in found if d.policy == guard.ANCHOR_CA]


@pytest.mark.parametrize("make_anchor", [aws_anchor, native_anchor], ids=["aws", "aws-native"])
def test_a_role_pinning_a_second_anchor_with_another_clusters_ca_is_refused(
    client: Pack, make_anchor: Any
) -> None:
    role = (
        ROLE_OUT[0],
        ROLE_OUT[1],
        {
            "assumeRolePolicy": json.dumps(
                policy(
                    statement(
                        Condition={
                            "StringEquals": {"aws:PrincipalTag/x509SAN/URI": SPIFFE},
                            "ArnEquals": {"aws:SourceArn": OTHER_ANCHOR},
                        }
                    )
                )
            )
        },
    )
    found = client.analyze_stack(
        make_anchor("acme", ANCHOR, ACME_CA.pem), make_anchor("other", OTHER_ANCHOR, OTHER_CA.pem), role
    )
    (refused,) = anchor_ca(found)
    assert refused.level == "mandatory"
    assert refused.urn == urn("aws:iam/role:Role", "orders")
    assert refused.message.startswith(
        f"role orders admits {SPIFFE} through trust anchor {OTHER_ANCHOR} (other), which trusts "
        "CN=other.teleport.sh, O=other.teleport.sh (sha256 "
    )
    assert "fix: pin an anchor that holds only acme.teleport.sh's CA" in refused.message
    assert client.analyze_stack(make_anchor("acme", ANCHOR, ACME_CA.pem), ROLE_OUT) == []


def test_an_anchor_holding_the_clusters_ca_and_another_is_refused(client: Pack) -> None:
    found = client.analyze_stack(
        aws_anchor("both", ANCHOR, pem_of(ACME_CA.certificate, OTHER_CA.certificate)), ROLE_OUT
    )
    (refused,) = anchor_ca(found)
    assert "which trusts CN=other.teleport.sh" in refused.message


def test_the_policy_config_names_the_clusters_ca_by_fingerprint(client: Pack) -> None:
    other_fp = OTHER_CA.certificate.fingerprint(hashes.SHA256()).hex()
    stack = (aws_anchor("acme", ANCHOR, OTHER_CA.pem), ROLE_OUT)
    assert anchor_ca(client.analyze_stack(*stack))
    client.configure({guard.ANCHOR_CA: {"caFingerprints": {CLUSTER: [other_fp.upper()]}}})
    assert client.analyze_stack(*stack) == []
    # With fingerprints configured, a CA shaped like the cluster's is no longer enough.
    (refused,) = anchor_ca(client.analyze_stack(aws_anchor("acme", ANCHOR, ACME_CA.pem), ROLE_OUT))
    assert "not a CA of acme.teleport.sh (named in caFingerprints)" in refused.message
    client.configure({guard.ANCHOR_CA: {"caFingerprints": {"other.teleport.sh": [other_fp]}}})
    (refused,) = anchor_ca(client.analyze_stack(*stack))
    assert "caFingerprints in the policy config names no CA for acme.teleport.sh" in refused.message
    client.configure({guard.ANCHOR_CA: {"caFingerprints": {CLUSTER: ["not-a-fingerprint"]}}})
    (refused,) = anchor_ca(client.analyze_stack(*stack))
    assert refused.message.startswith(
        "policy config of roles-anywhere-anchor-ca: caFingerprints.acme.teleport.sh:"
    )


@pytest.mark.parametrize(
    ("anchors", "says"),
    [
        ((), "which is not in this stack, so the guard cannot see which CA it holds"),
        (
            (
                (
                    "aws:rolesanywhere/trustAnchor:TrustAnchor",
                    "pca",
                    {
                        "arn": ANCHOR,
                        "source": {
                            "sourceType": "AWS_ACM_PCA",
                            "sourceData": {"acmPcaArn": "arn:aws:acm-pca:x"},
                        },
                    },
                ),
            ),
            "its source is AWS_ACM_PCA, not a certificate bundle the guard can read",
        ),
        (
            (aws_anchor("junk", ANCHOR, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),),
            "cannot be read",
        ),
    ],
    ids=["outside-the-stack", "acm-pca", "unreadable-bundle"],
)
def test_an_anchor_whose_ca_cannot_be_seen_is_refused(
    client: Pack, anchors: tuple[Any, ...], says: str
) -> None:
    (refused,) = anchor_ca(client.analyze_stack(*anchors, ROLE_OUT))
    assert says in refused.message
    assert "fix:" in refused.message


def test_two_anchors_with_one_ca_do_not_make_one_id_two_roles(client: Pack) -> None:
    second = (
        "aws-native:iam:Role",
        "orders-again",
        {
            "assumeRolePolicyDocument": policy(
                statement(
                    Condition={
                        "StringEquals": {"aws:PrincipalTag/x509SAN/URI": SPIFFE},
                        "ArnEquals": {"aws:SourceArn": OTHER_ANCHOR},
                    }
                )
            )
        },
    )
    found = client.analyze_stack(
        aws_anchor("acme", ANCHOR, ACME_CA.pem),
        native_anchor("acme-2", OTHER_ANCHOR, ACME_CA.pem),
        ROLE_OUT,
        second,
    )
    (twice,) = [d for d in found if d.policy == guard.UNIQUE_IDENTITY]
    assert twice.message.startswith(f"roles orders and orders-again both admit {SPIFFE}")


def test_stack_policies_say_when_they_cannot_run_in_a_preview(client: Pack) -> None:
    role = ("aws:iam/role:Role", "later", {"assumeRolePolicy": UNKNOWN_STRING_VALUE})
    other = (
        ROLE_OUT[0],
        "wrong",
        {
            "assumeRolePolicy": json.dumps(
                policy(
                    statement(
                        Condition={
                            "StringEquals": {"aws:PrincipalTag/x509SAN/URI": SPIFFE},
                            "ArnEquals": {"aws:SourceArn": OTHER_ANCHOR},
                        }
                    )
                )
            )
        },
    )
    found = anchor_ca(client.analyze_stack(aws_anchor("acme", ANCHOR, ACME_CA.pem), role, other))
    assert [d.level for d in found] == ["mandatory", "advisory"]  # the known role is still checked
    assert "during preview" in found[1].message


# --- every other resource type: refused when it may reach Roles Anywhere ----------------------------

CFN_ROLE_JSON = json.dumps(
    {
        "Resources": {
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {"AssumeRolePolicyDocument": policy(statement())},
            }
        }
    }
)
YAML_ROLE = """
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: PRINCIPAL
            Action: [sts:AssumeRole, sts:TagSession]
"""
EC2_YAML = """
Parameters:
  Env: {Type: String}
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      RoleName: !Sub "app-${Env}"
      AssumeRolePolicyDocument:
        Statement:
          - Effect: Allow
            Principal: {Service: !Sub "ec2.${AWS::URLSuffix}"}
            Action: sts:AssumeRole
"""


def yaml_role(principal: str) -> str:
    return YAML_ROLE.replace("PRINCIPAL", principal)


UNCOVERED: dict[str, tuple[str, dict[str, Any], str]] = {
    "cfn-json-role": ("aws:cloudformation/stack:Stack", {"templateBody": CFN_ROLE_JSON}, "may admit"),
    "cfn-json-escape": (
        "aws:cloudformation/stack:Stack",
        {"templateBody": CFN_ROLE_JSON.replace("rolesanywhere", "\\u0072olesanywhere")},
        "may admit",
    ),
    "cfn-yaml-escape": (
        "aws:cloudformation/stack:Stack",
        {"templateBody": yaml_role('{Service: "\\x72olesanywhere.amazonaws.com"}')},
        "may admit",
    ),
    "cfn-yaml-join": (
        "aws:cloudformation/stack:Stack",
        {"templateBody": yaml_role('{Service: !Join ["", [roles, anywhere.amazonaws.com]]}')},
        "is a trust policy that may admit",
    ),
    "cfn-yaml-sub-principal": (
        "aws:cloudformation/stackSet:StackSet",
        {"templateBody": yaml_role("{Service: !Sub 'rolesanywhere.${AWS::URLSuffix}'}")},
        "is a trust policy that may admit",
    ),
    "cfn-yaml-sub-suffix": (
        "aws:cloudformation/stack:Stack",
        {"templateBody": yaml_role('{Service: !Sub "${Prefix}.amazonaws.com"}')},
        "may admit",
    ),
    "cfn-yaml-aws-ref": (
        "aws:cloudformation/stack:Stack",
        {"templateBody": yaml_role("{AWS: !Ref Who}")},
        "may admit",
    ),
    "cfn-yaml-star": ("aws:cloudformation/stack:Stack", {"templateBody": yaml_role('"*"')}, "may admit"),
    "cfn-yaml-aws-star": (
        "aws-native:cloudformation:StackSet",
        {"templateBody": yaml_role("{AWS: '*'}")},
        "may admit",
    ),
    "cfn-yaml-ref-document": (
        "aws:cloudformation/stack:Stack",
        {
            "templateBody": "Resources:\n  R:\n    Type: AWS::IAM::Role\n"
            "    Properties:\n      AssumeRolePolicyDocument: !Ref Trust\n"
        },
        "may admit",
    ),
    "cfn-yaml-if-statement": (
        "aws:cloudformation/stack:Stack",
        {
            "templateBody": "Resources:\n  R:\n    Type: AWS::IAM::Role\n    Properties:\n"
            "      AssumeRolePolicyDocument:\n        Statement:\n          - !If [C, {}, {}]\n"
        },
        "may admit",
    ),
    "cfn-anchor": (
        "aws:cloudformation/stack:Stack",
        {"templateBody": "Resources:\n  A:\n    Type: AWS::RolesAnywhere::TrustAnchor\n"},
        "mentions",
    ),
    "cfn-native-object": (
        "aws-native:cloudformation:Stack",
        {"templateBody": json.loads(CFN_ROLE_JSON)},
        "may admit",
    ),
    "cfn-alias": (
        "aws:cloudformation/stack:Stack",
        {"templateBody": "a: &x {Service: ec2.amazonaws.com}\nb: *x\n"},
        "is a template the guard cannot read",
    ),
    "cfn-repeated-key": (
        "aws:cloudformation/stack:Stack",
        {"templateBody": "Resources: {}\nResources: {}\n"},
        "is a template the guard cannot read",
    ),
    "cfn-python-tag": (
        "aws:cloudformation/stack:Stack",
        {"templateBody": "Resources: !!python/object:os.system {}\n"},
        "is a template the guard cannot read",
    ),
    "cfn-bom": (
        "aws:cloudformation/stack:Stack",
        {"templateBody": "\ufeff" + CFN_ROLE_JSON},
        "is a template the guard cannot read",
    ),
    "cloud-control-role": (
        "aws-native:index:ExtensionResource",
        {
            "type": "AWS::IAM::Role",
            "properties": {
                "AssumeRolePolicyDocument": policy(
                    {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}
                )
            },
        },
        "AssumeRolePolicyDocument is a trust policy that may admit",
    ),
    "escaped-in-an-object": (
        "aws:s3/bucketObjectv2:BucketObjectv2",
        {"content": '{"Principal": {"Service": "\\u0072olesanywhere.amazonaws.com"}}'},
        "mentions",
    ),
    "json-in-json": (
        "aws:ssm/parameter:Parameter",
        {"value": json.dumps({"doc": json.dumps(policy(statement()))})},
        "mentions",
    ),
    "hidden-by-a-repeated-key": (
        "aws:ssm/parameter:Parameter",
        {"value": '{"p": "\\u0072olesanywhere.amazonaws.com", "p": "harmless"}'},
        "mentions",
    ),
    "escape-behind-an-alias": (
        "aws:ssm/document:Document",
        {"content": 'a: &p "\\x72olesanywhere.amazonaws.com"\nb: *p\n'},
        "mentions",
    ),
    "escape-under-an-odd-tag": (
        "aws:ssm/document:Document",
        {"content": 'a: !!python/str "\\x72olesanywhere.amazonaws.com"\nb: 1\n'},
        "mentions",
    ),
    "service-linked-role": (
        "aws:iam/serviceLinkedRole:ServiceLinkedRole",
        {"awsServiceName": "RolesAnywhere.amazonaws.com"},
        "mentions",
    ),
    "new-roles-anywhere-type": ("aws-native:rolesanywhere:AttributeMapping", {}, "is a Roles Anywhere type"),
    "a-command": (
        "command:local:Command",
        {
            "create": "aws iam create-role --role-name r --assume-role-policy-document file://rolesanywhere.amazonaws.com"
        },
        "mentions",
    ),
    "terraform-style-key": (
        "terraform:aws/iamRole:IamRole",
        {"assume_role_policy": json.dumps(policy({"Effect": "Allow", "Principal": "*", "Action": "sts:*"}))},
        "assume_role_policy is a trust policy that may admit",
    ),
}


@pytest.mark.parametrize("case", sorted(UNCOVERED))
def test_other_resource_types_that_may_reach_roles_anywhere_are_refused(client: Pack, case: str) -> None:
    type_, props, says = UNCOVERED[case]
    found = client.analyze(type_, props, name=case)
    (refused,) = [d for d in found if d.policy == guard.COVERED_TYPES]
    assert refused.level == "mandatory"
    assert refused.message.startswith(f"{type_} {case}: "), refused.message
    assert says in refused.message, refused.message
    assert refused.message.endswith(
        f"or list {type_} under allowedTypes of roles-anywhere-covered-types once reviewed"
    )
    assert_one_line_with_fix([refused], case)


def test_allowed_types_are_passed_once_reviewed(client: Pack) -> None:
    type_, props, _ = UNCOVERED["escaped-in-an-object"]
    client.configure({guard.COVERED_TYPES: {"allowedTypes": [type_]}})
    assert client.analyze(type_, props) == []


@pytest.mark.parametrize(
    ("type_", "props"),
    [
        ("aws:cloudformation/stack:Stack", {"templateBody": EC2_YAML}),
        (
            "aws:cloudformation/stack:Stack",
            {"templateBody": yaml_role('{AWS: !Sub "arn:aws:iam::${AWS::AccountId}:root"}')},
        ),
        (
            "aws:cloudformation/stack:Stack",
            {"templateBody": yaml_role('{Service: !Join [".", [ec2, !Ref AWS::URLSuffix]]}')},
        ),
        ("aws:cloudformation/stack:Stack", {"templateUrl": "https://s3.amazonaws.com/b/t.yaml"}),
        ("aws-native:cloudformation:Stack", {"templateBody": {"Resources": {}}}),
        (
            "aws:iam/rolePolicy:RolePolicy",
            {
                "role": "r",
                "policy": json.dumps(
                    policy(
                        {
                            "Effect": "Allow",
                            "Action": "rolesanywhere:CreateSession",
                            "Resource": "arn:aws:rolesanywhere:eu-west-1:111122223333:profile/x",
                        }
                    )
                ),
            },
        ),
        (
            "aws:iam/policy:Policy",
            {
                "policy": json.dumps(
                    policy(
                        {
                            "Effect": "Allow",
                            "Action": "iam:PassRole",
                            "Resource": "*",
                            "Condition": {
                                "StringEquals": {"iam:PassedToService": "rolesanywhere.amazonaws.com"}
                            },
                        }
                    )
                )
            },
        ),
        (
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
            {"role": "r", "policyArn": "arn:aws:iam::aws:policy/x"},
        ),
        ("aws-native:rolesanywhere:Crl", {"crlData": "x", "trustAnchorArn": ANCHOR}),
        ("vendor:index:Thing", {"assumeRolePolicyArns": ["arn:aws:iam::aws:policy/x"], "trustPolicyId": 7}),
        ("aws:lambda/function:Function", {"environment": {"variables": {"MULTI": "line\ntext: [x"}}}),
    ],
    ids=[
        "cfn-ec2-role",
        "cfn-account-root",
        "cfn-joined-ec2",
        "cfn-url",
        "cfn-empty-object",
        "permissions-policy",
        "pass-role-to-roles-anywhere",
        "attachment",
        "crl",
        "keys-that-only-look-like-trust",
        "text",
    ],
)
def test_resources_that_cannot_reach_roles_anywhere_pass(
    client: Pack, type_: str, props: dict[str, Any]
) -> None:
    assert client.analyze(type_, props) == []


def spire_ca(uri: str) -> str:
    """A SPIFFE signing certificate as SPIRE writes it: an unrelated subject, the trust domain as URI SAN."""
    from datetime import UTC, datetime, timedelta  # noqa: PLC0415

    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "SPIRE")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return pem_of(certificate)


def test_a_spiffe_ca_naming_the_trust_domain_in_its_uri_is_the_clusters(client: Pack) -> None:
    assert client.analyze_stack(aws_anchor("spire", ANCHOR, spire_ca(f"spiffe://{CLUSTER}")), ROLE_OUT) == []
    (refused,) = anchor_ca(
        client.analyze_stack(aws_anchor("spire", ANCHOR, spire_ca("spiffe://other.org")), ROLE_OUT)
    )
    assert "which trusts O=SPIRE, URI:spiffe://other.org (sha256 " in refused.message


def test_a_trust_policy_elsewhere_not_known_yet_waits_for_up(client: Pack) -> None:
    props = {"type": "AWS::IAM::Role", "properties": {"AssumeRolePolicyDocument": UNKNOWN_STRING_VALUE}}
    (said,) = client.analyze("aws-native:index:ExtensionResource", props)
    assert said.policy == guard.COVERED_TYPES
    assert said.level == "advisory"
    assert "during preview" in said.message


def test_text_that_is_no_valid_unicode_still_gets_one_printable_line(client: Pack) -> None:
    """JSON may escape a lone surrogate; gRPC carries only UTF-8, so a message quoting it must not break."""
    text = '{"Statement": [{"Effect": "Allow", "Principal": {"\\ud800": "x"}, "Action": "sts:*"}]}'
    refused = exact_trust(client.analyze("aws:iam/role:Role", {"assumeRolePolicy": text}, name="odd"))
    assert refused
    assert any("also trusts ? principals" in d.message for d in refused), [d.message for d in refused]
    assert_one_line_with_fix(refused, "role odd:")
