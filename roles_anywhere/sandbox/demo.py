"""The whole chain on one machine, step by step: ``python -m roles_anywhere.sandbox.demo`` (``make demo``).

config → AWS resources (in the sandbox) → rendered files → SVIDs from a throwaway CA → the AWS CLI
getting credentials through the rendered ``credential_process`` → an AWS call; and one workload's
SVID asking for another workload's role, refused with the reason. The CA's and the SVIDs' private
keys stay in a temporary folder that is deleted at the end.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from roles_anywhere import PROJECT
from roles_anywhere.config.stack_file import read_stack_file
from roles_anywhere.output.artifact_writer import write_artifacts
from roles_anywhere.render.artifacts import render_artifacts
from roles_anywhere.stack.deployment import load_deployment

from .certificates import certificate_pem, issue, key_pem, key_usage
from .commands import with_sandbox_clients
from .deploy import deploy_stack
from .server import Sandbox

STEPS = 6


def say(step: int, title: str) -> None:
    """A step header."""
    print(f"\n== Step {step}/{STEPS}: {title}", flush=True)


def throwaway_ca(cluster: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A CA shaped like Teleport's SPIFFE CA (CN=O=cluster, P-256, certSign), valid for a day."""
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, cluster),
            x509.NameAttribute(NameOID.COMMON_NAME, cluster),
        ]
    )
    extensions = [
        (x509.BasicConstraints(ca=True, path_length=None), True),
        (key_usage(digital_signature=True, key_cert_sign=True, crl_sign=True), True),
    ]
    return issue(name, extensions, lifetime=timedelta(days=1))


def issue_svid(
    ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, spiffe_id: str, workload: str, folder: Path
) -> None:
    """An X.509-SVID as tbot writes it: ``svid.pem`` and ``svid_key.pem`` in ``folder``."""
    extensions = [
        (x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe_id)]), False),
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (key_usage(digital_signature=True, key_encipherment=True), True),
        (x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH, x509.OID_CLIENT_AUTH]), False),
    ]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, workload)])
    certificate, key = issue(
        subject, extensions, lifetime=timedelta(hours=1), backdate=timedelta(minutes=1), issuer=(ca, ca_key)
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "svid.pem").write_bytes(certificate_pem(certificate))
    key_file = folder / "svid_key.pem"
    key_file.write_bytes(key_pem(key))
    key_file.chmod(0o600)


def sandbox_stack(example: Path, out: Path, ca_file: Path, svid_root: Path) -> Path:
    """The example stack with the throwaway CA and SVID folders under ``svid_root``; nothing else changes."""
    document = yaml.safe_load(example.read_text())
    config: dict[str, Any] = document["config"]
    config[f"{PROJECT}:caBundle"] = {"file": str(ca_file.resolve())}
    for name, workload in config[f"{PROJECT}:workloads"].items():
        workload["svidDirectory"] = str(svid_root / name)
    path = out / "Pulumi.sandbox.yaml"
    path.write_text(
        "# Pulumi.example.yaml for the sandbox demo: caBundle is the throwaway CA, "
        "SVIDs live in a temp folder.\n" + yaml.safe_dump(document, sort_keys=False)
    )
    return path


