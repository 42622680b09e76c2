"""The CrossGuard policy pack, offline: hand-written hostile stacks each break exactly the intended
policy; this project's own plan passes; `plan --policy-pack` exits 1 on a mandatory violation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from roles_anywhere.cli import main
from roles_anywhere.guard import policies as guard
from roles_anywhere.guard.documents import UnreadableError
from roles_anywhere.guard.offline import Violation, check_plan, load_pack
from roles_anywhere.guard.trust_rules import FIX_CONDITION, admitted_identity, trust_document, trust_problems
from roles_anywhere.plan.run import plan_stack_file, run_program

from .certs import make_ca
from .conftest import ROOT, stack_config, write_stack

PACK = ROOT / "policy-pack"
SPIFFE = "spiffe://acme.teleport.sh/svc/orders"

PROGRAM = """
import json
import pulumi
import pulumi_aws as aws

NOTIFY = [
    aws.rolesanywhere.TrustAnchorNotificationSettingArgs(event=e, threshold=45, channel="ALL", enabled=True)
    for e in ("CA_CERTIFICATE_EXPIRY", "END_ENTITY_CERTIFICATE_EXPIRY")
]
PEM = open("ca.pem").read()
OTHER_PEM = open("other.pem").read()

def anchor(name, protect=True, notify=NOTIFY, pem=PEM):
    return aws.rolesanywhere.TrustAnchor(
        name,
        name=name,
        enabled=True,
        source=aws.rolesanywhere.TrustAnchorSourceArgs(
            source_type="CERTIFICATE_BUNDLE",
            source_data=aws.rolesanywhere.TrustAnchorSourceSourceDataArgs(x509_certificate_data=pem),
        ),
        notification_settings=notify,
        opts=pulumi.ResourceOptions(protect=protect),
    )

def role(name, anchor, condition=None, actions=("sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"),
         spiffe="SPIFFE"):
    def document(arn):
        statement = {"Effect": "Allow", "Action": list(actions)}
        statement["Principal"] = {"Service": "rolesanywhere.amazonaws.com"}
        exact = {"StringEquals": {"aws:PrincipalTag/x509SAN/URI": spiffe}}
        exact["ArnEquals"] = {"aws:SourceArn": arn}
        chosen = exact if condition is None else condition(arn)
        if chosen:
            statement["Condition"] = chosen
        return json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    return aws.iam.Role(name, name=name, assume_role_policy=anchor.arn.apply(document))

def native_role(name, anchor, condition):
    statement = {
        "Effect": "Allow",
        "Principal": {"Service": "rolesanywhere.amazonaws.com"},
        "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"],
    }
    document = anchor.arn.apply(
        lambda arn: {"Version": "2012-10-17", "Statement": [{**statement, **condition(arn)}]}
    )
    return pulumi.CustomResource("aws-native:iam:Role", name, {"assumeRolePolicyDocument": document})

def native_anchor(name, protect):
    return pulumi.CustomResource(
        "aws-native:rolesanywhere:TrustAnchor",
        name,
        {
            "name": name,
            "source": {"sourceType": "CERTIFICATE_BUNDLE", "sourceData": {"x509CertificateData": PEM}},
            "notificationSettings": [
                {"event": e, "threshold": 45, "channel": "ALL", "enabled": True}
                for e in ("CA_CERTIFICATE_EXPIRY", "END_ENTITY_CERTIFICATE_EXPIRY")
            ],
        },
        opts=pulumi.ResourceOptions(protect=protect),
    )

