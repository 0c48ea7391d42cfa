"""Requests under /v1, /v2, /v3, /hooks, /emailapi and /rest are answered by an app holding only
that surface's routers (api/surfaces.py): each must hold every route the whole app documents
under its prefix, or a route added to the app alone would answer 404."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi

from mailtally.api import surfaces
from mailtally.api.app import create_app
from mailtally.config import Settings


def _paths(app: FastAPI) -> set[tuple[str, str]]:
    return {(path, method) for path, ops in app.openapi()["paths"].items() for method in ops}


def test_each_surface_app_holds_every_route_of_its_prefix(tmp_path: Path) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 's.db'}", webhook_worker=False))
    apps = app.state.surfaces
    assert set(apps) == {"/v1", "/v2", "/v3", "/hooks", "/emailapi", "/rest"}
    documented = _paths(app)
    for segment, sub in apps.items():
        mine = {(p, m) for p, m in documented if surfaces.first_segment(p) == segment}
        served = {(p, m) for p, ops in get_openapi(title="", version="", routes=sub.routes)["paths"].items()
                  for m in ops}
        assert mine, segment
        assert mine == served, f"{segment}: documented but not served: {sorted(mine - served)[:5]}"


def test_a_router_spanning_two_surfaces_is_refused() -> None:
    router = APIRouter()

    @router.get("/v1/a")
    def a() -> None: ...

    @router.get("/v3/b")
    def b() -> None: ...

    with pytest.raises(ValueError, match="several surfaces"):
        surfaces.surface_apps(FastAPI(), [router], lambda _app: None, surfaces.telemetry(False))
