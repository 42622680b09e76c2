"""A per-user cache of CreateSession answers, so ``credential-process`` need not call AWS every time.

The AWS CLI runs ``credential_process`` on every invocation and caches nothing; CreateSession is
rate-limited. An entry is keyed by the SVID's fingerprint, the three ARNs, the duration, the session
name and the endpoint, so a rotated SVID (tbot rewrites the files) or any other request never finds
an older answer. It is reused until five minutes before the credentials expire, never once the SVID
has expired. Entries carry an HMAC keyed by the SVID's private key: an entry changed by anyone who
does not hold that key, or copied from another SVID's cache, fails it and is never used.

The folder (``$ROLES_ANYWHERE_CACHE_DIR``, else ``$XDG_CACHE_HOME/roles-anywhere``, else
``~/.cache/roles-anywhere``) must be this user's own and closed to others (0700), and every file in
it 0600 and ours: anything else is never read, and the command says so in one line. Concurrent
callers take a lock per key, so they make one CreateSession, not many.

Only the standard library is imported here: a cached answer must cost about as much as starting
Python (the fast path in ``roles_anywhere.entry`` reads it without the rest of the package).
"""

from __future__ import annotations

import binascii
import fcntl
import json
import os
import re
import stat
import time
from _operator import _compare_digest  # hmac.compare_digest itself, without importing hmac

try:  # the built-in SHA-256 loads in a fraction of hashlib's OpenSSL start-up
    from _sha256 import sha256  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - other interpreters
    from hashlib import sha256

TYPE_CHECKING = False  # typing, dataclasses, tempfile and contextlib would double the fast path's cost
if TYPE_CHECKING:
    from datetime import datetime
    from typing import Any

CACHE_ENV = "ROLES_ANYWHERE_CACHE_DIR"
REFRESH_BEFORE = 300  # seconds before expiry when an answer stops being reused
MAX_ENTRY_BYTES = 64 * 1024
MAX_CREDENTIAL_FILE_BYTES = 1024 * 1024
FORMAT = 2
_PEM_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----\s+([A-Za-z0-9+/=\s]+?)-----END CERTIFICATE-----")


class CacheUnsafeError(Exception):
    """The cache folder or a file in it is not this user's alone: it is not used."""


class CacheKey:
    """What an entry answers: one SVID, one request. ``secret`` keys the entries' HMAC."""

    __slots__ = ("fields", "name", "secret")

    def __init__(self, name: str, fields: dict[str, Any], secret: bytes) -> None:
        self.name, self.fields, self.secret = name, fields, secret


