"""Each API surface answered by an app of its own routes, so a request is matched against them only.

FastAPI matches a request against every route of every included router in turn, and for a
path near the end of the list (the reports) that walk costs more than the whole query: with
~90 routes it was most of the per-request time of a stats call, and a 404 walked them twice.
So a pure-ASGI switch in front of the app sends each request under ``/v1``, ``/v2``, ``/v3``,
``/hooks``, ``/emailapi`` or ``/rest`` to a FastAPI app holding only that surface's routers,
with the same state, error handlers and OpenAPI document; the app itself holds the dashboard,
the docs and ``/healthz``, and documents every surface's routes (``openapi.install``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.telemetry import TelemetryConfig


def first_segment(path: str) -> str:
    """``/v3/reports/...`` -> ``/v3``."""
    end = path.find("/", 1)
    return path if end < 0 else path[:end]


def telemetry(enabled: bool) -> TelemetryConfig:
    """FastAPI's native OpenTelemetry as configured (``MAILTALLY_TELEMETRY=1``); off by default."""
    return {} if enabled else {"tracing": False, "metrics": False, "logs": False}


def surface_apps(main: FastAPI, routers: Sequence[APIRouter], install: Callable[[FastAPI], None],
                 telemetry: TelemetryConfig) -> dict[str, FastAPI]:
    """One app per first path segment of ``routers``' routes; ``install`` adds the error handlers."""
    grouped: dict[str, list[APIRouter]] = {}
    for router in routers:
        segments = {first_segment(router.prefix + getattr(r, "path", "")) for r in router.routes}
        if len(segments) != 1:
            raise ValueError(f"a router spans several surfaces: {sorted(segments)}")
        grouped.setdefault(segments.pop(), []).append(router)
    apps = {}
    for segment, members in grouped.items():
        sub = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, telemetry=telemetry)
        sub.state = main.state
        sub.openapi = lambda: main.openapi()  # type: ignore[method-assign]  # 405's Allow reads the whole document
        install(sub)
        for router in members:
            sub.include_router(router)
        apps[segment] = sub
    return apps


class Surfaces:
    """ASGI middleware: a request whose first path segment has an app of its own goes there."""

    def __init__(self, app: Any, surfaces: dict[str, Any]):
        self.app = app
        self.surfaces = surfaces

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            sub = self.surfaces.get(first_segment(scope["path"]))
            if sub is not None:
                await sub(scope, receive, send)
                return
        await self.app(scope, receive, send)
