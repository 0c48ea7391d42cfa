"""Sign-in and sign-out pages."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import RedirectResponse, Response

from ..api.query import CheckedRoute
from ..store.db import writing
from ..store.users import authenticate, end_sessions, normalise_email
from . import session
from .common import PREFIX, PageError, User, checked_form, engine, render, safe_next, secret, signed_in

router = APIRouter(route_class=CheckedRoute, prefix=PREFIX, include_in_schema=False)


def _secure(request: Request) -> bool:
    return session.is_https(request, request.app.state.settings.public_url)


def _login_page(request: Request, pre: str, status: int = 200, **context: object) -> Response:
    response = render(request, "login.html", status=status, csrf=session.csrf_token(secret(request), pre),
                      **context)
    session.set_cookie(response, session.PRE_COOKIE, pre, secure=_secure(request), max_age=3600)
    return response


@router.get("/login")
def login_form(request: Request, next: Annotated[str | None, Query(max_length=2000)] = None) -> Response:
    pre = request.cookies.get(session.PRE_COOKIE) or secrets.token_urlsafe(16)
    return _login_page(request, pre, next=safe_next(next), email="")


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    pre = request.cookies.get(session.PRE_COOKIE)
    nxt = safe_next(fields.get("next"))
    email = normalise_email(fields.get("email", ""))[:320]
    if not session.csrf_ok(secret(request), pre, fields.get("csrf")):
        return _login_page(request, pre or secrets.token_urlsafe(16), 403, next=nxt, email=email,
                           error="This sign-in form has expired. Please try again.")
    assert pre is not None
    throttle: session.LoginThrottle = request.app.state.login_throttle
    client = request.client.host if request.client else "?"
    wait = throttle.retry_after(email, client)
    if wait:
        response = _login_page(request, pre, 429, next=nxt, email=email,
                               error=f"Too many failed sign-ins. Try again in {(wait + 59) // 60} minute(s).")
        response.headers["Retry-After"] = str(wait)
        return response
    with writing(engine(request)) as conn:
        user = authenticate(conn, email, fields.get("password", "")[:1000])
    if user is None:
        throttle.failed(email, client)
        return _login_page(request, pre, 401, next=nxt, email=email, error="Wrong email address or password.")
    throttle.succeeded(email)
    response = RedirectResponse(nxt, status_code=303)
    cookie = session.encode_session(secret(request), session.new_session(user.account_id, user.email,
                                                                          user.session_epoch))
    session.set_cookie(response, session.SESSION_COOKIE, cookie, secure=_secure(request),
                       max_age=session.SESSION_SECONDS)
    response.delete_cookie(session.PRE_COOKIE, path="/")
    return response


@router.post("/logout")
async def logout(request: Request, user: Annotated[User, Depends(signed_in)]) -> Response:
    await checked_form(request)
    with writing(engine(request)) as conn:
        end_sessions(conn, user.account_id, user.email)
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    response.delete_cookie(session.SESSION_COOKIE, path="/")
    return response


__all__ = ["PageError", "router"]
