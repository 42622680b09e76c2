"""The control-plane operations: trust anchors, profiles, tags and notification settings.

Each handler takes the parsed, model-validated input and returns the output document; errors are
``ApiError`` with the model's codes. The trust anchor's bundle goes through this project's own
bundle rules (≤ 2 certificates, ≤ 8,000 characters, CA:TRUE, keyCertSign, SHA-256+).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from roles_anywhere.bundle.ca_bundle import parse_pem_bundle

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


@dataclass(frozen=True)
class Kind:
    """What differs between trust anchors and profiles in the API: names of fields and collections."""

    label: str
    id_param: str
    arn_key: str
    item_key: str
    list_key: str
    collection: str

    def items(self, state: SandboxState) -> dict[str, dict[str, Any]]:
        """The state's resources of this kind, by id."""
        items: dict[str, dict[str, Any]] = getattr(state, self.collection)
        return items

    def find(self, state: SandboxState, params: dict[str, Any]) -> dict[str, Any]:
        """The resource named by its id (or ARN) in ``params``; ``ResourceNotFoundException`` if none."""
        key = params[self.id_param]
        items = self.items(state)
        found = items.get(key) or next((r for r in items.values() if r[self.arn_key] == key), None)
        if found is None:
            raise ApiError("ResourceNotFoundException", f"{self.label} {key} not found")
        return found


TRUST_ANCHOR = Kind(
    "Trust anchor", "trustAnchorId", "trustAnchorArn", "trustAnchor", "trustAnchors", "trust_anchors"
)
PROFILE = Kind("Profile", "profileId", "profileArn", "profile", "profiles", "profiles")


def _getter(kind: Kind) -> Handler:
    def get(state: SandboxState, params: dict[str, Any]) -> dict[str, Any]:
        return {kind.item_key: kind.find(state, params)}

    return get


def _deleter(kind: Kind) -> Handler:
    def delete(state: SandboxState, params: dict[str, Any]) -> dict[str, Any]:
        resource = kind.find(state, params)
        del kind.items(state)[resource[kind.id_param]]
        state.tags.pop(resource[kind.arn_key], None)
        return {kind.item_key: resource}  # AWS answers with the deleted resource

    return delete


def _lister(kind: Kind) -> Handler:
    def list_all(state: SandboxState, params: dict[str, Any]) -> dict[str, Any]:
        items = sorted(kind.items(state).values(), key=lambda r: r["createdAt"])
        return _page(items, params, kind.list_key)

    return list_all


def _enabler(kind: Kind, enabled: bool) -> Handler:
    def set_enabled(state: SandboxState, params: dict[str, Any]) -> dict[str, Any]:
        resource = kind.find(state, params)
        resource.update(enabled=enabled, updatedAt=timestamp())
        return {kind.item_key: resource}

    return set_enabled


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
    anchor = TRUST_ANCHOR.find(state, params)
    if "source" in params:
        anchor["source"] = _check_source(params["source"])
    if "name" in params:
        anchor["name"] = params["name"]
    anchor["updatedAt"] = timestamp()
    return {"trustAnchor": anchor}


def put_notification_settings(state: SandboxState, params: dict[str, Any]) -> dict[str, Any]:
    """PutNotificationSettings: change the given (event, channel) settings."""
    anchor = TRUST_ANCHOR.find(state, params)
    anchor["notificationSettings"] = _apply_notifications(
        anchor["notificationSettings"], params["notificationSettings"], state.account_id
    )
    anchor["updatedAt"] = timestamp()
    return {"trustAnchor": anchor}


def reset_notification_settings(state: SandboxState, params: dict[str, Any]) -> dict[str, Any]:
    """ResetNotificationSettings: back to AWS's defaults for the given keys."""
    anchor = TRUST_ANCHOR.find(state, params)
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
    profile = PROFILE.find(state, params)
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
    "GetTrustAnchor": _getter(TRUST_ANCHOR),
    "UpdateTrustAnchor": update_trust_anchor,
    "DeleteTrustAnchor": _deleter(TRUST_ANCHOR),
    "ListTrustAnchors": _lister(TRUST_ANCHOR),
    "EnableTrustAnchor": _enabler(TRUST_ANCHOR, True),
    "DisableTrustAnchor": _enabler(TRUST_ANCHOR, False),
    "PutNotificationSettings": put_notification_settings,
    "ResetNotificationSettings": reset_notification_settings,
    "CreateProfile": create_profile,
    "GetProfile": _getter(PROFILE),
    "UpdateProfile": update_profile,
    "DeleteProfile": _deleter(PROFILE),
    "ListProfiles": _lister(PROFILE),
    "EnableProfile": _enabler(PROFILE, True),
    "DisableProfile": _enabler(PROFILE, False),
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
