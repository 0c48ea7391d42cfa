"""Settings: API tokens (created, shown once, revoked)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import Connection
from starlette.responses import RedirectResponse, Response

from ..store import dashboard
from ..store.accounts import create_token
from ..store.db import writing
from ..vocab import Scope
from .common import PREFIX, PageError, User, checked_form, csv_response, engine, iso, render, signed_in

router = APIRouter(prefix=PREFIX, include_in_schema=False)
SignedIn = Annotated[User, Depends(signed_in)]
SCOPES = [(s.value, desc) for s, desc in (
    (Scope.CAMPAIGN_DATA, "read campaign reports"), (Scope.CONTACT_DATA, "read contacts and their activity"),
    (Scope.INGEST, "record events and bounce messages"), (Scope.ADMIN, "everything"))]
HASH = re.compile(r"^[0-9a-f]{64}$")


@router.get("/settings")
def settings_index(user: SignedIn) -> Response:
    return RedirectResponse(f"{PREFIX}/settings/tokens", status_code=303)


def _tokens_page(request: Request, user: User, status: int = 200, **context: Any) -> Response:
    with engine(request).connect() as conn:
        tokens = dashboard.list_tokens(conn, user.account_id)
    return render(request, "tokens.html", status=status, tokens=tokens, scopes=SCOPES, **context)


@router.get("/settings/tokens")
def tokens(request: Request, user: SignedIn) -> Response:
    return _tokens_page(request, user, revoked=request.query_params.get("revoked") == "1")


@router.post("/settings/tokens")
async def create(request: Request, user: SignedIn) -> Response:
    form = await request.form()
    await checked_form(request)
    name = str(form.get("name") or "").strip()[:200]
    wanted = {str(v) for v in form.getlist("scope")}
    known = {s for s, _ in SCOPES}
    if not wanted or not wanted <= known:
        return _tokens_page(request, user, 400, error="Choose at least one of the scopes listed.", name=name)
    with writing(engine(request)) as conn:
        token = create_token(conn, user.account_id, frozenset(wanted), name)
    # Shown in this response only: the database keeps its hash.
    return _tokens_page(request, user, 201, new_token=token, new_name=name)


@router.post("/settings/tokens/{token_hash}/revoke")
async def revoke(request: Request, user: SignedIn, token_hash: str) -> Response:
    await checked_form(request)
    if not HASH.match(token_hash):
        raise PageError(404, "There is no such token.")
    with writing(engine(request)) as conn:
        found = dashboard.revoke_token(conn, user.account_id, token_hash)
    if not found:
        raise PageError(404, "There is no such token in this account.")
    request.app.state.tokens.forget()
    return RedirectResponse(f"{PREFIX}/settings/tokens?revoked=1", status_code=303)


@router.get("/settings/tokens.csv")
def tokens_csv(request: Request, user: SignedIn) -> Response:
    account = user.account_id

    def rows(conn: Connection) -> Iterator[list[Any]]:
        for r in dashboard.list_tokens(conn, account):
            yield [r.name, r.scopes, iso(r.created_at)]

    return csv_response("api-tokens.csv", ["name", "scopes", "created_at"], rows, request)
