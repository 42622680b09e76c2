"""Issue 22: the policy gate against a running sandbox, with clients we did not write.

Credentials come from the sandbox's CreateSession through AWS's ``iam_rolesanywhere_session``. Honest
calls go through boto3 and the AWS CLI (``python -m awscli``); hostile ones are raw HTTP requests,
signed with the minted secret by botocore's own signers (an attacker holding the credentials can sign
anything), or not signed at all (one who only saw the key ID). Whatever moto would have run, the
bucket and the roles set up with the sandbox's own keys are checked afterwards to be untouched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import boto3
import httpx
import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from iam_rolesanywhere_session import IAMRolesAnywhereSession

from roles_anywhere.sandbox.server import Sandbox

from .sandbox_helpers import World, fresh_svid

ONLY_LIST_QUEUES = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "sqs:ListQueues", "Resource": "*"}],
}
FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}


@pytest.fixture(scope="module")
def minted(sandbox: Sandbox, world: World) -> Credentials:
    """Credentials CreateSession minted for a role that may only list SQS queues."""
    workload = world.workload("/svc/queues")
    role = workload.role_arn.rsplit("/", 1)[1]
    sandbox.client("iam").put_role_policy(
        RoleName=role, PolicyName="queues", PolicyDocument=json.dumps(ONLY_LIST_QUEUES)
    )
    svid = fresh_svid(world.ca, workload.spiffe_id)
    session = IAMRolesAnywhereSession(
        profile_arn=workload.profile_arn,
        role_arn=workload.role_arn,
        trust_anchor_arn=world.anchor_arn,
        certificate=svid.pem.encode(),
        private_key=svid.key_pem.encode(),
        region="us-east-1",
        endpoint=sandbox.endpoints["rolesanywhere"].removeprefix("https://"),
        verify=sandbox.endpoints["caFile"],
    ).get_session()
    frozen = session.get_credentials().get_frozen_credentials()
    return Credentials(frozen.access_key, frozen.secret_key, frozen.token)


@pytest.fixture
def victim(sandbox: Sandbox) -> Any:
    """A bucket with one object, made with the sandbox's own keys; checked unchanged afterwards."""
    s3 = _own_client(sandbox, "s3")
    s3.create_bucket(Bucket="victim")
    s3.put_object(Bucket="victim", Key="object", Body=b"precious")
    yield s3
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="victim").get("Contents", [])] == ["object"]
    assert s3.get_object(Bucket="victim", Key="object")["Body"].read() == b"precious"
    s3.delete_object(Bucket="victim", Key="object")
    s3.delete_bucket(Bucket="victim")


