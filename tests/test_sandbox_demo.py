"""`make demo`'s sandbox part: the AWS CLI gets one role through the rendered config, is refused another."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .conftest import ROOT


def test_the_demo_shows_the_aws_cli_refused_the_other_role(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "roles_anywhere.sandbox.demo",
            "--config",
            "Pulumi.example.yaml",
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    step6 = result.stdout[result.stdout.index("== Step 6/6") :]
    refused_call = step6[: step6.index("(exit status")]
    assert "$ aws sts get-caller-identity --profile example-service" in refused_call
    assert "Unable to assume role for the given role ARN" in refused_call
    assert result.stdout.rstrip().endswith("Demo succeeded.")
