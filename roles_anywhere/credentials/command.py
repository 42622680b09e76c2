"""The ``credential-process`` command: AWS credentials from an SVID, with aws_signing_helper's flags."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from roles_anywhere.outside_text import one_printable_line


def add_command(commands: Any) -> None:
    """Register ``credential-process`` on the CLI's sub-parser collection."""
    process = commands.add_parser(
        "credential-process", help="AWS credentials from an SVID (flags as aws_signing_helper's)"
    )
    process.add_argument("--certificate", required=True, type=Path, help="the X.509-SVID (svid.pem)")
    process.add_argument("--private-key", required=True, type=Path, help="its private key (svid_key.pem)")
    process.add_argument("--intermediates", type=Path, help="intermediate CA certificates (PEM), if any")
    process.add_argument("--trust-anchor-arn", required=True, help="the Roles Anywhere trust anchor")
    process.add_argument("--profile-arn", required=True, help="the Roles Anywhere profile")
    process.add_argument("--role-arn", required=True, help="the IAM role to assume")
    process.add_argument(
        "--session-duration", type=int, default=3_600, help="seconds, 900-43200 (default 3600)"
    )
    process.add_argument("--role-session-name", help="if the profile accepts one")
    process.add_argument("--region", help="default: the trust anchor's region")
    process.add_argument("--endpoint", help="Roles Anywhere endpoint (default: the region's)")
    process.add_argument("--no-verify-ssl", action="store_true", help="do not verify the endpoint's TLS")
    process.add_argument(
        "--ca-bundle", type=Path, metavar="PEM", help="trust only these CAs for the endpoint"
    )
    process.set_defaults(handler=run_credential_process)


def run_credential_process(args: argparse.Namespace) -> int:
    """Print Version 1 credentials; a refusal is one line on stderr and exit 1."""
    from roles_anywhere.credentials.credential_process import (  # noqa: PLC0415
        SessionRefusedError,
        build_request,
        create_session,
        credential_process_json,
        tls_verification,
    )

    request = build_request(
        certificate=args.certificate,
        private_key=args.private_key,
        intermediates=args.intermediates,
        trust_anchor_arn=args.trust_anchor_arn,
        profile_arn=args.profile_arn,
        role_arn=args.role_arn,
        session_duration=args.session_duration,
        role_session_name=args.role_session_name,
        region=args.region,
        endpoint=args.endpoint,
    )
    try:
        credentials = create_session(request, verify=tls_verification(args.no_verify_ssl, args.ca_bundle))
    except SessionRefusedError as err:
        print(f"error: {one_printable_line(str(err))}", file=sys.stderr)
        return 1
    sys.stdout.write(credential_process_json(credentials) + "\n")
    return 0
