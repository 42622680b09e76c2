"""The credential cache: keyed by SVID, request and TLS, ours alone, intact, fresh — or never used."""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roles_anywhere.credentials import cache

from .cache_corruptions import CORRUPTIONS, signed
from .certs import make_ca, make_svid

CA = make_ca("acme.teleport.sh")
NOW = datetime.now(UTC)
ANCHOR = "arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/0f0e0d0c-1111-2222-3333-444455556666"


def svid_files(folder: Path, name: str = "svid") -> tuple[Path, Path]:
    svid = make_svid(CA, "spiffe://acme.teleport.sh/svc/orders", not_after=NOW + timedelta(hours=1))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.pem").write_text(svid.pem)
    (folder / f"{name}_key.pem").write_text(svid.key_pem)
    return folder / f"{name}.pem", folder / f"{name}_key.pem"


def key_for(cert: Path, key: Path, **changes: object) -> cache.CacheKey:
    settings: dict[str, object] = {
        "certificate": str(cert),
        "private_key": str(key),
        "trust_anchor_arn": ANCHOR,
        "profile_arn": "arn:aws:rolesanywhere:eu-west-1:111122223333:profile/p",
        "role_arn": "arn:aws:iam::111122223333:role/orders",
        "session_duration": 3600,
        "role_session_name": None,
        "region": None,
        "endpoint": None,
        "no_verify_ssl": False,
        "ca_bundle": None,
        "with_proxy": False,
    }
    settings.update(changes)
    made = cache.cache_key(**settings)  # type: ignore[arg-type]
    assert made is not None
    return made


def credentials(expires_in: timedelta = timedelta(hours=1), **changes: str) -> dict[str, str]:
    return {
        "accessKeyId": "ASIAEXAMPLEEXAMPLE01",
        "secretAccessKey": "secret/with+base64=",
        "sessionToken": "token",
        "expiration": (datetime.now(UTC) + expires_in).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **changes,
    }


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def entry_path(folder: Path, key: cache.CacheKey) -> Path:
    return folder / f"{key.name}.entry"


def test_a_stored_answer_is_found_for_the_same_svid_and_request_only(tmp_path: Path, folder: Path) -> None:
    cert, key = svid_files(tmp_path)
    own = key_for(cert, key)
    assert cache.store(own, credentials(), NOW + timedelta(hours=1), str(folder))
    assert cache.cached_credentials(own, str(folder)) == credentials()
    assert (folder.stat().st_mode & 0o777, entry_path(folder, own).stat().st_mode & 0o777) == (0o700, 0o600)
    for change in (
        {"role_arn": "arn:aws:iam::111122223333:role/billing"},
        {"profile_arn": "arn:aws:rolesanywhere:eu-west-1:111122223333:profile/q"},
        {"trust_anchor_arn": ANCHOR.replace("0f0e", "1f0e")},
        {"session_duration": 7200},
        {"role_session_name": "teleport-orders"},
        {"role_session_name": ""},  # sent as "" (CreateSession refuses it): not the same as none
        {"region": "us-east-1"},
        {"endpoint": "https://127.0.0.1:8443"},
        {"no_verify_ssl": True},
        {"with_proxy": True},
    ):
        assert cache.cached_credentials(key_for(cert, key, **change), str(folder)) is None, change
    rotated_cert, rotated_key = svid_files(tmp_path, "rotated")  # tbot rewrote the SVID
    assert key_for(rotated_cert, rotated_key).name != own.name
    assert cache.cached_credentials(key_for(rotated_cert, rotated_key), str(folder)) is None


