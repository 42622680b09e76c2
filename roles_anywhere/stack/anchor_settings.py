"""Trust anchor settings that must be pinned: AWS defaults drift, and a change replaces the anchor."""

from __future__ import annotations

from typing import Any

from roles_anywhere.stack.spec import TrustAnchorSettings

CA_EXPIRY_EVENT = "CA_CERTIFICATE_EXPIRY"
END_ENTITY_EXPIRY_EVENT = "END_ENTITY_CERTIFICATE_EXPIRY"
CHANNEL_ALL = "ALL"


THRESHOLD_KEYS = {
    "caExpiryNotificationDays": "ca_expiry_notification_days",
    "certificateExpiryNotificationDays": "certificate_expiry_notification_days",
}


def threshold_drift(settings: TrustAnchorSettings, deployed: Any, source: str) -> list[str]:
    """A warning per notification threshold the config changes from the deployed stack's outputs.

    Such a change replaces the anchor in the provider pulumi-aws bridges; a protected anchor refuses
    it, an unprotected one comes back with a new ARN that no trust policy or client config names.
    """
    if deployed is None:
        return [
            f"{source} has no trustAnchor output (deployed before it was exported): the notification "
            "thresholds cannot be compared; run pulumi up once with unchanged thresholds first"
        ]
    return [
        f"trustAnchor.{key}: {getattr(settings, field)} in the config, {getattr(deployed, field)} in the "
        f"deployed stack ({source}); changing a notification threshold replaces the trust anchor (a new "
        "ARN breaks every trust policy), which protect: true refuses: keep "
        f"{getattr(deployed, field)}, or plan the replacement"
        for key, field in THRESHOLD_KEYS.items()
        if getattr(settings, field) != getattr(deployed, field)
    ]


def notification_settings(settings: TrustAnchorSettings) -> list[dict[str, Any]]:
    """Both expiry notifications, explicit and enabled.

    Left unset, AWS fills in its defaults and the provider later sees a difference; in the
    Terraform provider pulumi-aws bridges, any change here forces a new anchor (a new ARN, which
    breaks every role's ``aws:SourceArn`` condition). So we always state all of them.
    """
    return [
        {
            "event": CA_EXPIRY_EVENT,
            "threshold": settings.ca_expiry_notification_days,
            "enabled": True,
            "channel": CHANNEL_ALL,
        },
        {
            "event": END_ENTITY_EXPIRY_EVENT,
            "threshold": settings.certificate_expiry_notification_days,
            "enabled": True,
            "channel": CHANNEL_ALL,
        },
    ]
