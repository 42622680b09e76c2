"""A per-user cache of CreateSession answers, so ``credential-process`` need not call AWS every time.

The AWS CLI runs ``credential_process`` on every invocation and caches nothing; CreateSession is
rate-limited. An entry is keyed by everything that decides the answer and whom it came from: the
SVID's fingerprint, the three ARNs, the duration, the session name, the region and endpoint, how the
endpoint's TLS was checked (the system store and its ``SSL_CERT_FILE``/``SSL_CERT_DIR``, the
``--ca-bundle`` file's digest, or not at all with ``--no-verify-ssl``) and whether ``--with-proxy``
was given. So a rotated SVID (tbot rewrites the files), another request, or a call that checks TLS
differently never finds another's answer: an answer fetched without verification serves only calls
that verify nothing either. It is reused until five minutes before the credentials expire, never once
the SVID has expired. Entries carry an HMAC keyed by the SVID's private key: an entry changed by anyone
who does not hold that key, or copied from another key's name, fails it and is never used. An entry
that cannot be read, parsed or checked is a miss, whatever is in it.

The folder (``$ROLES_ANYWHERE_CACHE_DIR``, else ``$XDG_CACHE_HOME/roles-anywhere``, else
``~/.cache/roles-anywhere``) must be this user's own and closed to others (0700), and every file in
it 0600 and ours: anything else is never read, and the command says so in one line. Concurrent
callers take a lock per key, so they make one CreateSession, not many. Storing an entry prunes the
entries no call can use any more (expired, or unreadable) and their locks, taking each lock without
waiting: a lock someone holds, and its entry, are left alone.

Only the standard library is imported here, and not even ``json`` or ``re`` (which cost more than the
rest of a cached call): a cached answer must cost about as much as starting Python (the fast path in
``roles_anywhere.entry`` reads it without the rest of the package). An entry is therefore a few lines
of text, not JSON: the MAC, then a format line, the two expiry times and the four credentials, each of
which must be printable ASCII without quotes or backslashes (as AWS's are), so the ``Version: 1``
document is written without a JSON encoder.
"""

from __future__ import annotations

import binascii
import errno
import os
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
FORMAT = 3
ENTRY_SUFFIX = ".entry"
LOCK_SUFFIX = ".lock"
# Format 2 entries (JSON, ``<key>.json``) are never read; storing removes them once surely expired
# (a session lasts at most 12 hours).
FORMAT_2_SUFFIX = ".json"
FORMAT_2_LIFETIME = 43_200 + REFRESH_BEFORE
STALE_TEMPORARY_SECONDS = 3_600  # a writer's temporary file this old was left by a crash
KEY_ARGUMENTS = (  # cache_key's arguments: argparse's names for the flags that decide an answer
    "certificate",
    "private_key",
    "trust_anchor_arn",
    "profile_arn",
    "role_arn",
    "session_duration",
    "role_session_name",
    "region",
    "endpoint",
    "no_verify_ssl",
    "ca_bundle",
    "with_proxy",
)
CREDENTIAL_FIELDS = ("accessKeyId", "secretAccessKey", "sessionToken", "expiration")
_MAGIC = b"roles-anywhere credential cache 3"
_ENTRY_LINES = 3 + len(CREDENTIAL_FIELDS)  # format, expiresAt, svidNotAfter, the credentials
_MAX_EPOCH_DIGITS = 12
_HEX = frozenset("0123456789abcdef")
# What a cached credential may hold: JSON writes these bytes as they are, so no encoder is needed.
_PLAIN = bytes(c for c in range(0x21, 0x7F) if c not in b'"\\')
_BEGIN, _END = b"-----BEGIN CERTIFICATE-----", b"-----END CERTIFICATE-----"


class CacheUnsafeError(Exception):
    """The cache folder or a file in it is not this user's alone: it is not used."""


class CacheKey:
    """What an entry answers: one SVID, one request, one way of trusting the endpoint.

    ``secret`` keys the entries' HMAC.
    """

    __slots__ = ("fields", "name", "secret")

    def __init__(self, name: str, fields: dict[str, str | None], secret: bytes) -> None:
        self.name, self.fields, self.secret = name, fields, secret


