"""The sandbox's policy gate in front of moto, as a WSGI middleware, with a stand-in IAM.

Requests are built and signed by botocore (boto3 clients, ``SigV4Auth``, ``S3SigV4Auth`` and their
presigning variants: code we did not write), turned into the WSGI environ werkzeug's server makes,
and then tampered with as an attacker holding the minted secret, or only the key ID, would. Which
service and operation a request reaches is moto's own routing, run in this process.
"""

from __future__ import annotations

import functools
import io
import json
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree

import boto3
import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.test import EnvironBuilder

from roles_anywhere.sandbox.policy_gate import (
    MintedSessions,
    PolicyGate,
    SessionGrant,
    check_time,
    moto_route,
    parse_authorization,
)

KEY, SECRET, TOKEN = "ASIAMINTEDBYSANDBOX1", "minted/secret+key", "FQoGZXIvYXdzEBYaDminted/token=="
ENDPOINT = "http://127.0.0.1:5000"
ROLE_ARN = "arn:aws:iam::123456789012:role/teams/app"
READ_ONLY = {
    "Statement": [
        {"Effect": "Allow", "Action": ["iam:List*", "kms:List*", "sqs:ListQueues"], "Resource": "*"}
    ]
}
MINTED = Credentials(KEY, SECRET, TOKEN)


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


class Downstream:
    """Stands in for moto: records what it was handed and echoes the body."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["wsgi.input"].read()
        self.seen.append(environ)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"moto:" + body]


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
            secret_access_key=SECRET,
            session_token=TOKEN,
        ),
    )
    return PolicyGate(Downstream(), minted, iam or StandInIam())


# --- requests as botocore makes them ---------------------------------------------------------------


class Captured(Exception):  # noqa: N818 - not an error: the way out of botocore before it sends
    def __init__(self, request: Any) -> None:
        super().__init__("captured")
        self.request = request


@functools.cache
def client(service: str, key: str = KEY, secret: str = SECRET, token: str | None = TOKEN) -> Any:
    made = boto3.client(
        service,
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        aws_session_token=token,
    )

    def capture(request: Any, **_: Any) -> None:
        raise Captured(request)

    made.meta.events.register("before-send", capture)
    return made


def sdk(service: str, operation: str, *, key: str = KEY, **params: Any) -> dict[str, Any]:
    """The environ of a boto3 call, signed by botocore, as werkzeug's server hands it on."""
    with pytest.raises(Captured) as caught:
        getattr(client(service, key, "testing" if key != KEY else SECRET), operation)(**params)
    request = caught.value.request
    body = request.body or b""
    return environ_of(
        request.method, request.url, dict(request.headers), body.encode() if isinstance(body, str) else body
    )


def environ_of(method: str, url: str, headers: dict[str, Any], body: bytes = b"") -> dict[str, Any]:
    parts = urllib.parse.urlsplit(url)
    plain = {k: v.decode() if isinstance(v, bytes) else str(v) for k, v in headers.items()}
    plain.setdefault("Host", parts.netloc)
    environ = EnvironBuilder(
        method=method,
        base_url=f"{parts.scheme}://127.0.0.1:5000",
        path=parts.path or "/",
        query_string=parts.query,
        headers=list(plain.items()),
        data=body,
    ).get_environ()
    if not body:
        environ.pop("CONTENT_TYPE", None) if "Content-Type" not in plain else None
    return environ


def signed(
    method: str,
    url: str,
    service: str,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    presign: bool = False,
    region: str = "us-east-1",
    credentials: Credentials = MINTED,
) -> dict[str, Any]:
    """Any request, signed properly with the minted secret by botocore: what an attacker holding it crafts."""
    request = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    s3 = service == "s3"
    if presign:
        auth: Any = (S3SigV4QueryAuth if s3 else SigV4QueryAuth)(credentials, service, region, expires=300)
    else:
        auth = (S3SigV4Auth if s3 else SigV4Auth)(credentials, service, region)
    auth.add_auth(request)
    prepared = request.prepare()
    data = prepared.body or b""
    return environ_of(
        method, prepared.url, dict(prepared.headers), data.encode() if isinstance(data, str) else data
    )


