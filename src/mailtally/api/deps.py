"""Shared request plumbing: the engine, a connection, and running quick endpoints inline."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from fastapi import Request
from sqlalchemy import Connection, Engine

P = ParamSpec("P")
R = TypeVar("R")


def engine(request: Request) -> Engine:
    return request.app.state.engine


def read_engine(request: Request) -> Engine:
    """Where report queries go: the read replica when MAILTALLY_READ_DATABASE_URL is set."""
    return request.app.state.read_engine


def declared_length(request: Request) -> int:
    """The Content-Length the client announced (0 when absent or not a number)."""
    value = request.headers.get("content-length", "")
    return int(value) if value.isdigit() else 0


async def capped_body(request: Request) -> bytes:
    """The body, refused with a 413 (native shape) over ``max_body_bytes``: routes that take
    events-sized bodies (a CSV import, a provider's batch)."""
    from .errors import ApiError

    limit: int = request.app.state.settings.max_body_bytes
    if declared_length(request) > limit:
        raise ApiError(413, "too_large", f"bodies over {limit} bytes are refused")
    body = await request.body()
    if len(body) > limit:
        raise ApiError(413, "too_large", f"bodies over {limit} bytes are refused")
    return body


async def json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object, or a 400 ``bad_json`` (settings bodies: policies, rules)."""
    from .errors import ApiError

    try:
        data = await request.json()
    except ValueError:
        raise ApiError(400, "bad_json", "the body must be a JSON object") from None
    if not isinstance(data, dict):
        raise ApiError(400, "bad_json", "the body must be a JSON object")
    return data


def inline(fn: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """Run a sync endpoint or dependency on the event loop instead of in the threadpool.

    For the report queries (indexed, well under a few milliseconds) the hop to a worker thread
    and back costs more than the query, and on a busy machine several times more. Parallelism
    comes from worker processes (``mailtally serve --workers N``), not threads.
    """

    @functools.wraps(fn)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return fn(*args, **kwargs)

    return run


async def read_conn(request: Request) -> AsyncIterator[Connection]:
    with request.app.state.readers.connect() as conn:
        yield conn
