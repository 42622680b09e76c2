"""Stack config validation: one exact line per mistake, naming the key; and what a valid config becomes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roles_anywhere.errors import ConfigError
from roles_anywhere.stack.spec import decode_config_values, load_spec

from .certs import NOW
from .conftest import CA, base_values, with_dotted


def error_of(values: dict[str, Any], base_dir: Path = Path()) -> str:
    with pytest.raises(ConfigError) as raised:
        load_spec(values, stack="dev", base_dir=base_dir, now=NOW)
    return str(raised.value)


def with_path(path: str, value: Any) -> dict[str, Any]:
    """A copy of the base config with one dotted key set (``None`` deletes it)."""
    return with_dotted(base_values(), path, value)


def test_a_valid_config_becomes_a_sorted_immutable_spec() -> None:
    spec = load_spec(base_values(), stack="dev", base_dir=Path(), now=NOW)
    assert [w.name for w in spec.workloads] == ["api", "worker"]
    api = spec.workload("api")
    assert str(api.spiffe_id) == "spiffe://example.teleport.sh/svc/api"
    assert (api.role_name, api.profile_name) == ("api", "api")
    assert api.session_duration == 7200
    assert api.max_session_duration == 7200
    assert json.loads(api.inline_policy_json or "") == base_values()["workloads"]["api"]["inlinePolicy"]
    worker = spec.workload("worker")
    assert (worker.session_duration, worker.max_session_duration) == (3600, 3600)
    assert worker.managed_policy_arns == ()
    assert worker.inline_policy_json is None
    assert spec.trust_anchor.name == "teleport-example-teleport-sh"
    assert spec.trust_anchor.protect is True
    assert spec.bundle.pem == CA.pem
    with pytest.raises(AttributeError):
        spec.cluster = "other"  # type: ignore[misc]


def test_name_prefix_and_short_sessions() -> None:
    spec = load_spec(
        with_path("workloads.api.sessionDuration", 900) | {"namePrefix": "prod-"},
        stack="dev",
        base_dir=Path(),
        now=NOW,
    )
    api = spec.workload("api")
    assert api.role_name == "prod-api"
    assert api.max_session_duration == 3600  # never below IAM's default


def test_values_as_pulumi_passes_them_are_decoded() -> None:
    as_text = {k: (json.dumps(v) if isinstance(v, dict) else v) for k, v in base_values().items()}
    assert decode_config_values(as_text) == base_values()
    spec = load_spec(as_text, stack="dev", base_dir=Path(), now=NOW)
    assert len(spec.workloads) == 2


@pytest.mark.parametrize(
    ("values", "error"),
    [
        (with_path("cluster", None), "cluster: is required"),
        (
            with_path("cluster", "Example.com"),
            "cluster: not a SPIFFE trust domain: trust domain characters are",
        ),
        (
            with_path("cluster", "a" * 256),
            "cluster: not a SPIFFE trust domain: trust domain is 256 bytes long",
        ),
        (with_path("cluster", "td:443"), "cluster: not a SPIFFE trust domain: trust domain characters"),
        (with_path("cluster", 5), "cluster: must be a string"),
        (with_path("caBundle", None), "caBundle: is required; e.g. {file: spiffe-ca.pem}"),
        (with_path("caBundle", "ca.pem"), "caBundle: must be a mapping; e.g. {file: spiffe-ca.pem}"),
        (
            with_path("caBundle", {}),
            "caBundle: give exactly one source: 'proxy', 'bundleUrl', 'command', 'file', 'pem'",
        ),
        (
            with_path("caBundle", {"file": "a", "pem": "b"}),
            "caBundle: give exactly one source: 'proxy', 'bundleUrl', 'command', 'file', 'pem' "
            "(found file, pem)",
        ),
        (with_path("caBundle", {"url": "x"}), "caBundle.url: unknown key"),
        (
            with_path("caBundle.pem", "junk"),
            "caBundle.pem: not PEM: no '-----BEGIN CERTIFICATE-----' block found",
        ),
        (with_path("workloads", {}), "workloads: must name at least one workload"),
        (with_path("workloads", None), "workloads: is required; e.g. {api: {spiffeId: /svc/api}}"),
        (with_path("workloads", ["api"]), "workloads: must be a mapping; e.g. {api: {spiffeId: /svc/api}}"),
        (with_path("workloads.api", "x"), "workloads.api: must be a mapping"),
        (with_path("workloads.api.spiffeId", None), "workloads.api.spiffeId: is required"),
        (with_path("workloads.api.spiffeId", 7), "workloads.api.spiffeId: must be a string: a path such as"),
        (
            with_path("workloads.api.spiffeId", "/svc/a%20b"),
            "workloads.api.spiffeId: path segment characters",
        ),
        (with_path("workloads.api.spiffeId", "/svc/a?b"), "workloads.api.spiffeId: path segment characters"),
        (with_path("workloads.api.spiffeId", "/svc/a#b"), "workloads.api.spiffeId: path segment characters"),
        (with_path("workloads.api.spiffeId", "/svc/a b"), "workloads.api.spiffeId: path segment characters"),
        (with_path("workloads.api.spiffeId", "/svc/\x07"), "workloads.api.spiffeId: path segment characters"),
        (with_path("workloads.api.spiffeId", "/svc//a"), "workloads.api.spiffeId: path cannot contain empty"),
        (with_path("workloads.api.spiffeId", "/svc/./a"), "workloads.api.spiffeId: path cannot contain dot"),
        (with_path("workloads.api.spiffeId", "/svc/"), "workloads.api.spiffeId: path cannot have a trailing"),
        (
            with_path("workloads.api.spiffeId", "svc/api"),
            "workloads.api.spiffeId: scheme is missing or invalid",
        ),
        (
            with_path("workloads.api.spiffeId", "spiffe://other.sh/svc/api"),
            "workloads.api.spiffeId: trust domain 'other.sh' does not match cluster 'example.teleport.sh'",
        ),
        (
            with_path("workloads.api.spiffeId", "/" + "a" * 240),
            "workloads.api.spiffeId: is 269 characters long; AWS maps it",
        ),
        (
            with_path("workloads.api.spifeId", "/x"),
            "workloads.api.spifeId: unknown key (did you mean 'spiffeId'?)",
        ),
        (
            with_path("workloads.api.sessionDuration", 899),
            "workloads.api.sessionDuration: must be between 900",
        ),
        (with_path("workloads.api.sessionDuration", 43201), "workloads.api.sessionDuration: must be between"),
        (with_path("workloads.api.sessionDuration", True), "workloads.api.sessionDuration: must be a whole"),
        (
            with_path("workloads.api.sessionDuration", 1.5),
            "workloads.api.sessionDuration: must be a whole number",
        ),
        (with_path("workloads.api.sessionDuration", "1h"), "workloads.api.sessionDuration: must be a whole"),
        (
            with_path("workloads.api.managedPolicyArns", ["ReadOnlyAccess"]),
            "workloads.api.managedPolicyArns: item 0 ('ReadOnlyAccess') is not an IAM policy ARN",
        ),
        (
            with_path("workloads.api.managedPolicyArns", ["arn:aws:s3:::bucket"]),
            "workloads.api.managedPolicyArns: item 0 ('arn:aws:s3:::bucket') is not an IAM policy ARN",
        ),
        (
            with_path("workloads.api.managedPolicyArns", ["arn:aws:iam::aws:policy/A"] * 2),
            "workloads.api.managedPolicyArns: lists arn:aws:iam::aws:policy/A more than once",
        ),
        (
            with_path(
                "workloads.api.managedPolicyArns", [f"arn:aws:iam::aws:policy/P{i}" for i in range(21)]
            ),
            "workloads.api.managedPolicyArns: lists 21 policies; IAM attaches at most 20 to a role",
        ),
        (
            with_path("workloads.api.managedPolicyArns", "arn:aws:iam::aws:policy/A"),
            "workloads.api.managedPolicyArns: must be a valid list",
        ),
        (with_path("workloads.api.inlinePolicy", []), "workloads.api.inlinePolicy: must be a mapping"),
        (
            with_path("workloads.api.inlinePolicy", "{not json"),
            "workloads.api.inlinePolicy: is a string but not",
        ),
        (
            with_path("workloads.api.inlinePolicy.Version", None),
            "workloads.api.inlinePolicy.Version: is required",
        ),
        (
            with_path("workloads.api.inlinePolicy.Version", "2020-01-01"),
            "workloads.api.inlinePolicy.Version: must be '2012-10-17'",
        ),
        (
            with_path("workloads.api.inlinePolicy.Statement", []),
            "workloads.api.inlinePolicy.Statement: must not be empty",
        ),
        (
            with_path("workloads.api.inlinePolicy.Statement", [{"Effect": "Allow", "Resource": "*"}]),
            "workloads.api.inlinePolicy.Statement[0]: a statement needs exactly one of Action or NotAction",
        ),
        (
            with_path(
                "workloads.api.inlinePolicy.Statement", [{"Effect": "Maybe", "Action": "*", "Resource": "*"}]
            ),
            "workloads.api.inlinePolicy.Statement[0].Effect: must be 'Allow' or 'Deny'",
        ),
        (
            with_path(
                "workloads.api.inlinePolicy.Statement",
                [{"Effect": "Allow", "Action": "*", "Resource": "*", "Principal": "*"}],
            ),
            "workloads.api.inlinePolicy.Statement[0]: Principal is not allowed in a permissions policy",
        ),
        (
            with_path(
                "workloads.api.inlinePolicy.Statement", [{"Effect": "Allow", "Action": [], "Resource": "*"}]
            ),
            "workloads.api.inlinePolicy.Statement[0].Action: must be a non-empty string or a non-empty list",
        ),
        (
            with_path("trustAnchor", {"caExpiryNotificationDays": 0}),
            "trustAnchor.caExpiryNotificationDays: must be",
        ),
        (
            with_path("trustAnchor", {"certificateExpiryNotificationDays": 361}),
            "trustAnchor.certificateExpiryNotificationDays: must be between 1 and 360 days, got 361",
        ),
        (
            with_path("trustAnchor", {"name": "has.dot"}),
            "trustAnchor.name: must be 1-255 characters of letters",
        ),
        (with_path("trustAnchor", {"protect": "maybe"}), "trustAnchor.protect: must be true or false"),
        (
            with_path("trustAnchor", {"protected": False}),
            "trustAnchor.protected: unknown key (did you mean 'protect'?)",
        ),
        (
            with_path("namePrefix", "Prod/"),
            "namePrefix: must be at most 32 lowercase letters, digits, '-' or '_'",
        ),
        (with_path("accountId", "1234"), "accountId: must be a 12-digit AWS account ID"),
        (with_path("region", "eu-west-1"), "region: unknown key"),
    ],
)
def test_each_mistake_is_one_line_naming_the_key(values: dict[str, Any], error: str) -> None:
    message = error_of(values)
    assert message.startswith(error), message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("name", "quoted"),
    [
        ("Api", "'Api'"),
        ("a/b", "'a/b'"),
        ("a b", "'a b'"),
        ("a\nb", "'a\\nb'"),
        ("-api", "'-api'"),
        ("a.b", "'a.b'"),
    ],
)
def test_workload_names_that_cannot_be_role_names(name: str, quoted: str) -> None:
    values = base_values()
    values["workloads"] = {name: {"spiffeId": "/svc/x"}}
    message = error_of(values)
    assert "\n" not in message
    assert f"invalid workload name {quoted}: use at most 64 lowercase letters, digits, '-' and '_'" in message


def test_prefix_plus_name_longer_than_an_iam_role_name() -> None:
    values = base_values() | {"namePrefix": "p" * 32}
    values["workloads"] = {"w" * 33: {"spiffeId": "/svc/x"}}
    assert error_of(values).endswith(
        "name prefix plus workload name is 65 characters; IAM role names allow at most 64"
    )


def test_relative_ca_file_resolves_against_the_stack_folder(tmp_path: Path) -> None:
    (tmp_path / "ca").mkdir()
    (tmp_path / "ca" / "spiffe.pem").write_text(CA.pem)
    values = with_path("caBundle", {"file": "ca/spiffe.pem"})
    assert load_spec(values, stack="dev", base_dir=tmp_path, now=NOW).bundle.pem == CA.pem
    assert error_of(values, base_dir=tmp_path / "elsewhere") == "caBundle.file: ca/spiffe.pem: file not found"


def test_inline_policy_given_as_json_text_is_kept_as_written() -> None:
    document = {
        "Version": "2012-10-17",
        "Statement": {"Effect": "Deny", "NotAction": "iam:*", "NotResource": "*"},
    }
    spec = load_spec(
        with_path("workloads.api.inlinePolicy", json.dumps(document)), stack="dev", base_dir=Path(), now=NOW
    )
    assert json.loads(spec.workload("api").inline_policy_json or "") == {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "NotAction": "iam:*", "NotResource": "*"}],
    }


@given(st.from_regex(r"[a-z0-9][a-z0-9_-]{0,40}", fullmatch=True))
def test_any_name_in_the_documented_set_is_accepted(name: str) -> None:
    values = base_values()
    values["workloads"] = {name: {"spiffeId": "/svc/x"}}
    assert load_spec(values, stack="dev", base_dir=Path(), now=NOW).workloads[0].role_name == name


@given(
    st.text(min_size=1, max_size=20).filter(
        lambda n: not all(c in "abcdefghijklmnopqrstuvwxyz0123456789_-" for c in n) or n[0] in "_-"
    )
)
def test_any_name_outside_the_set_is_refused_on_one_line(name: str) -> None:
    values = base_values()
    values["workloads"] = {name: {"spiffeId": "/svc/x"}}
    message = error_of(values)
    assert "invalid workload name" in message
    assert "\n" not in message
    assert "\r" not in message