def _own_client(sandbox: Sandbox, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=sandbox.endpoints["iam"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def minted_client(sandbox: Sandbox, credentials: Credentials, service: str, **extra: Any) -> Any:
    return boto3.client(
        service,
        endpoint_url=sandbox.endpoints["iam"],
        region_name="us-east-1",
        aws_access_key_id=credentials.access_key,
        aws_secret_access_key=extra.pop("secret", credentials.secret_key),
        aws_session_token=credentials.token,
        **extra,
    )


def send(
    sandbox: Sandbox,
    method: str,
    path: str,
    service: str,
    credentials: Credentials | None,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    presign: bool = False,
    host: str | None = None,
) -> httpx.Response:
    """A raw request to the sandbox's AWS endpoint, signed by botocore with ``credentials`` if given."""
    base = sandbox.endpoints["iam"]
    url = f"http://{host}{path}" if host else f"{base}{path}"
    request = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    if credentials is not None:
        s3 = service == "s3"
        if presign:
            auth: Any = (S3SigV4QueryAuth if s3 else SigV4QueryAuth)(
                credentials, service, "us-east-1", expires=60
            )
        else:
            auth = (S3SigV4Auth if s3 else SigV4Auth)(credentials, service, "us-east-1")
        auth.add_auth(request)
    prepared = request.prepare()
    target = prepared.url.replace(f"http://{host}", base) if host else prepared.url
    sent = dict(prepared.headers)
    if host:
        sent["Host"] = host
    return httpx.request(method, target, headers=sent, content=prepared.body or b"", timeout=30)


def refusal(response: httpx.Response) -> tuple[str, str]:
    """An AWS-shaped refusal: (code, one-line message)."""
    assert response.status_code in (400, 403), response.text
    if response.text.startswith("{"):
        document = response.json()
        code, message = document["__type"], document["message"]
    else:
        root = ElementTree.fromstring(response.text)  # noqa: S314 - the sandbox's answer
        error = root if root.tag == "Error" else root.find(".//Error")
        assert error is not None, response.text
        code, message = error.findtext("Code", ""), error.findtext("Message", "")
    assert message
    assert "\n" not in message
    return code, message


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_issue_22_a_bucket_cannot_be_reached_with_credentials_allowed_only_sqs_list_queues(
    sandbox: Sandbox, minted: Credentials, victim: Any, method: str
) -> None:
    """The report's request (an unsigned X-Amz-Credential scoped to sts), and the same signed properly
    for every scope: moto routes each to S3, and none gets there."""
    date = "20261202"
    scope = f"{minted.access_key}%2F{date}%2Fus-east-1%2Fsts%2Faws4_request"
    unsigned = httpx.request(
        method,
        f"{sandbox.endpoints['iam']}/victim?Action=GetCallerIdentity&X-Amz-Credential={scope}",
        timeout=30,
    )
    assert refusal(unsigned)[0] == "IncompleteSignature"
    for service in ("sts", "sqs", "iam", "s3"):
        for path in ("/victim", "/victim/object"):
            response = send(
                sandbox, method, f"{path}?Action=GetCallerIdentity", service, minted, presign=True
            )
            code, message = refusal(response)
            if service == "s3":
                assert code == "AccessDenied"
                assert "s3:(unknown action)" in message
            else:
                assert (code, message) == (
                    "SignatureDoesNotMatch",
                    "Credential should be scoped to correct service: 's3'.",
                )


def test_virtual_host_and_header_signed_s3_requests_are_refused(
    sandbox: Sandbox, minted: Credentials, victim: Any
) -> None:
    for method in ("PUT", "DELETE"):
        virtual = send(sandbox, method, "/object", "s3", minted, body=b"x", host="victim.s3.amazonaws.com")
        assert refusal(virtual)[0] == "AccessDenied"
        path_style = send(sandbox, method, "/victim/object", "s3", minted, body=b"x")
        assert refusal(path_style)[0] == "AccessDenied"
    # Authorization for sqs, a path for S3: moto routes by the scope (sqs), which has no such path
    code, message = refusal(send(sandbox, "DELETE", "/victim", "sqs", minted))
    assert (code, "moto has no handler" in message) == ("AccessDeniedException", True)


def test_boto3_and_the_aws_cli_are_decided_as_aws_would(
    sandbox: Sandbox, minted: Credentials, victim: Any, tmp_path: Path
) -> None:
    sqs = minted_client(sandbox, minted, "sqs")
    assert sqs.list_queues()["ResponseMetadata"]["HTTPStatusCode"] == 200
    with pytest.raises(ClientError, match=r"not authorized to perform: sqs:CreateQueue"):
        sqs.create_queue(QueueName="q")
    with pytest.raises(ClientError, match=r"\(AccessDenied\).*s3:\(unknown action\)"):
        minted_client(sandbox, minted, "s3").delete_object(Bucket="victim", Key="object")
    wrong = minted_client(sandbox, minted, "sqs", secret="not-the-secret")
    with pytest.raises(ClientError, match="InvalidSignatureException"):
        wrong.list_queues()
    credentials = tmp_path / "credentials"
    credentials.write_text(
        "[minted]\n"
        f"aws_access_key_id = {minted.access_key}\n"
        f"aws_secret_access_key = {minted.secret_key}\n"
        f"aws_session_token = {minted.token}\n"
    )

    def aws(*args: str) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "HOME": str(tmp_path),
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "awscli",
                *args,
                "--profile",
                "minted",
                "--region",
                "us-east-1",
                "--endpoint-url",
                sandbox.endpoints["iam"],
                "--output",
                "json",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )

    assert aws("sqs", "list-queues").returncode == 0
    assert json.loads(aws("sts", "get-caller-identity").stdout)["Arn"].startswith(
        "arn:aws:sts::123456789012:assumed-role/"
    )
    for command in (
        ("s3", "ls"),
        ("s3api", "delete-object", "--bucket", "victim", "--key", "object"),
        ("sqs", "create-queue", "--queue-name", "q"),
    ):
        result = aws(*command)
        assert result.returncode != 0
        assert "AccessDenied" in result.stderr, result.stderr


def test_forged_replayed_and_moto_api_requests_are_refused(
    sandbox: Sandbox, minted: Credentials, victim: Any
) -> None:
    roles_before = _own_client(sandbox, "iam").list_roles()["Roles"]
    reset = send(sandbox, "POST", "/moto-api/reset", "iam", minted)
    assert "it is for moto's own API" in refusal(reset)[1]
    assert _own_client(sandbox, "iam").list_roles()["Roles"] == roles_before  # not reset
    body = b"Action=ListQueues&Version=2012-11-05"
    honest = send(sandbox, "POST", "/", "sqs", minted, body=body, headers=FORM)
    assert honest.status_code == 200, honest.text
    # the same signature over another body: moto would create a queue
    request = AWSRequest(method="POST", url=f"{sandbox.endpoints['iam']}/", data=body, headers=FORM)
    SigV4Auth(minted, "sqs", "us-east-1").add_auth(request)
    prepared = request.prepare()
    forged = httpx.post(
        prepared.url,
        headers={k: v for k, v in prepared.headers.items() if k.lower() != "content-length"},
        content=b"Action=CreateQueue&QueueName=q&Version=2012-11-05",
        timeout=30,
    )
    assert refusal(forged)[0] in ("SignatureDoesNotMatch", "InvalidSignatureException")
    tokenless = Credentials(minted.access_key, minted.secret_key)
    assert refusal(send(sandbox, "POST", "/", "sqs", tokenless, body=body, headers=FORM))[0] in (
        "InvalidClientTokenId",
        "UnrecognizedClientException",
    )
    assert "QueueUrls" not in _own_client(sandbox, "sqs").list_queues()
