"""The control-plane operations: trust anchors, profiles, tags and notification settings.

Each handler takes the parsed, model-validated input and returns the output document; errors are
``ApiError`` with the model's codes. The trust anchor's bundle goes through this project's own
bundle rules (≤ 2 certificates, ≤ 8,000 characters, CA:TRUE, keyCertSign, SHA-256+).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from ..bundle import parse_pem_bundle
from ..errors import BundleError
from .api_model import ApiError
from .state import SandboxState, timestamp

Handler = Callable[[SandboxState, dict[str, Any]], dict[str, Any]]
NOTIFICATION_EVENTS = ("CA_CERTIFICATE_EXPIRY", "END_ENTITY_CERTIFICATE_EXPIRY")
DEFAULT_THRESHOLD = 45
AWS_CONFIGURED = "rolesanywhere.amazonaws.com"
DEFAULT_PAGE_SIZE = 50
MAX_TAGS = 200


def _default_notifications() -> list[dict[str, Any]]:
    return [
        {
            "enabled": True,
            "event": event,
            "threshold": DEFAULT_THRESHOLD,
            "channel": "ALL",
            "configuredBy": AWS_CONFIGURED,
        }
        for event in NOTIFICATION_EVENTS
    ]


def _apply_notifications(
    current: list[dict[str, Any]], changes: list[dict[str, Any]], account: str
) -> list[dict[str, Any]]:
    result = {(s["event"], s["channel"]): s for s in copy.deepcopy(current)}
    for change in changes:
        channel = change.get("channel", "ALL")
        setting = result.get((change["event"], channel), {"event": change["event"], "channel": channel})
        setting.update(
            enabled=change["enabled"],
            threshold=change.get("threshold", setting.get("threshold", DEFAULT_THRESHOLD)),
            configuredBy=account,
        )
        result[(change["event"], channel)] = setting
    return [result[key] for key in sorted(result)]


def _check_source(source: dict[str, Any]) -> dict[str, Any]:
    if source.get("sourceType") != "CERTIFICATE_BUNDLE":
        raise ApiError(
            "ValidationException",
            f"sourceType {source.get('sourceType')!r} is not supported by the sandbox; "
            "use CERTIFICATE_BUNDLE",
        )
    data = source.get("sourceData", {}).get("x509CertificateData")
    if not data:
        raise ApiError("ValidationException", "source.sourceData.x509CertificateData is required")
    try:
        parse_pem_bundle(data, key="source.sourceData.x509CertificateData")
    except BundleError as err:
        raise ApiError("ValidationException", str(err)) from None
    return {"sourceType": "CERTIFICATE_BUNDLE", "sourceData": {"x509CertificateData": data}}


def _anchor(state: SandboxState, params: dict[str, Any]) -> dict[str, Any]:
    key = params["trustAnchorId"]
    anchor = state.trust_anchors.get(key) or state.anchor_by_arn(key)
    if anchor is None:
        raise ApiError("ResourceNotFoundException", f"Trust anchor {key} not found")
    return anchor


def _profile(state: SandboxState, params: dict[str, Any]) -> dict[str, Any]:
    key = params["profileId"]
    profile = state.profiles.get(key) or state.profile_by_arn(key)
    if profile is None:
        raise ApiError("ResourceNotFoundException", f"Profile {key} not found")
    return profile


def _tags_of(params: dict[str, Any]) -> dict[str, str]:
    return {tag["key"]: tag["value"] for tag in params.get("tags", [])}


def _page(items: list[dict[str, Any]], params: dict[str, Any], key: str) -> dict[str, Any]:
    start = int(params.get("nextToken") or 0) if str(params.get("nextToken") or "0").isdigit() else -1
    if start < 0:
        raise ApiError("ValidationException", "nextToken is not a token this sandbox issued")
    size = params.get("pageSize") or DEFAULT_PAGE_SIZE
    document: dict[str, Any] = {key: items[start : start + size]}
    if start + size < len(items):
        document["nextToken"] = str(start + size)
    return document


def create_trust_anchor(state: SandboxState, params: dict[str, Any]) -> dict[str, Any]:
    """CreateTrustAnchor: validated bundle, AWS's default notifications unless given."""
    source = _check_source(params["source"])
    anchor_id = state.new_id()
    now = timestamp()
    anchor = {
        "trustAnchorId": anchor_id,
        "trustAnchorArn": state.arn("trust-anchor", anchor_id),
        "name": params["name"],
        "source": source,
        "enabled": params.get("enabled", False),
        "createdAt": now,
        "updatedAt": now,
        "notificationSettings": _apply_notifications(
            _default_notifications(), params.get("notificationSettings", []), state.account_id
        ),
    }
    state.trust_anchors[anchor_id] = anchor
    state.tags[anchor["trustAnchorArn"]] = _tags_of(params)
    return {"trustAnchor": anchor}


