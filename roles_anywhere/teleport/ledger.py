"""What earlier renders granted in Teleport, so that applying a new render takes back what it no longer does.

``apply.sh`` replaces what it renders (``tctl create -f``), but an object the config stopped naming —
a removed workload's WorkloadIdentity, a removed bot's or user's role — is not rendered, so nothing
would touch it and its holder would keep the SVID. ``teleport/objects.json`` records what the stack
owns; the next render into the same folder reads it and lists what is gone as retired, which
``apply.py`` takes back (with whatever else the cluster labels as this stack's). Retired names stay
in the record until granted again, so a render that was never applied loses no revocation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from roles_anywhere.config.field_rules import teleport_namespace
from roles_anywhere.config.teleport_names import check_object_name
from roles_anywhere.errors import load_json
from roles_anywhere.output.artifact_writer import OutputFolderError, read_manifest, read_regular_file

LEDGER = "teleport/objects.json"
MAX_LEDGER_BYTES = 4 * 1024 * 1024
KINDS = ("workload_identity", "role")


@dataclass(frozen=True)
class Retired:
    """Objects an earlier render of this stack granted and the current config no longer does."""

    workload_identities: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()


def _object_name(name: str) -> str:
    try:
        return check_object_name(name)
    except ValueError:
        raise ValueError(f"{name[:60]!r} is not a Teleport object name this project renders") from None


ObjectName = Annotated[str, AfterValidator(_object_name)]


class _Objects(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    workload_identity: list[ObjectName] = Field(default_factory=list)
    role: list[ObjectName] = Field(default_factory=list)


class _Ledger(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)

    stack: Annotated[str, AfterValidator(teleport_namespace)]
    current: _Objects
    retired: _Objects


def ledger_text(
    namespace: str,
    current: dict[str, list[str]],
    retired: Retired,
    **apply_plan: Any,
) -> str:
    """The record ``render`` writes beside ``apply.sh``, which also tells ``apply.py`` what to do.

    ``apply_plan`` adds what ``teleport/apply.py`` needs (trust anchor, mode, files, SPIFFE paths, bots,
    users); the next render reads back only ``stack``, ``current`` and ``retired``. Sorted, so an
    unchanged stack re-renders byte for byte.
    """
    document = {
        "stack": namespace,
        "current": {kind: sorted(current[kind]) for kind in KINDS},
        "retired": {
            "workload_identity": sorted(retired.workload_identities),
            "role": sorted(retired.roles),
        },
        **apply_plan,
    }
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def retired_since(out_dir: Path, namespace: str, current: dict[str, list[str]]) -> Retired:
    """What the record in ``out_dir`` says this stack owned (or retired) and ``current`` no longer names."""
    previous = _read_ledger(out_dir, namespace)
    if previous is None:
        return Retired()
    gone = {
        kind: sorted(
            (set(getattr(previous.current, kind)) | set(getattr(previous.retired, kind))) - set(current[kind])
        )
        for kind in KINDS
    }
    return Retired(workload_identities=tuple(gone["workload_identity"]), roles=tuple(gone["role"]))


def _read_ledger(out_dir: Path, namespace: str) -> _Ledger | None:
    """The record, if an earlier render wrote one; a planted, foreign or malformed one is refused."""
    if LEDGER not in read_manifest(out_dir):
        return None
    path = out_dir / LEDGER
    data = read_regular_file(path, MAX_LEDGER_BYTES)
    if data is None:
        return None
    try:
        ledger = _Ledger.model_validate(load_json(data.decode("utf-8", "replace")))
    except ValidationError as err:
        reason = err.errors(include_url=False)[0]["msg"]
        raise OutputFolderError(f"{path}: not a record this project wrote ({reason})") from None
    except ValueError as err:
        reason = "not JSON" if isinstance(err, json.JSONDecodeError) else str(err)
        raise OutputFolderError(f"{path}: not a record this project wrote ({reason})") from None
    if ledger.stack != namespace:
        raise OutputFolderError(
            f"{path}: records the Teleport objects of stack {ledger.stack!r}, not {namespace!r}; render "
            "each stack into its own folder (after changing teleport.namespace, remove the objects it "
            "lists, then this file)"
        )
    prefix = f"{namespace}."
    for objects in (ledger.current, ledger.retired):
        for name in [*objects.workload_identity, *objects.role]:
            if not name.startswith(prefix):
                raise OutputFolderError(f"{path}: {name!r} is outside the namespace {namespace!r}")
    return ledger
