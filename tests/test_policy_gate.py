"""The sandbox's policy gate in front of moto, as a WSGI middleware, with a stand-in IAM."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from roles_anywhere.sandbox.policy_gate import MintedSessions, PolicyGate, SessionGrant

KEY = "ASIAMINTEDBYSANDBOX1"
ROLE_ARN = "arn:aws:iam::123456789012:role/teams/app"
READ_ONLY = {"Statement": [{"Effect": "Allow", "Action": ["iam:List*", "kms:List*"], "Resource": "*"}]}


class StandInIam:
    """The IAM calls the gate makes, answered from memory; counts them."""

    def __init__(self, boundary: str | None = None, fail: bool = False) -> None:
        self.boundary, self.fail, self.calls = boundary, fail, 0

    def get_role(self, RoleName: str) -> dict[str, Any]:  # noqa: N803 - boto3's names
        self.calls += 1
        if self.fail:
            raise ConnectionError("IAM is down")
        role: dict[str, Any] = {"RoleName": RoleName}
        if self.boundary:
            role["PermissionsBoundary"] = {"PermissionsBoundaryArn": self.boundary}
        return {"Role": role}

    def list_role_policies(self, RoleName: str) -> dict[str, Any]:  # noqa: N803
        return {"PolicyNames": ["inline"]}

    def get_role_policy(self, RoleName: str, PolicyName: str) -> dict[str, Any]:  # noqa: N803
        return {"PolicyDocument": json.dumps(READ_ONLY)}

    def list_attached_role_policies(self, RoleName: str) -> dict[str, Any]:  # noqa: N803
        return {"AttachedPolicies": []}

    def get_policy(self, PolicyArn: str) -> dict[str, Any]:  # noqa: N803
        return {"Policy": {"DefaultVersionId": "v1"}}

    def get_policy_version(self, PolicyArn: str, VersionId: str) -> dict[str, Any]:  # noqa: N803
        document = {"Statement": [{"Effect": "Allow", "Action": "iam:*", "Resource": "*"}]}
        return {"PolicyVersion": {"Document": document}}


def downstream(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Stands in for moto: echoes the body it was handed."""
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"moto:" + body]


def call_with(gate: PolicyGate, extra: dict[str, Any], *, body: bytes = b"") -> tuple[str, str]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "QUERY_STRING": "",
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "HTTP_AUTHORIZATION": f"AWS4-HMAC-SHA256 Credential={KEY}/20261202/us-east-1/iam/aws4_request, x",
        **extra,
    }
    status: list[str] = []
    answer = b"".join(gate(environ, lambda s, h: status.append(s)))
    return status[0], answer.decode()


def call(
    gate: PolicyGate, *, key: str = KEY, service: str = "iam", body: bytes = b"", **headers: str
) -> tuple[str, str]:
    """A signed form POST with ``key`` for ``service``; ``headers`` become ``HTTP_*`` entries."""
    authorization = (
        f"AWS4-HMAC-SHA256 Credential={key}/20261202/us-east-1/{service}/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=abc"
    )
    extra = {"HTTP_AUTHORIZATION": authorization, **{f"HTTP_{n.upper()}": v for n, v in headers.items()}}
    return call_with(gate, extra, body=body)


def gate_with(
    *,
    expires_in: timedelta = timedelta(hours=1),
    session_policy: dict[str, Any] | None = None,
    iam: Any = None,
) -> PolicyGate:
    minted = MintedSessions()
    minted.record(
        KEY,
        SessionGrant(
            role_arn=ROLE_ARN,
            session_name="s1",
            expiration=datetime.now(UTC) + expires_in,
            session_policy=None if session_policy is None else json.dumps(session_policy),
        ),
    )
    return PolicyGate(downstream, minted, iam or StandInIam())


def test_keys_the_sandbox_did_not_mint_pass_through_untouched() -> None:
    iam = StandInIam()
    assert call(gate_with(iam=iam), key="testing", body=b"Action=DeleteRole") == (
        "200 OK",
        "moto:Action=DeleteRole",
    )
    assert iam.calls == 0


def test_an_allowed_request_reaches_moto_with_its_body() -> None:
    assert call(gate_with(), body=b"Action=ListUsers&Version=2010-05-08") == (
        "200 OK",
        "moto:Action=ListUsers&Version=2010-05-08",
    )


def test_a_refusal_is_shaped_for_the_protocol() -> None:
    session = {"Statement": [{"Effect": "Allow", "Action": "iam:ListRoles", "Resource": "*"}]}
    status, body = call(gate_with(session_policy=session), body=b"Action=ListUsers")
    assert status == "403 Forbidden"
    assert "<Code>AccessDenied</Code>" in body
    assert (
        "User: arn:aws:sts::123456789012:assumed-role/app/s1 is not authorized to perform: iam:ListUsers "
        "on resource: * because no session policy allows the iam:ListUsers action"
    ) in body
    status, body = call(
        gate_with(session_policy=session), service="kms", **{"X_AMZ_TARGET": "TrentService.ListKeys"}
    )
    assert status == "400 Bad Request"
    assert json.loads(body)["__type"] == "AccessDeniedException"


