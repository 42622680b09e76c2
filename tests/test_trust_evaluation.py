"""Trust policy evaluation for Roles Anywhere's request: any document, explicit Deny wins, reasons."""

from __future__ import annotations

from typing import Any

import pytest

from roles_anywhere.iam.conditions import PolicyError
from roles_anywhere.iam.policy import trust_policy
from roles_anywhere.iam.trust_evaluation import evaluate_trust_policy
from roles_anywhere.simulate.evaluate import request_context

URI = "spiffe://example.teleport.sh/svc/api"
ANCHOR = "arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/5812f67a-aa0f-512d-83ed-9b12f04ca693"
OTHER_ANCHOR = ANCHOR.replace("5812f67a", "00000000")
CONTEXT = request_context({"x509SAN/URI": URI, "x509Subject/CN": "api"}, ANCHOR)
SERVICE = {"Service": "rolesanywhere.amazonaws.com"}
ACTIONS = ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"]


def allow(**extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": SERVICE, "Action": ACTIONS, **extra}


def decide(*statements: dict[str, Any], context: dict[str, list[str]] = CONTEXT) -> Any:
    return evaluate_trust_policy({"Version": "2012-10-17", "Statement": list(statements)}, context)


def test_the_generated_policy_allows_exactly_its_id_and_anchor() -> None:
    assert evaluate_trust_policy(trust_policy(URI, ANCHOR), CONTEXT).allowed
    assert not evaluate_trust_policy(trust_policy(URI + "x", ANCHOR), CONTEXT).allowed
    assert not evaluate_trust_policy(trust_policy(URI, OTHER_ANCHOR), CONTEXT).allowed
    assert not evaluate_trust_policy(trust_policy(URI.replace("api", "API"), ANCHOR), CONTEXT).allowed


@pytest.mark.parametrize(
    ("statements", "allowed"),
    [
        ([allow()], True),  # no conditions: any certificate under the CA (why we never generate this)
        ([allow(Principal="*")], True),
        ([allow(Principal={"AWS": "*"})], True),
        ([allow(Principal={"Service": ["ec2.amazonaws.com", "rolesanywhere.amazonaws.com"]})], True),
        ([allow(Principal={"Service": "ec2.amazonaws.com"})], False),
        ([allow(Principal={"AWS": "arn:aws:iam::111122223333:root"})], False),
        ([{"Effect": "Allow", "NotPrincipal": {"Service": "ec2.amazonaws.com"}, "Action": ACTIONS}], True),
        ([{"Effect": "Allow", "NotPrincipal": SERVICE, "Action": ACTIONS}], False),
        ([allow(Action="sts:*")], True),
        ([allow(Action="STS:assumerole")], False),  # TagSession and SetSourceIdentity missing
        ([allow(Action=["sts:AssumeRole", "sts:TagSession"])], False),
        ([{"Effect": "Allow", "Principal": SERVICE, "NotAction": "iam:*"}], True),
        ([{"Effect": "Allow", "Principal": SERVICE, "NotAction": "sts:TagSession"}], False),
        ([allow(), {"Effect": "Deny", "Principal": "*", "Action": "sts:AssumeRole"}], False),  # Deny wins
        (
            [
                allow(),
                {
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "sts:*",
                    "Condition": {
                        "StringNotLike": {"aws:PrincipalTag/x509SAN/URI": "spiffe://example.teleport.sh/*"}
                    },
                },
            ],
            True,  # the Deny's condition does not hold
        ),
        (
            [
                allow(
                    Condition={
                        "StringLike": {"aws:PrincipalTag/x509SAN/URI": "spiffe://example.teleport.sh/*"}
                    }
                )
            ],
            True,
        ),
        (
            [
                allow(
                    Condition={"StringEquals": {"aws:PrincipalTag/x509SAN/URI": URI, "aws:SourceArn": ANCHOR}}
                )
            ],
            True,  # keys are ANDed, and both hold
        ),
        (
            [
                allow(
                    Condition={
                        "StringEquals": {"aws:PrincipalTag/x509SAN/URI": URI, "aws:SourceArn": OTHER_ANCHOR}
                    }
                )
            ],
            False,  # one key fails: the statement does not apply
        ),
        (
            [
                allow(
                    Condition={
                        "StringEquals": {"aws:PrincipalTag/x509SAN/URI": URI},
                        "ArnEquals": {"aws:SourceArn": OTHER_ANCHOR},
                    }
                )
            ],
            False,  # operators are ANDed too
        ),
        ([allow(Condition={"ArnLike": {"aws:SourceArn": "arn:aws:rolesanywhere:*:111122223333:*"}})], True),
        ([allow(Condition={"StringEquals": {"aws:PrincipalTag/x509Subject/CN": "api"}})], True),
        ([allow(Condition={"StringEquals": {"aws:PrincipalTag/x509Subject/OU": "api"}})], False),
        ([allow(Condition={"StringEquals": {"aws:SourceAccount": "111122223333"}})], True),
        ([allow(Condition={"Null": {"aws:PrincipalTag/x509SAN/DNS": "true"}})], True),
        (
            [allow(Condition={"StringEquals": {"aws:principaltag/X509SAN/uri": URI}})],
            True,  # key names are case-insensitive
        ),
    ],
)
def test_documents(statements: list[dict[str, Any]], allowed: bool) -> None:
    assert decide(*statements).allowed is allowed


def test_reasons_name_statement_condition_and_request_value() -> None:
    decision = decide(
        allow(Sid="Only", Condition={"StringEquals": {"aws:PrincipalTag/x509SAN/URI": URI + "2"}})
    )
    assert decision.reasons() == [
        "sts:AssumeRole, sts:TagSession, sts:SetSourceIdentity: no Allow statement's conditions hold — "
        f"statement 0 (Only): StringEquals aws:PrincipalTag/x509SAN/URI ['{URI}2'] "
        f"but the request has '{URI}'"
    ]


def test_explicit_deny_is_named() -> None:
    decision = decide(
        allow(), {"Sid": "NoTags", "Effect": "Deny", "Principal": "*", "Action": "sts:TagSession"}
    )
    assert [a.decision for a in decision.actions] == ["allowed", "explicit-deny", "allowed"]
    assert decision.reasons() == ["sts:TagSession: explicitly denied by statement 1 (NoTags)"]


def test_a_missing_key_is_reported_as_missing() -> None:
    decision = decide(allow(Condition={"StringEquals": {"aws:PrincipalTag/x509SAN/DNS": "api"}}))
    assert decision.reasons()[0].endswith("but the request has no such key")


def test_a_single_statement_object_is_accepted() -> None:
    assert evaluate_trust_policy({"Version": "2012-10-17", "Statement": allow()}, CONTEXT).allowed


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "a policy document must be a JSON object"),
        ({"Statement": []}, "Statement must be a statement or a non-empty list of them"),
        (
            {"Statement": [{"Effect": "Maybe", "Principal": "*", "Action": "*"}]},
            "Effect must be 'Allow' or 'Deny'",
        ),
        (
            {"Statement": [{"Effect": "Allow", "Action": "*"}]},
            "needs exactly one of Principal or NotPrincipal",
        ),
        (
            {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "NotAction": "x"}]},
            "needs exactly one of Action or NotAction",
        ),
        (
            {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]},
            "a trust policy cannot have Resource or NotResource",
        ),
        (
            {"Statement": [allow(Condition={"NumericLessThan": {"x": "1"}})]},
            "condition operator 'NumericLessThan' is not one the simulator evaluates",
        ),
        ({"Statement": [allow(Condition={"StringEquals": "x"})]}, "Condition must map operators"),
    ],
)
def test_documents_aws_would_reject_are_errors(document: Any, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        evaluate_trust_policy(document, CONTEXT, source="policy.json")
