"""Authorise requests made with credentials the sandbox minted, as AWS would, in front of moto.

moto serves IAM, STS and the other services but checks no signature, ignores session policies and
permissions boundaries, and runs whatever its own routing picks. In front of it, this gate takes every
request that presents a key the sandbox's CreateSession minted (in the Authorization header, in
``X-Amz-Credential`` or ``AWSAccessKeyId``) and

1. authenticates it as AWS does: one Signature Version 4 (Authorization header or presigned query),
   recomputed with the minted secret, the minted session token, a date within 5 minutes (or an
   unexpired presigned URL), ``host`` and every ``x-amz-*`` header signed;
2. asks moto's own code what it will run: the backend ``DomainDispatcherApplication`` picks, the
   handler that backend's URL map picks, the operation that handler's router picks and the region it
   reads. A credential scope naming another service or region is refused, so the decision is never
   about another request than the one moto executes (moto routes unsigned-looking requests by path and
   body, falling back to S3; a scope says nothing about that);
3. decides the operation as IAM would: the role's identity-based policies, its permissions boundary
   and the profile's session policies (inline and managed), explicit denies winning
   (``roles_anywhere.iam.permission_evaluation``); expired credentials are refused.

Only RPC protocols (query, EC2, JSON) are decided: their operation names are IAM action names.
REST-protocol services (S3, Lambda…) name operations differently, and handlers of moto's that do not
go through its standard router run their own code, so those requests are refused, not guessed at.
The resource is not derived: statements are read as for an unknown resource (see ``decide``).
Requests presenting no minted key (the sandbox's own set-up calls) pass through unchanged: moto
answers any caller, so the gate models AWS's answers to the minted credentials, not access control.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import io
import json
import logging
import re
import threading
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
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

MAX_BODY = 8 * 2**20  # read at most this much of a gated request (or a form that may name a key)
ALWAYS_ALLOWED = {"sts:GetCallerIdentity"}  # AWS answers it whatever the policies say
ALGORITHM = "AWS4-HMAC-SHA256"
CLOCK_SKEW = timedelta(minutes=5)
MAX_PRESIGNED_SECONDS = 604_800  # SigV4: a presigned URL lives at most 7 days
RPC_PROTOCOLS = ("query", "ec2", "json")  # their operation names are IAM action names
IAM_PREFIXES = {"monitoring": "cloudwatch"}  # SigV4 signing name -> IAM action prefix, where they differ
PRESIGNED = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders")
KEY_FIELDS = ("X-Amz-Credential", "AWSAccessKeyId")  # where a request names its key, besides the header
AUTH_FIELDS = {*PRESIGNED, "X-Amz-Signature", "X-Amz-Security-Token", "AWSAccessKeyId", "Signature"}
NOT_AWS = {"moto_api": "moto's own API", "instance_metadata": "the instance metadata service"}
# moto's BaseResponse.access_key_regex finds keys anywhere in the Authorization header: so does the gate.
_KEY = re.compile(r"(?<![A-Z0-9])[A-Z0-9]{20}(?![A-Z0-9])")
_AUTHORIZATION = re.compile(
    rf"{ALGORITHM} Credential=(?P<credential>[^\s,]+), ?SignedHeaders=(?P<signed>[^\s,]+), ?"
    r"Signature=(?P<signature>[^\s,]+)"
)
_AMZ_DATE = re.compile(r"\d{8}T\d{6}Z")
_SIGNED_HEADERS = re.compile(r"[a-z0-9-]+(?:;[a-z0-9-]+)*")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")
_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS "
    "Secret Access Key and signing method. Consult the service documentation for details."
)
_INVALID_TOKEN = "The security token included in the request is invalid."  # noqa: S105 - AWS wording
_ONE_MECHANISM = (
    "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string "
    "parameter or the Authorization header should be specified"
)
# The code a JSON-protocol SDK expects for each query-protocol code (AWS answers these in both shapes).
JSON_CODES = {
    "AccessDenied": "AccessDeniedException",
    "ExpiredToken": "ExpiredTokenException",
    "IncompleteSignature": "IncompleteSignatureException",
    "InvalidClientTokenId": "UnrecognizedClientException",
    "SignatureDoesNotMatch": "InvalidSignatureException",
}

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
Fields = Mapping[str, list[str]]


@dataclass(frozen=True)
class SessionGrant:
    """What one CreateSession granted: the role, the session's limits and its principal tags.

    The secret and token, when CreateSession records them, let the gate verify signatures without
    asking moto; when empty, they are read from moto's STS backend, which minted them.
    """

    role_arn: str
    session_name: str
    expiration: datetime
    session_policy: str | None = None
    session_policy_arns: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    source_identity: str = ""
    secret_access_key: str = field(default="", repr=False)
    session_token: str = field(default="", repr=False)

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


class RefusedError(Exception):
    """A gated request refused before its action is decided: AWS's error code and one-line message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class MotoRoute:
    """What moto will run for a request, found by moto's own routing code (see ``moto_route``).

    ``signing_name`` is the service a SigV4 scope must name; ``problem`` says why no IAM action can be
    told (then the request is refused).
    """

    backend: str | None
    protocol: str = "query"
    signing_name: str | None = None
    region: str | None = None
    operation: str | None = None
    problem: str | None = None

    @property
    def action(self) -> str | None:
        """The IAM action, ``prefix:Operation``, when the request is decidable."""
        if self.problem or not self.operation or not self.signing_name:
            return None
        return f"{IAM_PREFIXES.get(self.signing_name, self.signing_name)}:{self.operation}"

    @property
    def service(self) -> str:
        """The IAM prefix (or moto's backend name) for a refusal message."""
        if self.signing_name:
            return IAM_PREFIXES.get(self.signing_name, self.signing_name)
        return self.backend or "unknown"