def test_the_boundary_read_from_iam_applies() -> None:
    gate = gate_with(iam=StandInIam(boundary="arn:aws:iam::aws:policy/IAMOnly"))
    assert call(gate, body=b"Action=ListUsers")[0] == "200 OK"
    body = call(gate, service="kms", **{"X_AMZ_TARGET": "TrentService.ListKeys"})[1]
    assert "because no permissions boundary allows the kms:ListKeys action" in body


def test_expired_credentials_are_refused() -> None:
    status, body = call(gate_with(expires_in=timedelta(seconds=-1)), body=b"Action=ListUsers")
    assert status == "403 Forbidden"
    assert "<Code>ExpiredToken</Code>" in body


def test_get_caller_identity_needs_no_permission() -> None:
    session = {"Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}
    assert (
        call(gate_with(session_policy=session), service="sts", body=b"Action=GetCallerIdentity")[0]
        == "200 OK"
    )


@pytest.mark.parametrize(
    ("build", "says"),
    [
        (lambda: gate_with(iam=StandInIam(fail=True)), "could not be read (ConnectionError)"),
        (lambda: gate_with(session_policy={"Statement": [{"Effect": "Allow"}]}), "cannot be evaluated"),
    ],
)
def test_anything_unreadable_refuses(build: Any, says: str) -> None:
    status, body = call(build(), body=b"Action=ListUsers")
    assert status == "403 Forbidden"
    assert says in body


def test_requests_whose_action_cannot_be_told_are_refused() -> None:
    gate = gate_with()
    for headers, body in (
        ({}, b"<xml/>"),
        ({"X_AMZ_TARGET": "Bad Target!"}, b"{}"),
        ({}, b"Action=List%20Users"),
    ):
        status, answer = call(gate, service="s3", body=body, **headers)
        assert status.startswith(("403", "400"))
        assert "cannot tell which IAM action" in answer


def test_a_body_too_large_to_decide_on_is_refused_unread() -> None:
    class NeverRead(io.BytesIO):
        def read(self, *args: Any) -> bytes:
            raise AssertionError("the gate read a body it should have refused")

    environ = {
        "REQUEST_METHOD": "POST",
        "CONTENT_LENGTH": str(64 * 2**20),
        "wsgi.input": NeverRead(),
        "HTTP_AUTHORIZATION": f"AWS4-HMAC-SHA256 Credential={KEY}/20261202/us-east-1/iam/aws4_request, x",
    }
    status: list[str] = []
    answer = b"".join(gate_with()(environ, lambda s, h: status.append(s))).decode()
    assert status == ["403 Forbidden"]
    assert "too large" in answer


def test_ambiguous_actions_are_refused_rather_than_guessed() -> None:
    """moto might run another action than the one decided on: two Actions, or Action beside a target."""
    gate = gate_with()
    for body, headers in (
        (b"Action=ListUsers&Action=DeleteRole", {}),
        (b"Action=ListUsers", {"X_AMZ_TARGET": "TrentService.ListKeys"}),
    ):
        status, answer = call(gate, body=body, **headers)
        assert status.startswith(("403", "400"))
        assert "cannot tell which IAM action" in answer
    environ_query = {"QUERY_STRING": "Action=DeleteRole"}
    status, answer = call_with(gate, environ_query, body=b"Action=ListUsers")
    assert "cannot tell which IAM action" in answer


def test_presigned_requests_with_a_minted_key_are_decided_too() -> None:
    session = {"Statement": [{"Effect": "Allow", "Action": "iam:ListRoles", "Resource": "*"}]}
    query = f"Action=ListUsers&X-Amz-Credential={KEY}%2F20261202%2Fus-east-1%2Fiam%2Faws4_request"
    status, answer = call_with(
        gate_with(session_policy=session), {"HTTP_AUTHORIZATION": "", "QUERY_STRING": query}
    )
    assert status == "403 Forbidden"
    assert "because no session policy allows the iam:ListUsers action" in answer


def test_the_scope_is_read_as_moto_reads_it() -> None:
    """moto routes by the first credential in the header; a minted key hidden after it is not the
    request's key (and moto would not route by it), so the gate does not decide on it either."""
    iam = StandInIam()
    header = (
        "AWS4-HMAC-SHA256 Credential=AKIAOTHEROTHEROTHER1/20261202/us-east-1/iam/aws4_request "
        f"Credential={KEY}/20261202/us-east-1/iam/aws4_request, SignedHeaders=host"
    )
    assert call_with(gate_with(iam=iam), {"HTTP_AUTHORIZATION": header}, body=b"Action=X")[0] == "200 OK"
    assert iam.calls == 0
    header = f"AWS4-HMAC-SHA256 Credential={KEY}/20261202/us-east-1/IAM/aws4_request, SignedHeaders=host"
    answer = call_with(gate_with(), {"HTTP_AUTHORIZATION": header}, body=b"Action=CreateUser")[1]
    assert "iam:CreateUser" in answer
