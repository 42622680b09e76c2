"""How rendering the artefacts scales with the number of workloads, against a naive baseline.

For each size N the script builds stack outputs for N workloads (each served by one of 10 bots, with
one user), then times, in this same process:
  render    load_deployment (re-validation) + render_artifacts (Jinja2, quoting filters);
  base      f-strings producing files of the same names, without validation or quoting (ratio = render/base);
  write     write_artifacts into an empty folder (temporary file, fsync, rename, manifest);
  plain     the baseline's files written with open().write() in place;
  rewrite   write_artifacts again into the same folder, where every file is unchanged.
Usage: python benchmarks/render_scale.py [N ...]   (default: 100 1000 5000)
"""

from __future__ import annotations

import gc
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from roles_anywhere.output.artifact_writer import write_artifacts  # noqa: E402
from roles_anywhere.render.artifacts import render_artifacts  # noqa: E402
from roles_anywhere.stack.deployment import load_deployment  # noqa: E402

ACCOUNT, REGION, CLUSTER = "111122223333", "eu-west-1", "bench.teleport.sh"


def outputs_for(count: int) -> dict[str, Any]:
    """Stack outputs as `pulumi up` exports them, for ``count`` generated workloads."""

    def arn(kind: str, name: str) -> str:
        ident = uuid.uuid5(uuid.NAMESPACE_URL, f"{kind}/{name}")
        return f"arn:aws:rolesanywhere:{REGION}:{ACCOUNT}:{kind}/{ident}"

    bots = [f"bench-bot-{i}" for i in range(10)]
    return {
        "cluster": CLUSTER,
        "trustAnchorArn": arn("trust-anchor", "anchor"),
        "teleport": {
            "mode": "workload-identity",
            "namespace": "bench",
            "proxy": f"{CLUSTER}:443",
            "bots": {
                b: {"joinMethod": "github", "token": b, "storagePath": f"/var/lib/teleport/bot/{b}"}
                for b in bots
            },
        },
        "aws": {"signingHelper": "aws_signing_helper", "credentials": "process"},
        "workloads": {
            f"w{i:05d}": {
                "spiffeId": f"spiffe://{CLUSTER}/svc/w{i:05d}",
                "roleName": f"w{i:05d}",
                "roleArn": f"arn:aws:iam::{ACCOUNT}:role/w{i:05d}",
                "profileArn": arn("profile", f"w{i:05d}"),
                "sessionDuration": 3600,
                "svidDirectory": f"/opt/machine-id/w{i:05d}",
                "bots": [bots[i % 10]],
                "users": [f"user{i}@example.com"],
                "svidTtl": "1h",
            }
            for i in range(count)
        },
    }


def baseline_files(outputs: dict[str, Any]) -> dict[str, str]:
    """Files of the same names and similar content, by f-string, without any checks or quoting."""
    files: dict[str, str] = {}
    anchor = outputs["trustAnchorArn"]
    for name, w in outputs["workloads"].items():
        path = w["spiffeId"].removeprefix(f"spiffe://{CLUSTER}")
        files[f"teleport/workload_identity-{name}.yaml"] = (
            "kind: workload_identity\nversion: v1\nmetadata:\n"
            f"  name: {name}\nspec:\n  spiffe:\n    id: {path}\n"
        )
        files[f"teleport/role-{name}-workload-identity.yaml"] = (
            f"kind: role\nversion: v7\nmetadata:\n  name: {name}-workload-identity\nspec:\n  allow:\n"
            f"    workload_identity_labels:\n      app: [{name}]\n"
        )
        files[f"tsh/{name}.sh"] = (
            f"tsh workload-identity issue-x509 --name-selector {name} --output {w['svidDirectory']}\n"
        )
    files["aws/config"] = "".join(
        f"[profile {n}]\nregion = {REGION}\ncredential_process = aws_signing_helper credential-process "
        f"--certificate {w['svidDirectory']}/svid.pem --private-key {w['svidDirectory']}/svid_key.pem "
        f"--trust-anchor-arn {anchor} --profile-arn {w['profileArn']} --role-arn {w['roleArn']}\n"
        for n, w in outputs["workloads"].items()
    )
    for bot in outputs["teleport"]["bots"]:
        files[f"tbot/{bot}.yaml"] = "".join(
            f"  - type: workload-identity-x509\n    selector: {{name: {n}}}\n"
            for n, w in outputs["workloads"].items()
            if bot in w["bots"]
        )
    return files


def plain_write(files: dict[str, str], folder: Path) -> None:
    """open().write() in place: no temporary file, no fsync, no manifest."""
    for relative, text in files.items():
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def timed(action: Any) -> tuple[float, Any]:
    gc.collect()
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def main(sizes: list[int]) -> None:
    print(f"python {platform.python_version()} on {platform.machine()}, {platform.system()}")
    heads = ("workloads", "files", "MB", "render s", "base s", "ratio", "write s", "plain s", "rewrite s")
    print(" ".join(f"{h:>9}" for h in heads))
    for count in sizes:
        outputs = outputs_for(count)
        render_s, files = timed(lambda o=outputs: render_artifacts(load_deployment(o, source="bench")))
        base_s, plain = timed(lambda o=outputs: baseline_files(o))
        with tempfile.TemporaryDirectory() as ours_dir, tempfile.TemporaryDirectory() as base_dir:
            write_s, _ = timed(lambda f=files: write_artifacts(f, Path(ours_dir)))
            rewrite_s, _ = timed(lambda f=files: write_artifacts(f, Path(ours_dir)))
            plain_s, _ = timed(lambda p=plain: plain_write(p, Path(base_dir)))
        size = sum(len(t.encode()) for t in files.values()) / 1e6
        row = (
            count,
            len(files),
            f"{size:.2f}",
            f"{render_s:.2f}",
            f"{base_s:.3f}",
            f"{render_s / base_s:.0f}",
        )
        print(" ".join(f"{v:>9}" for v in (*row, f"{write_s:.2f}", f"{plain_s:.2f}", f"{rewrite_s:.2f}")))


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [100, 1000, 5000])
