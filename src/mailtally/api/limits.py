"""Limits every request meets before any route sees it, whichever router it belongs to.

- Headers: at most ``max_header_bytes`` in all, and a credential (``Authorization``) of at most
  ``max_token_bytes``: 431 otherwise, before any token is looked up or cached.
- Body: one size limit per route (``body_limit``; ``Settings.max_request_bytes`` for routes
  that name none), checked against ``Content-Length`` before the route runs and counted while
  the body is read, so a chunked upload is refused at the limit, not buffered whole: 413.
- Time: a client that sends nothing for ``body_idle_seconds`` while its body is being read,
  or takes longer than ``body_seconds`` for the whole body, gets a 408.

Every refusal is rendered in the error shape of the dialect that owns the path.
Pure ASGI, and cheap: a request within the limits costs a loop over its headers.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from starlette.exceptions import HTTPException

from ..config import Settings
from .errors import renderer_for


@dataclass(frozen=True, slots=True)
class BodyLimit:
    limit: int | str  # bytes, or the name of the Settings field that holds them
    code: str
    what: str  # "batches", "messages": for the message


# (method, path prefix) -> limit; the longest matching prefix wins. Modules register their own.
_BODY_LIMITS: dict[tuple[str, str], BodyLimit] = {}


def body_limit(method: str, path_prefix: str, limit: int | str, code: str = "too_large",
               what: str = "request bodies") -> None:
    """Declare the body limit of a route (or of every route under a prefix)."""
    _BODY_LIMITS[(method.upper(), path_prefix)] = BodyLimit(limit, code, what)


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int, what: str, code: str):
        super().__init__(413, f"{what} over {limit} bytes are refused", headers={"Connection": "close"})
        self.code = code


class RequestTimeout(HTTPException):
    def __init__(self, message: str):
        super().__init__(408, message, headers={"Connection": "close"})


@dataclass(frozen=True, slots=True)
class _Rule:
    limit: int
    code: str
    what: str


class Limits:
    def __init__(self, app: Any, settings: Settings):
        self.app = app
        self.settings = settings
        self.max_header = settings.max_header_bytes
        self.max_token = settings.max_token_bytes
        self.body_seconds = settings.body_seconds
        self.idle_seconds = settings.body_idle_seconds
        self._rules: dict[tuple[str, str], _Rule] = {}

    def _rule(self, method: str, path: str) -> _Rule:
        found = self._rules.get((method, path))
        if found is not None:
            return found
        best: tuple[str, BodyLimit] | None = None
        for (m, prefix), bl in _BODY_LIMITS.items():
            if m in (method, "*") and path.startswith(prefix) and (best is None or len(prefix) > len(best[0])):
                best = (prefix, bl)
        if best is None:
            rule = _Rule(self.settings.max_request_bytes, "too_large", "request bodies")
        else:
            bl = best[1]
            limit = bl.limit if isinstance(bl.limit, int) else int(getattr(self.settings, bl.limit))
            rule = _Rule(limit, bl.code, bl.what)
        if len(self._rules) < 4096:  # paths with ids are many: remember only a bounded number
            self._rules[(method, path)] = rule
        return rule

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        total = 0
        declared = -1
        for name, value in scope["headers"]:
            total += len(name) + len(value)
            if name == b"authorization" and len(value) > self.max_token:
                await self._refuse(scope, receive, send, 431, "too_large",
                                   f"the Authorization header is over {self.max_token} bytes")
                return
            if name == b"content-length":
                declared = int(value) if value.isdigit() else -1
        if total > self.max_header:
            await self._refuse(scope, receive, send, 431, "too_large", f"request headers over {self.max_header} bytes")
            return
        method = scope["method"]
        if method in ("GET", "HEAD", "OPTIONS", "DELETE") and declared <= 0:
            await self.app(scope, receive, send)
            return
        rule = self._rule(method, scope["path"])
        if declared > rule.limit:
            await self._refuse(scope, receive, send, 413, rule.code, f"{rule.what} over {rule.limit} bytes are refused")
            return
        await self.app(scope, self._bounded(receive, rule), send)

    def _bounded(self, receive: Any, rule: _Rule) -> Any:
        seen = 0
        done = False
        deadline = time.monotonic() + self.body_seconds

        async def bounded_receive() -> Any:
            nonlocal seen, done
            if done:  # after the body, receive() waits for the disconnect: no time limit on that
                return await receive()
            left = deadline - time.monotonic()
            try:
                message = await asyncio.wait_for(receive(), min(self.idle_seconds, max(left, 0.001)))
            except TimeoutError:
                raise RequestTimeout(f"the request body did not arrive in time (each part within "
                                     f"{self.idle_seconds:g} s, all of it within {self.body_seconds:g} s)") from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > rule.limit:
                    raise BodyTooLarge(rule.limit, rule.what, rule.code)
                if not message.get("more_body", False):
                    done = True
            else:
                done = True
            return message

        return bounded_receive

    async def _refuse(self, scope: Any, receive: Any, send: Any, status: int, code: str, message: str) -> None:
        response = renderer_for(scope["path"])(status, code, message, None)
        response.headers["Connection"] = "close"
        await response(scope, receive, send)


def install(app: Any, settings: Settings) -> None:
    app.add_middleware(Limits, settings=settings)