def test_an_answer_is_served_only_to_calls_that_trust_the_endpoint_the_same_way(
    tmp_path: Path, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--no-verify-ssl, each --ca-bundle's content, the system store (and what replaces it) apart."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    cert, key = svid_files(tmp_path)
    bundle_a, bundle_b = tmp_path / "a.pem", tmp_path / "b.pem"
    bundle_a.write_text(CA.pem)
    bundle_b.write_text(make_ca("other.example").pem)
    kinds: dict[str, dict[str, Any]] = {
        "unverified": {"no_verify_ssl": True},
        "unverified, a bundle named": {"no_verify_ssl": True, "ca_bundle": str(bundle_a)},
        "system store": {},
        "system store, through a proxy": {"with_proxy": True},
        "bundle a": {"ca_bundle": str(bundle_a)},
        "bundle b": {"ca_bundle": str(bundle_b)},
    }
    keys = {name: key_for(cert, key, **settings) for name, settings in kinds.items()}
    for number, made in enumerate(keys.values()):
        cache.store(made, credentials(accessKeyId=f"ASIA{number}"), NOW + timedelta(hours=1), str(folder))
    found = {name: cache.cached_credentials(made, str(folder)) for name, made in keys.items()}
    assert {name: answer and answer["accessKeyId"] for name, answer in found.items()} == {
        "unverified": "ASIA1",  # --no-verify-ssl ignores --ca-bundle, as the call does: one key
        "unverified, a bundle named": "ASIA1",
        "system store": "ASIA2",
        "system store, through a proxy": "ASIA3",
        "bundle a": "ASIA4",
        "bundle b": "ASIA5",
    }
    # The bundle is known by its content, not its name: a copy answers; a changed file does not.
    copy = tmp_path / "copy-of-a.pem"
    copy.write_bytes(bundle_a.read_bytes())
    assert key_for(cert, key, ca_bundle=str(copy)).name == keys["bundle a"].name
    bundle_a.write_text(CA.pem + make_ca("added.example").pem)
    assert cache.cached_credentials(key_for(cert, key, ca_bundle=str(bundle_a)), str(folder)) is None
    # What replaces OpenSSL's default store is part of "the system store".
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle_b))
    assert cache.cached_credentials(key_for(cert, key), str(folder)) is None
    monkeypatch.delenv("SSL_CERT_FILE")
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    assert cache.cached_credentials(key_for(cert, key), str(folder)) is None
    # A bundle that cannot be read gives no key: the call is not cached, and says what is wrong.
    settings = {**kinds["bundle a"], "ca_bundle": str(tmp_path / "missing.pem")}
    with pytest.raises(AssertionError):
        key_for(cert, key, **settings)


def test_an_answer_is_not_reused_near_expiry_or_after_the_svid_expired(tmp_path: Path, folder: Path) -> None:
    cert, key = svid_files(tmp_path)
    own = key_for(cert, key)
    cache.store(own, credentials(timedelta(minutes=4)), NOW + timedelta(hours=1), str(folder))
    assert cache.cached_credentials(own, str(folder)) is None  # within 5 minutes of expiry
    cache.store(own, credentials(timedelta(minutes=6)), NOW + timedelta(hours=1), str(folder))
    assert cache.cached_credentials(own, str(folder)) is not None
    cache.store(own, credentials(), NOW - timedelta(seconds=1), str(folder))
    assert cache.cached_credentials(own, str(folder)) is None  # the SVID itself has expired


def test_a_tampered_or_transplanted_entry_is_never_used(tmp_path: Path, folder: Path) -> None:
    cert, key = svid_files(tmp_path)
    own = key_for(cert, key)
    cache.store(own, credentials(), NOW + timedelta(hours=1), str(folder))
    path = entry_path(folder, own)
    path.write_bytes(path.read_bytes().replace(b"ASIAEXAMPLEEXAMPLE01", b"ASIAPLANTEDPLANTED01"))
    assert cache.cached_credentials(own, str(folder)) is None
    # an intact entry made for another SVID, copied under this key's name
    other_cert, other_key = svid_files(tmp_path, "other")
    other = key_for(other_cert, other_key)
    cache.store(other, credentials(), NOW + timedelta(hours=1), str(folder))
    entry_path(folder, other).replace(path)
    assert cache.cached_credentials(own, str(folder)) is None
    # an intact entry of the same SVID for another request (same MAC key), copied under this name
    billing = key_for(cert, key, role_arn="arn:aws:iam::111122223333:role/billing")
    cache.store(billing, credentials(), NOW + timedelta(hours=1), str(folder))
    entry_path(folder, billing).replace(path)
    assert cache.cached_credentials(own, str(folder)) is None


@pytest.mark.parametrize("corruption", list(CORRUPTIONS), ids=list(CORRUPTIONS))
def test_an_entry_that_cannot_be_read_or_checked_is_a_miss(
    tmp_path: Path, folder: Path, corruption: str
) -> None:
    cert, key = svid_files(tmp_path)
    own = key_for(cert, key)
    cache.store(own, credentials(), NOW + timedelta(hours=1), str(folder))
    path = entry_path(folder, own)
    intact = path.read_bytes()
    assert cache.cached_credentials(own, str(folder)) is not None
    path.write_bytes(CORRUPTIONS[corruption](own, intact))
    assert cache.cached_credentials(own, str(folder)) is None
    # Pruning (when another key is stored) removes it at once if no MAC could match it, else when the
    # times in it have passed (only the SVID's key could tell a forged MAC from ours).
    other_cert, other_key = svid_files(tmp_path, "other")
    cache.store(key_for(other_cert, other_key), credentials(), NOW + timedelta(hours=1), str(folder))
    if path.exists():
        assert corruption == "MAC of zeros"
        cache.prune(str(folder), now=(NOW + timedelta(hours=1)).timestamp())
    assert not path.exists()


