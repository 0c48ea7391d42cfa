"""Signed tracking tokens: what a pixel, click, unsubscribe or forward URL carries.

A token names the account, activity and contact by their numeric ids (never an address), the
kind of URL it belongs to and, for a click, the link's ``url_id``; it ends in a truncated
HMAC-SHA256. It starts with the id of the key that signed it, so after a rotation the old
keys (kept in the key ring) still verify the tokens already out in mailboxes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from enum import StrEnum
from typing import NamedTuple

_MAC_BYTES = 12
_DOMAIN = b"mailtally-tracking-v1|"
MAX_TOKEN_CHARS = 400
_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")


class Kind(StrEnum):
    """The path letter of each endpoint: ``/t/o/{token}`` and so on."""

    OPEN = "o"
    CLICK = "c"
    UNSUBSCRIBE = "u"
    FORWARD = "f"


_KIND_BYTE = {Kind.OPEN: 1, Kind.CLICK: 2, Kind.UNSUBSCRIBE: 3, Kind.FORWARD: 4}
_BYTE_KIND = {v: k for k, v in _KIND_BYTE.items()}


class HitRef(NamedTuple):
    """Who a signed token names, and for what (a tuple: a click's write makes several)."""

    kind: Kind
    account_id: int
    activity_num: int
    contact_num: int
    url_id: str | None = None


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while pos < len(data):
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            break
    raise ValueError("bad varint")


def derive_key(secret: bytes, salt: bytes) -> bytes:
    """A signing key from the instance secret: the key ring stores salts, never keys."""
    return hmac.new(secret, b"mailtally tracking key|" + salt, hashlib.sha256).digest()


class KeyRing:
    """Signing keys by id; the newest signs, every one kept verifies."""

    def __init__(self, keys: dict[int, bytes]):
        if not keys:
            raise ValueError("a key ring needs at least one key")
        self.keys = dict(keys)
        self.current = max(self.keys)

    def _mac(self, key: bytes, body: bytes) -> bytes:
        return hmac.digest(key, _DOMAIN + body, "sha256")[:_MAC_BYTES]  # one-shot, in C

    def sign(self, ref: HitRef) -> str:
        body = (_varint(self.current) + bytes([_KIND_BYTE[ref.kind]]) + _varint(ref.account_id)
                + _varint(ref.activity_num) + _varint(ref.contact_num))
        if ref.kind is Kind.CLICK:
            raw = (ref.url_id or "").encode()
            body += _varint(len(raw)) + raw
        mac = self._mac(self.keys[self.current], body)
        return base64.urlsafe_b64encode(body + mac).rstrip(b"=").decode()

    def key_id(self, token: str) -> int | None:
        """The id of the key a token names (unverified), or None when it is not one of ours."""
        data = _decode(token)
        if data is None:
            return None
        try:
            return _read_varint(data, 0)[0]
        except ValueError:
            return None

    def verify(self, token: str, kind: Kind) -> HitRef | None:
        """The reference a token carries if a kept key signed it for ``kind``; else None."""
        return self.check(token, kind)[0]

    def check(self, token: str, kind: Kind) -> tuple[HitRef | None, int | None]:
        """``verify`` and ``key_id`` from one decoding: a token that fails is often one signed
        by a key this process has not loaded yet, and the caller then needs the id it names."""
        data = _decode(token)
        if data is None or len(data) <= _MAC_BYTES:
            return None, None
        body, mac = data[:-_MAC_BYTES], data[-_MAC_BYTES:]
        try:
            kid, pos = _read_varint(body, 0)
        except ValueError:
            return None, None
        key = self.keys.get(kid)
        if key is None or not hmac.compare_digest(mac, self._mac(key, body)):
            return None, kid
        try:
            found = _BYTE_KIND.get(body[pos])
            account, pos = _read_varint(body, pos + 1)
            activity, pos = _read_varint(body, pos)
            contact, pos = _read_varint(body, pos)
            url_id = None
            if found is Kind.CLICK:
                n, pos = _read_varint(body, pos)
                url_id = body[pos:pos + n].decode()
                pos += n
        except (ValueError, IndexError, UnicodeDecodeError):
            return None, kid
        if found is not kind or pos != len(body):
            return None, kid
        return HitRef(kind, account, activity, contact, url_id), kid


_PADDING = ("", "", "==", "=")  # by len(token) % 4 (1 is never base64)


def _decode(token: str) -> bytes | None:
    """The bytes of an unpadded URL-safe base64 token, by binascii directly (base64's wrappers
    cost as much again on every hit); only the canonical spelling."""
    n = len(token)
    if n > MAX_TOKEN_CHARS or n % 4 == 1 or not _ALPHABET.fullmatch(token):
        return None
    std = token.replace("-", "+").replace("_", "/")
    try:
        data = binascii.a2b_base64(std + _PADDING[n % 4])
    except binascii.Error:
        return None
    # A changed last character (its spare bits) must not decode to the same bytes.
    return data if binascii.b2a_base64(data, newline=False).rstrip(b"=").decode() == std else None
