"""Addresses and headers that let a bounce find the send it belongs to.

A sender puts ``return_path(...)`` in the envelope (VERP) and ``headers(...)`` in the
message. The token names the account, activity and contact by their numeric ids and is
signed with HMAC, so a forged or mangled address matches nothing. It is lowercase base32:
mail systems may change the case of a local part, and the whole address stays short.
"""

from __future__ import annotations

import base64
import hmac
import re
from dataclasses import dataclass

TOKEN_HEADER = "X-Mailtally-Id"
_SIG_BYTES = 8
_TOKEN = re.compile(r"mt([a-z2-7]{16,60})", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class SendRef:
    account_id: int
    activity_num: int
    contact_num: int


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_varints(data: bytes, count: int) -> list[int] | None:
    values, value, shift = [], 0, 0
    for byte in data:
        value |= (byte & 0x7F) << shift
        shift += 7
        if shift > 63:
            return None
        if not byte & 0x80:
            values.append(value)
            value, shift = 0, 0
    return values if len(values) == count and shift == 0 else None


def token(secret: bytes, ref: SendRef) -> str:
    body = _varint(ref.account_id) + _varint(ref.activity_num) + _varint(ref.contact_num)
    sig = hmac.digest(secret, body, "sha256")[:_SIG_BYTES]
    return "mt" + base64.b32encode(body + sig).decode().rstrip("=").lower()


# RFC 4648 base32 digits as int()'s base-32 digits: decoding is then one C call (the standard
# library's b32decode is a Python loop, most of a token read; provider webhooks read thousands).
_AS_INT = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567abcdefghijklmnopqrstuvwxyz",
                        "0123456789abcdefghijklmnopqrstuv0123456789abcdefghijklmnop")
_PADDED_LENGTHS = frozenset({0, 2, 4, 5, 7})  # length % 8 of the unpadded base32 texts there are


def _b32decode(raw: str) -> bytes | None:
    """``base64.b32decode`` of unpadded, case-insensitive text (None where it would refuse)."""
    if len(raw) % 8 not in _PADDED_LENGTHS:
        return None
    bits = len(raw) * 5
    size = bits // 8
    return (int(raw.translate(_AS_INT), 32) >> (bits - size * 8)).to_bytes(size, "big")


def has_token(text: str) -> bool:
    """Whether ``text`` holds anything shaped like a token (``read_token`` finds nothing in the rest)."""
    return _TOKEN.search(text) is not None


def read_token(secret: bytes, text: str) -> SendRef | None:
    """The first valid signed token anywhere in ``text`` (an address, a header, a Message-ID)."""
    for m in _TOKEN.finditer(text):
        data = _b32decode(m.group(1))
        if data is None:
            continue
        body, sig = data[:-_SIG_BYTES], data[-_SIG_BYTES:]
        if not hmac.compare_digest(sig, hmac.digest(secret, body, "sha256")[:_SIG_BYTES]):
            continue
        values = _read_varints(body, 3)
        if values:
            return SendRef(*values)
    return None


def return_path(secret: bytes, ref: SendRef, domain: str, local: str = "bounces") -> str:
    """``bounces+mt...@domain``: the envelope sender to use for this one recipient."""
    return f"{local}+{token(secret, ref)}@{domain}"


UNSUBSCRIBE_LOCAL = "unsubscribe"


def unsubscribe_address(secret: bytes, ref: SendRef, domain: str) -> str:
    """``unsubscribe+mt...@domain``: List-Unsubscribe's mailto: address for this one recipient."""
    return return_path(secret, ref, domain, UNSUBSCRIBE_LOCAL)


def unsubscribe_ref(secret: bytes, address: str) -> SendRef | None:
    """The recipient an ``unsubscribe+<token>@...`` address opts out; None for any other address
    (a bounce address carries the same token: only the local part tells the two apart)."""
    local = address.strip().strip("<>").rpartition("@")[0].lower()
    if not local.startswith(UNSUBSCRIBE_LOCAL + "+"):
        return None
    return read_token(secret, local[len(UNSUBSCRIBE_LOCAL) + 1:])


def headers(secret: bytes, ref: SendRef, domain: str) -> dict[str, str]:
    """Headers for the outgoing message; bounces that quote them find the send even without VERP."""
    t = token(secret, ref)
    return {TOKEN_HEADER: t, "Message-ID": f"<{t}@{domain}>"}