def cache_dir() -> str:
    """The cache folder for this user."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return os.path.abspath(explicit)
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # the XDG spec: a relative value is invalid and ignored
        base = os.path.join(os.path.expanduser("~"), ".cache")
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
    region: str | None,
    endpoint: str | None,
    no_verify_ssl: bool,
    ca_bundle: str | None,
    with_proxy: bool,
) -> CacheKey | None:
    """The key for this request, from the files as they are now; None if one cannot be read.

    The fast path and the full command both call this with what argparse makes of the flags, so they
    agree on the key by construction.
    """
    leaf = _first_certificate_der(read_regular_file(certificate))
    key_bytes = read_regular_file(private_key)
    if leaf is None or key_bytes is None:
        return None
    fields: dict[str, str | None] = {
        "svid": sha256(leaf).hexdigest(),
        "trustAnchorArn": trust_anchor_arn,
        "profileArn": profile_arn,
        "roleArn": role_arn,
        "sessionDuration": str(session_duration),
        "roleSessionName": role_session_name,
        "region": region,
        "endpoint": endpoint,
        "proxy": "yes" if with_proxy else "no",
    }
    if no_verify_ssl:  # tls_verification ignores --ca-bundle then
        fields["tls"] = "none"
    elif ca_bundle is not None:
        bundle = read_regular_file(ca_bundle)
        if bundle is None:
            return None  # the full command says what is wrong with it
        fields["tls"] = "ca-bundle sha256:" + sha256(bundle).hexdigest()
    else:  # OpenSSL's default store, which these two variables replace
        fields["tls"] = "system"
        fields["sslCertFile"] = os.environ.get("SSL_CERT_FILE")
        fields["sslCertDir"] = os.environ.get("SSL_CERT_DIR")
    name = sha256(_canonical(fields)).hexdigest()
    secret = sha256(b"roles-anywhere credential cache 3\0" + key_bytes).digest()
    return CacheKey(name, fields, secret)


def _canonical(fields: dict[str, str | None]) -> bytes:
    """One unambiguous byte string per set of fields (lengths given; None differs from "")."""
    text = "".join(
        f"{name}-\n" if value is None else f"{name}={len(value)}:{value}\n"
        for name, value in sorted(fields.items())
    )
    return text.encode("utf-8", "surrogatepass")  # argv may hold undecodable bytes, as surrogates


def cached_credentials(
    key: CacheKey, folder: str | None = None, now: float | None = None
) -> dict[str, str] | None:
    """The cached credentials for ``key`` if an entry is ours, intact, and fresh enough; else None.

    Raises ``CacheUnsafeError`` for a folder or entry others could have written (or a link); any other
    entry that is not exactly what ``store`` writes is a miss.
    """
    folder = folder or cache_dir()
    _check_folder(folder, create=False)
    data = _read_entry(os.path.join(folder, key.name + ENTRY_SUFFIX))
    if data is None:
        return None
    mac, newline, body = data.partition(b"\n")
    if not newline or not _compare_digest(mac, _entry_mac(key, body)):  # bytes: any content compares
        return None
    parsed = _parse_body(body)
    if parsed is None:
        return None
    expires, svid_expires, credentials = parsed
    moment = time.time() if now is None else now
    if expires - REFRESH_BEFORE <= moment or svid_expires <= moment:
        return None
    return credentials


def store(
    key: CacheKey, credentials: dict[str, Any], svid_not_after: datetime, folder: str | None = None
) -> bool:
    """Write the entry for ``key`` atomically (0600, then renamed into place), then prune the folder.

    Credentials that cannot be written as they are (not printable ASCII, a quote, an expiration that
    is not an ISO time with a zone) are not cached: False.
    """
    values = [credentials.get(name) for name in CREDENTIAL_FIELDS]
    if not all(isinstance(value, str) and _plain_text(value) for value in values):
        return False
    try:
        expires = int(_when(credentials["expiration"]).timestamp())
        svid_expires = int(svid_not_after.timestamp())
    except (ValueError, OverflowError):
        return False
    if _epoch(str(expires).encode()) is None or _epoch(str(svid_expires).encode()) is None:
        return False
    lines = [
        _MAGIC,
        str(expires).encode(),
        str(svid_expires).encode(),
        *(str(value).encode() for value in values),
    ]
    body = b"\n".join(lines) + b"\n"
    folder = folder or cache_dir()
    _check_folder(folder, create=True)
    write_private_file(
        os.path.join(folder, key.name + ENTRY_SUFFIX), (_entry_mac(key, body) + b"\n" + body).decode()
    )
    try:
        prune(folder, keep=key.name)
    except Exception:  # noqa: BLE001 - tidying is best effort: the answer is stored and must be printed
        return True
    return True


def _entry_mac(key: CacheKey, body: bytes) -> bytes:
    """HMAC over the key's name and the entry: an entry moved to another key's name fails it."""
    return _hmac_sha256(key.secret, key.name.encode() + b"\n" + body).encode()


def _parse_body(body: bytes) -> tuple[int, int, dict[str, str]] | None:
    """Expiry times and credentials from an entry's body, or None unless it is exactly as written."""
    lines = body.split(b"\n")
    if len(lines) != _ENTRY_LINES + 1 or lines[0] != _MAGIC or lines[-1]:
        return None
    expires, svid_expires = _epoch(lines[1]), _epoch(lines[2])
    values = lines[3:-1]
    if expires is None or svid_expires is None or not all(map(_plain, values)):
        return None
    return (
        expires,
        svid_expires,
        {n: v.decode("ascii") for n, v in zip(CREDENTIAL_FIELDS, values, strict=True)},
    )