@dataclass(frozen=True)
class Signature:
    """A SigV4 request's authentication, from its Authorization header or its presigned query."""

    presigned: bool
    access_key_id: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str
    amz_date: str
    expires: int = 0

    @property
    def scope(self) -> str:
        """``date/region/service/aws4_request``."""
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


class PolicyGate:
    """WSGI middleware: authenticate and decide requests with minted keys, pass the rest to ``app``."""

    def __init__(self, app: WsgiApp, sessions: MintedSessions, iam: Any) -> None:
        self.app, self.sessions, self.iam = app, sessions, iam

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Answer a refusal, or hand the request (body restored) to moto."""
        query = _fields(environ.get("QUERY_STRING", ""))
        form: Fields = {}
        body: bytes | None = None
        chunked = bool(environ.get("HTTP_TRANSFER_ENCODING"))
        if _is_form(environ) and not chunked and _content_length(environ) <= MAX_BODY:
            body = _read_body(environ)  # a form may name a key (AWSAccessKeyId) that moto reads
            environ["wsgi.input"] = io.BytesIO(body or b"")
            form = _form_fields(environ, body or b"")
        presented = presented_keys(environ, query, form)
        if not any(self.sessions.get(key) for key in presented):
            return self.app(environ, start_response)
        if body is None:
            body = _read_body(environ)
        if body is None or chunked:
            message = "the sandbox decides only on requests with a Content-Length of at most 8 MiB"
            return _refuse(start_response, "query", "AccessDenied", message)
        environ["wsgi.input"] = io.BytesIO(body)
        route = moto_route(environ, body)
        try:
            grant = self.authenticate(environ, body, query=query, form=form, presented=presented, route=route)
            if environ.get("HTTP_CONTENT_ENCODING", "identity") != "identity":
                raise RefusedError("AccessDenied", "the sandbox does not decide on compressed request bodies")
            if "HTTP_X_MOTO_ACCOUNT_ID" in environ:
                raise RefusedError(
                    "AccessDenied", "minted credentials act in their own account (x-moto-account-id)"
                )
        except RefusedError as refusal:
            log.warning("sandbox refused a request with minted credentials: %s", refusal.message)
            return _refuse(start_response, route.protocol, refusal.code, refusal.message)
        environ["CONTENT_LENGTH"] = str(len(body))
        if grant.expiration <= datetime.now(UTC):
            message = "The security token included in the request is expired"
            return _refuse(start_response, route.protocol, "ExpiredToken", message)
        decision = self.decide(grant, route)
        if decision.allowed:
            return self.app(environ, start_response)
        action = route.action or f"{route.service}:(unknown action)"
        message = (
            f"User: {grant.principal_arn} is not authorized to perform: {action} on resource: * "
            f"{decision.reason}"
        )
        log.warning("sandbox refused %s", message)
        return _refuse(start_response, route.protocol, "AccessDenied", message)

    def authenticate(
        self,
        environ: Mapping[str, Any],
        body: bytes,
        *,
        query: Fields,
        form: Fields,
        presented: set[str],
        route: MotoRoute,
    ) -> SessionGrant:
        """The grant of a request properly signed with minted credentials, else a ``RefusedError``."""
        if any(name in AUTH_FIELDS for name in form):
            raise RefusedError(
                "IncompleteSignature",
                "the sandbox reads signatures from the Authorization header or the query string, "
                "not from a form body",
            )
        has_header = bool(environ.get("HTTP_AUTHORIZATION"))
        in_query = [
            name for name in (*PRESIGNED, "X-Amz-Signature", "AWSAccessKeyId", "Signature") if name in query
        ]
        if has_header and in_query:
            raise RefusedError("IncompleteSignature", _ONE_MECHANISM)
        signature = parse_authorization(environ) if has_header else parse_presigned(query)
        if presented != {signature.access_key_id}:
            raise RefusedError("IncompleteSignature", "the request names more than one access key")
        grant = self.sessions.get(signature.access_key_id)
        secrets = minted_secret(signature.access_key_id, grant) if grant else None
        if grant is None or secrets is None:
            raise RefusedError("InvalidClientTokenId", _INVALID_TOKEN)
        secret, token = secrets
        tokens = [*query.get("X-Amz-Security-Token", [])]
        if "HTTP_X_AMZ_SECURITY_TOKEN" in environ:
            tokens.append(environ["HTTP_X_AMZ_SECURITY_TOKEN"])
        if len(tokens) != 1 or not hmac.compare_digest(tokens[0].encode(), token.encode()):
            raise RefusedError("InvalidClientTokenId", _INVALID_TOKEN)
        check_time(signature, datetime.now(UTC))
        check_signed_headers(environ, signature)
        if route.signing_name is not None and signature.service != route.signing_name:
            raise RefusedError(
                "SignatureDoesNotMatch",
                f"Credential should be scoped to correct service: '{route.signing_name}'.",
            )
        if route.region is not None and signature.region != route.region:
            raise RefusedError(
                "SignatureDoesNotMatch",
                f"Credential should be scoped to a valid region, not '{_printable(signature.region)}': "
                f"moto serves this request in '{_printable(route.region)}'.",
            )
        expected = sign(secret, signature, canonical_request(environ, body, signature))
        if not hmac.compare_digest(expected, signature.signature):
            raise RefusedError("SignatureDoesNotMatch", _MISMATCH)
        return grant

    def decide(self, grant: SessionGrant, route: MotoRoute) -> PermissionDecision:
        """The decision for what moto will run under ``grant``; anything unreadable refuses."""
        action = route.action
        if action is None:
            reason = f" ({route.problem})" if route.problem else ""
            return PermissionDecision(
                False, f"because the sandbox cannot tell which IAM action this request needs{reason}"
            )
        if action in ALWAYS_ALLOWED:
            return PermissionDecision(True, "allowed")
        try:
            policies, layers = self.policies(grant)
            context = {
                **{f"aws:PrincipalTag/{key}": [value] for key, value in grant.tags.items()},
                "aws:PrincipalArn": [grant.role_arn],
                "aws:SourceIdentity": [grant.source_identity],
                "aws:RequestedRegion": [route.region or ""],
            }
            return decide(action, policies, context=context, layers=layers)
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


def presented_keys(environ: Mapping[str, Any], query: Fields, form: Fields) -> set[str]:
    """Every access key the request names where moto or AWS would read one.

    moto takes the caller's key from anywhere in the Authorization header (the last key-shaped word
    before ``/`` or ``:``), else from ``AWSAccessKeyId`` in the query or form; AWS from
    ``X-Amz-Credential``. The gate takes them all, so no minted key goes unnoticed.
    """
    keys = set(_KEY.findall(str(environ.get("HTTP_AUTHORIZATION", ""))))
    for fields in (query, form):
        for name in KEY_FIELDS:
            keys.update(value.split("/", 1)[0] for value in fields.get(name, []))
    return keys


def _fields(text: str) -> dict[str, list[str]]:
    """Query or form fields as werkzeug (so moto) reads them: ``+`` is a space, blanks kept."""
    fields: dict[str, list[str]] = {}
    for name, value in urllib.parse.parse_qsl(text, keep_blank_values=True):
        fields.setdefault(name, []).append(value)
    return fields


def _is_form(environ: Mapping[str, Any]) -> bool:
    content_type = str(environ.get("CONTENT_TYPE", "")).lower()
    return content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data"))


def _content_length(environ: Mapping[str, Any]) -> int:
    try:
        return max(int(environ.get("CONTENT_LENGTH") or 0), 0)
    except ValueError:
        return 0


def _form_fields(environ: Mapping[str, Any], body: bytes) -> dict[str, list[str]]:
    """A form body's fields, parsed by moto's own request class (urlencoded and multipart alike)."""
    from moto.core.request import Request  # noqa: PLC0415 - moto only where a sandbox runs

    copy = {**environ, "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))}
    try:
        return {name: list(values) for name, values in Request(copy).form.lists()}
    except Exception:  # noqa: BLE001 - a form moto cannot parse names no key to moto either
        return {}


def _printable(text: object, limit: int = 80) -> str:
    """Request text made safe for a one-line refusal: printable ASCII, bounded."""
    cleaned = "".join(c if " " <= c <= "~" else "?" for c in str(text))
    return cleaned[:limit] + ("..." if len(cleaned) > limit else "")


def _credential(value: str, where: str) -> tuple[str, str, str, str]:
    """``key/date/region/service/aws4_request`` → (key, date, region, service), or a ``RefusedError``."""
    parts = value.split("/")
    if (
        len(parts) != 5
        or parts[4] != "aws4_request"
        or not all(parts)
        or not re.fullmatch(r"\d{8}", parts[1])
    ):
        raise RefusedError(
            "IncompleteSignature",
            f"{where} must be <key>/<YYYYMMDD>/<region>/<service>/aws4_request, not '{_printable(value)}'",
        )
    return parts[0], parts[1], parts[2], parts[3]


def _signed_headers(value: str) -> tuple[str, ...]:
    names = tuple(value.split(";"))
    if not _SIGNED_HEADERS.fullmatch(value) or list(names) != sorted(set(names)):
        raise RefusedError(
            "IncompleteSignature",
            f"SignedHeaders must be lowercase names, sorted, separated by ';', not '{_printable(value)}'",
        )
    return names


def parse_authorization(environ: Mapping[str, Any]) -> Signature:
    """The Authorization header, exactly as AWS SDKs write it; anything else is ``IncompleteSignature``."""
    header = str(environ["HTTP_AUTHORIZATION"])
    if not header.startswith(f"{ALGORITHM} "):
        algorithm = header.split(" ", 1)[0]
        raise RefusedError(
            "IncompleteSignature",
            f"Unsupported authorization algorithm '{_printable(algorithm, 40)}': the sandbox verifies "
            f"{ALGORITHM} (Signature Version 4) for credentials it minted",
        )
    match = _AUTHORIZATION.fullmatch(header.strip())
    if match is None:
        missing = [name for name in ("Credential", "SignedHeaders", "Signature") if f"{name}=" not in header]
        detail = f"requires '{missing[0]}' parameter" if missing else "is malformed"
        raise RefusedError(
            "IncompleteSignature",
            f"Authorization header {detail}: {ALGORITHM} Credential=…, SignedHeaders=…, Signature=…",
        )
    key, date, region, service = _credential(match["credential"], "Credential")
    if not _SIGNATURE.fullmatch(match["signature"]):
        raise RefusedError("IncompleteSignature", "Signature must be 64 lowercase hexadecimal digits")
    amz_date = str(environ.get("HTTP_X_AMZ_DATE", ""))
    if not amz_date:
        raise RefusedError(
            "IncompleteSignature",
            "Authorization header requires existence of a 'X-Amz-Date' header (the sandbox does not "
            "verify signatures dated by 'Date')",
        )
    return Signature(
        False, key, date, region, service, _signed_headers(match["signed"]), match["signature"], amz_date
    )


def parse_presigned(query: Fields) -> Signature:
    """A presigned URL's X-Amz-* parameters, each exactly once; else ``IncompleteSignature``."""
    names = (*PRESIGNED, "X-Amz-Signature")
    values = {name: query.get(name, []) for name in names}
    if any(len(found) != 1 for found in values.values()):
        raise RefusedError(
            "IncompleteSignature",
            "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
            "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters, once each "
            "(credentials the sandbox minted are accepted only with Signature Version 4)",
        )
    one = {name: found[0] for name, found in values.items()}
    if one["X-Amz-Algorithm"] != ALGORITHM:
        raise RefusedError("IncompleteSignature", f"X-Amz-Algorithm only allows {ALGORITHM}")
    key, date, region, service = _credential(one["X-Amz-Credential"], "X-Amz-Credential")
    if not _SIGNATURE.fullmatch(one["X-Amz-Signature"]):
        raise RefusedError("IncompleteSignature", "X-Amz-Signature must be 64 lowercase hexadecimal digits")
    expires = one["X-Amz-Expires"]
    if not expires.isdigit() or not 1 <= int(expires) <= MAX_PRESIGNED_SECONDS:
        raise RefusedError(
            "IncompleteSignature",
            f"X-Amz-Expires must be a number of seconds from 1 to {MAX_PRESIGNED_SECONDS}",
        )
    return Signature(
        True,
        key,
        date,
        region,
        service,
        _signed_headers(one["X-Amz-SignedHeaders"]),
        one["X-Amz-Signature"],
        one["X-Amz-Date"],
        int(expires),
    )


