"""Shared Roles Anywhere profiles: workloads with equal profile settings share one (issue 14).

Why sharing widens nothing: a profile only names the roles it may vend and the session settings; who
may assume a role is decided by the role's trust policy (``StringEquals`` on the SPIFFE ID, ``ArnEquals``
on the anchor). An SVID for workload A presented with B's role in a shared profile is refused by B's
trust policy, exactly as with one profile per workload.

Assignment is stable without any state: within a settings group, a workload's profile is chosen by
jump consistent hashing (Lamping and Veach, 2014) of its name into ``ceil(n / 200)`` buckets. Adding or
removing a workload moves no other workload unless the group's bucket count changes (it crosses a
multiple of 200), and then only the ~1/b share the new bucket takes moves. Each profile lists at most
250 roles (the API's limit); should hashing ever overfill one, the group takes one more bucket.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from roles_anywhere.stack.spec import ProfileSettings, Workload

MAX_ROLES_PER_PROFILE = 250  # roleArns per profile: a hard API limit
TARGET_ROLES_PER_PROFILE = 200  # headroom under the limit, so hashing never needs to overfill


@dataclass(frozen=True)
class SharedProfile:
    """One shared profile: its AWS name, its settings, and the workloads whose roles it lists."""

    name: str
    settings_digest: str
    bucket: int
    settings: ProfileSettings
    workloads: tuple[str, ...]


def settings_digest(settings: ProfileSettings) -> str:
    """A short, stable name for a group of equal settings (part of the profile's name)."""
    canonical = json.dumps(asdict(settings), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:10]


def jump_hash(key: int, buckets: int) -> int:
    """Jump consistent hash: a bucket in ``range(buckets)``; growing ``buckets`` moves only 1/n keys."""
    chosen, candidate = -1, 0
    key &= 0xFFFFFFFFFFFFFFFF
    while candidate < buckets:
        chosen = candidate
        key = (key * 2862933555777941757 + 1) & 0xFFFFFFFFFFFFFFFF
        candidate = int((chosen + 1) * ((1 << 31) / ((key >> 33) + 1)))
    return chosen


def _key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")


def share_profiles(workloads: Iterable[Workload], name_prefix: str) -> tuple[SharedProfile, ...]:
    """Group workloads by profile settings and spread each group over as few profiles as stability allows."""
    groups: dict[ProfileSettings, list[str]] = {}
    for workload in workloads:
        groups.setdefault(workload.profile, []).append(workload.name)
    profiles: list[SharedProfile] = []
    for settings, names in groups.items():
        digest = settings_digest(settings)
        buckets = max(1, math.ceil(len(names) / TARGET_ROLES_PER_PROFILE))
        while True:
            members: dict[int, list[str]] = {}
            for name in sorted(names):
                members.setdefault(jump_hash(_key(name), buckets), []).append(name)
            if max(len(listed) for listed in members.values()) <= MAX_ROLES_PER_PROFILE:
                break
            buckets += 1
        profiles += [
            SharedProfile(f"{name_prefix}shared-{digest}-{bucket}", digest, bucket, settings, tuple(listed))
            for bucket, listed in sorted(members.items())
        ]
    return tuple(sorted(profiles, key=lambda profile: profile.name))
