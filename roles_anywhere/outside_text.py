"""Text that came from outside (a command's stderr, a server's answer, a file) made safe to print.

Two dangers: control characters (an escape sequence can retitle, clear or rewrite the user's
terminal) and key material (a CI log is read by many). Key material is recognised by content, not by
where it came from: a PEM block of any kind, base64 whose bytes begin like a DER private key
(PKCS#8, PKCS#1 or SEC1 — ``SEQUENCE { INTEGER 0|1 …``), raw DER of the same shape, and any base64 run of
64 characters or more that is not hex (a key cut in the middle has no structure left to recognise).
"""

from __future__ import annotations

import base64
import binascii
import re

# A PEM block, or what is left of one when the text was cut before its END line.
_PEM = re.compile(r"-----BEGIN [^\n]{0,80}?-----.*?(?:-----END [^\n]{0,80}?-----|\Z)", re.S)
# Base64-looking runs, and what may separate the pieces of one key split over lines or list items:
# whitespace, quotes, commas, brackets, " | ", and a backslash (repr() shows a newline as "\\n").
_RUN = re.compile(r"[A-Za-z0-9+/]{4,}={0,2}")
_SEPARATOR = re.compile(r"[\s'\",|\\\[\]]{0,6}")
_HEX = re.compile(r"[0-9a-fA-F]+")
# DER: SEQUENCE (short or long length), then INTEGER 0 or 1 — the first field of every private key.
_DER_KEY = re.compile(
    rb"\x30(?:[\x00-\x7f]|\x81[\x00-\xff]|\x82[\x00-\xff]{2}|\x83[\x00-\xff]{3})\x02\x01[\x00\x01]"
)
_DER_KEY_TEXT = re.compile(_DER_KEY.pattern.decode("latin-1"), re.S)
LONG_BASE64 = 64  # a full line of PEM; hex (a fingerprint) is exempt
MIXED_BASE64 = 40  # upper case, lower case and digits together: random-looking, not prose or a path
HIDDEN = "[base64 data not shown]"


def without_key_material(text: str) -> str:
    """``text`` with every PEM block, base64 private key, raw DER key and long base64 run replaced."""
    text = _PEM.sub("[PEM data not shown]", text)
    text = _hide_base64(text)
    found = _DER_KEY_TEXT.search(text)
    if found:  # raw DER from a binary stream: nothing after its first byte is shown
        text = text[: found.start()] + "[binary key data not shown]"
    return text


def _random_looking(core: str) -> bool:
    has = (any(c.isupper() for c in core), any(c.islower() for c in core), any(c.isdigit() for c in core))
    return all(has) and not _HEX.fullmatch(core)


def _suspicious(run: str) -> bool:
    """A run that is key material on its own: a DER key's start, or long random-looking base64."""
    core = run.rstrip("=")
    if len(core) >= 16 and is_der_private_key(_decode_prefix(core)):
        return True
    if _HEX.fullmatch(core):
        return False
    return len(core) >= LONG_BASE64 or (len(core) >= MIXED_BASE64 and _random_looking(core))


def _hide_base64(text: str) -> str:
    """Replace key material among base64-looking runs, also when a key is split into pieces.

    Runs joined only by separators form a chain (one key over lines, or over list items). A chain is
    hidden from its first long piece on when one piece is suspicious on its own, or when its long
    pieces (12+ characters) add up to 64 random-looking characters (the middle of a key, cut small).
    """
    runs = list(_RUN.finditer(text))
    chains: list[list[re.Match[str]]] = []
    for run in runs:
        if chains and _SEPARATOR.fullmatch(text, chains[-1][-1].end(), run.start()):
            chains[-1].append(run)
        else:
            chains.append([run])
    pieces, position = [], 0
    for chain in chains:
        long_pieces = "".join(run.group().rstrip("=") for run in chain if len(run.group()) >= 12)
        if not (
            any(_suspicious(run.group()) for run in chain)
            or (len(long_pieces) >= LONG_BASE64 and _random_looking(long_pieces))
        ):
            continue
        first = next(run for run in chain if len(run.group()) >= 12 or _suspicious(run.group()))
        pieces += [text[position : first.start()], HIDDEN]
        position = chain[-1].end()
    return "".join(pieces) + text[position:]


def _decode_prefix(run: str) -> bytes:
    """The first bytes of a base64 run (enough to see a DER header), or ``b""``."""
    try:
        return base64.b64decode(run.rstrip("=")[:16], validate=True)
    except (binascii.Error, ValueError):
        return b""


def is_der_private_key(data: bytes) -> bool:
    """Whether ``data`` begins like a DER private key: ``SEQUENCE { INTEGER 0|1 …``."""
    return _DER_KEY.match(data) is not None


def one_printable_line(text: str) -> str:
    """Outside text for one line of stderr: key material replaced, control characters shown as ``?``."""
    safe = without_key_material(text)
    return "".join(c if c.isprintable() else "?" for c in " ".join(safe.splitlines()))


def printable_lines(text: str) -> str:
    """A report for the terminal: lines kept, every other control character shown as ``?``."""
    return "\n".join("".join(c if c.isprintable() else "?" for c in line) for line in text.split("\n"))
