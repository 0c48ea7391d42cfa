"""Errors in each dialect's own shape.

A dialect registers the URL prefix it owns and how it renders an error; framework-level
failures (bad parameters, unknown paths, unexpected exceptions) under that prefix are then
rendered in the same shape as the dialect's own errors.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from ..store.write_gate import StoreBusy

log = logging.getLogger("mailtally.api")

Renderer = Callable[[int, str, str, Any], Response]


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None,
                  media_type: str = "application/json") -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=media_type, headers=headers)


class ApiError(Exception):
    """Raised by a dialect's code; rendered by the renderer of the prefix it was raised under."""

    def __init__(self, status: int, code: str, message: str, details: Any = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details
        self.headers = headers


def native_renderer(status: int, code: str, message: str, details: Any) -> Response:
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if details is not None:
        body["error"]["details"] = details
    return json_response(body, status)


_renderers: list[tuple[str, Renderer]] = []


def register(prefix: str, renderer: Renderer) -> None:
    _renderers.append((prefix, renderer))
    _renderers.sort(key=lambda p: -len(p[0]))


def renderer_for(path: str) -> Renderer:
    for prefix, r in _renderers:
        if path.startswith(prefix):
            return r
    return native_renderer


STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                405: "method_not_allowed", 406: "not_acceptable", 408: "request_timeout", 413: "too_large",
                415: "unsupported_media_type", 422: "bad_request", 431: "too_large", 500: "internal_error",
                503: "unavailable"}


class RefuseNul:
    """A NUL character in a path or query is a 400 in the dialect's shape, before any handler:
    no database can take it as text, and no id or parameter legitimately holds one."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and ("\x00" in scope["path"] or b"%00" in scope["query_string"]):
            response = renderer_for(scope["path"])(400, "bad_request", "NUL characters are not allowed in URLs", None)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def install(app: FastAPI) -> None:
    app.add_middleware(RefuseNul)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        resp = renderer_for(request.url.path)(exc.status, exc.code, exc.message, exc.details)
        if exc.headers:
            resp.headers.update(exc.headers)
        return resp

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        details = [
            {"field": ".".join(str(p) for p in e.get("loc", ())[1:]) or str(e.get("loc", [""])[0]),
             "message": e.get("msg", "")}
            for e in exc.errors()
        ]
        first = details[0] if details else {"field": "", "message": "bad request"}
        message = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
        return renderer_for(request.url.path)(400, "bad_request", message, details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = getattr(exc, "code", None) or STATUS_CODES.get(exc.status_code, "error")
        message = str(exc.detail) if exc.detail else code
        resp = renderer_for(request.url.path)(exc.status_code, code, message, None)
        if exc.headers:
            resp.headers.update(exc.headers)
        if exc.status_code == 405:  # every method of the path, whichever router holds its routes
            from .openapi import allowed_methods

            allow = allowed_methods(request)
            if allow:
                resp.headers["Allow"] = allow
        return resp

    @app.exception_handler(StoreBusy)
    async def _busy(request: Request, exc: StoreBusy) -> Response:
        resp = renderer_for(request.url.path)(503, "unavailable", "the database is busy; nothing was written, "
                                              "retry shortly", None)
        resp.headers["Retry-After"] = "2"
        return resp

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return renderer_for(request.url.path)(500, "internal_error", "internal server error", None)