def call(gate: PolicyGate, environ: dict[str, Any]) -> tuple[str, str]:
    status: list[str] = []
    answer = b"".join(gate(environ, lambda s, h: status.append(s)))
    return status[0], answer.decode()


def refused(gate: PolicyGate, environ: dict[str, Any]) -> tuple[str, str]:
    """A refusal: a 4xx with one line of message, and moto never handed the request."""
    status, body = call(gate, environ)
    assert status.startswith(("400", "403")), body
    assert not gate.app.seen, "a refused request reached moto"  # type: ignore[attr-defined]
    if body.startswith("{"):
        document = json.loads(body)
        code, message = document["__type"], document["message"]
    else:  # XML, read by the standard library's parser (query, ec2 and S3 shapes alike)
        root = ElementTree.fromstring(body)  # noqa: S314 - the gate's own answer
        error = root if root.tag == "Error" else root.find(".//Error")
        assert error is not None, body
        code, message = error.findtext("Code", ""), error.findtext("Message", "")
    assert "\n" not in message
    return code, message


def iam_form(body: str) -> dict[str, Any]:
    return signed(
        "POST",
        f"{ENDPOINT}/",
        "iam",
        body=body.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )


# --- decisions -------------------------------------------------------------------------------------


def test_keys_the_sandbox_did_not_mint_pass_through_untouched() -> None:
    iam = StandInIam()
    gate = gate_with(iam=iam)
    environ = sdk("iam", "delete_role", key="AKIATESTINGTESTING12", RoleName="r")
    status, body = call(gate, environ)
    assert (status, body) == ("200 OK", "moto:Action=DeleteRole&Version=2010-05-08&RoleName=r")
    assert iam.calls == 0


def test_an_allowed_request_reaches_moto_with_its_body() -> None:
    gate = gate_with()
    assert call(gate, sdk("iam", "list_users")) == ("200 OK", "moto:Action=ListUsers&Version=2010-05-08")
    assert call(gate, sdk("sqs", "list_queues"))[0] == "200 OK"  # JSON protocol, X-Amz-Target


def test_a_refusal_is_shaped_for_the_protocol() -> None:
    session = {"Statement": [{"Effect": "Allow", "Action": "iam:ListRoles", "Resource": "*"}]}
    status, body = call(gate_with(session_policy=session), sdk("iam", "list_users"))
    assert status == "403 Forbidden"
    assert "<Code>AccessDenied</Code>" in body
    assert (
        "User: arn:aws:sts::123456789012:assumed-role/app/s1 is not authorized to perform: iam:ListUsers "
        "on resource: * because no session policy allows the iam:ListUsers action"
    ) in body
    status, body = call(gate_with(session_policy=session), sdk("kms", "list_keys"))
    assert status == "400 Bad Request"
    assert json.loads(body)["__type"] == "AccessDeniedException"
    status, body = call(gate_with(), sdk("s3", "list_buckets"))
    assert status == "403 Forbidden"
    assert body.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>')
    assert "s3:(unknown action) on resource: * because the sandbox cannot tell which IAM action" in body
    assert "(rest-xml operations are not named as IAM actions)" in body


def test_the_boundary_read_from_iam_applies() -> None:
    gate = gate_with(iam=StandInIam(boundary="arn:aws:iam::aws:policy/IAMOnly"))
    assert call(gate, sdk("iam", "list_users"))[0] == "200 OK"
    body = call(gate, sdk("kms", "list_keys"))[1]
    assert "because no permissions boundary allows the kms:ListKeys action" in body


def test_expired_credentials_are_refused() -> None:
    assert refused(gate_with(expires_in=timedelta(seconds=-1)), sdk("iam", "list_users")) == (
        "ExpiredToken",
        "The security token included in the request is expired",
    )


