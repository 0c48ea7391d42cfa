"""The OpenAPI document says what the API does, and 405s name the methods a path takes.

FastAPI describes every route as answering 422 with its own validation body; mailtally answers
400 in each API's own error shape. v2 ids are numbers (a contact's or campaign's ``num_id``),
and v2's ``next`` is an opaque cursor bound to the report and the account.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from starlette.routing import BaseRoute

BAD_REQUEST = {"description": "Bad request: a parameter or the body is invalid. The body is this API's own "
                              "error shape (see its page in docs/)."}
V2_ID = {"type": "string", "pattern": "^[0-9]{1,19}$"}
V2_PARAMS: dict[str, dict[str, Any]] = {
    "contact_id": {"description": "The contact's v2 id: its number (`num_id` in /v1), not its UUID.",
                   "schema": V2_ID},
    "campaign_id": {"description": "The campaign's v2 id: its number (`num_id` in /v1), not its UUID.",
                    "schema": V2_ID},
    "link_id": {"description": "The link's url_id.", "schema": {"type": "string", "minLength": 1, "maxLength": 64}},
    "next": {"description": "The opaque cursor of `meta.pagination.next_link`: it carries the limit and "
                            "created_since of the first page, and is valid only for the report and account "
                            "that made it (another is a 400).", "schema": {"type": "string"}},
    "api_key": {"required": True},
}
METHOD_ORDER = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _refine(spec: dict[str, Any]) -> dict[str, Any]:
    for path, ops in spec.get("paths", {}).items():
        for op in ops.values():
            responses = op.setdefault("responses", {})
            if responses.pop("422", None) is not None or op.get("parameters") or op.get("requestBody"):
                responses.setdefault("400", BAD_REQUEST)
            if path.startswith("/v2/"):
                for param in op.get("parameters", []):
                    param.update(V2_PARAMS.get(param["name"], {}))
    schemas = spec.get("components", {}).get("schemas", {})
    text = str(spec.get("paths"))
    for name in ("HTTPValidationError", "ValidationError"):
        if name in schemas and f"/{name}'" not in text:
            del schemas[name]
    return spec


def install(app: FastAPI, served_elsewhere: Sequence[BaseRoute] = ()) -> None:
    """The document of ``app``'s routes and of ``served_elsewhere`` (the surfaces' apps' routes,
    which the app itself does not hold: api/surfaces.py)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _refine(get_openapi(
                title=app.title, version=app.version, openapi_version=app.openapi_version,
                description=app.description, routes=[*served_elsewhere, *app.routes]))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def allowed_methods(request: Request) -> str | None:
    """The methods the request's path takes, from the OpenAPI paths (every router's routes)."""
    app = request.app
    table = getattr(app.state, "allow_table", None)
    if table is None:
        table = []
        for template, ops in app.openapi().get("paths", {}).items():
            literal = re.escape(template).replace("\\{", "{").replace("\\}", "}")
            pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", literal) + "$")
            methods = {m.upper() for m in ops}
            if "GET" in methods:
                methods.add("HEAD")
            table.append((pattern, methods))
        app.state.allow_table = table
    found: set[str] = set()
    for pattern, methods in table:
        if pattern.match(request.url.path):
            found |= methods
    return ", ".join(m for m in METHOD_ORDER if m in found) or None