def _epoch(text: bytes) -> int | None:
    """Seconds since 1970 as ``store`` writes them: ASCII digits, at most 12 (no huge numbers)."""
    if not 0 < len(text) <= _MAX_EPOCH_DIGITS or not text.isdigit():  # bytes.isdigit: ASCII only
        return None
    return int(text)


def _plain(value: bytes) -> bool:
    return bool(value) and not value.translate(None, _PLAIN)


def _plain_text(value: str) -> bool:
    return value.isascii() and _plain(value.encode("ascii"))


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
        self.path = os.path.join(self.folder, key.name + LOCK_SUFFIX)
        self.descriptor = -1

    def __enter__(self) -> None:
        import fcntl  # noqa: PLC0415 - only callers that ask AWS lock

        _check_folder(self.folder, create=True)
        for _ in range(100):  # pruning may remove the file between our open and our lock: open it again
            self.descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                held = os.fstat(self.descriptor)
                _check_file(held, self.path)
                fcntl.flock(self.descriptor, fcntl.LOCK_EX)
                if _same_file(held, self.path):
                    return
            except BaseException:
                os.close(self.descriptor)
                raise
            os.close(self.descriptor)
        raise CacheUnsafeError(f"{self.path} keeps being replaced while it is locked")

    def __exit__(self, *exc: object) -> None:
        os.close(self.descriptor)  # closing releases the lock


def _same_file(held: os.stat_result, path: str) -> bool:
    try:
        now = os.lstat(path)
    except FileNotFoundError:
        return False
    return (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino)


def prune(folder: str, keep: str = "", now: float | None = None) -> list[str]:
    """Remove the entries no call can use any more, and their locks; return the names removed.

    Only this cache's own names are touched (a key's ``.entry`` and ``.lock``, a format 2 ``.json``,
    a writer's ``.*.tmp``), only regular files of ours, never through a link. Each key's lock is taken
    without waiting: if someone holds it (asking AWS, or storing), that key is skipped. An entry goes
    when it expires within five minutes (it is never served again), when its SVID has expired, or when
    it cannot be parsed; its lock goes with it (a caller that opened the old lock file notices it was
    removed and opens a new one, ``locked``). ``keep`` is the key just stored. Nothing here raises.
    """
    moment = time.time() if now is None else now
    removed: list[str] = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    stems: dict[str, set[str]] = {}
    for name in names:
        stem, dot, suffix = name.partition(".")
        if dot and "." + suffix in (ENTRY_SUFFIX, LOCK_SUFFIX, FORMAT_2_SUFFIX) and _is_key_name(stem):
            if _own_regular_name(folder, name):  # a link, a folder, a file others may write: not ours
                stems.setdefault(stem, set()).add("." + suffix)
        elif (
            name.startswith(".")
            and name.endswith(".tmp")
            and _older_than(folder, name, moment, STALE_TEMPORARY_SECONDS)
        ):
            removed += _unlink(folder, name)
    for stem in sorted(stems.keys() - {keep}):
        removed += _prune_key(folder, stem, stems[stem], moment)
    return removed


