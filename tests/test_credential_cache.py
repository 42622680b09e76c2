"""The credential cache: keyed by SVID and request, ours alone, intact, fresh — or never used."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from roles_anywhere.credentials import cache

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
        "endpoint": None,
    }
    settings.update(changes)
    made = cache.cache_key(**settings)  # type: ignore[arg-type]
    assert made is not None
    return made


def credentials(expires_in: timedelta = timedelta(hours=1)) -> dict[str, str]:
    return {
        "accessKeyId": "ASIAEXAMPLEEXAMPLE01",
        "secretAccessKey": "secret",
        "sessionToken": "token",
        "expiration": (NOW + expires_in).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def test_a_stored_answer_is_found_for_the_same_svid_and_request_only(tmp_path: Path, folder: Path) -> None:
    cert, key = svid_files(tmp_path)
    own = key_for(cert, key)
    cache.store(own, credentials(), NOW + timedelta(hours=1), str(folder))
    assert cache.cached_credentials(own, str(folder)) == credentials()
    assert (folder.stat().st_mode & 0o777, (folder / f"{own.name}.json").stat().st_mode & 0o777) == (
        0o700,
        0o600,
    )
    for change in (
        {"role_arn": "arn:aws:iam::111122223333:role/billing"},
        {"profile_arn": "arn:aws:rolesanywhere:eu-west-1:111122223333:profile/q"},
        {"session_duration": 7200},
        {"role_session_name": "teleport-orders"},
        {"endpoint": "https://127.0.0.1:8443"},
    ):
        assert cache.cached_credentials(key_for(cert, key, **change), str(folder)) is None, change
    rotated_cert, rotated_key = svid_files(tmp_path, "rotated")  # tbot rewrote the SVID
    assert key_for(rotated_cert, rotated_key).name != own.name
    assert cache.cached_credentials(key_for(rotated_cert, rotated_key), str(folder)) is None


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
    entry_path = folder / f"{own.name}.json"
    entry = json.loads(entry_path.read_text())
    longer = dict(entry, credentials=dict(entry["credentials"], accessKeyId="ASIAPLANTEDPLANTED01"))
    entry_path.write_text(json.dumps(longer))
    assert cache.cached_credentials(own, str(folder)) is None
    # an intact entry made for another SVID, copied under this key's name
    other_cert, other_key = svid_files(tmp_path, "other")
    other = key_for(other_cert, other_key)
    cache.store(other, credentials(), NOW + timedelta(hours=1), str(folder))
    (folder / f"{other.name}.json").replace(entry_path)
    assert cache.cached_credentials(own, str(folder)) is None
    entry_path.write_text("{not json")
    assert cache.cached_credentials(own, str(folder)) is None


@pytest.mark.skipif(os.getuid() != 0, reason="planting a file owned by another user needs root")
def test_a_file_planted_by_another_user_is_refused(tmp_path: Path, folder: Path) -> None:
    cert, key = svid_files(tmp_path)
    own = key_for(cert, key)
    cache.store(own, credentials(), NOW + timedelta(hours=1), str(folder))
    os.chown(folder / f"{own.name}.json", 65534, 65534)
    with pytest.raises(cache.CacheUnsafeError, match="belongs to another user"):
        cache.cached_credentials(own, str(folder))
    os.chown(folder / f"{own.name}.json", 0, 0)
    os.chown(folder, 65534, 65534)
    with pytest.raises(cache.CacheUnsafeError, match="belongs to another user"):
        cache.cached_credentials(own, str(folder))


def test_a_folder_or_file_open_to_others_or_a_link_is_refused(tmp_path: Path, folder: Path) -> None:
    cert, key = svid_files(tmp_path)
    own = key_for(cert, key)
    cache.store(own, credentials(), NOW + timedelta(hours=1), str(folder))
    entry = folder / f"{own.name}.json"
    entry.chmod(0o644)
    with pytest.raises(cache.CacheUnsafeError, match="open to other users"):
        cache.cached_credentials(own, str(folder))
    entry.chmod(0o600)
    folder.chmod(0o777)
    with pytest.raises(cache.CacheUnsafeError, match="open to other users"):
        cache.cached_credentials(own, str(folder))
    folder.chmod(0o700)
    entry.rename(tmp_path / "elsewhere.json")
    entry.symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(cache.CacheUnsafeError, match="cannot be opened safely"):
        cache.cached_credentials(own, str(folder))
    linked = tmp_path / "linked-cache"
    linked.symlink_to(folder)
    with pytest.raises(cache.CacheUnsafeError, match="not a folder"):
        cache.cached_credentials(own, str(linked))


def test_unreadable_svid_files_give_no_key(tmp_path: Path) -> None:
    cert, key = svid_files(tmp_path)
    settings = {
        "private_key": str(key),
        "trust_anchor_arn": ANCHOR,
        "profile_arn": "p",
        "role_arn": "r",
        "session_duration": 3600,
        "role_session_name": None,
        "endpoint": None,
    }
    assert cache.cache_key(certificate=str(tmp_path / "missing.pem"), **settings) is None  # type: ignore[arg-type]
    cert.write_text("no certificate here")
    assert cache.cache_key(certificate=str(cert), **settings) is None  # type: ignore[arg-type]


def test_the_entries_mac_is_hmac_sha256() -> None:
    """The fast path computes HMAC-SHA256 itself (``hmac`` would load OpenSSL); it must agree."""
    import hashlib  # noqa: PLC0415
    import hmac  # noqa: PLC0415

    for size in (0, 1, 100, 10_000):
        secret = hashlib.sha256(str(size).encode()).digest()
        message = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
        assert cache._hmac_sha256(secret, message) == hmac.new(secret, message, hashlib.sha256).hexdigest()
