"""Shared request plumbing: the engine, the caller."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import Request
from sqlalchemy import Connection, Engine


def engine(request: Request) -> Engine:
    return request.app.state.engine


def read_conn(request: Request) -> Iterator[Connection]:
    with engine(request).connect() as conn:
        yield conn