def minted_secret(access_key_id: str, grant: SessionGrant) -> tuple[str, str] | None:
    """The secret key and session token minted with ``access_key_id``: from the grant, else moto's STS.

    moto's ``AssumeRole`` keeps them on the assumed role, in the backend of the role's account.
    """
    if grant.secret_access_key:
        return grant.secret_access_key, grant.session_token
    try:
        from moto.sts.models import sts_backends  # noqa: PLC0415 - moto only where a sandbox runs

        _, partition, _, _, account = grant.role_arn.split(":")[:5]
        assumed = sts_backends[account][partition].get_assumed_role_from_access_key(access_key_id)
    except Exception:  # noqa: BLE001 - a key moto no longer knows (a reset) is an invalid key
        return None
    if assumed is None:
        return None
    return str(assumed.secret_access_key), str(assumed.session_token)


def check_time(signature: Signature, now: datetime) -> None:
    """The signing time: within 5 minutes of now, or inside a presigned URL's lifetime."""
    if not _AMZ_DATE.fullmatch(signature.amz_date):
        raise RefusedError(
            "IncompleteSignature",
            f"X-Amz-Date must be YYYYMMDD'T'HHMMSS'Z', not '{_printable(signature.amz_date)}'",
        )
    if signature.amz_date[:8] != signature.date:
        raise RefusedError(
            "SignatureDoesNotMatch",
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
            f"'{signature.date}' != '{signature.amz_date[:8]}', from '{signature.amz_date}'.",
        )
    try:
        signed_at = datetime.strptime(signature.amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise RefusedError("IncompleteSignature", f"X-Amz-Date '{signature.amz_date}' is no date") from None
    stamp = "%Y%m%dT%H%M%SZ"
    if signed_at > now + CLOCK_SKEW:
        raise RefusedError(
            "SignatureDoesNotMatch",
            f"Signature not yet current: {signature.amz_date} is still later than "
            f"{(now + CLOCK_SKEW).strftime(stamp)} ({now.strftime(stamp)} + 5 min.)",
        )
    if signature.presigned:
        if signed_at + timedelta(seconds=signature.expires) < now:
            raise RefusedError("AccessDenied", "Request has expired")
    elif signed_at < now - CLOCK_SKEW:
        raise RefusedError(
            "SignatureDoesNotMatch",
            f"Signature expired: {signature.amz_date} is now earlier than "
            f"{(now - CLOCK_SKEW).strftime(stamp)} ({now.strftime(stamp)} - 5 min.)",
        )


def check_signed_headers(environ: Mapping[str, Any], signature: Signature) -> None:
    """``host``, the date and every ``x-amz-*`` header must be signed, as AWS SDKs sign them."""
    signed = set(signature.signed_headers)
    if "host" not in signed:
        raise RefusedError(
            "IncompleteSignature", "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
        )
    present = {key[5:].lower().replace("_", "-") for key in environ if key.startswith("HTTP_X_AMZ_")}
    unsigned = sorted(present - signed)
    if unsigned:
        raise RefusedError(
            "AccessDenied",
            "There were headers present in the request which were not signed: "
            + _printable(", ".join(unsigned)),
        )


def _header(environ: Mapping[str, Any], name: str) -> str:
    key = {"content-type": "CONTENT_TYPE", "content-length": "CONTENT_LENGTH"}.get(name)
    value = environ.get(key or f"HTTP_{name.upper().replace('-', '_')}", "")
    return " ".join(str(value).split())


def _raw_path(environ: Mapping[str, Any]) -> bytes:
    """The path as the client sent it (werkzeug's RAW_URI), as bytes."""
    raw = str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or "")
    if raw:
        parts = urllib.parse.urlsplit(raw)
        path = parts.path if parts.scheme else raw.split("?", 1)[0]
        return (path or "/").encode("latin-1", "replace")
    decoded = str(environ.get("PATH_INFO") or "/").encode("latin-1", "replace")
    return urllib.parse.quote(decoded, safe="/").encode()