def cache_dir() -> str:
    """The cache folder for this user."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "roles-anywhere")


def cache_key(
    *,
    certificate: str,
    private_key: str,
    trust_anchor_arn: str,
    profile_arn: str,
    role_arn: str,
    session_duration: int,
    role_session_name: str | None,
    endpoint: str | None,
) -> CacheKey | None:
    """The key for this request, from the SVID files as they are now; None if they cannot be read."""
    leaf = _first_certificate_der(read_regular_file(certificate))
    key_bytes = read_regular_file(private_key)
    if leaf is None or key_bytes is None:
        return None
    fields = {
        "svid": sha256(leaf).hexdigest(),
        "trustAnchorArn": trust_anchor_arn,
        "profileArn": profile_arn,
        "roleArn": role_arn,
        "sessionDuration": session_duration,
        "roleSessionName": role_session_name or "",
        "endpoint": endpoint or "",
    }
    name = sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()
    secret = sha256(b"roles-anywhere credential cache v1\0" + key_bytes).digest()
    return CacheKey(name, fields, secret)


def cached_credentials(
    key: CacheKey, folder: str | None = None, now: float | None = None
) -> dict[str, Any] | None:
    """The cached credentials for ``key`` if an entry is ours, intact, and fresh enough; else None."""
    folder = folder or cache_dir()
    _check_folder(folder, create=False)
    entry = _read_entry(os.path.join(folder, f"{key.name}.json"))
    if entry is None or not _intact(entry, key):
        return None
    moment = time.time() if now is None else now
    expires, svid_expires = entry.get("expiresAt"), entry.get("svidNotAfter")
    if not isinstance(expires, int) or not isinstance(svid_expires, int):
        return None
    if expires - REFRESH_BEFORE <= moment or svid_expires <= moment:
        return None
    credentials: dict[str, Any] = entry["credentials"]
    return credentials


def store(
    key: CacheKey, credentials: dict[str, Any], svid_not_after: datetime, folder: str | None = None
) -> None:
    """Write the entry for ``key`` atomically (0600, then renamed into place)."""
    folder = folder or cache_dir()
    _check_folder(folder, create=True)
    wanted = ("accessKeyId", "secretAccessKey", "sessionToken", "expiration")
    entry: dict[str, Any] = {
        "format": FORMAT,
        "key": key.fields,
        "svidNotAfter": int(svid_not_after.timestamp()),
        "expiresAt": int(_when(credentials["expiration"]).timestamp()),
        "credentials": {name: credentials[name] for name in wanted},
    }
    entry["mac"] = _mac(entry, key)
    write_private_file(os.path.join(folder, f"{key.name}.json"), json.dumps(entry))


def write_private_file(path: str, text: str) -> None:
    """Replace ``path`` atomically with ``text``: a 0600 temporary file beside it, fsynced, renamed."""
    import tempfile  # noqa: PLC0415 - only writers need it

    descriptor, temporary = tempfile.mkstemp(dir=os.path.dirname(path) or ".", prefix=".", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


class locked:  # noqa: N801 - used as a function: ``with locked(key):``
    """Hold the per-key lock: one caller at a time asks AWS, the others then find its answer."""

    def __init__(self, key: CacheKey, folder: str | None = None) -> None:
        self.folder = folder or cache_dir()
        self.path = os.path.join(self.folder, f"{key.name}.lock")
        self.descriptor = -1

    def __enter__(self) -> None:
        _check_folder(self.folder, create=True)
        self.descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            _check_file(os.fstat(self.descriptor), self.path)
            fcntl.flock(self.descriptor, fcntl.LOCK_EX)
        except BaseException:
            os.close(self.descriptor)
            raise

    def __exit__(self, *exc: object) -> None:
        os.close(self.descriptor)  # closing releases the lock


def _check_folder(folder: str, *, create: bool) -> None:
    if create:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    try:
        info = os.lstat(folder)
    except FileNotFoundError:
        return  # nothing cached yet
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise CacheUnsafeError(f"{folder} is not a folder (a link or a file)")
    _check_owner(info, folder, "700")


def _check_file(info: os.stat_result, path: str) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise CacheUnsafeError(f"{path} is not a regular file")
    _check_owner(info, path, "600")


def _check_owner(info: os.stat_result, path: str, wanted_mode: str) -> None:
    """Ours, and closed to every other user (no group or other permission bits)."""
    if info.st_uid != os.getuid():
        raise CacheUnsafeError(f"{path} belongs to another user (uid {info.st_uid})")
    if info.st_mode & 0o077:
        mode = stat.S_IMODE(info.st_mode)
        raise CacheUnsafeError(f"{path} is open to other users (mode {mode:o}; want {wanted_mode})")


def _read_entry(path: str) -> dict[str, Any] | None:
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as err:  # a link (ELOOP) or unreadable: never used
        raise CacheUnsafeError(f"{path} cannot be opened safely ({err.strerror})") from None
    try:
        _check_file(os.fstat(descriptor), path)
        data = os.read(descriptor, MAX_ENTRY_BYTES + 1)
    finally:
        os.close(descriptor)
    if len(data) > MAX_ENTRY_BYTES:
        return None
    try:
        entry = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return entry if isinstance(entry, dict) else None


def _intact(entry: dict[str, Any], key: CacheKey) -> bool:
    mac = entry.get("mac")
    if not isinstance(mac, str) or entry.get("format") != FORMAT or entry.get("key") != key.fields:
        return False
    return bool(_compare_digest(mac, _mac({k: v for k, v in entry.items() if k != "mac"}, key)))


def _mac(entry: dict[str, Any], key: CacheKey) -> str:
    canonical = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()
    return _hmac_sha256(key.secret, canonical)


def _hmac_sha256(secret: bytes, message: bytes) -> str:
    """HMAC-SHA256 (RFC 2104) on the built-in SHA-256; ``hmac`` would load OpenSSL's."""
    block = secret.ljust(64, b"\0")  # the secret is a 32-byte digest: shorter than a block
    inner = sha256(bytes(b ^ 0x36 for b in block) + message).digest()
    return str(sha256(bytes(b ^ 0x5C for b in block) + inner).hexdigest())


def _when(text: Any) -> datetime:
    from datetime import datetime  # noqa: PLC0415 - only writers parse times

    moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("a time without a zone")
    return moment


def read_regular_file(path: str) -> bytes | None:
    """A regular file's bytes, at most ``MAX_CREDENTIAL_FILE_BYTES``; None for anything else.

    Opened without blocking and checked before reading: a FIFO or a device (a file that never ends)
    would otherwise hang the call. The full command then reports what is wrong with it. The rules of
    ``errors.read_user_bytes``, without its imports (pathlib, typing), which the fast path cannot afford.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return None
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_CREDENTIAL_FILE_BYTES:
            chunk = os.read(descriptor, MAX_CREDENTIAL_FILE_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError:
        return None
    finally:
        os.close(descriptor)
    data = b"".join(chunks)
    return data if len(data) <= MAX_CREDENTIAL_FILE_BYTES else None


def _first_certificate_der(data: bytes | None) -> bytes | None:
    if data is None:
        return None
    match = _PEM_CERTIFICATE.search(data)
    if match is None:
        return None
    try:
        return binascii.a2b_base64(b"".join(match.group(1).split()), strict_mode=True)
    except (binascii.Error, ValueError):
        return None


def credential_process_json(credentials: dict[str, Any]) -> str:
    """The ``Version: 1`` document the AWS SDKs' credential_process provider reads."""
    return json.dumps(
        {
            "Version": 1,
            "AccessKeyId": credentials["accessKeyId"],
            "SecretAccessKey": credentials["secretAccessKey"],
            "SessionToken": credentials["sessionToken"],
            "Expiration": credentials["expiration"],
        }
    )