BODY
""".replace("SPIFFE", SPIFFE)

HOSTILE = {
    "string-like": 'role("like", anchor("a"), condition=lambda arn: {"StringLike": '
    '{"aws:PrincipalTag/x509SAN/URI": "spiffe://acme.teleport.sh/svc/*"}, '
    '"ArnEquals": {"aws:SourceArn": arn}})',
    "no-condition": 'role("open", anchor("a"), condition=lambda arn: {})',
    "same-spiffe-id": 'a = anchor("a")\nrole("first", a)\nrole("second", a)',
    "unprotected-anchor": 'role("exact", anchor("a", protect=False))',
    "native-role-no-condition": 'native_role("native", anchor("a"), lambda arn: {})',
    "native-role-string-like": 'native_role("native", anchor("a"), lambda arn: {"Condition": {"StringLike": '
    '{"aws:PrincipalTag/x509SAN/URI": "spiffe://acme.teleport.sh/*"}, "ArnEquals": {"aws:SourceArn": arn}}})',
    "native-unprotected-anchor": 'native_anchor("native-anchor", protect=False)',
    "second-anchor-other-ca": 'anchor("a")\nrole("orders", anchor("b", pem=OTHER_PEM))',
    "cloudformation-role": 'aws.cloudformation.Stack("cfn", template_body=json.dumps({"Resources": {"R": {'
    '"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {"Statement": [{"Effect": "Allow", '
    '"Principal": {"Service": "rolesanywhere.amazonaws.com"}, "Action": "sts:AssumeRole"}]}}}}}))',
}
INTENDED = {
    "native-role-no-condition": {guard.EXACT_TRUST},
    "native-role-string-like": {guard.EXACT_TRUST},
    "native-unprotected-anchor": {guard.ANCHOR_PROTECTED},
    "second-anchor-other-ca": {guard.ANCHOR_CA},
    "cloudformation-role": {guard.COVERED_TYPES},
    "string-like": {guard.EXACT_TRUST},
    "no-condition": {guard.EXACT_TRUST},
    "same-spiffe-id": {guard.UNIQUE_IDENTITY},
    "unprotected-anchor": {guard.ANCHOR_PROTECTED},
}


ACME_CA = make_ca("acme.teleport.sh")
OTHER_CA = make_ca("other.teleport.sh", serial=2000)


def hostile_violations(tmp_path: Path, body: str) -> list[Violation]:
    (tmp_path / "ca.pem").write_text(ACME_CA.pem)
    (tmp_path / "other.pem").write_text(OTHER_CA.pem)
    program = tmp_path / "__main__.py"
    program.write_text(PROGRAM.replace("BODY", body))
    plan = run_program(
        config={"aws:region": "eu-west-1"},
        stack="dev",
        region="eu-west-1",
        account_id="111122223333",
        config_dir=tmp_path,
        program=program,
        project="hostile",
    )
    return check_plan(plan, load_pack(PACK))


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_each_hostile_stack_triggers_exactly_the_intended_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    monkeypatch.chdir(tmp_path)
    violations = hostile_violations(tmp_path, HOSTILE[case])
    assert {v.policy for v in violations} == INTENDED[case], [v.message for v in violations]
    assert all(v.level == "mandatory" for v in violations)
    assert all("fix:" in v.message for v in violations)


def test_the_messages_name_the_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    like, *more = hostile_violations(tmp_path, HOSTILE["string-like"])
    assert [m.message for m in more] == [
        "role like: the trust policy for Roles Anywhere Statement[0]: does not pin one SPIFFE ID with "
        f"StringEquals on aws:PrincipalTag/x509SAN/URI; fix: {FIX_CONDITION}"
    ]
    assert like.message.startswith(
        "role like: the trust policy for Roles Anywhere Statement[0]: uses StringLike"
    )
    assert str(like.urn).endswith("::like")
    (same,) = hostile_violations(tmp_path, HOSTILE["same-spiffe-id"])
    assert same.message.startswith(
        f"roles first and second both admit {SPIFFE} through arn:aws:rolesanywhere:"
    )


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ('role("wild", anchor("a"), actions=("sts:*",))', "uses a wildcard action"),
        (
            'role("more", anchor("a"), actions=("sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity", '
            '"sts:AssumeRoleWithWebIdentity"))',
            "not exactly the three",
        ),
        ('role("glob", anchor("a"), spiffe="spiffe://acme.teleport.sh/svc/*")', "not one exact SPIFFE ID"),
        (
            'role("any-anchor", anchor("a"), condition=lambda arn: {"StringEquals": '
            '{"aws:PrincipalTag/x509SAN/URI": "SPIFFE"}})'.replace("SPIFFE", SPIFFE),
            "does not pin one trust anchor",
        ),
        (
            'role("if-exists", anchor("a"), condition=lambda arn: {"StringEqualsIfExists": '
            '{"aws:PrincipalTag/x509SAN/URI": "SPIFFE"}, "ArnEquals": {"aws:SourceArn": arn}})'.replace(
                "SPIFFE", SPIFFE
            ),
            "holds when the key is missing",
        ),
    ],
)
def test_other_loose_trust_policies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, says: str
) -> None:
    monkeypatch.chdir(tmp_path)
    violations = hostile_violations(tmp_path, body)
    assert {v.policy for v in violations} == {guard.EXACT_TRUST}
    assert any(says in v.message for v in violations), [v.message for v in violations]


def test_this_projects_own_plan_passes_the_pack() -> None:
    plan = plan_stack_file(ROOT / "Pulumi.example.yaml")
    assert check_plan(plan, load_pack(PACK)) == []


def run_plan(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["plan", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_plan_exits_1_on_a_mandatory_violation_and_levels_are_configurable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = write_stack(tmp_path, stack_config(trustAnchor={"protect": False}, caBundle={"pem": ACME_CA.pem}))
    code, out, err = run_plan(capsys, "--config", str(stack), "--policy-pack", str(PACK))
    assert code == 1
    assert err.count("\n") == 1
    assert err.startswith(
        "denied: 1 mandatory policy violation(s); the first: roles-anywhere-anchor-protected:"
    )
    assert "mandatory: roles-anywhere-anchor-protected: trust anchor" in out
    config = tmp_path / "policy.json"
    config.write_text(
        json.dumps(
            {
                "roles-anywhere-anchor-protected": "advisory",
                "roles-anywhere-profile-duration": {"enforcementLevel": "advisory", "maxSeconds": 1800},
            }
        )
    )
    code, out, err = run_plan(
        capsys, "--config", str(stack), "--policy-pack", str(PACK), "--policy-config", str(config), "--json"
    )
    assert code == 0
    found: list[dict[str, Any]] = json.loads(out)["policyViolations"]
    assert {v["policy"] for v in found} == {
        "roles-anywhere-anchor-protected",
        "roles-anywhere-profile-duration",
    }
    assert "warning: policy roles-anywhere-profile-duration (advisory): profile" in err
    config.write_text(json.dumps({"all": "disabled"}))
    code, out, _ = run_plan(
        capsys, "--config", str(stack), "--policy-pack", str(PACK), "--policy-config", str(config)
    )
    assert code == 0
    assert "no violations" in out


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda d: d, "has no PulumiPolicy.yaml"),
        (lambda d: (d / "PulumiPolicy.yaml").write_text("runtime: python\n") and d, "has no __main__.py"),
    ],
)
def test_a_folder_that_is_not_a_pack_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: Any, says: str
) -> None:
    folder = tmp_path / "pack"
    folder.mkdir()
    make(folder)
    code, _, err = run_plan(
        capsys, "--config", str(ROOT / "Pulumi.example.yaml"), "--policy-pack", str(folder)
    )
    assert code == 2
    assert err.count("\n") == 1
    assert err.startswith("error: --policy-pack:")
    assert says in err


def test_a_bad_policy_config_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "policy.json"
    config.write_text(json.dumps({"roles-anywhere-exact-trust": "strict"}))
    code, _, err = run_plan(
        capsys,
        "--config",
        str(ROOT / "Pulumi.example.yaml"),
        "--policy-pack",
        str(PACK),
        "--policy-config",
        str(config),
    )
    assert code == 2
    assert err.startswith(
        "error: --policy-config: roles-anywhere-exact-trust: enforcement level must be one of"
    )


ANCHOR = "arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/0f0e0d0c-1111-2222-3333-444455556666"


def exact(spiffe: str = SPIFFE, anchor: str = ANCHOR, **extra: Any) -> dict[str, Any]:
    statement = {
        "Effect": "Allow",
        "Principal": {"Service": "rolesanywhere.amazonaws.com"},
        "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"],
        "Condition": {
            "StringEquals": {"aws:PrincipalTag/x509SAN/URI": spiffe},
            "ArnEquals": {"aws:SourceArn": anchor},
        },
    }
    return {**statement, **extra}


def document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


OTHER_ANCHOR = (
    "arn:aws:rolesanywhere:eu-west-1:999988887777:trust-anchor/aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
)


@pytest.mark.parametrize(
    ("policy", "says"),
    [
        (document(exact(), exact(f"{SPIFFE}-2", OTHER_ANCHOR)), "has 2 Allow statements for Roles Anywhere"),
        (document(exact(), exact(SPIFFE, OTHER_ANCHOR)), "has 2 Allow statements for Roles Anywhere"),
        (
            document(
                exact(),
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::999988887777:root"},
                    "Action": "sts:AssumeRole",
                },
            ),
            'Statement[1]: also lets {"AWS": "arn:aws:iam::999988887777:root"} assume the role',
        ),
        (document(exact(f"{SPIFFE[:-6]}${{aws:PrincipalTag/x509Subject/CN}}")), "policy variables"),
        (document(exact(anchor="${aws:SourceArn}")), "which is not a trust anchor ARN"),
    ],
    ids=[
        "two-identities",
        "two-anchors",
        "another-principal",
        "policy-variable-id",
        "policy-variable-anchor",
    ],
)
def test_found_by_review_loose_policies_that_looked_exact(policy: dict[str, Any], says: str) -> None:
    """Each of these passed an earlier version of the rule (an attack on it found them)."""
    problems = trust_problems(policy)
    assert any(says in p for p in problems), problems


@pytest.mark.parametrize(
    "policy",
    [
        document(
            exact(Principal={"Service": ["rolesanywhere.amazonaws.com", "rolesanywhere.amazonaws.com"]})
        ),
        document(
            exact(),
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sts:AssumeRole",
                "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}},
            },
        ),
        document(
            exact(
                Condition={
                    "StringEquals": {
                        "aws:PrincipalTag/x509SAN/URI": SPIFFE,
                        "aws:PrincipalTag/x509Subject/CN": "orders",
                    },
                    "ArnEquals": {"aws:SourceArn": ANCHOR},
                }
            )
        ),
    ],
    ids=["repeated-service", "deny-the-guard-cannot-evaluate", "extra-narrowing-condition"],
)
def test_exact_policies_with_narrowing_extras_pass(policy: dict[str, Any]) -> None:
    assert trust_problems(policy) == []
    assert admitted_identity(policy) is not None


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('{"Statement": [], "x": 1' + "0" * 5_000 + "}", "not JSON that can be read exactly"),
        ('{"Statement": [], "x": ' + "[" * 1_000 + "]" * 1_000 + "}", "nested too deeply"),
        ('{"Statement": [], "x": ' + "[" * 100 + "]" * 100 + "}", "nested deeper than 64 levels"),
    ],
)
def test_trust_policies_json_cannot_parse_is_refused_not_a_crash(text: str, says: str) -> None:
    with pytest.raises(UnreadableError, match=says):
        trust_document(text)