REFUSAL = "Unable to assume role for the given role ARN"  # what Roles Anywhere answers, via the AWS CLI


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run and echo a command and its output."""
    shown = ["aws", *command[3:]] if command[:3] == [sys.executable, "-m", "awscli"] else command
    print("$ " + " ".join(shown), flush=True)
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    for stream in (result.stdout, result.stderr):
        if stream.strip():
            print("  " + stream.strip().replace("\n", "\n  "), flush=True)
    print(f"  (exit status {result.returncode})", flush=True)
    return result


def _missing_tools() -> str | None:
    """One line saying what the demo needs and is not installed (the extra, the AWS CLI), or None."""
    from roles_anywhere.errors import RolesAnywhereError  # noqa: PLC0415

    from .commands import require_sandbox_extra  # noqa: PLC0415

    try:
        require_sandbox_extra("sandbox demo")
    except RolesAnywhereError as err:
        return str(err)
    if importlib.util.find_spec("awscli") is None:
        return "the demo drives the AWS CLI: pip install awscli (make demo installs it)"
    return None


def main(argv: list[str] | None = None) -> int:
    """Run every step; exit 0 only if the allowed call succeeded and the cross-workload call was refused."""
    if missing := _missing_tools():
        print(f"error: {missing}", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--config", type=Path, default=Path("Pulumi.example.yaml"))
    parser.add_argument("--out", type=Path, default=Path("out/example/sandbox"))
    args = parser.parse_args(argv)
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    bin_dir = Path(sys.executable).parent
    with (
        tempfile.TemporaryDirectory(prefix="roles-anywhere-demo-") as scratch,
        Sandbox(endpoints_file=out / "endpoints.json") as sandbox,
    ):
        secrets = Path(scratch)
        say(1, "start the local Roles Anywhere sandbox (127.0.0.1 only)")
        for service in ("rolesanywhere", "iam", "sts"):
            print(f"  {service:<14}{sandbox.endpoints[service]}")
        print(f"  endpoints file {out / 'endpoints.json'}")

        say(2, "a throwaway SPIFFE CA for the example cluster (its key stays in a temporary folder)")
        example = read_stack_file(args.config)
        cluster = example.project_values()["cluster"]
        ca, ca_key = throwaway_ca(cluster)
        ca_file = out / "throwaway-spiffe-ca.pem"
        ca_file.write_bytes(certificate_pem(ca))
        print(f"  CA certificate {ca_file} (CN={cluster}); key only in {secrets}")

        say(
            3, "deploy the example stack into the sandbox (the real __main__.py, resources created via boto3)"
        )
        stack_path = sandbox_stack(args.config, out, ca_file, secrets / "machine-id")
        stack_file = read_stack_file(stack_path)
        stack_file = replace(stack_file, config=with_sandbox_clients(stack_file.config, sandbox.endpoints))
        plan, _ = deploy_stack(stack_file, sandbox.endpoints)
        deployment = load_deployment(plan.outputs, source="sandbox deploy")
        for resource in plan.resources:
            print(f"  {resource.type:<52} {resource.outputs.get('arn') or resource.name}")

        say(4, "render the Teleport, tbot and AWS CLI files with the sandbox's ARNs and endpoint")
        files = render_artifacts(deployment)
        files["outputs.json"] = json.dumps(plan.outputs, indent=2) + "\n"
        write_artifacts(files, out / "rendered")
        print(f"  {len(files)} files in {out / 'rendered'}; the AWS CLI profiles are in rendered/aws/config:")
        print("  " + (out / "rendered/aws/config").read_text().strip().replace("\n", "\n  "))

        say(5, "issue SVIDs (as tbot would) and call AWS through the rendered credential_process")
        workloads = sorted(deployment.workloads)
        for name in workloads:
            workload = deployment.workloads[name]
            issue_svid(ca, ca_key, workload.spiffe_id, name, Path(workload.svid_directory))
            print(f"  {name}: {workload.spiffe_id} -> {workload.svid_directory}/svid.pem")
        env = {
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "HOME": scratch,
            "AWS_CONFIG_FILE": str(out / "rendered/aws/config"),
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        allowed = run(
            [sys.executable, "-m", "awscli", "sts", "get-caller-identity", "--profile", workloads[0]], env
        )

        say(6, f"{workloads[0]}'s SVID in {workloads[1]}'s folder: the AWS CLI is refused that role, and why")
        own, other = deployment.workloads[workloads[0]], deployment.workloads[workloads[1]]
        for file in ("svid.pem", "svid_key.pem"):  # as if the wrong SVID had been put on the host
            shutil.copyfile(Path(own.svid_directory) / file, Path(other.svid_directory) / file)
        refused = run(
            [sys.executable, "-m", "awscli", "sts", "get-caller-identity", "--profile", workloads[1]], env
        )
        run(
            [
                str(bin_dir / "roles-anywhere"),
                "simulate",
                "--config",
                str(stack_path),
                "--stack-outputs",
                str(out / "rendered/outputs.json"),
                "--certificate",
                f"{own.svid_directory}/svid.pem",
                "--role",
                workloads[1],
            ],
            env,
        )
    ok = allowed.returncode == 0 and refused.returncode != 0 and REFUSAL in refused.stderr
    print(
        f"\nResults in {out}: rendered/ (files for the sandbox), rendered/outputs.json (stack outputs), "
        "Pulumi.sandbox.yaml, throwaway-spiffe-ca.pem. The sandbox and the temporary keys are gone."
    )
    print("Demo " + ("succeeded." if ok else "FAILED: see the step above."))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
