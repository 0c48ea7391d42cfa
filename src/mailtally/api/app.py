"""The ASGI application: every dialect over one store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.responses import JSONResponse, RedirectResponse, Response

from .. import __version__
from ..config import Settings
from ..store import migrate
from ..store.accounts import signing_secret
from ..store.db import ReadConnections, open_engine, set_write_wait, writing
from ..vocab import Health
from . import (
    alerts,
    bounces,
    cc_v2,
    cc_v3,
    docs,
    errors,
    hooks,
    limits,
    native,
    openapi,
    sender,
    suppressions,
    surfaces,
    tracking,
    webhook_endpoints,
    webhooks,
    whatcounts,
    zoho,
)
from .auth import TokenCache


class _App(FastAPI):
    """The API; pixel loads and clicks go straight to the tracking routes (``tracking.is_hit``)."""

    tracker: tracking.Tracker  # also app.state.tracker; an attribute here, as every hit needs it

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if tracking.is_hit(scope):
            await tracking.answer_hit(self.tracker, scope, send)
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, *, run_migrations: bool = True) -> FastAPI:
    settings = settings or Settings.from_env()
    engine = open_engine(settings.database_url)
    set_write_wait(engine, settings.write_wait_seconds)
    if run_migrations:
        migrate.upgrade(engine)
    with writing(engine) as conn:
        secret = signing_secret(conn, settings.secret)

    telemetry = surfaces.telemetry(settings.telemetry)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        worker = None
        if settings.webhook_worker:
            from ..webhooks.worker import Worker

            worker = Worker(engine, settings)
            worker.start()
        yield
        if worker is not None:
            worker.close()
        _app.state.tracker.close()
        _app.state.readers.close()

    app = _App(
        lifespan=lifespan,
        title="mailtally",
        version=__version__,
        description="The tally of every email campaign, served through the reporting APIs "
        "email marketers already use.",
        telemetry=telemetry,
        docs_url=None,  # served by api/docs.py from the package
    )
    app.state.settings = settings
    app.state.engine = engine
    # Reports from a replica when one is given; pool_pre_ping, so a replica restart costs one retry.
    app.state.read_engine = open_engine(settings.read_database_url) if settings.read_database_url else engine
    app.state.secret = secret.encode()
    app.state.tokens = TokenCache(engine)
    app.state.tracker = app.tracker = tracking.Tracker(settings, engine, app.state.secret)
    # Every report reads after the tracking hits answered so far are in the log (a replica has none journaled).
    app.state.readers = ReadConnections(app.state.read_engine,
                                        before=app.tracker.catch_up if app.state.read_engine is engine else None)
    routers = [native.router, sender.router, bounces.router, suppressions.router, alerts.router, webhooks.router,
               webhook_endpoints.router, hooks.router, *cc_v3.routers, cc_v2.router, zoho.router, whatcounts.router]
    apps = surfaces.surface_apps(app, routers, errors.install, telemetry)
    app.state.surfaces = apps
    app.add_middleware(surfaces.Surfaces, surfaces=apps)
    app.add_middleware(tracking.TrackingRoutes)
    errors.install(app)
    limits.install(app, settings)
    docs.install(app)
    # The surfaces' routes live in their apps only: held here as well, every request the app
    # itself answers (the dashboard, a 404) was matched against all of them first (~300 us).
    openapi.install(app, [route for sub in apps.values() for route in sub.routes])
    from .. import web

    web.install(app)

    @app.get("/", include_in_schema=False)
    def root() -> Response:
        return RedirectResponse("/ui/", status_code=303)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> Response:
        """Up, and whether tracking hits reach the log in time: 503 "behind" while they do not
        (``docs/install.md``), for a monitor to raise its alarm."""
        health, waits = tracking.health_of(engine, settings)
        body: dict[str, Any] = {"status": health.value, "version": __version__}
        if waits is not None:
            body["tracking"] = waits
        return JSONResponse(body, status_code=200 if health is Health.OK else 503)

    return app
