"""Authorise requests made with credentials the sandbox minted, as IAM would, in front of moto.

moto serves IAM, STS and the other services but ignores session policies and permissions
boundaries when it checks a request (and checks nothing unless told to). In front of it, this gate
decides every request signed with credentials the sandbox's CreateSession minted: the role's
identity-based policies, its permissions boundary and the profile's session policies (inline and
managed), with explicit denies winning (``roles_anywhere.iam.permission_evaluation``). Expired
credentials are refused. Requests signed with any other key (the sandbox's own set-up calls) pass
through unchanged.

The action is read from the request: ``Action=`` for query-protocol services (IAM, STS, EC2, SQS,
SNS…) and ``X-Amz-Target`` for JSON-protocol ones (DynamoDB, KMS, SSM, Secrets Manager, Logs…);
the IAM prefix is the credential scope's service. REST-protocol services (S3, Lambda…) name
operations differently from IAM actions, so their requests are refused rather than guessed at.
The resource is not derived: statements are read as for an unknown resource (see ``decide``).
"""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from roles_anywhere.iam.conditions import PolicyError
from roles_anywhere.iam.permission_evaluation import (
    BOUNDARY,
    IDENTITY,
    SESSION,
    PermissionDecision,
    PolicySource,
    decide,
)

log = logging.getLogger("roles_anywhere.sandbox")

MAX_BODY = 8 * 2**20  # read at most this much of a gated request to find its action
ALWAYS_ALLOWED = {"sts:GetCallerIdentity"}  # AWS answers it whatever the policies say
_TARGET = re.compile(r"^[A-Za-z0-9_.]{1,128}\.([A-Za-z0-9]{1,128})$")
_OPERATION = re.compile(r"^[A-Za-z0-9]{1,128}$")

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


@dataclass(frozen=True)
class SessionGrant:
    """What one CreateSession granted: the role, the session's limits and its principal tags."""

    role_arn: str
    session_name: str
    expiration: datetime
    session_policy: str | None = None
    session_policy_arns: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    source_identity: str = ""

    @property
    def role_name(self) -> str:
        """The role's name (the last part of its ARN, after any path)."""
        return self.role_arn.rsplit("/", 1)[1]

    @property
    def principal_arn(self) -> str:
        """The assumed-role ARN AWS names in its refusals."""
        account = self.role_arn.split(":")[4]
        return f"arn:aws:sts::{account}:assumed-role/{self.role_name}/{self.session_name}"


class MintedSessions:
    """Access key ID → grant, for the credentials this sandbox's CreateSession handed out."""

    def __init__(self) -> None:
        self._grants: dict[str, SessionGrant] = {}
        self._lock = threading.Lock()

    def record(self, access_key_id: str, grant: SessionGrant) -> None:
        """Remember what the credentials with ``access_key_id`` were granted."""
        with self._lock:
            self._grants[access_key_id] = grant

    def get(self, access_key_id: str) -> SessionGrant | None:
        """The grant of a key this sandbox minted, else None."""
        with self._lock:
            return self._grants.get(access_key_id)


@dataclass(frozen=True)
class GatedRequest:
    """The parts of a request the decision needs."""

    access_key_id: str
    region: str
    service: str
    protocol: str  # "query", "json" or "rest"
    action: str | None  # "iam:ListRoles"; None when it cannot be told