def test_a_signed_entry_as_written_is_served(tmp_path: Path, folder: Path) -> None:
    """The corruptions' "signed" helper signs as store does (so their misses are the parser's)."""
    cert, key = svid_files(tmp_path)
    own = key_for(cert, key)
    cache.store(own, credentials(), NOW + timedelta(hours=1), str(folder))
    path = entry_path(folder, own)
    path.write_bytes(signed(own, path.read_bytes().partition(b"\n")[2]))
    assert cache.cached_credentials(own, str(folder)) == credentials()


def test_an_unreadable_entry_is_a_miss_and_a_link_or_folder_is_refused(tmp_path: Path, folder: Path) -> None:
    cert, key = svid_files(tmp_path)
    own = key_for(cert, key)
    cache.store(own, credentials(), NOW + timedelta(hours=1), str(folder))
    path = entry_path(folder, own)
    if os.getuid() != 0:  # root reads a 0000 file anyway
        path.chmod(0)
        assert cache.cached_credentials(own, str(folder)) is None
        path.chmod(0o600)
    path.unlink()
    path.mkdir(mode=0o700)
    with pytest.raises(cache.CacheUnsafeError, match="not a regular file"):
        cache.cached_credentials(own, str(folder))


@pytest.mark.parametrize(
    "changes",
    [
        {"accessKeyId": "ASIAÉ"},
        {"secretAccessKey": 'with"quote'},
        {"sessionToken": "with space"},
        {"sessionToken": "back\\slash"},
        {"sessionToken": ""},
        {"expiration": "tomorrow"},
        {"expiration": "2026-12-05T03:00:00"},  # no zone
        {"expiration": "1969-12-31T23:59:59Z"},
    ],
    ids=repr,
)
def test_credentials_that_cannot_be_written_as_they_are_are_not_cached(
    tmp_path: Path, folder: Path, changes: dict[str, str]
) -> None:
    cert, key = svid_files(tmp_path)
    own = key_for(cert, key)
    assert cache.store(own, credentials(**changes), NOW + timedelta(hours=1), str(folder)) is False
    assert not entry_path(folder, own).exists()
    missing = credentials()
    del missing["sessionToken"]
    assert cache.store(own, missing, NOW + timedelta(hours=1), str(folder)) is False


ASCII = st.text(st.characters(min_codepoint=0, max_codepoint=0x7F), max_size=30)
PLAIN = st.text(st.sampled_from([chr(c) for c in cache._PLAIN]), min_size=1, max_size=30)


@given(key_id=PLAIN | ASCII | st.text(max_size=5), secret=PLAIN, token=PLAIN | ASCII, expiration=PLAIN)
def test_the_version_1_document_is_json_dumps_text(
    key_id: str, secret: str, token: str, expiration: str
) -> None:
    """Written without ``json`` for plain credentials (the fast path cannot afford it), and identical."""
    given_credentials = {
        "accessKeyId": key_id,
        "secretAccessKey": secret,
        "sessionToken": token,
        "expiration": expiration,
    }
    expected = {"Version": 1, "AccessKeyId": key_id, "SecretAccessKey": secret, "SessionToken": token}
    assert cache.credential_process_json(given_credentials) == json.dumps(
        {**expected, "Expiration": expiration}
    )


@pytest.mark.skipif(os.getuid() != 0, reason="planting a file owned by another user needs root")
def test_a_file_planted_by_another_user_is_refused(tmp_path: Path, folder: Path) -> None:
    cert, key = svid_files(tmp_path)
    own = key_for(cert, key)
    cache.store(own, credentials(), NOW + timedelta(hours=1), str(folder))
    os.chown(entry_path(folder, own), 65534, 65534)
    with pytest.raises(cache.CacheUnsafeError, match="belongs to another user"):
        cache.cached_credentials(own, str(folder))
    os.chown(entry_path(folder, own), 0, 0)
    os.chown(folder, 65534, 65534)
    with pytest.raises(cache.CacheUnsafeError, match="belongs to another user"):
        cache.cached_credentials(own, str(folder))


