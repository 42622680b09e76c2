"""Every way a credential cache entry can be planted or broken: each must be a miss, never a crash.

Each corruption turns an intact entry (the bytes ``cache.store`` wrote for ``key``) into the bytes put
in its place. Those marked "signed" carry a valid MAC: someone holding the SVID's key wrote them, so
only the parser stands between them and the output.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from roles_anywhere.credentials import cache

Corruption = Callable[[cache.CacheKey, bytes], bytes]


def signed(key: cache.CacheKey, body: bytes) -> bytes:
    return cache._entry_mac(key, body) + b"\n" + body


def body_of(entry: bytes) -> bytes:
    return entry.partition(b"\n")[2]


def line_set(index: int, value: bytes) -> Corruption:
    """The entry with body line ``index`` replaced, signed again."""

    def corrupt(key: cache.CacheKey, entry: bytes) -> bytes:
        lines = body_of(entry).split(b"\n")
        lines[index] = value
        return signed(key, b"\n".join(lines))

    return corrupt


def line_dropped(index: int) -> Corruption:
    def corrupt(key: cache.CacheKey, entry: bytes) -> bytes:
        lines = body_of(entry).split(b"\n")
        del lines[index]
        return signed(key, b"\n".join(lines))

    return corrupt


FORMAT_2 = {
    "format": 2,
    "key": {"svid": "0" * 64},
    "svidNotAfter": 9_999_999_999,
    "expiresAt": 9_999_999_999,
    "credentials": {"accessKeyId": "ASIAPLANTEDPLANTED01"},
    "mac": "é" * 64,
}

EXPIRES, SVID_EXPIRES, KEY_ID, SECRET, TOKEN, EXPIRATION = 1, 2, 3, 4, 5, 6

CORRUPTIONS: dict[str, Corruption] = {
    "empty file": lambda key, entry: b"",
    "a newline only": lambda key, entry: b"\n",
    "non-ASCII MAC": lambda key, entry: "é".encode() * 32 + b"\n" + body_of(entry),
    "MAC of 0xff bytes": lambda key, entry: b"\xff" * 64 + b"\n" + body_of(entry),
    "MAC one digit short": lambda key, entry: entry[1:],
    "MAC in upper case": lambda key, entry: entry[:64].upper() + entry[64:],
    "MAC of zeros": lambda key, entry: b"0" * 64 + entry[64:],
    "no MAC line": lambda key, entry: body_of(entry),
    "truncated": lambda key, entry: entry[: len(entry) // 2],
    "no final newline": lambda key, entry: entry[:-1],
    "binary junk": lambda key, entry: bytes(range(256)) * 8,
    "NUL for newlines": lambda key, entry: entry.replace(b"\n", b"\0"),
    "format 2 JSON, non-ASCII MAC": lambda key, entry: json.dumps(FORMAT_2).encode(),
    "signed: JSON": lambda key, entry: signed(key, json.dumps(FORMAT_2).encode()),
    "signed: nested junk": lambda key, entry: signed(key, b"[" * 50_000 + b"]" * 50_000),
    "signed: empty body": lambda key, entry: signed(key, b""),
    "signed: no final newline": lambda key, entry: signed(key, body_of(entry)[:-1]),
    "signed: an extra line": lambda key, entry: signed(key, body_of(entry) + b"extra\n"),
    "signed: CRLF line ends": lambda key, entry: signed(key, body_of(entry).replace(b"\n", b"\r\n")),
    "signed: another format": line_set(0, b"roles-anywhere credential cache 4"),
    "signed: a credential missing": line_dropped(SECRET),
    "signed: a credential empty": line_set(TOKEN, b""),
    "signed: a credential with a quote": line_set(KEY_ID, b'ASIA"},"x":"'),
    "signed: a credential with a backslash": line_set(SECRET, b"s\\u0000"),
    "signed: a credential with a space": line_set(TOKEN, b"t t"),
    "signed: a non-ASCII credential": line_set(KEY_ID, "ASIAÉ".encode()),
    "signed: a credential of JSON": line_set(EXPIRATION, b'{"a": [1, {"b": null}]}'),
    "signed: a control character": line_set(KEY_ID, b"ASIA\x1b[2J"),
    "signed: a huge expiry": line_set(EXPIRES, b"9" * 5_000),
    "signed: a 13-digit expiry": line_set(EXPIRES, b"9" * 13),
    "signed: a negative expiry": line_set(EXPIRES, b"-1"),
    "signed: a float expiry": line_set(SVID_EXPIRES, b"1e12"),
    "signed: an expiry with a space": line_set(EXPIRES, b" 9999999999"),
    "signed: an expiry in Arabic digits": line_set(EXPIRES, "٩٩٩٩٩٩٩٩٩٩".encode()),
    "signed: an expiry in hex": line_set(SVID_EXPIRES, b"0x2540be3ff"),
    "signed: over 64 KiB": line_set(TOKEN, b"t" * (64 * 1024)),
}
