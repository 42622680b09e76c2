"""CreateSession as IAM Roles Anywhere performs it, with IAM and STS served by moto.

Order of checks: the request's shape, the X.509 SigV4 signature (date within 5 minutes, scope,
serial, signed headers), then the same five steps ``simulate`` explains (end-entity rules, the
chain to the anchor's CAs, principal tags, the role's trust policy *as stored in IAM*, the profile
and durations), and finally STS ``AssumeRole``. A refusal answers with AWS's status, code and
message; the detailed reason goes to the sandbox log only, as with AWS.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import urllib.parse
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from roles_anywhere.bundle.ca_bundle import parse_pem_bundle
from roles_anywhere.bundle.x509_parsing import malformed
from roles_anywhere.credentials.x509_sigv4 import (
    AMZ_DATE_FORMAT,
    SERVICE,
    SignatureError,
    parse_authorization,
    verify_signature,
)
from roles_anywhere.simulate.evaluate import AWS_ERRORS, RoleTarget, certificate_findings, simulate
from roles_anywhere.stack.deployment import ROLE_ARN
from roles_anywhere.stack.spec import IAM_DEFAULT_MAX_SESSION

from ..errors import BundleError
from .api_model import ApiError
from .policy_gate import MintedSessions, SessionGrant, policy_document
from .state import SandboxState

MAX_SKEW = timedelta(minutes=5)
MAX_CHAIN = 5
log = logging.getLogger("roles_anywhere.sandbox")

# What AWS answers, by the step that failed: the same codes and messages ``simulate`` reports.
REFUSALS = {step: tuple(answer.split(": ", 1)) for step, answer in AWS_ERRORS.items()}


@dataclass(frozen=True)
class SessionRequest:
    """The parts of an HTTP request CreateSession looks at."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes


def refuse(code: str, message: str, reason: str) -> ApiError:
    """An AWS-shaped refusal; ``reason`` (the real why) is logged, not returned."""
    log.warning("CreateSession refused: %s: %s (%s)", code, message, reason)
    return ApiError(code, message)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name), None)


def _certificate(text: str, what: str) -> x509.Certificate:
    try:
        certificate = x509.load_der_x509_certificate(base64.b64decode(text.strip(), validate=True))
    except (binascii.Error, ValueError, x509.InvalidVersion):
        raise refuse("ValidationException", f"Invalid {what}", f"{what} is not base64 DER") from None
    problem = malformed(certificate)
    if problem:
        raise refuse("ValidationException", f"Invalid {what}", f"{what}: {problem}")
    return certificate


def _request_fields(request: SessionRequest) -> dict[str, Any]:
    try:
        body = json.loads(request.body or b"{}")
    except json.JSONDecodeError:
        raise refuse("ValidationException", "Invalid request body", "not JSON") from None
    if not isinstance(body, dict):
        raise refuse("ValidationException", "Invalid request body", "not a JSON object")
    query = dict(urllib.parse.parse_qsl(request.query))
    fields = {**body, **{k: v for k, v in query.items() if k in ("profileArn", "roleArn", "trustAnchorArn")}}
    for name in ("profileArn", "roleArn", "trustAnchorArn"):
        if not isinstance(fields.get(name), str):
            raise refuse("ValidationException", f"{name} is required", f"{name} missing")
    duration = fields.get("durationSeconds", 3_600)
    if not isinstance(duration, int) or isinstance(duration, bool) or not 900 <= duration <= 43_200:
        raise refuse(
            "ValidationException", "durationSeconds must be between 900 and 43200", f"got {duration!r}"
        )
    return fields


