"""Trust anchor settings that must be pinned: AWS defaults drift, and a change replaces the anchor."""

from __future__ import annotations

from typing import Any

from .spec import TrustAnchorSettings

CA_EXPIRY_EVENT = "CA_CERTIFICATE_EXPIRY"
END_ENTITY_EXPIRY_EVENT = "END_ENTITY_CERTIFICATE_EXPIRY"
CHANNEL_ALL = "ALL"


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