class PolicyGate:
    """WSGI middleware: decide requests signed with minted credentials, pass the rest to ``app``."""

    def __init__(self, app: WsgiApp, sessions: MintedSessions, iam: Any) -> None:
        self.app, self.sessions, self.iam = app, sessions, iam

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Answer a refusal, or hand the request (body restored) to moto."""
        credential = credential_scope(environ)
        grant = self.sessions.get(credential.access_key_id) if credential else None
        if credential is None or grant is None:
            return self.app(environ, start_response)
        body = _read_body(environ)
        if body is None:
            return _refuse(
                start_response, "query", "AccessDenied", "the request body is too large to decide on"
            )
        environ["wsgi.input"] = io.BytesIO(body)
        request = gated_request(environ, body, credential)
        if grant.expiration <= datetime.now(UTC):
            message = "The security token included in the request is expired"
            return _refuse(start_response, request.protocol, "ExpiredToken", message)
        decision = self.decide(grant, request)
        if decision.allowed:
            return self.app(environ, start_response)
        action = request.action or f"{request.service}:(unknown action)"
        message = (
            f"User: {grant.principal_arn} is not authorized to perform: {action} on resource: * "
            f"{decision.reason}"
        )
        log.warning("sandbox refused %s", message)
        return _refuse(start_response, request.protocol, "AccessDenied", message)

    def decide(self, grant: SessionGrant, request: GatedRequest) -> PermissionDecision:
        """The decision for ``request`` under ``grant``; anything unreadable refuses."""
        if request.action is None:
            return PermissionDecision(
                False, "because the sandbox cannot tell which IAM action this request needs"
            )
        if request.action in ALWAYS_ALLOWED:
            return PermissionDecision(True, "allowed")
        try:
            policies, layers = self.policies(grant)
            context = {
                **{f"aws:PrincipalTag/{key}": [value] for key, value in grant.tags.items()},
                "aws:PrincipalArn": [grant.role_arn],
                "aws:SourceIdentity": [grant.source_identity],
                "aws:RequestedRegion": [request.region],
            }
            return decide(request.action, policies, context=context, layers=layers)
        except PolicyError as err:
            return PermissionDecision(False, f"because a policy cannot be evaluated: {err}")
        except Exception as err:  # noqa: BLE001 - an IAM lookup that fails must refuse, not allow
            return PermissionDecision(
                False, f"because the role's policies could not be read ({type(err).__name__})"
            )

    def policies(self, grant: SessionGrant) -> tuple[list[PolicySource], list[str]]:
        """Every policy in force for the session, read from IAM now, and the layers in force."""
        iam, name = self.iam, grant.role_name
        role = iam.get_role(RoleName=name)["Role"]
        policies = [
            PolicySource(
                IDENTITY,
                policy,
                policy_document(iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]),
            )
            for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]
        ]
        policies += [
            PolicySource(IDENTITY, attached["PolicyArn"], self.managed_document(attached["PolicyArn"]))
            for attached in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
        ]
        layers = [IDENTITY]
        boundary = (role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
        if boundary:
            layers.append(BOUNDARY)
            policies.append(PolicySource(BOUNDARY, boundary, self.managed_document(boundary)))
        if grant.session_policy is not None or grant.session_policy_arns:
            layers.append(SESSION)
            if grant.session_policy is not None:
                policies.append(PolicySource(SESSION, "inline", policy_document(grant.session_policy)))
            policies += [
                PolicySource(SESSION, arn, self.managed_document(arn)) for arn in grant.session_policy_arns
            ]
        return policies, layers

    def managed_document(self, arn: str) -> Mapping[str, Any]:
        """The default version of the managed policy ``arn``."""
        policy = self.iam.get_policy(PolicyArn=arn)["Policy"]
        version = self.iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])
        return policy_document(version["PolicyVersion"]["Document"])


@dataclass(frozen=True)
class CredentialScope:
    """``Credential=<key>/<date>/<region>/<service>/aws4_request`` of a SigV4 request."""

    access_key_id: str
    region: str
    service: str


def credential_scope(environ: Mapping[str, Any]) -> CredentialScope | None:
    """The scope exactly as moto reads it to route the request (so both agree on the service).

    moto takes the second word of the Authorization header's first comma-separated part; a
    presigned request carries it in ``X-Amz-Credential`` instead.
    """
    scope = None
    authorization = environ.get("HTTP_AUTHORIZATION")
    if authorization:
        words = authorization.split(",")[0].split()
        if len(words) >= 2 and words[1].startswith("Credential="):
            scope = words[1].removeprefix("Credential=")
    else:
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        scope = (query.get("X-Amz-Credential") or [None])[0]
    parts = scope.split("/") if scope else []
    if len(parts) != 5:
        return None
    return CredentialScope(access_key_id=parts[0], region=parts[2], service=parts[3].lower())


def gated_request(environ: Mapping[str, Any], body: bytes, scope: CredentialScope) -> GatedRequest:
    """Which service and action a request is for, from its credential scope, target or form.

    Anything ambiguous (two different ``Action`` values, ``Action`` beside ``X-Amz-Target``) gets
    no action, so it is refused: moto might run another one than the gate decided on.
    """
    service = scope.service
    fields = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    if "x-www-form-urlencoded" in environ.get("CONTENT_TYPE", ""):
        for key, values in urllib.parse.parse_qs(body.decode("utf-8", "replace")).items():
            fields.setdefault(key, []).extend(values)
    actions = set(fields.get("Action", []))
    target = environ.get("HTTP_X_AMZ_TARGET")
    protocol = "json" if target is not None else "query" if actions else "rest"
    action = None
    if target is not None and not actions:
        match = _TARGET.match(target)
        action = f"{service}:{match.group(1)}" if match else None
    elif target is None and len(actions) == 1:
        (operation,) = actions
        action = f"{service}:{operation}" if _OPERATION.match(operation) else None
    return GatedRequest(scope.access_key_id, scope.region, service, protocol, action)


def _read_body(environ: dict[str, Any]) -> bytes | None:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_BODY:
        return None
    stream = environ.get("wsgi.input")
    return stream.read(length) if stream is not None and length > 0 else b""


def policy_document(raw: Any) -> Mapping[str, Any]:
    """A policy document as IAM returns it: a dict, JSON text, or URL-encoded JSON text."""
    if isinstance(raw, Mapping):
        return raw
    text = str(raw)
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        document = json.loads(urllib.parse.unquote(text))
    if not isinstance(document, Mapping):
        raise PolicyError("a policy document must be a JSON object")
    return document


def _refuse(start_response: StartResponse, protocol: str, code: str, message: str) -> list[bytes]:
    """The refusal in the shape the service's SDK parses (query: XML, 403; JSON: ``…Exception``, 400)."""
    request_id = str(uuid.uuid4())
    status = 403 if protocol != "json" else 400
    code = code if protocol == "query" else f"{code}Exception"
    if protocol == "query":
        body = (
            "<ErrorResponse><Error><Type>Sender</Type>"
            f"<Code>{_xml(code)}</Code><Message>{_xml(message)}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        content_type = "text/xml"
    else:
        body = json.dumps({"__type": code, "message": message, "Message": message}).encode()
        content_type = "application/x-amz-json-1.1" if protocol == "json" else "application/json"
    phrase = {400: "Bad Request", 403: "Forbidden"}[status]
    headers = [
        ("Content-Type", content_type),
        ("Content-Length", str(len(body))),
        ("x-amzn-RequestId", request_id),
        ("x-amzn-ErrorType", code),
    ]
    start_response(f"{status} {phrase}", headers)
    return [body]


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