def test_get_caller_identity_needs_no_permission() -> None:
    session = {"Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}
    assert call(gate_with(session_policy=session), sdk("sts", "get_caller_identity"))[0] == "200 OK"


@pytest.mark.parametrize(
    ("build", "says"),
    [
        (lambda: gate_with(iam=StandInIam(fail=True)), "could not be read (ConnectionError)"),
        (lambda: gate_with(session_policy={"Statement": [{"Effect": "Allow"}]}), "cannot be evaluated"),
    ],
)
def test_anything_unreadable_refuses(build: Any, says: str) -> None:
    code, message = refused(build(), sdk("iam", "list_users"))
    assert code == "AccessDenied"
    assert says in message


def test_a_body_too_large_to_decide_on_is_refused_unread() -> None:
    class NeverRead(io.BytesIO):
        def read(self, *args: Any) -> bytes:
            raise AssertionError("the gate read a body it should have refused")

    environ = sdk("iam", "list_users")
    environ.update({"CONTENT_LENGTH": str(64 * 2**20), "wsgi.input": NeverRead()})
    status: list[str] = []
    answer = b"".join(gate_with()(environ, lambda s, h: status.append(s))).decode()
    assert status == ["403 Forbidden"]
    assert "Content-Length of at most 8 MiB" in answer


# --- what moto runs, not what the request claims ----------------------------------------------------


def test_the_operation_decided_is_the_one_moto_runs() -> None:
    """moto's router reads ``Action`` from the query before the form: so does the gate."""
    environ = signed(
        "POST",
        f"{ENDPOINT}/?Action=DeleteRole&RoleName=r",
        "iam",
        body=b"Version=2010-05-08",
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    assert moto_route(environ, b"Version=2010-05-08").action == "iam:DeleteRole"
    code, message = refused(gate_with(), environ)
    assert (code, "iam:DeleteRole on resource" in message) == ("AccessDenied", True)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "POST", "HEAD"])
@pytest.mark.parametrize("service", ["sts", "iam", "sqs", "s3", "kms"])
def test_issue_22_presigned_urls_for_any_scope_cannot_reach_s3(method: str, service: str) -> None:
    """The report: a presigned query scoped to sts, which moto routes to S3 (no Authorization header).

    Signed properly, with every service in the scope: refused as moto routes it (S3), never decided
    as the scope's service."""
    environ = signed(method, f"{ENDPOINT}/victim?Action=GetCallerIdentity", service, presign=True)
    route = moto_route(environ, b"")
    assert (route.backend, route.signing_name) == ("s3", "s3")
    code, message = refused(gate_with(), environ)
    if service == "s3":
        assert code == "AccessDenied"
        assert "s3:(unknown action)" in message
    else:
        assert (code, message) == (
            "SignatureDoesNotMatch",
            "Credential should be scoped to correct service: 's3'.",
        )


@pytest.mark.parametrize(
    ("url", "service", "headers", "says"),
    [
        # Authorization for sqs, a path for IAM: moto routes by the scope (sqs), which has no such path
        (f"{ENDPOINT}/iam_us-east-1/?Action=CreateUser&UserName=x", "sqs", {}, "moto has no handler"),
        # S3 virtual-host style: the bucket in the Host header
        ("http://victim.s3.amazonaws.com/object", "s3", {}, "rest-xml operations"),
        # S3 Control by path
        (f"{ENDPOINT}/v20180820/jobs", "s3", {"x-amz-account-id": "123456789012"}, "rest-xml operations"),
        # moto's own API and the metadata service are no AWS API
        (f"{ENDPOINT}/moto-api/reset", "iam", {}, "it is for moto's own API"),
        (f"{ENDPOINT}/latest/meta-data/iam/", "iam", {}, "it is for the instance metadata service"),
    ],
)
def test_a_scope_for_one_service_and_a_path_or_host_for_another_is_refused(
    url: str, service: str, headers: dict[str, str], says: str
) -> None:
    code, message = refused(gate_with(), signed("POST", url, service, headers=headers))
    assert code in ("AccessDenied", "AccessDeniedException")  # sqs answers JSON
    assert says in message