def update_trust_anchor(state: SandboxState, params: dict[str, Any]) -> dict[str, Any]:
    """UpdateTrustAnchor: name and bundle change in place; the ARN stays."""
    anchor = _anchor(state, params)
    if "source" in params:
        anchor["source"] = _check_source(params["source"])
    if "name" in params:
        anchor["name"] = params["name"]
    anchor["updatedAt"] = timestamp()
    return {"trustAnchor": anchor}


def _set_anchor_enabled(enabled: bool) -> Handler:
    def handler(state: SandboxState, params: dict[str, Any]) -> dict[str, Any]:
        anchor = _anchor(state, params)
        anchor.update(enabled=enabled, updatedAt=timestamp())
        return {"trustAnchor": anchor}

    return handler


def get_trust_anchor(state: SandboxState, params: dict[str, Any]) -> dict[str, Any]:
    """GetTrustAnchor."""
    return {"trustAnchor": _anchor(state, params)}


def delete_trust_anchor(state: SandboxState, params: dict[str, Any]) -> dict[str, Any]:
    """DeleteTrustAnchor: returns the deleted anchor, as AWS does."""
    anchor = _anchor(state, params)
    del state.trust_anchors[anchor["trustAnchorId"]]
    state.tags.pop(anchor["trustAnchorArn"], None)
    return {"trustAnchor": anchor}


def list_trust_anchors(state: SandboxState, params: dict[str, Any]) -> dict[str, Any]:
    """ListTrustAnchors, paginated by ``pageSize``/``nextToken``."""
    return _page(sorted(state.trust_anchors.values(), key=lambda a: a["createdAt"]), params, "trustAnchors")


def put_notification_settings(state: SandboxState, params: dict[str, Any]) -> dict[str, Any]:
    """PutNotificationSettings: change the given (event, channel) settings."""
    anchor = _anchor(state, params)
    anchor["notificationSettings"] = _apply_notifications(
        anchor["notificationSettings"], params["notificationSettings"], state.account_id
    )
    anchor["updatedAt"] = timestamp()
    return {"trustAnchor": anchor}


def reset_notification_settings(state: SandboxState, params: dict[str, Any]) -> dict[str, Any]:
    """ResetNotificationSettings: back to AWS's defaults for the given keys."""
    anchor = _anchor(state, params)
    defaults = {(s["event"], s["channel"]): s for s in _default_notifications()}
    keys = {(k["event"], k.get("channel", "ALL")) for k in params["notificationSettingKeys"]}
    anchor["notificationSettings"] = [
        defaults.get((s["event"], s["channel"]), s) if (s["event"], s["channel"]) in keys else s
        for s in anchor["notificationSettings"]
    ]
    anchor["updatedAt"] = timestamp()
    return {"trustAnchor": anchor}


def create_profile(state: SandboxState, params: dict[str, Any]) -> dict[str, Any]:
    """CreateProfile: roles, duration (default 3,600 s) and session settings."""
    profile_id = state.new_id()
    now = timestamp()
    profile = {
        "profileId": profile_id,
        "profileArn": state.arn("profile", profile_id),
        "name": params["name"],
        "requireInstanceProperties": params.get("requireInstanceProperties", False),
        "enabled": params.get("enabled", False),
        "createdBy": f"arn:aws:iam::{state.account_id}:root",
        "roleArns": params["roleArns"],
        "managedPolicyArns": params.get("managedPolicyArns", []),
        "createdAt": now,
        "updatedAt": now,
        "durationSeconds": params.get("durationSeconds", 3_600),
        "acceptRoleSessionName": params.get("acceptRoleSessionName", False),
    }
    if "sessionPolicy" in params:
        profile["sessionPolicy"] = params["sessionPolicy"]
    state.profiles[profile_id] = profile
    state.tags[profile["profileArn"]] = _tags_of(params)
    return {"profile": profile}