def test_a_folder_or_file_open_to_others_or_a_link_is_refused(tmp_path: Path, folder: Path) -> None:
    cert, key = svid_files(tmp_path)
    own = key_for(cert, key)
    cache.store(own, credentials(), NOW + timedelta(hours=1), str(folder))
    entry = entry_path(folder, own)
    entry.chmod(0o644)
    with pytest.raises(cache.CacheUnsafeError, match="open to other users"):
        cache.cached_credentials(own, str(folder))
    entry.chmod(0o600)
    folder.chmod(0o777)
    with pytest.raises(cache.CacheUnsafeError, match="open to other users"):
        cache.cached_credentials(own, str(folder))
    folder.chmod(0o700)
    entry.rename(tmp_path / "elsewhere.entry")
    entry.symlink_to(tmp_path / "elsewhere.entry")
    with pytest.raises(cache.CacheUnsafeError, match="cannot be opened safely"):
        cache.cached_credentials(own, str(folder))
    linked = tmp_path / "linked-cache"
    linked.symlink_to(folder)
    with pytest.raises(cache.CacheUnsafeError, match="not a folder"):
        cache.cached_credentials(own, str(linked))


def test_unreadable_svid_files_give_no_key(tmp_path: Path) -> None:
    cert, key = svid_files(tmp_path)
    with pytest.raises(AssertionError):
        key_for(tmp_path / "missing.pem", key)
    with pytest.raises(AssertionError):
        key_for(cert, tmp_path / "missing_key.pem")
    with pytest.raises(AssertionError):
        key_for(cert, "with\0nul")
    cert.write_text("no certificate here")
    with pytest.raises(AssertionError):
        key_for(cert, key)


def test_values_argv_could_not_decode_make_a_key_of_their_own(tmp_path: Path) -> None:
    """argv holds undecodable bytes as lone surrogates; they key like any other value."""
    cert, key = svid_files(tmp_path)
    plain = key_for(cert, key, role_session_name="x")
    undecodable = key_for(cert, key, role_session_name="x\udcff")
    lone = key_for(cert, key, role_session_name="x\ud800")
    assert len({plain.name, undecodable.name, lone.name}) == 3


def test_the_entries_mac_is_hmac_sha256() -> None:
    """The fast path computes HMAC-SHA256 itself (``hmac`` would load OpenSSL); it must agree."""
    import hashlib  # noqa: PLC0415
    import hmac  # noqa: PLC0415

    for size in (0, 1, 100, 10_000):
        secret = hashlib.sha256(str(size).encode()).digest()
        message = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
        assert cache._hmac_sha256(secret, message) == hmac.new(secret, message, hashlib.sha256).hexdigest()


# --- pruning ---------------------------------------------------------------------------------------


def stored(tmp_path: Path, folder: Path, name: str, **options: Any) -> cache.CacheKey:
    """An entry (and its lock) for another SVID, as a call left it."""
    cert, key = svid_files(tmp_path, name)
    made = key_for(cert, key)
    answer = credentials(options.pop("expires_in", timedelta(hours=1)))
    cache.store(made, answer, options.pop("svid_not_after", NOW + timedelta(hours=1)), str(folder))
    with cache.locked(made, str(folder)):
        pass
    return made


def names(folder: Path) -> set[str]:
    return {path.name for path in folder.iterdir()}


def test_storing_prunes_entries_no_call_can_use_and_their_locks(tmp_path: Path, folder: Path) -> None:
    fresh = stored(tmp_path, folder, "fresh")
    expired = stored(tmp_path, folder, "expired", expires_in=timedelta(minutes=-1))
    near = stored(tmp_path, folder, "near", expires_in=timedelta(minutes=4))  # never served again
    svid_gone = stored(tmp_path, folder, "svid-gone", svid_not_after=NOW - timedelta(seconds=1))
    corrupt = stored(tmp_path, folder, "corrupt")
    entry_path(folder, corrupt).write_bytes(b"junk")
    orphan_lock = folder / f"{'a' * 64}.lock"  # a call that failed left its lock
    orphan_lock.write_bytes(b"")
    orphan_lock.chmod(0o600)
    current = stored(tmp_path, folder, "current")
    kept = {f"{k.name}{suffix}" for k in (fresh, current) for suffix in (".entry", ".lock")}
    assert names(folder) == kept
    assert cache.cached_credentials(fresh, str(folder)) is not None
    for gone in (expired, near, svid_gone, corrupt):
        assert not entry_path(folder, gone).exists()


