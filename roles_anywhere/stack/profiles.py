"""Shared Roles Anywhere profiles, and why a workload never moves between them (issues 14 and 22).

Why sharing widens nothing: a profile only names the roles it may vend and the session settings; who
may assume a role is decided by the role's trust policy (``StringEquals`` on the SPIFFE ID, ``ArnEquals``
on the anchor). An SVID for workload A presented with B's role in a shared profile is refused by B's
trust policy, exactly as with one profile per workload.

Why moves matter: a host's ``aws/config`` names its profile's ARN. Move a role to another profile and
the old profile stops vending it, so the host gets ``AccessDenied`` until the file rendered by the new
deploy reaches it. A purely stateless assignment (jump consistent hashing of the name into
``ceil(n / 200)`` buckets) moved about half of a group at every multiple of 200 (98 of 200 measured).

So the assignment is **sticky**: a workload stays in the shared profile the previous deployment's
stack outputs put it in (``workloads.<w>.profileArn`` with ``sharedProfiles``, profile name → ARN), as
long as its profile settings are unchanged. Only workloads without a previous place (new ones, or
ones whose settings changed) are placed: in their jump-hash bucket among ``ceil(n / 200)``, or, when
that bucket already lists 200 roles, in the bucket with the fewest. Buckets are never merged or
renumbered, so a group that shrinks may keep more profiles than ``ceil(n / 200)``; each lists at most
250 roles (the API's limit). Without previous outputs (a first deploy, or outputs from before they
recorded ``sharedProfiles``) the assignment is the stateless one, which is what earlier versions
deployed, so upgrading moves nothing by itself.

A profile is identified by its settings digest and bucket (its logical name is
``<federation>-profile-<digest>-<bucket>``), not by its ARN: the offline plan predicts ARNs, a deploy
keeps them. The same digest and bucket before and after is the same resource, so the same ARN.

What still moves a workload, and is named by ``plan --stack-outputs`` and warned about by the program:
a change of its own profile settings (another group, so another profile: keeping the role in the old
one would keep vending it with the settings the change meant to replace), and a change of
``profileSharing``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from roles_anywhere.config.model import MAX_WORKLOADS
from roles_anywhere.errors import ConfigError
from roles_anywhere.stack.spec import ProfileSettings, Workload

MAX_ROLES_PER_PROFILE = 250  # roleArns per profile: a hard API limit
TARGET_ROLES_PER_PROFILE = 200  # headroom under the limit, so hashing never needs to overfill
SHARED_PROFILES = "sharedProfiles"  # stack output: shared profile name -> ARN ({} with perWorkload)
# A shared profile's name ends in shared-<10 hex digits of the settings digest>-<bucket>; the
# prefix before it is the stack's namePrefix, which may change without replacing the profile.
_SHARED_NAME = re.compile(r"shared-(?P<digest>[0-9a-f]{10})-(?P<bucket>0|[1-9][0-9]{0,3})\Z")
_MOVES_NAMED = 5  # workloads named in the program's one-line warning (plan lists all of them)


@dataclass(frozen=True)
class SharedProfile:
    """One shared profile: its AWS name, its settings, and the workloads whose roles it lists."""

    name: str
    settings_digest: str
    bucket: int
    settings: ProfileSettings
    workloads: tuple[str, ...]


@dataclass(frozen=True, order=True)
class Placement:
    """Which shared profile a workload's role is in: the settings group's digest and the bucket."""

    digest: str
    bucket: int

    def suffix(self) -> str:
        """The profile name without the stack's ``namePrefix``."""
        return f"shared-{self.digest}-{self.bucket}"


@dataclass(frozen=True)
class PreviousProfiles:
    """Where the previous deployment's stack outputs put each workload's role.

    ``placements`` holds workloads that were in a shared profile; any other workload of ``arns`` had
    its own profile. ``recorded`` is false for outputs from before ``sharedProfiles`` was exported:
    then no workload can be placed (an ARN alone does not say which profile it is).
    """

    arns: Mapping[str, str]  # workload -> its previous profile ARN
    names: Mapping[Placement, str]  # shared profile -> its previous full name
    profile_arns: Mapping[Placement, str]  # shared profile -> its ARN
    placements: Mapping[str, Placement]
    recorded: bool


@dataclass(frozen=True)
class ProfileMove:
    """A workload whose profile (and so the profile ARN in its ``aws/config``) changes."""

    workload: str
    before: Placement | None  # None: its own profile
    after: Placement | None
    previous_arn: str
    previous_name: str  # the previous shared profile's name, or "" for its own profile
    reason: str

    def to_json(self, *, after_name: str, after_arn: str | None) -> dict[str, Any]:
        """The ``profileMoves`` entry of ``plan --json``."""
        return {
            "workload": self.workload,
            "from": {"profile": self.previous_name or None, "arn": self.previous_arn},
            "to": {"profile": after_name, "arn": after_arn},
            "reason": self.reason,
        }


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


