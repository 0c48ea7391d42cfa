"""The bare ASGI "hello" that bench/tracking.py measures the tracking endpoints against."""

from __future__ import annotations

from typing import Any

BODY = b"hello"


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"5")]})
    await send({"type": "http.response.body", "body": BODY})
