"""Differential test: the operation the gate decides on is the one moto's server runs.

Hypothesis builds requests from hostile pieces (a credential scope for one service, a path, Host,
body or target for another, two ``Action`` values, a region in the Host or the User-Agent…) and
hands each to moto's real ``DomainDispatcherApplication`` in this process, with
``BaseResponse.call_action`` replaced by a recorder: moto routes the request all the way to the
operation it would run, and runs nothing. ``moto_route`` must name exactly that operation, service
and region, or none (then the gate refuses).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from werkzeug.test import EnvironBuilder

from roles_anywhere.sandbox.policy_gate import RPC_PROTOCOLS, moto_route

KEY = "ASIAMINTEDBYSANDBOX1"
SIGNING_NAMES = {"cloudwatch": "monitoring", "dynamodbstreams": "dynamodb"}  # botocore model name -> signing


@pytest.fixture(scope="module")
def moto_server() -> Iterator[tuple[Any, list[tuple[str, str, str]]]]:
    """moto's server app, whose responses record the operation they would run instead of running it."""
    from moto.core.responses import BaseResponse  # noqa: PLC0415
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app  # noqa: PLC0415

    ran: list[tuple[str, str, str]] = []
    original = BaseResponse.call_action

    def record(self: Any) -> Any:
        ran.append((self.boto3_service_name, self._get_action(), self.region))
        return 200, {}, "recorded"

    BaseResponse.call_action = record  # type: ignore[method-assign]
    try:
        yield DomainDispatcherApplication(create_backend_app), ran
    finally:
        BaseResponse.call_action = original  # type: ignore[method-assign]


SCOPES = [
    "iam",
    "IAM",
    "sts",
    "sqs",
    "s3",
    "kms",
    "dynamodb",
    "ec2",
    "eventbridge",
    "logs",
    "monitoring",
    None,
]
PATHS = [
    "/",
    "/victim",
    "/victim/object",
    "/iam_us-east-1/",
    "/sts_us-east-1/",
    "/123456789012/q",
    "/v20180820/jobs",
]
HOSTS = [
    "127.0.0.1:5000",
    "victim.s3.amazonaws.com",
    "sqs.eu-west-1.amazonaws.com",
    "x.s3-control.amazonaws.com",
]
TARGETS = [
    None,
    "TrentService.ListKeys",
    "AmazonSQS.ListQueues",
    "DynamoDB_20120810.ListTables",
    "Logs_20140328.DescribeLogGroups",
    "junk",
]
TYPES = [
    None,
    "application/x-www-form-urlencoded; charset=utf-8",
    "application/x-amz-json-1.0",
    "application/x-amz-json-1.1",
    "application/json",
]
QUERIES = [
    "",
    "Action=ListUsers",
    "Action=DeleteRole&Action=ListUsers",
    "Action=GetCallerIdentity",
    "Action=DescribeInstances&Version=2016-11-15",
]
BODIES = [
    b"",
    b"Action=ListQueues",
    b"Action=AssumeRoleWithWebIdentity",
    b"Version=2009-04-15&Action=ListDomains",
    b"{}",
    b"Action=CreateUser&UserName=x",
]
AGENTS = ["Boto3/1.0", "aws-cli/1.0 region/eu-west-1"]


FORM, JSON10, JSON11 = TYPES[1], TYPES[2], TYPES[3]
# Requests as SDKs send them: (scope, content type, target, query, body).
HONEST = [
    ("iam", FORM, None, "", b"Action=ListUsers&Version=2010-05-08"),
    ("sts", FORM, None, "", b"Action=GetCallerIdentity&Version=2011-06-15"),
    ("sqs", JSON10, "AmazonSQS.ListQueues", "", b"{}"),
    ("sqs", FORM, None, "", b"Action=DeleteQueue&QueueUrl=q&Version=2012-11-05"),
    ("kms", JSON11, "TrentService.ListKeys", "", b"{}"),
    ("ec2", FORM, None, "", b"Action=DescribeInstances&Version=2016-11-15"),
    ("logs", JSON11, "Logs_20140328.DescribeLogGroups", "", b"{}"),
    ("dynamodb", JSON10, "DynamoDB_20120810.ListTables", "", b"{}"),
    ("dynamodb", JSON10, "DynamoDBStreams_20120810.ListStreams", "", b"{}"),
    ("monitoring", FORM, None, "", b"Action=ListMetrics&Version=2010-08-01"),
]


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    """An SDK-shaped request, then up to three pieces replaced by hostile ones."""
    scope, content_type, target, query, body = draw(st.sampled_from(HONEST))
    method, path, host, agent = "POST", "/", HOSTS[0], AGENTS[0]
    for change in draw(
        st.lists(
            st.sampled_from(["scope", "type", "target", "query", "body", "method", "path", "host", "agent"]),
            max_size=3,
        )
    ):
        if change == "scope":
            scope = draw(st.sampled_from(SCOPES))
        elif change == "type":
            content_type = draw(st.sampled_from(TYPES))
        elif change == "target":
            target = draw(st.sampled_from(TARGETS))
        elif change == "query":
            query = draw(st.sampled_from(QUERIES))
        elif change == "body":
            body = draw(st.sampled_from(BODIES))
        elif change == "method":
            method = draw(st.sampled_from(["GET", "PUT", "DELETE", "HEAD", "OPTIONS"]))
        elif change == "path":
            path = draw(st.sampled_from(PATHS))
        elif change == "host":
            host = draw(st.sampled_from(HOSTS))
        else:
            agent = draw(st.sampled_from(AGENTS))
    headers = {"Host": host, "User-Agent": agent}
    if scope is not None:
        headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={KEY}/20261202/us-east-1/{scope}/aws4_request, "
            f"SignedHeaders=host;x-amz-date, Signature={'0' * 64}"
        )
    if target is not None:
        headers["X-Amz-Target"] = target
    if content_type is not None:
        headers["Content-Type"] = content_type
    environ = EnvironBuilder(
        method=method,
        base_url="http://127.0.0.1:5000",
        path=path,
        query_string=query,
        headers=list(headers.items()),
        data=body,
    ).get_environ()
    environ["_body"] = body
    return environ


@settings(max_examples=400, deadline=None)
@given(environ=requests())
def test_the_gate_names_what_moto_runs_or_nothing(
    moto_server: tuple[Any, list[Any]], environ: dict[str, Any]
) -> None:
    app, ran = moto_server
    body = environ.pop("_body")
    route = moto_route(dict(environ), body)
    ran.clear()
    environ["wsgi.input"] = io.BytesIO(body)
    with contextlib.suppress(Exception):  # moto failing the request runs nothing, which is all we need
        b"".join(app(environ, lambda *args: None))
    event(f"decided: {route.action}" if route.action else "refused")
    if route.action is None:
        return  # the gate refuses: whatever moto would run, it never gets the request
    assert route.protocol in RPC_PROTOCOLS
    assert len(ran) == 1, (route, ran)
    ((service, operation, region),) = ran
    assert (operation, region) == (route.operation, route.region), (route, ran)
    assert route.signing_name == SIGNING_NAMES.get(service, service), (route, ran)
