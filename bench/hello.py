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


def fastapi_app() -> Any:
    """A bare FastAPI "hello" (one async route returning JSON), the reference of bench/reports.py:
    served by the same uvicorn command and settings as mailtally, measured by the same wrk."""
    from fastapi import FastAPI

    hello = FastAPI()

    @hello.get("/hello")
    async def say() -> dict[str, str]:
        return {"hello": "world"}

    return hello