def test_pruning_leaves_a_held_lock_and_its_entry_alone(tmp_path: Path, folder: Path) -> None:
    expired = stored(tmp_path, folder, "expired", expires_in=timedelta(minutes=-1))
    lock = folder / f"{expired.name}.lock"
    holder = os.open(lock, os.O_RDWR)
    fcntl.flock(holder, fcntl.LOCK_EX)  # another caller, asking AWS (flock is per open file)
    try:
        stored(tmp_path, folder, "current")
        assert entry_path(folder, expired).exists()
        assert lock.exists()
    finally:
        os.close(holder)
    stored(tmp_path, folder, "later")
    assert not entry_path(folder, expired).exists()
    assert not lock.exists()


def test_pruning_touches_only_our_own_regular_files_and_never_follows_links(
    tmp_path: Path, folder: Path
) -> None:
    expired = stored(tmp_path, folder, "expired", expires_in=timedelta(minutes=-1))
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / "precious.entry"
    target.write_bytes(b"junk")
    target.chmod(0o600)
    planted = {
        f"{'b' * 64}.entry": "link",  # a link named like an entry: neither it nor its target goes
        f"{'c' * 64}.entry": "folder",
        f"{'d' * 64}.entry": "open to others",
        f"{'e' * 64}.lock": "link to lock",
        f"{'F' * 64}.entry": "not our naming (upper case)",
        f"{'f' * 63}.entry": "not our naming (63 digits)",
        f"{'f' * 64}.entry.bak": "not our naming (suffix)",
        "notes.txt": "not our naming",
        ".abcdefgh.tmp": "a writer's temporary file, recent",
    }
    for name, kind in planted.items():
        path = folder / name
        if kind.startswith("link"):
            path.symlink_to(target)
        elif kind == "folder":
            path.mkdir()
        else:
            path.write_bytes(b"junk")
            path.chmod(0o644 if kind == "open to others" else 0o600)
    stale = folder / ".zyxwvuts.tmp"  # left by a writer that crashed an hour ago
    stale.write_bytes(b"half")
    stale.chmod(0o600)
    os.utime(stale, (time.time() - 3_700, time.time() - 3_700))
    format_2 = {name: folder / f"{name * 64}.json" for name in ("7", "8")}  # entries of the old format
    for path in format_2.values():
        path.write_text("{}")
        path.chmod(0o600)
    os.utime(format_2["7"], (time.time() - 43_600, time.time() - 43_600))  # older than any session
    current = stored(tmp_path, folder, "current")
    assert names(folder) == {
        *planted,
        f"{current.name}.entry",
        f"{current.name}.lock",
        format_2["8"].name,
        f"{'8' * 64}.lock",  # taken to look at the format 2 entry, which stays
    }
    assert not entry_path(folder, expired).exists()
    assert target.read_bytes() == b"junk"


def test_a_caller_whose_lock_file_was_pruned_while_it_waited_locks_the_new_one(
    tmp_path: Path, folder: Path
) -> None:
    cert, key = svid_files(tmp_path)
    own = key_for(cert, key)
    folder.mkdir(mode=0o700)
    lock = folder / f"{own.name}.lock"
    pruner = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(pruner, fcntl.LOCK_EX)
    waiter = cache.locked(own, str(folder))
    entered = threading.Event()

    def wait() -> None:
        waiter.__enter__()
        entered.set()

    thread = threading.Thread(target=wait)
    thread.start()
    time.sleep(0.3)  # the waiter has opened the file and blocks on it
    assert not entered.is_set()
    lock.unlink()  # pruned, while held
    os.close(pruner)
    thread.join(timeout=10)
    assert entered.is_set()
    try:
        assert os.fstat(waiter.descriptor).st_ino == lock.stat().st_ino  # it holds the file now named
        other = os.open(lock, os.O_RDWR)
        with pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.close(other)
    finally:
        waiter.__exit__(None, None, None)


def test_a_relative_cache_location_is_never_resolved_against_wherever_the_cli_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ROLES_ANYWHERE_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # invalid by the XDG spec: ignored
    assert cache.cache_dir() == str(tmp_path / ".cache" / "roles-anywhere")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir() == str(tmp_path / "xdg" / "roles-anywhere")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ROLES_ANYWHERE_CACHE_DIR", "mine")
    assert cache.cache_dir() == str(tmp_path / "mine")