def update_profile(state: SandboxState, params: dict[str, Any]) -> dict[str, Any]:
    """UpdateProfile: any of the settings CreateProfile takes, except tags."""
    profile = _profile(state, params)
    for key in (
        "name",
        "roleArns",
        "managedPolicyArns",
        "durationSeconds",
        "sessionPolicy",
        "acceptRoleSessionName",
    ):
        if key in params:
            profile[key] = params[key]
    profile["updatedAt"] = timestamp()
    return {"profile": profile}


def _set_profile_enabled(enabled: bool) -> Handler:
    def handler(state: SandboxState, params: dict[str, Any]) -> dict[str, Any]:
        profile = _profile(state, params)
        profile.update(enabled=enabled, updatedAt=timestamp())
        return {"profile": profile}

    return handler


def get_profile(state: SandboxState, params: dict[str, Any]) -> dict[str, Any]:
    """GetProfile."""
    return {"profile": _profile(state, params)}


def delete_profile(state: SandboxState, params: dict[str, Any]) -> dict[str, Any]:
    """DeleteProfile."""
    profile = _profile(state, params)
    del state.profiles[profile["profileId"]]
    state.tags.pop(profile["profileArn"], None)
    return {"profile": profile}


def list_profiles(state: SandboxState, params: dict[str, Any]) -> dict[str, Any]:
    """ListProfiles, paginated."""
    return _page(sorted(state.profiles.values(), key=lambda p: p["createdAt"]), params, "profiles")


def _tagged(state: SandboxState, arn: str) -> dict[str, str]:
    if not state.resource_exists(arn):
        raise ApiError("ResourceNotFoundException", f"Resource {arn} not found")
    return state.tags.setdefault(arn, {})


def tag_resource(state: SandboxState, params: dict[str, Any]) -> dict[str, Any]:
    """TagResource: add or overwrite tags; more than 200 in all is ``TooManyTagsException``."""
    tags = _tagged(state, params["resourceArn"])
    merged = {**tags, **_tags_of(params)}
    if len(merged) > MAX_TAGS:
        raise ApiError("TooManyTagsException", f"A resource can have at most {MAX_TAGS} tags")
    tags.update(merged)
    return {}


def untag_resource(state: SandboxState, params: dict[str, Any]) -> dict[str, Any]:
    """UntagResource."""
    tags = _tagged(state, params["resourceArn"])
    for key in params["tagKeys"]:
        tags.pop(key, None)
    return {}


def list_tags_for_resource(state: SandboxState, params: dict[str, Any]) -> dict[str, Any]:
    """ListTagsForResource."""
    tags = _tagged(state, params["resourceArn"])
    return {"tags": [{"key": key, "value": value} for key, value in sorted(tags.items())]}


HANDLERS: dict[str, Handler] = {
    "CreateTrustAnchor": create_trust_anchor,
    "GetTrustAnchor": get_trust_anchor,
    "UpdateTrustAnchor": update_trust_anchor,
    "DeleteTrustAnchor": delete_trust_anchor,
    "ListTrustAnchors": list_trust_anchors,
    "EnableTrustAnchor": _set_anchor_enabled(True),
    "DisableTrustAnchor": _set_anchor_enabled(False),
    "PutNotificationSettings": put_notification_settings,
    "ResetNotificationSettings": reset_notification_settings,
    "CreateProfile": create_profile,
    "GetProfile": get_profile,
    "UpdateProfile": update_profile,
    "DeleteProfile": delete_profile,
    "ListProfiles": list_profiles,
    "EnableProfile": _set_profile_enabled(True),
    "DisableProfile": _set_profile_enabled(False),
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
    "ListTagsForResource": list_tags_for_resource,
}
MUTATING = frozenset(HANDLERS) - {
    "GetTrustAnchor",
    "ListTrustAnchors",
    "GetProfile",
    "ListProfiles",
    "ListTagsForResource",
}
