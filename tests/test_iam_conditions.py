"""Condition operators, case by case, as AWS documents them and public IAM simulators test them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roles_anywhere.iam.conditions import PolicyError, condition_holds, glob_match, lookup, parse_operator

URI = "spiffe://example.teleport.sh/svc/api"
ANCHOR = "arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/5812f67a-aa0f-512d-83ed-9b12f04ca693"

CASES = [
    # operator, policy values, request values (None: key absent), expected
    ("StringEquals", [URI], [URI], True),
    ("StringEquals", [URI.upper()], [URI], False),  # values are case-sensitive
    ("StringEquals", ["spiffe://example.teleport.sh/svc/*"], [URI], False),  # * is literal
    ("StringEquals", ["spiffe://example.teleport.sh/svc/ap?"], [URI], False),  # ? is literal
    ("StringEquals", ["other", URI], [URI], True),  # values of one key are ORed
    ("StringEquals", [URI], None, False),
    ("StringEquals", [URI + "/x"], [URI], False),  # suffix
    ("StringEquals", [URI], [URI + "/x"], False),  # prefix of the request
    ("StringNotEquals", [URI], [URI], False),
    ("StringNotEquals", ["other"], [URI], True),
    ("StringNotEquals", ["a", "b"], ["a"], False),  # must match none of the values
    ("StringNotEquals", [URI], None, True),  # negated operator, key absent: true
    ("StringEqualsIgnoreCase", [URI.upper()], [URI], True),
    ("StringNotEqualsIgnoreCase", [URI.upper()], [URI], False),
    ("StringNotEqualsIgnoreCase", ["x"], [URI], True),
    ("StringLike", ["spiffe://example.teleport.sh/svc/*"], [URI], True),
    (
        "StringLike",
        ["spiffe://example.teleport.sh/*"],
        ["spiffe://example.teleport.sh/svc/a/b/c"],
        True,
    ),  # * crosses /
    ("StringLike", ["spiffe://example.teleport.sh/svc/ap?"], [URI], True),
    ("StringLike", ["spiffe://example.teleport.sh/svc/a?"], [URI], False),  # ? is exactly one
    ("StringLike", ["spiffe://example.teleport.sh/svc/API"], [URI], False),  # case-sensitive
    ("StringLike", ["*"], [""], True),
    ("StringLike", ["a.b"], ["axb"], False),  # regex metacharacters are literal
    ("StringLike", [URI], None, False),
    ("StringNotLike", ["spiffe://example.teleport.sh/svc/*"], [URI], False),
    ("StringNotLike", ["spiffe://other/*"], [URI], True),
    ("StringNotLike", ["*"], None, True),
    ("ArnEquals", [ANCHOR], [ANCHOR], True),
    ("ArnEquals", [ANCHOR.replace("eu-west-1", "*")], [ANCHOR], False),  # no wildcards in Equals
    ("ArnEquals", [ANCHOR.upper()], [ANCHOR], False),
    ("ArnLike", ["arn:aws:rolesanywhere:*:111122223333:trust-anchor/*"], [ANCHOR], True),
    ("ArnLike", ["arn:aws:rolesanywhere:eu-west-?:111122223333:trust-anchor/*"], [ANCHOR], True),
    ("ArnLike", ["arn:aws:rolesanywhere:*:999999999999:trust-anchor/*"], [ANCHOR], False),
    ("ArnLike", ["arn:aws:rolesanywhere:*"], [ANCHOR], False),  # fewer than six parts never matches
    ("ArnLike", ["arn:aws:rolesanywhere:eu-west-1:111122223333:*"], [ANCHOR], True),  # last part holds '/'
    ("ArnLike", ["*"], [ANCHOR], False),  # each of the six parts is matched separately
    ("ArnLike", ["arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/*"], ["not-an-arn"], False),
    ("ArnNotEquals", [ANCHOR], [ANCHOR], False),
    ("ArnNotEquals", ["arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/x"], [ANCHOR], True),
    ("ArnNotLike", ["arn:aws:rolesanywhere:*:*:trust-anchor/*"], [ANCHOR], False),
    ("ArnNotLike", ["arn:aws:iam::*:role/*"], [ANCHOR], True),
    ("ArnNotLike", ["arn:aws:iam::*:role/*"], None, True),
    ("StringEqualsIfExists", ["x"], None, True),
    ("StringEqualsIfExists", ["x"], ["y"], False),
    ("StringEqualsIfExists", ["x"], ["x"], True),
    ("ArnLikeIfExists", ["arn:aws:*:*:*:*"], None, True),
    ("StringNotLikeIfExists", ["*"], ["x"], False),
    ("Null", ["true"], None, True),
    ("Null", ["true"], ["x"], False),
    ("Null", ["false"], ["x"], True),
    ("Null", ["false"], None, False),
    ("Bool", ["true"], ["true"], True),
    ("Bool", ["true"], ["false"], False),
    ("Bool", ["true"], None, False),
    ("ForAnyValue:StringEquals", ["a"], ["b", "a"], True),
    ("ForAnyValue:StringEquals", ["a"], ["b", "c"], False),
    ("ForAnyValue:StringEquals", ["a"], None, False),
    ("ForAnyValue:StringNotEquals", ["a"], ["a", "b"], True),  # some value differs
    ("ForAnyValue:StringNotEquals", ["a"], ["a"], False),
    ("ForAllValues:StringEquals", ["a", "b"], ["a", "b"], True),
    ("ForAllValues:StringEquals", ["a"], ["a", "b"], False),
    ("ForAllValues:StringEquals", ["a"], None, True),  # vacuously true: why it is dangerous
    ("ForAllValues:StringLike", ["spiffe://example.teleport.sh/*"], [URI], True),
    ("ForAllValues:StringNotLike", ["*/admin"], [URI, "x/admin"], False),
    ("ForAnyValue:StringLikeIfExists", ["x*"], None, True),
]


@pytest.mark.parametrize(("operator", "values", "request_values", "expected"), CASES)
def test_operator_semantics(
    operator: str, values: list[str], request_values: list[str] | None, expected: bool
) -> None:
    assert condition_holds(parse_operator(operator), values, request_values) is expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("StringEqualz", "condition operator 'StringEqualz' is not one the simulator evaluates"),
        ("NumericLessThan", "condition operator 'NumericLessThan' is not one the simulator evaluates"),
        ("NullIfExists", "Null takes neither IfExists nor a set prefix"),
        ("ForAnyValue:Null", "Null takes neither IfExists nor a set prefix"),
        ("stringequals", "is not one the simulator evaluates"),  # operator names are case-sensitive
    ],
)
def test_unknown_operators_are_refused(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_operator(text)


def test_null_needs_true_or_false() -> None:
    with pytest.raises(PolicyError, match="values must be 'true' or 'false'"):
        condition_holds(parse_operator("Null"), ["yes"], None)


def test_key_names_are_case_insensitive() -> None:
    context = {"aws:PrincipalTag/x509SAN/URI": [URI]}
    assert lookup(context, "AWS:principaltag/X509san/uri") == [URI]
    assert lookup(context, "aws:PrincipalTag/x509SAN/DNS") is None


@given(st.text(max_size=30))
def test_a_pattern_without_wildcards_matches_only_itself(text: str) -> None:
    literal = text.replace("*", "").replace("?", "")
    assert glob_match(literal, literal)
    assert not glob_match(literal, literal + "x")


@given(st.text(max_size=20), st.text(max_size=20))
def test_star_matches_any_suffix_including_slashes(prefix: str, rest: str) -> None:
    clean = prefix.replace("*", "").replace("?", "")
    assert glob_match(clean + "*", clean + rest)
