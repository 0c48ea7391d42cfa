"""The dashboard: server-rendered pages under /ui, over the same store as the APIs."""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from . import bounces, campaigns, contacts, messages, settings, signin, suppressions
from .common import HERE, PREFIX, PageError, Redirect, env, error_page
from .session import LoginThrottle


def install(app: FastAPI) -> None:
    app.state.login_throttle = LoginThrottle()
    for module in (signin, campaigns, bounces, contacts, messages, suppressions, settings):
        app.include_router(module.router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="dashboard-static")

    @app.exception_handler(Redirect)
    async def _redirect(request: Request, exc: Redirect) -> Response:
        return RedirectResponse(exc.location, status_code=exc.status)

    @app.exception_handler(PageError)
    async def _page_error(request: Request, exc: PageError) -> Response:
        return error_page(exc.status, exc.message)


def load_templates() -> None:
    """Compile every page's template now (at start-up) rather than in its first request."""
    for name in env.list_templates(extensions=["html"]):
        env.get_template(name)