def _prune_key(folder: str, stem: str, present: set[str], moment: float) -> list[str]:
    import fcntl  # noqa: PLC0415

    lock = os.path.join(folder, stem + LOCK_SUFFIX)
    try:
        descriptor = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError:
        return []  # a link, or not ours to open
    removed: list[str] = []
    try:
        held = os.fstat(descriptor)
        if not _own_regular(held):
            return []
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if not _same_file(held, lock):
            return []
        entry = stem + ENTRY_SUFFIX
        if ENTRY_SUFFIX in present and not _usable(os.path.join(folder, entry), moment):
            removed += _unlink(folder, entry)
        old = stem + FORMAT_2_SUFFIX
        if FORMAT_2_SUFFIX in present and _older_than(folder, old, moment, FORMAT_2_LIFETIME):
            removed += _unlink(folder, old)
        if not any(os.path.lexists(os.path.join(folder, stem + s)) for s in (ENTRY_SUFFIX, FORMAT_2_SUFFIX)):
            removed += _unlink(folder, stem + LOCK_SUFFIX)  # while holding it: see locked.__enter__
    except OSError:  # BlockingIOError: someone holds it
        return removed
    finally:
        os.close(descriptor)
    return removed


def _usable(path: str, moment: float) -> bool:
    """Whether this entry could still be served, judged by its expiry times alone.

    Its MAC needs a key we do not have. An entry that is not a regular file of ours counts as usable:
    it is not ours to remove.
    """
    try:
        info = os.lstat(path)
        if not _own_regular(info):
            return True
        data = _read_entry(path)
    except (OSError, CacheUnsafeError):
        return True
    if data is None:
        return False
    mac, _, body = data.partition(b"\n")
    parsed = _parse_body(body)
    if len(mac) != 64 or not _HEX.issuperset(mac.decode("latin-1")) or parsed is None:
        return False  # no MAC could match it
    return parsed[0] - REFRESH_BEFORE > moment and parsed[1] > moment


def _older_than(folder: str, name: str, moment: float, seconds: float) -> bool:
    try:
        info = os.lstat(os.path.join(folder, name))
    except OSError:
        return False
    return _own_regular(info) and info.st_mtime < moment - seconds


def _own_regular_name(folder: str, name: str) -> bool:
    try:
        return _own_regular(os.lstat(os.path.join(folder, name)))
    except OSError:
        return False


def _own_regular(info: os.stat_result) -> bool:
    return stat.S_ISREG(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077


def _unlink(folder: str, name: str) -> list[str]:
    path = os.path.join(folder, name)
    try:
        if not _own_regular(os.lstat(path)):
            return []
        os.unlink(path)
    except OSError:
        return []
    return [name]


def _is_key_name(stem: str) -> bool:
    return len(stem) == 64 and _HEX.issuperset(stem)


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


def _read_entry(path: str) -> bytes | None:
    """An entry's bytes; None if there is none, it cannot be read, or it is too large to be ours.

    A link, or a file others could have written, raises ``CacheUnsafeError``.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as err:
        if err.errno == errno.ELOOP:  # a link: never used
            raise CacheUnsafeError(f"{path} cannot be opened safely ({err.strerror})") from None
        return None  # unreadable: a miss; the next answer replaces it
    try:
        _check_file(os.fstat(descriptor), path)
        data = os.read(descriptor, MAX_ENTRY_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(descriptor)
    return data if len(data) <= MAX_ENTRY_BYTES else None


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
    except (OSError, ValueError):  # ValueError: a NUL in the path
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
    """The first PEM certificate's DER (what cryptography loads first, for files tbot writes)."""
    if data is None:
        return None
    start = data.find(_BEGIN)
    end = data.find(_END, start + len(_BEGIN)) if start >= 0 else -1
    if end < 0:
        return None
    try:
        der = binascii.a2b_base64(b"".join(data[start + len(_BEGIN) : end].split()), strict_mode=True)
    except (binascii.Error, ValueError):
        return None
    return der or None


def credential_process_json(credentials: dict[str, Any]) -> str:
    """The ``Version: 1`` document the AWS SDKs' credential_process provider reads.

    Exactly ``json.dumps``'s text; for credentials as AWS issues them (plain ASCII) it is written
    without importing ``json``, which the fast path cannot afford.
    """
    key_id, secret, token, expiration = (credentials[name] for name in CREDENTIAL_FIELDS)
    if all(isinstance(value, str) and _plain_text(value) for value in (key_id, secret, token, expiration)):
        return (
            f'{{"Version": 1, "AccessKeyId": "{key_id}", "SecretAccessKey": "{secret}", '
            f'"SessionToken": "{token}", "Expiration": "{expiration}"}}'
        )
    import json  # noqa: PLC0415

    return json.dumps(
        {
            "Version": 1,
            "AccessKeyId": key_id,
            "SecretAccessKey": secret,
            "SessionToken": token,
            "Expiration": expiration,
        }
    )