def _canonical_query(raw: str, *, presigned: bool) -> str:
    """The SigV4 canonical query: each name and value decoded, re-encoded, sorted (no signature)."""
    pairs = []
    for piece in raw.encode("latin-1", "replace").split(b"&"):
        if not piece:
            continue
        name, _, value = piece.partition(b"=")
        name = urllib.parse.unquote_to_bytes(name)
        if presigned and name == b"X-Amz-Signature":
            continue
        pairs.append(
            (
                urllib.parse.quote(name, safe="-_.~"),
                urllib.parse.quote(urllib.parse.unquote_to_bytes(value), safe="-_.~"),
            )
        )
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def canonical_request(environ: Mapping[str, Any], body: bytes, signature: Signature) -> str:
    """The SigV4 canonical request, as botocore builds it (S3 paths as sent, others normalised twice)."""
    from botocore.utils import normalize_url_path  # noqa: PLC0415 - botocore only where a sandbox runs

    raw_path = _raw_path(environ)
    if signature.service == "s3":
        path = raw_path.decode("latin-1")
    else:
        path = urllib.parse.quote(normalize_url_path(raw_path.decode("latin-1")).encode("latin-1"), safe="/~")
    actual = hashlib.sha256(body).hexdigest()
    declared = environ.get("HTTP_X_AMZ_CONTENT_SHA256")
    if declared is not None:
        if declared != actual and not (declared == "UNSIGNED-PAYLOAD" and signature.service == "s3"):
            raise RefusedError(
                "SignatureDoesNotMatch",
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            )
        payload = str(declared)
    elif signature.presigned and signature.service == "s3":
        payload = "UNSIGNED-PAYLOAD"
    else:
        payload = actual
    headers = "".join(f"{name}:{_header(environ, name)}\n" for name in signature.signed_headers)
    return "\n".join(
        [
            str(environ.get("REQUEST_METHOD", "GET")),
            path,
            _canonical_query(str(environ.get("QUERY_STRING", "")), presigned=signature.presigned),
            headers,
            ";".join(signature.signed_headers),
            payload,
        ]
    )


