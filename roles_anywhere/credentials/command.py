"""The ``credential-process`` command: AWS credentials from an SVID, with aws_signing_helper's flags.

Every software-key flag of ``aws_signing_helper credential-process`` is accepted, so a rendered line
works with either helper: ``--with-proxy`` (use ``HTTPS_PROXY``; off by default, as there),
``--debug`` (what was asked and answered, on stderr, never a secret), ``--pkcs8-password`` (an
encrypted PKCS#8 key). The certificate-store, PKCS#11 and TPM flags are refused in one line naming
the flag: those keys never leave their hardware, which only the Go helper can use.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any

from roles_anywhere.errors import ConfigError
from roles_anywhere.outside_text import one_printable_line

# aws_signing_helper flags for keys in hardware or a certificate store (cmd/credentials.go).
HARDWARE_VALUE_FLAGS = ("--cert-selector", "--system-store-name", "--pkcs11-lib", "--tpm-key-password")
HARDWARE_SWITCHES = ("--use-latest-expiring-certificate", "--reuse-pin", "--no-tpm-key-password")
HARDWARE_URI_PREFIXES = ("pkcs11:", "handle:")


def add_credential_flags(parser: argparse.ArgumentParser) -> None:
    """The flags ``credential-process``, ``serve`` and ``update`` share (as aws_signing_helper's do)."""
    # The five the command needs are checked after parsing (check_credential_flags), not by argparse:
    # a hardware flag given instead of --certificate gets its own one-line refusal, not "required".
    parser.add_argument("--certificate", type=Path, help="the X.509-SVID (svid.pem); required")
    parser.add_argument("--private-key", type=Path, help="its private key (svid_key.pem); required")
    parser.add_argument("--intermediates", type=Path, help="intermediate CA certificates (PEM), if any")
    parser.add_argument("--trust-anchor-arn", help="the Roles Anywhere trust anchor; required")
    parser.add_argument("--profile-arn", help="the Roles Anywhere profile; required")
    parser.add_argument("--role-arn", help="the IAM role to assume; required")
    parser.add_argument(
        "--session-duration", type=int, default=3_600, help="seconds, 900-43200 (default 3600)"
    )
    parser.add_argument("--role-session-name", help="if the profile accepts one")
    parser.add_argument("--region", help="default: the trust anchor's region")
    parser.add_argument("--endpoint", help="Roles Anywhere endpoint (default: the region's)")
    parser.add_argument("--no-verify-ssl", action="store_true", help="do not verify the endpoint's TLS")
    parser.add_argument("--ca-bundle", type=Path, metavar="PEM", help="trust only these CAs for the endpoint")
    parser.add_argument("--with-proxy", action="store_true", help="call CreateSession through HTTPS_PROXY")
    parser.add_argument("--debug", action="store_true", help="say what was asked and answered, on stderr")
    parser.add_argument("--pkcs8-password", help="password of an encrypted PKCS#8 private key")
    for flag in HARDWARE_VALUE_FLAGS:
        parser.add_argument(flag, dest=_dest(flag), help=argparse.SUPPRESS)
    for flag in HARDWARE_SWITCHES:
        parser.add_argument(flag, dest=_dest(flag), action="store_true", help=argparse.SUPPRESS)


def add_command(commands: Any) -> None:
    """Register ``credential-process`` on the CLI's sub-parser collection."""
    process = commands.add_parser(
        "credential-process", help="AWS credentials from an SVID (flags as aws_signing_helper's)"
    )
    add_credential_flags(process)
    process.add_argument(
        "--no-cache",
        action="store_true",
        help="always call CreateSession (default: reuse a fresh cached answer)",
    )
    process.set_defaults(handler=run_credential_process)
    from roles_anywhere.credentials import serve, update  # noqa: PLC0415 - they import this module

    serve.add_commands(commands, add_credential_flags)
    update.add_command(commands, add_credential_flags)


def _dest(flag: str) -> str:
    return "hardware_" + flag.removeprefix("--").replace("-", "_")


def refuse_hardware_flags(args: argparse.Namespace) -> None:
    """A one-line refusal for the certificate-store, PKCS#11 and TPM flags and URIs."""
    for flag in (*HARDWARE_VALUE_FLAGS, *HARDWARE_SWITCHES):
        if getattr(args, _dest(flag), None):
            raise ConfigError(
                flag,
                "selects a key in a certificate store, PKCS#11 token or TPM, which roles-anywhere cannot "
                "use (such keys never leave their hardware); use aws_signing_helper for it",
            )
    for flag, value in (("--certificate", args.certificate), ("--private-key", args.private_key)):
        if value is not None and str(value).startswith(HARDWARE_URI_PREFIXES):
            raise ConfigError(flag, "names a PKCS#11 or TPM object; use aws_signing_helper for hardware keys")


# What each flag the command needs is, for the line that says it is missing.
REQUIRED_FLAGS = {
    "--certificate": "the X.509-SVID file, e.g. svid.pem",
    "--private-key": "the SVID's private key file, e.g. svid_key.pem",
    "--trust-anchor-arn": "the Roles Anywhere trust anchor's ARN",
    "--profile-arn": "the Roles Anywhere profile's ARN",
    "--role-arn": "the ARN of the IAM role to assume",
}


VALUE_FLAG_NAMES = (
    "certificate",
    "private-key",
    "intermediates",
    "trust-anchor-arn",
    "profile-arn",
    "role-arn",
    "session-duration",
    "role-session-name",
    "region",
    "endpoint",
    "ca-bundle",
    "pkcs8-password",
)


def check_credential_flags(args: argparse.Namespace) -> None:
    """Hardware flags first (each refused by name), then the five flags every call needs."""
    flags = {f"--{name}": name.replace("-", "_") for name in VALUE_FLAG_NAMES}
    flags.update({flag: _dest(flag) for flag in HARDWARE_VALUE_FLAGS})
    for flag, dest in flags.items():
        if isinstance(getattr(args, dest, None), list):  # Python 3.11's argparse reads `--flag=--` as []
            raise ConfigError(flag, "needs a value; '--' is not one")
    refuse_hardware_flags(args)
    missing = [
        flag for flag in REQUIRED_FLAGS if getattr(args, flag.removeprefix("--").replace("-", "_")) is None
    ]
    if missing:
        first, *others = missing
        also = f"; missing too: {', '.join(others)}" if others else ""
        raise ConfigError(first, f"is required ({REQUIRED_FLAGS[first]}){also}")


def session_inputs(args: argparse.Namespace) -> Any:
    """The checked CreateSession request for these flags (files read now)."""
    from roles_anywhere.credentials.credential_process import build_request  # noqa: PLC0415

    check_credential_flags(args)
    return build_request(
        certificate=args.certificate,
        private_key=args.private_key,
        intermediates=args.intermediates,
        **_request_fields(args),
        region=args.region,
        key_password=args.pkcs8_password,
    )


def debug(args: argparse.Namespace, message: str) -> None:
    """One ``debug:`` line on stderr with ``--debug`` (never credentials)."""
    if args.debug:
        print(f"debug: {one_printable_line(message)}", file=sys.stderr)


def run_credential_process(args: argparse.Namespace) -> int:
    """Print Version 1 credentials; a refusal is one line on stderr and exit 1."""
    from roles_anywhere.credentials import cache  # noqa: PLC0415
    from roles_anywhere.credentials.credential_process import (  # noqa: PLC0415
        SessionRefusedError,
        create_session,
        tls_verification,
    )

    check_credential_flags(args)  # a hardware flag is refused even when an answer is cached
    key = None if args.no_cache else _cache_key(args)
    try:
        cached = cache.cached_credentials(key) if key is not None else None  # reads only
    except (cache.CacheUnsafeError, OSError) as err:
        _cache_not_used(err)
        key, cached = None, None
    if cached is not None:
        return _answer(args, cached, "answered from the cache")
    request = session_inputs(args)  # a bad flag or file fails here, before the cache is touched
    with contextlib.ExitStack() as held:
        if key is not None:
            try:
                held.enter_context(cache.locked(key))
                cached = cache.cached_credentials(key)  # another caller's, made while we waited
            except (cache.CacheUnsafeError, OSError) as err:
                _cache_not_used(err)
                key, cached = None, None
            if cached is not None:
                return _answer(args, cached, "answered from the cache, filled by a concurrent call")
        debug(args, f"CreateSession {request.endpoint}/sessions for {request.role_arn}")
        try:
            credentials = create_session(
                request,
                verify=tls_verification(args.no_verify_ssl, args.ca_bundle),
                with_proxy=args.with_proxy,
            )
        except SessionRefusedError as err:
            print(f"error: {one_printable_line(str(err))}", file=sys.stderr)
            return 1
        debug(args, f"credentials until {credentials.get('expiration')}")
        if key is not None and _unchanged(key, args, request):
            try:
                cache.store(key, credentials, request.certificate.not_valid_after_utc)
            except (cache.CacheUnsafeError, OSError) as err:  # a full disk: the answer still counts
                _cache_not_used(err)
    sys.stdout.write(cache.credential_process_json(credentials) + "\n")
    return 0


def _answer(args: argparse.Namespace, credentials: dict[str, Any], note: str) -> int:
    """Print the ``Version: 1`` document for cached credentials."""
    from roles_anywhere.credentials import cache  # noqa: PLC0415

    debug(args, note)
    sys.stdout.write(cache.credential_process_json(credentials) + "\n")
    return 0


def _cache_not_used(err: Exception) -> None:
    """Say in one line why the cache is skipped; the call goes on without it.

    A folder that cannot be made (a service account's HOME), a planted lock, a full disk.
    """
    if isinstance(err, OSError):
        where = f"{err.filename}: " if isinstance(err.filename, str) else ""
        err = Exception(f"{where}{err.strerror or type(err).__name__}")
    print(f"warning: credential cache not used: {one_printable_line(str(err))}", file=sys.stderr)


def _cache_key(args: argparse.Namespace) -> Any:
    """The key for these flags: what the fast path computes from argv (``entry.parsed_flags``)."""
    from roles_anywhere.credentials import cache  # noqa: PLC0415

    values: dict[str, Any] = {}
    for name in cache.KEY_ARGUMENTS:
        value = getattr(args, name)
        values[name] = str(value) if isinstance(value, Path) else value  # as argv spells it: entry.path_text
    return cache.cache_key(**values)


def _request_fields(args: argparse.Namespace) -> dict[str, Any]:
    """What a CreateSession asks for, besides the SVID files and the region."""
    return {
        "trust_anchor_arn": args.trust_anchor_arn,
        "profile_arn": args.profile_arn,
        "role_arn": args.role_arn,
        "session_duration": args.session_duration,
        "role_session_name": args.role_session_name,
        "endpoint": args.endpoint,
    }


def _unchanged(key: Any, args: argparse.Namespace, request: Any) -> bool:
    """The answer is stored only under the key of what was used: the SVID sent, the CA bundle trusted.

    tbot may rotate the SVID, or someone replace the CA bundle, while CreateSession runs.
    """
    import hashlib  # noqa: PLC0415

    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    der = request.certificate.public_bytes(serialization.Encoding.DER)
    after = _cache_key(args)
    return (
        after is not None and after.name == key.name and hashlib.sha256(der).hexdigest() == key.fields["svid"]
    )
