"""CreateSession round trips through the sandbox, and the cost of one cold `credential-process` call.

Measured in this process, each beside a baseline run in the same process:
  sessions    N signed CreateSession calls over one keep-alive HTTPS connection (verify the X.509
              SigV4 signature, build the chain, map tags, read the role from moto IAM, evaluate its
              trust policy, AssumeRole on moto); baseline: N plain STS GetCallerIdentity calls to moto
              through boto3 (an HTTP round trip to the same server with no Roles Anywhere work).
  calls       K runs of `roles-anywhere credential-process` as the AWS CLI runs it (a new process
              each time): cold and uncached (`--no-cache`: reads the SVID files, one CreateSession),
              and cached (answered from the credential cache by the fast path); baselines:
              `python -c pass` and `python -c "import httpx, cryptography"`. Then `aws sts
              get-caller-identity` through each, the CreateSession calls the cached runs made, and
              20 concurrent cached-path callers on an empty cache (target: one CreateSession).
Usage: python benchmarks/sandbox_sessions.py [N] [K]   (default: 200 10)
"""

from __future__ import annotations

import base64
import json
import logging
import os
import platform
import shlex
import shutil
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.render_scale import timed  # noqa: E402
from roles_anywhere.credentials.x509_sigv4 import sign_request  # noqa: E402
from roles_anywhere.sandbox.server import Sandbox  # noqa: E402
from tests.sandbox_helpers import fresh_svid, make_world  # noqa: E402


def main(sessions: int, cold_calls: int) -> None:
    print(f"python {platform.python_version()} on {platform.machine()}, {platform.system()}")
    with Sandbox() as sandbox, tempfile.TemporaryDirectory() as scratch:
        world = make_world(sandbox)
        workload = world.workload("/svc/bench")
        svid = fresh_svid(world.ca, workload.spiffe_id)
        url = f"{sandbox.endpoints['rolesanywhere']}/sessions"
        body = json.dumps(
            {
                "durationSeconds": 3600,
                "profileArn": workload.profile_arn,
                "roleArn": workload.role_arn,
                "trustAnchorArn": world.anchor_arn,
            }
        ).encode()
        leaf = base64.b64encode(svid.certificate.public_bytes(serialization.Encoding.DER)).decode()
        context = ssl.create_default_context(cafile=sandbox.endpoints["caFile"])
        with httpx.Client(verify=context, timeout=30) as client:

            def create_sessions() -> int:
                for _ in range(sessions):
                    headers = sign_request(
                        method="POST",
                        url=url,
                        headers={"Content-Type": "application/json", "X-Amz-X509": leaf},
                        body=body,
                        certificate=svid.certificate,
                        key=svid.key,
                        region="us-east-1",
                    )
                    assert client.post(url, headers=headers, content=body).status_code == 201  # noqa: S101
                return sessions

            create_sessions()  # warm up: first TLS handshake, lazy imports
            ours, _ = timed(create_sessions)
        sts = sandbox.client("sts")
        sts.get_caller_identity()
        base, _ = timed(lambda: [sts.get_caller_identity() for _ in range(sessions)])
        print(f"\nCreateSession, {sessions} calls")
        print(f"  sandbox CreateSession  {sessions / ours:8.1f} /s  {ours / sessions * 1000:6.2f} ms/call")
        print(f"  moto STS (baseline)    {sessions / base:8.1f} /s  {base / sessions * 1000:6.2f} ms/call")
        print(f"  ratio                  {ours / base:8.2f}")

        folder = Path(scratch)
        (folder / "svid.pem").write_text(svid.pem)
        (folder / "svid_key.pem").write_text(svid.key_pem)
        report_calls(sandbox, world, workload, folder, cold_calls)


class SessionCounter(logging.Handler):
    """Counts the credentials the sandbox minted (its ``CreateSession:`` log lines)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += record.getMessage().startswith("CreateSession: ")


def report_calls(sandbox: Sandbox, world: Any, workload: Any, folder: Path, calls: int) -> None:
    """Cold, uncached and cached credential-process calls, and the AWS CLI through each."""
    counter = SessionCounter()
    logger = logging.getLogger("roles_anywhere.sandbox")
    logger.addHandler(counter)
    logger.setLevel(logging.INFO)
    flags = [
        "--certificate", str(folder / "svid.pem"),
        "--private-key", str(folder / "svid_key.pem"),
        "--trust-anchor-arn", world.anchor_arn,
        "--profile-arn", workload.profile_arn,
        "--role-arn", workload.role_arn,
        "--endpoint", sandbox.endpoints["rolesanywhere"],
        "--ca-bundle", sandbox.endpoints["caFile"],
    ]  # fmt: skip
    helper = str(Path(sys.executable).parent / "roles-anywhere")
    uncached = [helper, "credential-process", *flags, "--no-cache"]
    cached = [helper, "credential-process", *flags]
    env = {**os.environ, "ROLES_ANYWHERE_CACHE_DIR": str(folder / "cache")}

    def run(argv: list[str], times: int = calls) -> float:
        total = 0.0
        for _ in range(times):
            elapsed, result = timed(lambda: subprocess.run(argv, capture_output=True, check=False, env=env))
            assert result.returncode == 0, result.stderr  # noqa: S101
            total += elapsed
        return total / times

    bare = run([sys.executable, "-c", "pass"])
    imports = run([sys.executable, "-c", "import httpx, cryptography.x509"])
    cold = run(uncached)
    run(cached, 1)  # fills the cache
    before = counter.count
    warm = run(cached)
    made_by_cached = counter.count - before
    print(f"\ncredential-process calls, mean of {calls}")
    print(f"  python -c pass (baseline)              {bare * 1000:7.1f} ms")
    print(f"  python -c 'import httpx, crypto…'      {imports * 1000:7.1f} ms")
    print(f"  cold, uncached (--no-cache)            {cold * 1000:7.1f} ms   ratio {cold / bare:5.2f}")
    print(f"  cached (fast path)                     {warm * 1000:7.1f} ms   ratio {warm / bare:5.2f}")
    print(f"  CreateSession calls by {calls} cached runs  {made_by_cached:5d}")

    config = folder / "aws-config"
    for name, argv in (("uncached", uncached), ("cached", cached)):
        line = " ".join(shlex.quote(a) for a in argv)
        config.write_text(f"[profile {name}]\nregion = us-east-1\ncredential_process = {line}\n")
        aws = [sys.executable, "-m", "awscli", "sts", "get-caller-identity", "--profile", name,
               "--endpoint-url", sandbox.endpoints["sts"]]  # fmt: skip
        env.update(AWS_CONFIG_FILE=str(config), AWS_SHARED_CREDENTIALS_FILE=os.devnull)
        elapsed = run(aws, max(1, calls // 2))
        print(f"  aws sts get-caller-identity, {name:8}  {elapsed * 1000:7.1f} ms")

    shutil.rmtree(folder / "cache")
    before = counter.count
    callers = [
        subprocess.Popen(cached, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) for _ in range(20)
    ]
    assert all(c.wait(timeout=120) == 0 for c in callers)  # noqa: S101
    print(f"  20 concurrent callers, empty cache: {counter.count - before} CreateSession call(s)")
    logger.removeHandler(counter)


if __name__ == "__main__":
    arguments = [int(a) for a in sys.argv[1:]]
    main(*(arguments + [200, 10][len(arguments) :]))