def sign(secret: str, signature: Signature, canonical: str) -> str:
    """SigV4's signature of ``canonical`` with the key derived from ``secret`` for the scope."""
    text = "\n".join(
        [ALGORITHM, signature.amz_date, signature.scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = f"AWS4{secret}".encode()
    for part in (signature.date, signature.region, signature.service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


# --- what moto will run: its own routing code, asked rather than imitated ------------------------------

_MOTO_ENTRY_POINTS = (
    "dispatch",
    "_dispatch",
    "setup_class",
    "call_action",
    "_get_action",
    "_get_action_from_request",
)
# Overrides read and found harmless: DynamoHandler.call_action sets self.body to the parsed
# parameters, then runs BaseResponse.call_action (moto/dynamodb/responses.py).
_READ_OVERRIDES = {"DynamoHandler.call_action"}
_BOTO3_NAMES = {"awslambda": "lambda"}  # moto.core.responses.boto3_service_name


def _backend_name(backend: Any) -> Any:
    """The "app" ``_dispatcher`` builds for a backend: its name."""
    return backend


@functools.cache
def _dispatcher() -> Any:
    """Moto's DomainDispatcherApplication, whose "app" for a backend is the backend's name."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication  # noqa: PLC0415

    return DomainDispatcherApplication(_backend_name)


@functools.cache
def _backend_app(backend: str) -> Any:
    """The Flask app moto's server builds for ``backend`` (the same URL map, the same handlers)."""
    from moto.moto_server.werkzeug_app import create_backend_app  # noqa: PLC0415

    return create_backend_app(backend)  # type: ignore[arg-type]


def _function(member: Any) -> Any:
    return getattr(member, "__func__", member)


def moto_route(environ: Mapping[str, Any], body: bytes) -> MotoRoute:
    """What moto's server will run for this request, asked of moto's own code on a copy of it.

    ``DomainDispatcherApplication.get_application`` picks the backend (by the Authorization header's
    scope, else the body's ``Action``, the path, and S3 as the fallback); that backend's Flask URL map
    picks the handler; a standard ``BaseResponse.dispatch`` handler picks the operation with
    ``_get_action_from_request`` (moto's botocore-model router) and the region with
    ``get_region_from_url``. Anything else, or any error, leaves a ``problem``: refused.
    """
    from moto.core.utils import get_service_model  # noqa: PLC0415 - moto only where a sandbox runs

    def copy() -> dict[str, Any]:
        return {**environ, "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))}

    try:
        backend = _dispatcher().get_application(copy())
    except Exception as err:  # noqa: BLE001 - moto would fail the request too: nothing runs
        return MotoRoute(None, problem=f"moto cannot route it ({type(err).__name__})")
    if backend is None or backend in NOT_AWS:
        return MotoRoute(backend, problem=f"it is for {NOT_AWS.get(str(backend), 'no AWS service')}")
    try:
        model = get_service_model(_BOTO3_NAMES.get(backend, backend))
    except Exception:  # noqa: BLE001 - a backend without a botocore model: no scope can name it
        return MotoRoute(backend, problem="moto serves it without an AWS service model")
    return _route_in_backend(MotoRoute(backend, str(model.protocol), str(model.signing_name)), copy())


def _route_in_backend(route: MotoRoute, environ: dict[str, Any]) -> MotoRoute:
    """The handler, operation and region moto's ``route.backend`` app will use for ``environ``."""
    from moto.core.request import Request, determine_request_protocol  # noqa: PLC0415
    from moto.core.responses import BaseResponse  # noqa: PLC0415
    from moto.core.utils import get_service_model  # noqa: PLC0415

    def refused(problem: str) -> MotoRoute:
        if route.protocol not in RPC_PROTOCOLS:  # the reason that holds whatever moto's handler does
            problem = f"{route.protocol} operations are not named as IAM actions"
        return MotoRoute(route.backend, route.protocol, route.signing_name, problem=problem)

    try:
        app = _backend_app(str(route.backend))
        request = Request(environ)
        endpoint, _ = app.create_url_adapter(request).match()
        handler = getattr(app.view_functions[endpoint], "callback", None)
    except Exception as err:  # noqa: BLE001 - no handler: moto answers 404 or 405, nothing runs
        return refused(f"moto has no handler for it ({type(err).__name__})")
    owner: Any = getattr(handler, "__self__", None)
    standard = isinstance(owner, type) and issubclass(owner, BaseResponse)
    for name in _MOTO_ENTRY_POINTS if standard else ():
        own, base = _function(getattr(owner, name)), _function(getattr(BaseResponse, name))
        if own is not base and own.__qualname__ not in _READ_OVERRIDES:
            standard = False
    if not standard or _function(handler) is not _function(BaseResponse.dispatch):
        return refused("moto answers it with its own code")
    try:
        responder = owner()
        model = get_service_model(responder.boto3_service_name)
        protocol = str(determine_request_protocol(model, request))
        operation = responder._get_action_from_request(request)
        region = str(responder.get_region_from_url(request, request.raw_url))
        actions = set(request.values.getlist("Action"))
        target = request.headers.get("X-Amz-Target")
    except Exception as err:  # noqa: BLE001 - moto fails such a request too
        return refused(f"moto cannot read it ({type(err).__name__})")
    problem = None
    if protocol not in RPC_PROTOCOLS:
        problem = f"{protocol} operations are not named as IAM actions"
    elif not operation:
        problem = "moto finds no operation in it"
    elif len(actions) > 1 or (actions and target is not None):
        problem = "it names more than one operation"
    return MotoRoute(route.backend, protocol, str(model.signing_name), region, operation or None, problem)


def _read_body(environ: dict[str, Any]) -> bytes | None:
    """The body, at most ``MAX_BODY`` bytes as ``Content-Length`` says; None when it is larger."""
    length = _content_length(environ)
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
    """The refusal in the shape the service's SDK parses, one line of text.

    query: ``ErrorResponse`` XML, 403; ec2: ``Response/Errors`` XML, 403; json: ``…Exception``, 400;
    rest-xml (S3): ``Error`` XML, 403; rest-json and the rest: JSON with ``x-amzn-ErrorType``, 403.
    """
    request_id = str(uuid.uuid4())
    status = 400 if protocol == "json" else 403
    if protocol in ("query", "ec2", "rest-xml"):
        error = f"<Code>{_xml(code)}</Code><Message>{_xml(message)}</Message>"
        if protocol == "query":
            text = (
                f"<ErrorResponse><Error><Type>Sender</Type>{error}</Error>"
                f"<RequestId>{request_id}</RequestId></ErrorResponse>"
            )
        elif protocol == "ec2":
            text = (
                f"<Response><Errors><Error>{error}</Error></Errors>"
                f"<RequestID>{request_id}</RequestID></Response>"
            )
        else:
            text = (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Error>{error}<RequestId>{request_id}</RequestId></Error>"
            )
        body, content_type = text.encode(), "text/xml"
    else:
        code = JSON_CODES.get(code, f"{code}Exception")
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
