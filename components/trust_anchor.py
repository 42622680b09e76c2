"""The Roles Anywhere trust anchor holding the Teleport cluster's SPIFFE CA bundle."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from roles_anywhere import TRUST_ANCHOR_TYPE
from roles_anywhere.config.ownership import Adoption
from roles_anywhere.stack.anchor_settings import notification_settings
from roles_anywhere.stack.spec import TrustAnchorSettings

from .adoption import after_ownership_check


@dataclass
class TrustAnchorArgs:
    """The validated bundle and the pinned anchor settings."""

    bundle_pem: pulumi.Input[str]  # validated PEM, or an Output of it
    settings: TrustAnchorSettings
    tags: Mapping[str, str] = field(default_factory=dict)
    import_id: str | None = None  # a hand-made anchor to adopt (its ID), instead of creating one
    adoption: Adoption | None = None  # with import_id: whose it must be (checked on its tags first)


class TrustAnchor(pulumi.ComponentResource):
    """One ``CERTIFICATE_BUNDLE`` trust anchor, protected so no config change can replace it silently.

    Protection makes ``pulumi up`` refuse both deletion and replacement (which would mint a new ARN
    and break every trust policy); a bundle change is an in-place update that keeps the ARN.
    """

    arn: pulumi.Output[str]
    anchor_id: pulumi.Output[str]

    def __init__(self, name: str, args: TrustAnchorArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TRUST_ANCHOR_TYPE, name, None, opts)
        anchor_name: pulumi.Input[str] = args.settings.name
        if args.import_id is not None and args.adoption is not None:
            existing = aws.rolesanywhere.TrustAnchor.get(
                f"{name}-existing", args.import_id, opts=pulumi.ResourceOptions(parent=self)
            )
            anchor_name = after_ownership_check(
                args.adoption, (existing.tags, existing.tags_all), args.settings.name
            )
        self.anchor = aws.rolesanywhere.TrustAnchor(
            f"{name}-anchor",
            name=anchor_name,
            enabled=True,
            source=aws.rolesanywhere.TrustAnchorSourceArgs(
                source_type="CERTIFICATE_BUNDLE",
                source_data=aws.rolesanywhere.TrustAnchorSourceSourceDataArgs(
                    x509_certificate_data=args.bundle_pem,
                ),
            ),
            notification_settings=[
                aws.rolesanywhere.TrustAnchorNotificationSettingArgs(**setting)
                for setting in notification_settings(args.settings)
            ],
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self, protect=args.settings.protect, import_=args.import_id),
        )
        self.arn = self.anchor.arn
        self.anchor_id = self.anchor.id
        self.register_outputs({"arn": self.arn, "id": self.anchor_id})