def test_the_scope_must_name_the_service_and_region_moto_serves() -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    body = b"Action=ListUsers&Version=2010-05-08"
    upper = signed("POST", f"{ENDPOINT}/", "IAM", body=body, headers=form)  # moto lowercases it
    assert refused(gate_with(), upper) == (
        "SignatureDoesNotMatch",
        "Credential should be scoped to correct service: 'iam'.",
    )
    alias = signed(
        "POST",
        f"{ENDPOINT}/",
        "eventbridge",
        body=b"{}",
        headers={"X-Amz-Target": "AWSEvents.ListRules", "Content-Type": "application/x-amz-json-1.1"},
    )
    assert refused(gate_with(), alias)[1] == "Credential should be scoped to correct service: 'events'."
    # moto reads the region from the URL first (the Host header), then the User-Agent
    hosted = signed("POST", "http://iam.eu-west-1.amazonaws.com/", "iam", body=body, headers=form)
    assert refused(gate_with(), hosted) == (
        "SignatureDoesNotMatch",
        "Credential should be scoped to a valid region, not 'us-east-1': moto serves this request in "
        "'eu-west-1'.",
    )
    agent = iam_form("Action=ListUsers&Version=2010-05-08")
    agent["HTTP_USER_AGENT"] = "aws-cli/1.0 region/eu-west-1"
    assert "moto serves this request in 'eu-west-1'" in refused(gate_with(), agent)[1]


def test_ambiguous_operations_are_refused_rather_than_guessed() -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    for url, body, headers in (
        (f"{ENDPOINT}/", b"Action=ListUsers&Action=DeleteRole", form),
        (f"{ENDPOINT}/?Action=DeleteRole", b"Action=ListUsers", form),
        (f"{ENDPOINT}/", b"Action=ListUsers", {**form, "X-Amz-Target": "TrentService.ListKeys"}),
    ):
        code, message = refused(gate_with(), signed("POST", url, "iam", body=body, headers=headers))
        assert code == "AccessDenied"
        assert "cannot tell which IAM action" in message


def test_moto_account_and_compressed_bodies_are_refused() -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    body = b"Action=ListUsers&Version=2010-05-08"
    other = signed(
        "POST", f"{ENDPOINT}/", "iam", body=body, headers={**form, "x-moto-account-id": "999999999999"}
    )
    assert refused(gate_with(), other)[1] == "minted credentials act in their own account (x-moto-account-id)"
    zipped = signed("POST", f"{ENDPOINT}/", "iam", body=body, headers={**form, "Content-Encoding": "gzip"})
    assert refused(gate_with(), zipped)[1] == "the sandbox does not decide on compressed request bodies"


# --- signatures ------------------------------------------------------------------------------------


