"""The guard's readers: pulumi-policy's proxies made plain, documents and templates read strictly,
CloudFormation principals read as patterns, and a check that fails on the unforeseen refusing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pulumi_policy import ResourceValidationArgs
from pulumi_policy.policy import PolicyCustomTimeouts, PolicyResourceOptions
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from roles_anywhere.guard import policies as guard
from roles_anywhere.guard.documents import UnreadableError, plain, read_document, read_template, require_known
from roles_anywhere.guard.trust_rules import (
    is_roles_anywhere_service,
    may_admit_roles_anywhere,
    trust_problems,
    trusts_roles_anywhere,
    value_pattern,
)


def test_proxies_become_plain_dicts_and_lists() -> None:
    proxied = unknown_checking_proxy({"Statement": [{"Principal": {"Service": ["a"]}, "n": 3.0}]})
    assert not isinstance(proxied["Statement"], list)  # what an isinstance(list) check silently skipped
    assert plain(proxied) == {"Statement": [{"Principal": {"Service": ["a"]}, "n": 3}]}
    assert type(plain(proxied)["Statement"]) is list


def test_a_value_not_known_yet_raises_what_the_analyzer_reports() -> None:
    value = plain(unknown_checking_proxy({"doc": {"Statement": [UNKNOWN_STRING_VALUE]}}))
    with pytest.raises(UnknownValueError) as raised:
        require_known(value["doc"], "assumeRolePolicyDocument")
    assert raised.value.props == ["assumeRolePolicyDocument", "Statement", "0"]


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("\ufeff{}", "byte-order mark"),
        ('{"Statement": [], "Statement": []}', "appears twice"),
        ("[]", "a list, not a JSON object"),
        ("3", "a number, not a JSON object"),
        (3, "a number, not a JSON object"),
        ('{"a": ' * 70 + "1" + "}" * 70, "nested deeper than 64 levels"),
        ("{'Statement': []}", "not JSON"),
    ],
)
def test_documents_that_cannot_be_read_exactly(raw: Any, says: str) -> None:
    with pytest.raises(UnreadableError, match=says):
        read_document(raw)


def test_cloudformation_yaml_reads_short_tags_as_functions() -> None:
    template = read_template(
        "Resources:\n  R:\n    Properties:\n      A: !Ref X\n      B: !GetAtt R.Arn\n"
        "      C: !Join ['', [a, !Sub '${AWS::Region}']]\n"
    )
    assert template["Resources"]["R"]["Properties"] == {
        "A": {"Ref": "X"},
        "B": {"Fn::GetAtt": "R.Arn"},
        "C": {"Fn::Join": ["", ["a", {"Fn::Sub": "${AWS::Region}"}]]},
    }


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("a: &x [1]\nb: *x\n", "alias"),
        ("a: 1\na: 2\n", "repeats"),
        ("a: !!python/name:os.system x\n", "not CloudFormation's"),
        ("a: [" * 100 + "]" * 100, "nested deeper"),
        ("a: [\n", "not YAML"),
        ('{"a": 1, "a": 2}', "appears twice"),
    ],
)
def test_templates_that_cannot_be_read_exactly(text: str, says: str) -> None:
    with pytest.raises(UnreadableError, match=says):
        read_template(text)


def test_a_scan_keeps_repeated_keys_instead_of_losing_one() -> None:
    assert read_template('{"a": 1, "a": 2}', lenient=True) == {"a": 1, "a (repeated 2)": 2}
    assert read_template("a: 1\na: 2\n", lenient=True) == {"a": 1, "a (repeated 2)": 2}


@pytest.mark.parametrize(
    ("value", "pattern"),
    [
        ("ec2.amazonaws.com", "ec2.amazonaws.com"),
        ({"Fn::Sub": "ec2.${AWS::URLSuffix}"}, "ec2.*"),
        ({"Fn::Sub": ["${P}.amazonaws.com", {"P": "rolesanywhere"}]}, "*.amazonaws.com"),
        ({"Fn::Join": [".", ["rolesanywhere", {"Ref": "AWS::URLSuffix"}]]}, "rolesanywhere.*"),
        ({"Ref": "Principal"}, "*"),
        ({"Fn::If": ["C", "a", "b"]}, "*"),
        (3, None),
    ],
)
def test_principals_built_by_functions_are_patterns(value: Any, pattern: str | None) -> None:
    assert value_pattern(value) == pattern


@pytest.mark.parametrize(
    ("name", "may"),
    [
        ("rolesanywhere.amazonaws.com", True),
        ("ROLESANYWHERE.AMAZONAWS.COM ", True),
        ("rolesanywhere.amazonaws.com.cn", True),
        ("*", True),
        ("*.amazonaws.com", True),
        ("roles?nywhere.amazonaws.com", True),
        ("ec2.*", False),
        ("ec2.amazonaws.com", False),
    ],
)
def test_what_may_be_the_roles_anywhere_service(name: str, may: bool) -> None:
    assert is_roles_anywhere_service(name) is may


@given(
    flips=st.lists(st.booleans(), min_size=27, max_size=27),
    before=st.sampled_from(["", " ", "\t"]),
    after=st.sampled_from(["", " ", "\n"]),
)
def test_any_spelling_of_the_service_is_seen(flips: list[bool], before: str, after: str) -> None:
    name = "".join(c.upper() if f else c for c, f in zip("rolesanywhere.amazonaws.com", flips, strict=True))
    document = {
        "Statement": [{"Effect": "Allow", "Principal": {"Service": before + name + after}, "Action": "*"}]
    }
    assert trusts_roles_anywhere(document)
    assert trust_problems(document)


@pytest.mark.parametrize(
    ("document", "may"),
    [
        ({"Fn::If": ["C", {}, {}]}, True),
        ("not json", True),
        (
            {
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "x"}
                ]
            },
            False,
        ),
        ({"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "x"}]}, False),
        (
            {"Statement": [{"Effect": "Allow", "Principal": {"AWS": {"Fn::Sub": "${A}"}}, "Action": "x"}]},
            True,
        ),
        (
            {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": {"Fn::Sub": "arn:aws:iam::${A}:root"}},
                        "Action": "x",
                    }
                ]
            },
            False,
        ),
        ({"Statement": {"Ref": "S"}}, True),
    ],
)
def test_trust_policies_found_elsewhere_are_read_fail_closed(document: Any, may: bool) -> None:
    assert may_admit_roles_anywhere(document) is may


def _args(resource_type: str, props: dict[str, Any]) -> ResourceValidationArgs:
    options = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)
    return ResourceValidationArgs(resource_type, unknown_checking_proxy(props), "urn:x", "r", options, None)


def test_a_check_that_fails_on_the_unforeseen_refuses_in_one_line() -> None:
    def broken(args: Any, report: Any) -> None:
        raise TypeError("a shape\nnobody foresaw")

    said: list[str] = []
    guard._fail_closed(broken)(_args("aws:iam/role:Role", {}), lambda message, urn=None: said.append(message))
    assert said == [
        "aws:iam/role:Role r: the guard could not check it (TypeError: a shape nobody foresaw), so it is "
        "refused; fix: write the resource's inputs in the documented form, or report this input"
    ]


def test_unknown_values_still_reach_the_analyzer() -> None:
    def waits(args: Any, report: Any) -> None:
        raise UnknownValueError(UNKNOWN_STRING_VALUE, ["x"])

    with pytest.raises(UnknownValueError):
        guard._fail_closed(waits)(_args("aws:iam/role:Role", {}), lambda message, urn=None: None)


def test_json_text_is_read_as_iam_reads_escapes() -> None:
    text = (
        '{"Statement": [{"Effect": "Allow", "Principal": {"Service": "\\u0072olesanywhere.amazonaws.com"}}]}'
    )
    assert json.loads(text)["Statement"][0]["Principal"]["Service"] == "rolesanywhere.amazonaws.com"
    assert may_admit_roles_anywhere(text)
