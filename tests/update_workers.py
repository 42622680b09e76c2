"""Worker processes for the concurrency test of ``update``'s writer (importable by spawned children)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def values_for(trial: int, index: int) -> dict[str, str]:
    """Credentials unique to one worker in one trial."""
    return {
        "aws_access_key_id": f"ASIATRIAL{trial:04d}W{index:02d}",
        "aws_secret_access_key": f"secret/{trial}/{index}",
        "aws_session_token": f"token+{trial}+{index}=",
    }


def write_in_every_trial(folder: str, index: int, trials: int, barrier: Any) -> None:
    """Write profile ``workload-<index>`` once per trial, all workers released together each time."""
    from roles_anywhere.credentials.update import write_profile  # noqa: PLC0415

    for trial in range(trials):
        barrier.wait(timeout=120)
        path = Path(folder) / f"trial{trial}" / "credentials"
        write_profile(path, f"workload-{index}", values_for(trial, index))
