"""The sandbox's Roles Anywhere resources: trust anchors, profiles and tags, optionally on disk.

Resources are kept in the API's own shape (the botocore model's member names), so the control
plane returns them as they are. With a state directory every change is written atomically, so a
restarted sandbox has the same resources and ARNs.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

STATE_FILE = "rolesanywhere.json"


def timestamp() -> str:
    """Now, as the ISO-8601 text botocore parses into a datetime."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class SandboxState:
    """Every trust anchor and profile by id, tags by ARN; ``lock`` guards all of it."""

    region: str
    account_id: str
    directory: Path | None = None
    trust_anchors: dict[str, dict[str, Any]] = field(default_factory=dict)
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def arn(self, kind: str, resource_id: str) -> str:
        """``arn:aws:rolesanywhere:<region>:<account>:<kind>/<id>``."""
        return f"arn:aws:rolesanywhere:{self.region}:{self.account_id}:{kind}/{resource_id}"

    @staticmethod
    def new_id() -> str:
        """A fresh resource id, shaped like AWS's (a UUID)."""
        return str(uuid.uuid4())

    def anchor_by_arn(self, arn: str) -> dict[str, Any] | None:
        """The trust anchor with this ARN, if any."""
        return next((a for a in self.trust_anchors.values() if a["trustAnchorArn"] == arn), None)

    def profile_by_arn(self, arn: str) -> dict[str, Any] | None:
        """The profile with this ARN, if any."""
        return next((p for p in self.profiles.values() if p["profileArn"] == arn), None)

    def resource_exists(self, arn: str) -> bool:
        """Whether ``arn`` names a trust anchor or profile of this sandbox."""
        return self.anchor_by_arn(arn) is not None or self.profile_by_arn(arn) is not None

    def save(self) -> None:
        """Write the state atomically (temp file, fsync, rename) when a directory was given."""
        if self.directory is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        document = {
            "region": self.region,
            "accountId": self.account_id,
            "trustAnchors": self.trust_anchors,
            "profiles": self.profiles,
            "tags": self.tags,
        }
        handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=".state-")
        with os.fdopen(handle, "w") as stream:
            json.dump(document, stream, indent=2, sort_keys=True)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, self.directory / STATE_FILE)

    @classmethod
    def load(cls, region: str, account_id: str, directory: Path | None) -> SandboxState:
        """A state from ``directory`` if it holds one for the same region and account, else empty."""
        state = cls(region=region, account_id=account_id, directory=directory)
        path = directory / STATE_FILE if directory else None
        if path is None or not path.exists():
            return state
        document = json.loads(path.read_text())
        if (document.get("region"), document.get("accountId")) != (region, account_id):
            raise ValueError(
                f"{path} holds a sandbox for {document.get('region')}/{document.get('accountId')}, "
                f"not {region}/{account_id}"
            )
        state.trust_anchors = document.get("trustAnchors", {})
        state.profiles = document.get("profiles", {})
        state.tags = document.get("tags", {})
        return state