def tampered(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    environ = iam_form("Action=ListUsers&Version=2010-05-08")
    change(environ)
    return environ


def _auth(environ: dict[str, Any], old: str, new: str) -> None:
    environ["HTTP_AUTHORIZATION"] = environ["HTTP_AUTHORIZATION"].replace(old, new)


def _flip_signature(environ: dict[str, Any]) -> None:
    header = environ["HTTP_AUTHORIZATION"]
    last = header[-1]
    environ["HTTP_AUTHORIZATION"] = header[:-1] + ("0" if last != "0" else "1")


def _body(environ: dict[str, Any], body: bytes) -> None:
    environ.update({"wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))})


MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
    "Access Key and signing method. Consult the service documentation for details."
)


@pytest.mark.parametrize(
    ("change", "code", "message"),
    [
        (_flip_signature, "SignatureDoesNotMatch", MISMATCH),
        (
            lambda e: _body(e, b"Action=DeleteRole&Version=2010-05-08&RoleName=r"),
            "SignatureDoesNotMatch",
            MISMATCH,
        ),
        (lambda e: e.update(QUERY_STRING="Action=DeleteRole"), "SignatureDoesNotMatch", MISMATCH),
        (lambda e: e.update(REQUEST_METHOD="PUT"), "SignatureDoesNotMatch", MISMATCH),
        (lambda e: e.update(HTTP_HOST="sts.amazonaws.com"), "SignatureDoesNotMatch", MISMATCH),
        (lambda e: e.update(CONTENT_TYPE="application/x-amz-json-1.1"), "SignatureDoesNotMatch", MISMATCH),
        (
            lambda e: e.update(
                HTTP_AUTHORIZATION=e["HTTP_AUTHORIZATION"].split(", Signature=")[0] + ", Signature=abc"
            ),
            "IncompleteSignature",
            "Signature must be 64 lowercase hexadecimal digits",
        ),
        (
            lambda e: e.update(HTTP_AUTHORIZATION=e["HTTP_AUTHORIZATION"].split(", Signature=")[0]),
            "IncompleteSignature",
            "Authorization header requires 'Signature' parameter: AWS4-HMAC-SHA256 Credential=…, "
            "SignedHeaders=…, Signature=…",
        ),
        (
            lambda e: _auth(e, "SignedHeaders=", "Signed="),
            "IncompleteSignature",
            "Authorization header requires 'SignedHeaders' parameter: AWS4-HMAC-SHA256 Credential=…, "
            "SignedHeaders=…, Signature=…",
        ),
        (
            lambda e: _auth(e, "AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256"),
            "IncompleteSignature",
            "Unsupported authorization algorithm 'AWS4-ECDSA-P256-SHA256': the sandbox verifies "
            "AWS4-HMAC-SHA256 (Signature Version 4) for credentials it minted",
        ),
        (
            lambda e: _auth(e, "/aws4_request", "/aws4_request/x"),
            "IncompleteSignature",
            "Credential must be <key>/<YYYYMMDD>/<region>/<service>/aws4_request, not "
            f"'{KEY}/{datetime.now(UTC):%Y%m%d}/us-east-1/iam/aws4_request/x'",
        ),
        (
            lambda e: _auth(e, "host;", ""),
            "IncompleteSignature",
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        ),
        (
            lambda e: e.update(HTTP_X_AMZ_TARGET="TrentService.ListKeys"),
            "AccessDenied",
            "There were headers present in the request which were not signed: x-amz-target",
        ),
        (
            lambda e: e.pop("HTTP_X_AMZ_SECURITY_TOKEN"),
            "InvalidClientTokenId",
            "The security token included in the request is invalid.",
        ),
        (
            lambda e: e.update(HTTP_X_AMZ_SECURITY_TOKEN="another-token"),
            "InvalidClientTokenId",
            "The security token included in the request is invalid.",
        ),
        (
            lambda e: e.pop("HTTP_X_AMZ_DATE"),
            "IncompleteSignature",
            "Authorization header requires existence of a 'X-Amz-Date' header (the sandbox does not verify "
            "signatures dated by 'Date')",
        ),
        (
            lambda e: e.update(
                QUERY_STRING=f"X-Amz-Credential={KEY}%2F20261202%2Fus-east-1%2Fiam%2Faws4_request"
            ),
            "IncompleteSignature",
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query "
            "string parameter or the Authorization header should be specified",
        ),
        (
            lambda e: _auth(
                e,
                "Credential=",
                "Credential=AKIAOTHEROTHEROTHER1/20261202/us-east-1/iam/aws4_request Credential=",
            ),
            "IncompleteSignature",
            "Authorization header is malformed: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…",
        ),
        (
            lambda e: e.update(HTTP_TRANSFER_ENCODING="chunked"),
            "AccessDenied",
            "the sandbox decides only on requests with a Content-Length of at most 8 MiB",
        ),
    ],
)
def test_requests_not_properly_signed_with_the_minted_secret_are_refused(
    change: Callable[[dict[str, Any]], None], code: str, message: str
) -> None:
    assert call(gate_with(), iam_form("Action=ListUsers&Version=2010-05-08"))[0] == "200 OK"  # untouched
    assert refused(gate_with(), tampered(change)) == (code, message)


def test_a_minted_key_anywhere_moto_or_aws_reads_one_is_gated() -> None:
    """SigV2's AWSAccessKeyId (moto's caller when there is no header), in the query or a form body."""
    iam = StandInIam()
    sigv2 = environ_of(
        "GET", f"{ENDPOINT}/?Action=ListUsers&AWSAccessKeyId={KEY}&Signature=x&SignatureVersion=2", {}
    )
    assert refused(gate_with(iam=iam), sigv2)[0] == "IncompleteSignature"
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    in_body = sdk("iam", "list_users", key="AKIATESTINGTESTING12")
    _body(in_body, f"Action=ListUsers&AWSAccessKeyId={KEY}".encode())
    in_body.update(CONTENT_TYPE=form["Content-Type"])
    assert refused(gate_with(iam=iam), in_body) == (
        "IncompleteSignature",
        "the sandbox reads signatures from the Authorization header or the query string, not from a form "
        "body",
    )
    assert iam.calls == 0


def test_a_wrong_secret_is_refused() -> None:
    environ = signed(
        "POST",
        f"{ENDPOINT}/",
        "iam",
        body=b"Action=ListUsers",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        credentials=Credentials(KEY, "not-the-secret", TOKEN),
    )
    assert refused(gate_with(), environ) == ("SignatureDoesNotMatch", MISMATCH)


def test_presigned_requests_are_verified_and_expire() -> None:
    """botocore's presigned STS URL (what EKS and Vault use) verifies; moto routes it to S3 though."""
    environ = signed("GET", f"{ENDPOINT}/?Action=GetCallerIdentity&Version=2011-06-15", "sts", presign=True)
    assert refused(gate_with(), environ)[1] == "Credential should be scoped to correct service: 's3'."
    s3 = signed("GET", f"{ENDPOINT}/victim", "s3", presign=True)
    assert "s3:(unknown action)" in refused(gate_with(), s3)[1]  # authenticated, then not decidable
    s3["QUERY_STRING"] = s3["QUERY_STRING"].replace("X-Amz-Expires=300", "X-Amz-Expires=301")
    assert refused(gate_with(), s3) == ("SignatureDoesNotMatch", MISMATCH)
    missing = signed("GET", f"{ENDPOINT}/victim", "s3", presign=True)
    missing["QUERY_STRING"] = "&".join(
        p for p in missing["QUERY_STRING"].split("&") if not p.startswith("X-Amz-Signature")
    )
    assert refused(gate_with(), missing)[1].startswith(
        "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
    )


def test_signing_times_outside_five_minutes_are_refused() -> None:
    signature = parse_authorization(iam_form("Action=ListUsers"))
    signed_at = datetime.strptime(signature.amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    check_time(signature, signed_at + timedelta(minutes=4))
    with pytest.raises(
        Exception, match=r"^Signature expired: \d{8}T\d{6}Z is now earlier than .* - 5 min\.\)$"
    ):
        check_time(signature, signed_at + timedelta(minutes=6))
    with pytest.raises(Exception, match=r"^Signature not yet current: .* \+ 5 min\.\)$"):
        check_time(signature, signed_at - timedelta(minutes=6))


# --- whatever an attacker changes, moto never runs something else than the gate decided -------------


FIELDS = ("REQUEST_METHOD", "RAW_URI", "QUERY_STRING", "HTTP_HOST", "CONTENT_TYPE", "HTTP_X_AMZ_DATE", "body")


@settings(max_examples=150, deadline=None)
@given(
    field=st.sampled_from(FIELDS),
    position=st.integers(0, 200),
    text=st.text("aA%2F=&/.-_ ~+zZ0", min_size=0, max_size=3),
)
def test_a_tampered_request_is_refused_or_decided_as_moto_runs_it(
    field: str, position: int, text: str
) -> None:
    """Splice text into any signed part of a valid request: refused, or (an equivalent encoding) the
    very operation moto then runs is the one the gate decided on."""
    environ = signed(
        "POST",
        f"{ENDPOINT}/?Marker=a",
        "iam",
        body=b"Action=ListUsers&Version=2010-05-08",
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    body = environ["wsgi.input"].getvalue()
    if field == "body":
        index = position % (len(body) + 1)
        body = body[:index] + text.encode() + body[index:]
        _body(environ, body)
    else:
        value = environ.get(field, "")
        index = position % (len(value) + 1)
        environ[field] = value[:index] + text + value[index:]
        if field == "RAW_URI":
            environ["PATH_INFO"] = urllib.parse.unquote(environ["RAW_URI"].split("?")[0])
    gate = gate_with()
    route = moto_route(environ, body)
    status, _ = call(gate, environ)
    if status == "200 OK":
        assert route.action == "iam:ListUsers"
        assert gate.app.seen  # type: ignore[attr-defined]
    else:
        assert not gate.app.seen  # type: ignore[attr-defined]