def share_profiles(
    workloads: Iterable[Workload], name_prefix: str, previous: Mapping[str, Placement] | None = None
) -> tuple[SharedProfile, ...]:
    """Group workloads by profile settings and spread each group over as few profiles as stability allows.

    ``previous``: where the last deployment put each workload (``PreviousProfiles.placements``);
    a workload stays there while its settings are unchanged (see the module docstring).
    """
    groups: dict[ProfileSettings, list[str]] = {}
    for workload in workloads:
        groups.setdefault(workload.profile, []).append(workload.name)
    profiles: list[SharedProfile] = []
    for settings, names in groups.items():
        digest = settings_digest(settings)
        kept = {
            name: place.bucket
            for name in names
            if previous is not None and (place := previous.get(name)) is not None and place.digest == digest
        }
        members = _sticky(sorted(names), kept) if kept else _stateless(sorted(names))
        profiles += [
            SharedProfile(f"{name_prefix}shared-{digest}-{bucket}", digest, bucket, settings, tuple(listed))
            for bucket, listed in sorted(members.items())
        ]
    return tuple(sorted(profiles, key=lambda profile: profile.name))


def _buckets(count: int) -> int:
    return max(1, math.ceil(count / TARGET_ROLES_PER_PROFILE))


def _stateless(names: list[str]) -> dict[int, list[str]]:
    """Jump hashing into ``ceil(n / 200)`` buckets, one more while hashing overfills one (never seen)."""
    buckets = _buckets(len(names))
    while True:
        members: dict[int, list[str]] = {}
        for name in names:
            members.setdefault(jump_hash(_key(name), buckets), []).append(name)
        if max(len(listed) for listed in members.values()) <= MAX_ROLES_PER_PROFILE:
            return members
        buckets += 1


def _sticky(names: list[str], kept: Mapping[str, int]) -> dict[int, list[str]]:
    """Previous members stay; newcomers go to their jump-hash bucket, or the emptiest when it is full.

    A newcomer always finds a bucket under 200: fewer than ``n <= 200 * nominal`` roles are placed
    before it, over at least ``nominal`` buckets. A bucket that previous outputs claim holds more than
    250 (only a hand-edited file can) keeps the first 250 by name; the rest are placed as newcomers.
    """
    members: dict[int, list[str]] = {}
    newcomers = []
    for name in names:
        bucket = kept.get(name)
        if bucket is not None and len(members.get(bucket, ())) < MAX_ROLES_PER_PROFILE:
            members.setdefault(bucket, []).append(name)
        else:
            newcomers.append(name)
    nominal = _buckets(len(names))
    span = max(nominal, max(members, default=-1) + 1)
    for name in newcomers:
        bucket = jump_hash(_key(name), nominal)
        if len(members.get(bucket, ())) >= TARGET_ROLES_PER_PROFILE:
            bucket = min(range(span), key=lambda b: (len(members.get(b, ())), b))
        members.setdefault(bucket, []).append(name)
    # by name, as the stateless lists are: the next deploy (all of them kept) must not see a reorder
    return {bucket: sorted(listed) for bucket, listed in members.items()}


def placements(profiles: Iterable[SharedProfile]) -> dict[str, Placement]:
    """Each workload's shared profile, from ``share_profiles``."""
    return {
        member: Placement(profile.settings_digest, profile.bucket)
        for profile in profiles
        for member in profile.workloads
    }


def parse_shared_name(name: str) -> Placement | None:
    """The digest and bucket a shared profile's name ends in; None for any other name."""
    match = _SHARED_NAME.search(name)
    if match is None:
        return None
    bucket = int(match.group("bucket"))
    return Placement(match.group("digest"), bucket) if bucket < MAX_WORKLOADS else None