def _check_signature(
    request: SessionRequest, state: SandboxState, now: datetime
) -> tuple[x509.Certificate, list[x509.Certificate]]:
    header = _header(request.headers, "authorization")
    if header is None:
        raise refuse("AccessDeniedException", "Missing Authentication Token", "no Authorization header")
    try:
        authorization = parse_authorization(header)
    except SignatureError as err:
        raise refuse("AccessDeniedException", "Invalid signature", str(err)) from None
    amz_date = _header(request.headers, "x-amz-date") or ""
    try:
        signed_at = datetime.strptime(amz_date, AMZ_DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise refuse(
            "AccessDeniedException", "Invalid signature", "X-Amz-Date is missing or malformed"
        ) from None
    stamp = f"{signed_at:{AMZ_DATE_FORMAT}}"
    if signed_at < now - MAX_SKEW:
        raise refuse(
            "AccessDeniedException",
            f"Signature expired: {stamp} is now earlier than {now - MAX_SKEW:{AMZ_DATE_FORMAT}} "
            f"({now:{AMZ_DATE_FORMAT}} - 5 min.)",
            "date skew",
        )
    if signed_at > now + MAX_SKEW:
        raise refuse(
            "AccessDeniedException",
            f"Signature not yet current: {stamp} is still later than {now + MAX_SKEW:{AMZ_DATE_FORMAT}} "
            f"({now:{AMZ_DATE_FORMAT}} + 5 min.)",
            "date skew",
        )
    scope = (authorization.date, authorization.region, authorization.service)
    if scope != (amz_date[:8], state.region, SERVICE):
        raise refuse(
            "AccessDeniedException",
            "Invalid signature",
            f"credential scope {'/'.join(scope)} is not {amz_date[:8]}/{state.region}/{SERVICE}",
        )
    leaf_text = _header(request.headers, "x-amz-x509")
    if leaf_text is None:
        raise refuse("ValidationException", "Missing X-Amz-X509 header", "no end-entity certificate")
    leaf = _certificate(leaf_text, "X-Amz-X509 certificate")
    chain_text = _header(request.headers, "x-amz-x509-chain")
    chain = (
        [_certificate(part, "X-Amz-X509-Chain certificate") for part in chain_text.split(",")]
        if chain_text
        else []
    )
    if len(chain) > MAX_CHAIN:
        raise refuse(
            "ValidationException", f"At most {MAX_CHAIN} intermediate certificates", "chain too long"
        )
    try:
        verify_signature(
            authorization,
            certificate=leaf,
            method=request.method,
            path=request.path,
            query=request.query,
            headers=request.headers,
            body=request.body,
        )
    except SignatureError as err:
        raise refuse("AccessDeniedException", "Invalid signature", str(err)) from None
    return leaf, chain


def _role_target(iam: Any, fields: dict[str, Any], profile: dict[str, Any]) -> RoleTarget:
    role_arn = fields["roleArn"]
    if not ROLE_ARN.fullmatch(role_arn):
        raise refuse("ValidationException", f"Invalid role ARN {role_arn}", "not a role ARN")
    try:
        role = iam.get_role(RoleName=role_arn.rsplit("/", 1)[1])["Role"]
    except iam.exceptions.NoSuchEntityException:
        raise refuse(
            "AccessDeniedException", f"Unable to assume role for arn {role_arn}", "no such role"
        ) from None
    if role["Arn"] != role_arn:
        raise refuse(
            "AccessDeniedException", f"Unable to assume role for arn {role_arn}", "role path differs"
        )
    document = policy_document(role["AssumeRolePolicyDocument"])
    return RoleTarget(
        workload=role["RoleName"],
        role_arn=role_arn,
        profile_arn=profile["profileArn"],
        trust_policy=document,
        trust_policy_source=f"trust policy of {role['RoleName']} in IAM",
        profile_role_arns=tuple(profile["roleArns"]),
        profile_duration=profile["durationSeconds"],
        role_max_session=int(role.get("MaxSessionDuration") or IAM_DEFAULT_MAX_SESSION),
        requested_duration=fields.get("durationSeconds", 3_600),
        profile_enabled=profile["enabled"],
        accept_role_session_name=bool(profile.get("acceptRoleSessionName")),
        require_instance_properties=bool(profile.get("requireInstanceProperties")),
        role_session_name=fields.get("roleSessionName"),
        instance_properties=bool(fields.get("instanceProperties")),
    )


def _source_identity(leaf: x509.Certificate) -> str:
    names = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    common_name = str(names[0].value) if names else ""
    if common_name and len(common_name) <= 61:
        return f"CN={common_name}"
    return f"ID={leaf.serial_number:x}"[:64]


def create_session(
    request: SessionRequest,
    state: SandboxState,
    iam: Any,
    sts: Any,
    *,
    now: datetime | None = None,
    minted: MintedSessions | None = None,
) -> dict[str, Any]:
    """Verify, decide, mint: the 201 document, or an ``ApiError`` with AWS's answer."""
    moment = now or datetime.now(UTC)
    fields = _request_fields(request)
    leaf, chain = _check_signature(request, state, moment)
    with state.lock:
        anchor = state.anchor_by_arn(fields["trustAnchorArn"])
        profile = state.profile_by_arn(fields["profileArn"])
        anchor, profile = json.loads(json.dumps(anchor)), json.loads(json.dumps(profile))
    if anchor is None:
        raise refuse("ResourceNotFoundException", "Trust anchor not found", fields["trustAnchorArn"])
    if profile is None:
        raise refuse("ResourceNotFoundException", "Profile not found", fields["profileArn"])
    if not anchor["enabled"]:
        raise refuse("AccessDeniedException", "Trust anchor is disabled", anchor["trustAnchorArn"])
    if profile.get("requireInstanceProperties") and not fields.get("instanceProperties"):
        raise refuse(
            "AccessDeniedException",
            "Instance properties are required by this profile",
            "no instanceProperties",
        )
    if "roleSessionName" in fields and not profile.get("acceptRoleSessionName"):
        raise refuse(
            "ValidationException",
            "roleSessionName is not accepted by this profile",
            "acceptRoleSessionName false",
        )
    try:
        anchors = parse_pem_bundle(
            anchor["source"]["sourceData"]["x509CertificateData"], key="trust anchor", now=moment
        ).certificates
    except BundleError as err:
        raise refuse("AccessDeniedException", "Untrusted signing certificate", str(err)) from None
    findings = certificate_findings(leaf, chain, [ca.certificate for ca in anchors], moment)
    target = _role_target(iam, fields, profile)
    (verdict,) = simulate(findings, [target], anchor["trustAnchorArn"])
    failed = verdict.failed_step
    if failed is not None:
        code, message = REFUSALS[failed.name]
        reasons = "; ".join(d.removeprefix("✗ ") for d in failed.details if d.startswith("✗ "))
        raise refuse(code, message, reasons)
    duration = min(target.requested_duration, target.profile_duration)
    tags = [{"Key": key, "Value": value} for key, value in sorted(findings.tags.tags.items())]
    identity = _source_identity(leaf)
    session_limits: dict[str, Any] = {}
    if profile.get("managedPolicyArns"):
        session_limits["PolicyArns"] = [{"arn": arn} for arn in profile["managedPolicyArns"]]
    if profile.get("sessionPolicy"):
        session_limits["Policy"] = profile["sessionPolicy"]
    session_name = fields.get("roleSessionName") or f"{leaf.serial_number:x}"[:64]
    assumed = sts.assume_role(
        RoleArn=target.role_arn,
        RoleSessionName=session_name,
        DurationSeconds=duration,
        Tags=tags,
        SourceIdentity=identity,
        **session_limits,
    )
    credentials = assumed["Credentials"]
    if minted is not None:  # the policy gate in front of moto decides what these credentials may do
        minted.record(
            credentials["AccessKeyId"],
            SessionGrant(
                role_arn=target.role_arn,
                session_name=session_name,
                expiration=credentials["Expiration"].astimezone(UTC),
                session_policy=session_limits.get("Policy"),
                session_policy_arns=tuple(p["arn"] for p in session_limits.get("PolicyArns", ())),
                tags=dict(findings.tags.tags),
                source_identity=identity,
                secret_access_key=credentials["SecretAccessKey"],  # the gate verifies signatures with it
                session_token=credentials["SessionToken"],
            ),
        )
    log.info("CreateSession: %s assumed %s for %d s", identity, target.role_arn, duration)
    return {
        "credentialSet": [
            {
                "assumedRoleUser": {
                    "arn": assumed["AssumedRoleUser"]["Arn"],
                    "assumedRoleId": assumed["AssumedRoleUser"]["AssumedRoleId"],
                },
                "credentials": {
                    "accessKeyId": credentials["AccessKeyId"],
                    "secretAccessKey": credentials["SecretAccessKey"],
                    "sessionToken": credentials["SessionToken"],
                    "expiration": credentials["Expiration"]
                    .astimezone(UTC)
                    .isoformat()
                    .replace("+00:00", "Z"),
                },
                "packedPolicySize": assumed.get("PackedPolicySize", 0),
                "roleArn": target.role_arn,
                "sourceIdentity": identity,
            }
        ],
        "subjectArn": state.arn("subject", str(uuid.uuid5(uuid.NAMESPACE_OID, str(leaf.subject)))),
    }
