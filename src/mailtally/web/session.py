"""Dashboard sessions: a signed cookie, CSRF tokens derived from it, and a brake on failed sign-ins.

The cookie holds who signed in and when, signed with the instance secret (HMAC-SHA256); the
server keeps no session rows. Signing out moves the user's ``session_epoch`` on, which every
cookie carries, so a copied cookie dies with the sign-out too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass

import orjson
from starlette.requests import Request
from starlette.responses import Response

SESSION_COOKIE = "mt_session"
PRE_COOKIE = "mt_pre"  # before sign-in: what the sign-in form's CSRF token is bound to
SESSION_SECONDS = 14 * 86_400


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, purpose: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, purpose + b"|" + payload, hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class Session:
    account_id: int
    email: str
    epoch: int
    issued_at: int
    nonce: str


def encode_session(secret: bytes, s: Session) -> str:
    payload = orjson.dumps([s.account_id, s.email, s.epoch, s.issued_at, s.nonce])
    return _b64(payload) + "." + _b64(_mac(secret, b"session", payload))


def decode_session(secret: bytes, value: str, now: float | None = None) -> Session | None:
    """The session a cookie holds; None when it is forged, malformed or expired."""
    try:
        body, _, sig = value.partition(".")
        payload = _unb64(body)
        if not hmac.compare_digest(_unb64(sig), _mac(secret, b"session", payload)):
            return None
        account, email, epoch, issued, nonce = orjson.loads(payload)
        s = Session(int(account), str(email), int(epoch), int(issued), str(nonce))
    except (ValueError, TypeError, orjson.JSONDecodeError):
        return None
    if (now or time.time()) - s.issued_at > SESSION_SECONDS:
        return None
    return s


def new_session(account_id: int, email: str, epoch: int) -> Session:
    return Session(account_id, email, epoch, int(time.time()), secrets.token_urlsafe(16))


def csrf_token(secret: bytes, bound_to: str) -> str:
    """The token every state-changing form carries, bound to the session (or pre-session) nonce."""
    return _b64(_mac(secret, b"csrf", bound_to.encode()))[:32]


def csrf_ok(secret: bytes, bound_to: str | None, token: str | None) -> bool:
    if not bound_to or not token:
        return False
    return hmac.compare_digest(csrf_token(secret, bound_to), token)


def is_https(request: Request, public_url: str | None) -> bool:
    """Behind https (directly, via a proxy uvicorn trusts, or as the configured public URL)."""
    return request.url.scheme == "https" or bool(public_url and public_url.startswith("https://"))


def set_cookie(response: Response, name: str, value: str, *, secure: bool, max_age: int | None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="lax", secure=secure)


class LoginThrottle:
    """At most ``per_address`` failed sign-ins per address and ``per_client`` per client address
    within ``window`` seconds; past that, sign-in is refused without checking the password.

    In memory, per process: with several workers each counts its own failures.
    """

    def __init__(self, per_address: int = 5, per_client: int = 20, window: float = 900.0):
        self.per_address, self.per_client, self.window = per_address, per_client, window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._failures.setdefault(key, deque())
        while q and now - q[0] > self.window:
            q.popleft()
        return q

    def retry_after(self, email: str, client: str, now: float | None = None) -> int:
        """Seconds until this sign-in may be tried again; 0 when it may be tried now."""
        now = now or time.monotonic()
        with self._lock:
            waits = []
            for key, limit in ((f"e:{email}", self.per_address), (f"c:{client}", self.per_client)):
                q = self._recent(key, now)
                if len(q) >= limit:
                    waits.append(int(self.window - (now - q[0])) + 1)
            return max(waits, default=0)

    def failed(self, email: str, client: str, now: float | None = None) -> None:
        now = now or time.monotonic()
        with self._lock:
            if len(self._failures) > 100_000:
                self._failures.clear()
            for key in (f"e:{email}", f"c:{client}"):
                self._recent(key, now).append(now)

    def succeeded(self, email: str) -> None:
        with self._lock:
            self._failures.pop(f"e:{email}", None)