def previous_profiles(outputs: Mapping[str, Any], *, source: str) -> PreviousProfiles | None:
    """Where stack outputs (``pulumi stack output --json``) put each workload; None without workloads.

    The outputs come from someone else (a file in a pull request, or the stack's own state): every
    value is checked, and a bad one is a ``ConfigError`` naming ``source`` and the key.
    """
    workloads = outputs.get("workloads")
    if not isinstance(workloads, Mapping) or not workloads:
        return None
    if len(workloads) > MAX_WORKLOADS:
        raise ConfigError(
            f"{source}: workloads", f"holds {len(workloads)} workloads; at most {MAX_WORKLOADS}"
        )
    arns: dict[str, str] = {}
    for name, workload in workloads.items():
        arn = workload.get("profileArn") if isinstance(workload, Mapping) else None
        if not isinstance(arn, str) or not arn:
            raise ConfigError(f"{source}: workloads.{name}.profileArn", "is missing or not text")
        arns[str(name)] = arn
    shared = outputs.get(SHARED_PROFILES)
    if shared is None:
        return PreviousProfiles(arns, {}, {}, {}, recorded=False)
    if not isinstance(shared, Mapping) or len(shared) > MAX_WORKLOADS:
        raise ConfigError(
            f"{source}: {SHARED_PROFILES}", f"must map at most {MAX_WORKLOADS} profile names to ARNs"
        )
    by_arn: dict[str, Placement] = {}
    names: dict[Placement, str] = {}
    for name, arn in shared.items():
        place = parse_shared_name(str(name))
        if place is None or not isinstance(arn, str) or place in names or arn in by_arn:
            raise ConfigError(
                f"{source}: {SHARED_PROFILES}.{name}",
                "is not a shared profile name (…shared-<digest>-<bucket>) with its own profile ARN",
            )
        by_arn[arn] = place
        names[place] = str(name)
    placed = {name: by_arn[arn] for name, arn in arns.items() if arn in by_arn}
    profile_arns = {place: arn for arn, place in by_arn.items()}
    return PreviousProfiles(arns, names, profile_arns, placed, recorded=True)


def profile_moves(previous: PreviousProfiles, current: Mapping[str, Placement | None]) -> list[ProfileMove]:
    """Workloads in both deployments whose profile changes (``current``: None for their own profile).

    A workload the previous outputs put nowhere known (outputs without ``sharedProfiles``) is not
    listed: nothing says where it was. ``unchecked`` says how many that is.
    """
    moves = []
    for name in sorted(current.keys() & previous.arns.keys()):
        if not previous.recorded:
            continue
        before = previous.placements.get(name)
        after = current[name]
        if before == after:
            continue
        if before is None:
            reason = "profileSharing changed: it had its own profile, and now shares one"
        elif after is None:
            reason = "profileSharing changed: it shared a profile, and now has its own"
        elif before.digest != after.digest:
            reason = "its profile settings changed, so it joins the profile of its new settings"
        else:
            reason = "its previous profile lists more than 250 roles in the previous outputs"
        moves.append(
            ProfileMove(
                workload=name,
                before=before,
                after=after,
                previous_arn=previous.arns[name],
                previous_name=previous.names.get(before, "") if before is not None else "",
                reason=reason,
            )
        )
    return moves


def unchecked(previous: PreviousProfiles, current: Iterable[str]) -> int:
    """How many current workloads the previous outputs hold without saying which profile they are in."""
    return 0 if previous.recorded else len(previous.arns.keys() & set(current))


def move_warnings(
    previous: PreviousProfiles | None, current: Mapping[str, Placement | None], *, where: str
) -> list[str]:
    """The program's warnings about profile moves against its previous outputs (at most one line each)."""
    if previous is None:
        return []
    if not previous.recorded:
        count = unchecked(previous, current)
        return [unrecorded_warning(count, where=where)] if count else []
    moves = profile_moves(previous, current)
    return [moves_warning(moves, where=where)] if moves else []


def moves_warning(moves: list[ProfileMove], *, where: str) -> str:
    """The one line ``pulumi up`` and ``plan`` print when workloads move: what breaks and what to do."""
    named = ", ".join(move.workload for move in moves[:_MOVES_NAMED])
    more = f" and {len(moves) - _MOVES_NAMED} more" if len(moves) > _MOVES_NAMED else ""
    return (
        f"profiles: {len(moves)} workload(s) move to another Roles Anywhere profile against {where} "
        f"({named}{more}; plan --stack-outputs lists each with its reason): the profile ARN in their "
        "aws/config changes, and a host still using its old file gets AccessDenied until the file "
        "rendered by this deploy reaches it; deploy it to those hosts right after pulumi up, or keep "
        "their profile settings and profileSharing unchanged"
    )


def unrecorded_warning(count: int, *, where: str) -> str:
    """The one line for previous outputs written before ``sharedProfiles`` existed."""
    return (
        f"profiles: {where} has no {SHARED_PROFILES} output (written before it was exported), so for "
        f"{count} workload(s) it cannot say which shared profile they are in, and moves cannot be "
        "checked or prevented: run pulumi up once without adding, removing or changing workloads, "
        "then plan against the new outputs"
    )
