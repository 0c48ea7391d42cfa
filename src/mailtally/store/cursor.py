"""Opaque, signed keyset cursors: a page continues after the last row it showed.

A cursor is base64url of ``json(values) + "." + hmac``; a tampered or foreign cursor is
refused (the caller turns that into its dialect's 400), never trusted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import orjson


class BadCursor(ValueError):
    pass


def _sig(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).digest()[:12]


def encode(key: bytes, values: list[Any]) -> str:
    payload = orjson.dumps(values)
    return base64.urlsafe_b64encode(payload + b"." + _sig(key, payload)).decode().rstrip("=")


def decode(key: bytes, cursor: str, arity: int) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload, sig = raw[:-13], raw[-12:]
        if raw[-13:-12] != b"." or not hmac.compare_digest(sig, _sig(key, payload)):
            raise BadCursor("cursor is not one this server issued")
        values = orjson.loads(payload)
    except (ValueError, orjson.JSONDecodeError):
        raise BadCursor("cursor is malformed") from None
    if not isinstance(values, list) or len(values) != arity:
        raise BadCursor("cursor does not belong to this report")
    return values
