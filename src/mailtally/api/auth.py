"""Who is calling. Each dialect decides how to refuse, in its own error shape."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable
from enum import Enum

from fastapi import Request
from sqlalchemy import Engine

from ..store.accounts import Principal, principal_for_token
from ..vocab import Scope

_CACHE_SECONDS = 30.0
# No token mailtally issues is longer than ~60 characters: anything past this is not one of
# ours, and is refused without a lookup (and without a place in the cache).
MAX_TOKEN_CHARS = 256
# Bounded by memory, not only by count: at most this many entries of at most MAX_TOKEN_CHARS
# each (about 5 MB), and invalid tokens kept only as 16-byte digests (about 2 MB).
_MAX_VALID = 10_000
_MAX_INVALID = 10_000


class TokenCache:
    """Token lookups are a hash and a query; cache them briefly so reports stay fast."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._hits: dict[str, tuple[float, Principal]] = {}
        self._misses: dict[bytes, float] = {}

    def lookup(self, token: str) -> Principal | None:
        if len(token) > MAX_TOKEN_CHARS:
            return None
        now = time.monotonic()
        hit = self._hits.get(token)
        if hit is not None and now - hit[0] < _CACHE_SECONDS:
            return hit[1]
        digest = hashlib.blake2b(token.encode(errors="replace"), digest_size=16).digest()
        missed = self._misses.get(digest)
        if missed is not None and now - missed < _CACHE_SECONDS:
            return None
        with self.engine.connect() as conn:
            principal = principal_for_token(conn, token)
        if principal is None:
            if len(self._misses) >= _MAX_INVALID:
                self._misses.clear()
            self._misses[digest] = now
            return None
        if len(self._hits) >= _MAX_VALID:
            self._hits.clear()
        self._hits[token] = (now, principal)
        return principal

    def forget(self) -> None:
        """Drop every cached lookup (a token was revoked: it must stop working at once)."""
        self._hits.clear()


def bearer_token(request: Request, scheme: str = "bearer") -> str | None:
    header = request.headers.get("authorization", "")
    kind, _, value = header.partition(" ")
    if kind.lower() != scheme.lower() or not value.strip():
        return None
    return value.strip()


def basic_credentials(request: Request) -> tuple[str, str] | None:
    token = bearer_token(request, "basic")
    if token is None:
        return None
    try:
        user, _, password = base64.b64decode(token, validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return user, password


def principal(request: Request, token: str | None) -> Principal | None:
    if not token:
        return None
    cache: TokenCache = request.app.state.tokens
    return cache.lookup(token)


class Refusal(Enum):
    """Why a caller is turned away; each dialect words it in its own error shape."""

    UNAUTHENTICATED = 401
    MISSING_SCOPE = 403


def authorize(request: Request, token: str | None, scope: Scope) -> Principal | Refusal:
    who = principal(request, token)
    if who is None:
        return Refusal.UNAUTHENTICATED
    return who if who.can(scope) else Refusal.MISSING_SCOPE


def bearer_caller(request: Request, scope: Scope, refused: Callable[[Refusal, Scope], Exception]) -> Principal:
    """The caller of a request with a bearer token, or ``refused(why, scope)`` raised: the
    dialect's own error for a missing token or a missing scope."""
    who = authorize(request, bearer_token(request), scope)
    if isinstance(who, Refusal):
        raise refused(who, scope)
    return who
