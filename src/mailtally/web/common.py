"""What every dashboard page shares: templates, the signed-in user, CSRF checks, CSV streams."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Connection, Engine
from starlette.responses import HTMLResponse, Response, StreamingResponse

from ..api import errors
from ..store.users import User, get_user
from . import session

HERE = Path(__file__).parent
PREFIX = "/ui"

env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
                  trim_blocks=True, lstrip_blocks=True)


def fmt_int(n: int | None) -> str:
    return "—" if n is None else f"{n:,}"


def fmt_pct(p: float | None) -> str:
    return "—" if p is None else f"{p:.1f}%"


def fmt_time(ms: int | None) -> str:
    if ms is None:
        return "—"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def iso(ms: int | None) -> str:
    return "" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def url_with(base: str, **params: Any) -> str:
    """``base`` with the query parameters that have a value."""
    kept = {k: v for k, v in params.items() if v not in (None, "", False)}
    return base + ("?" + urlencode(kept, doseq=True) if kept else "")


def safe_next(value: str | None, default: str = f"{PREFIX}/") -> str:
    """Only a path of this dashboard: never another site (``//evil``, ``https://…``)."""
    if value and value.startswith(PREFIX + "/") and not value.startswith("//") and "\\" not in value:
        return value
    return default


env.filters.update(n=fmt_int, pct=fmt_pct, when=fmt_time, iso=iso)
env.globals.update(url_with=url_with, P=PREFIX)


class Redirect(Exception):
    def __init__(self, location: str, status: int = 303):
        self.location, self.status = location, status


class PageError(Exception):
    """A page that cannot be shown: rendered as an HTML error page with this status."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def secret(request: Request) -> bytes:
    return request.app.state.secret


def engine(request: Request) -> Engine:
    return request.app.state.engine


def current_session(request: Request) -> session.Session | None:
    value = request.cookies.get(session.SESSION_COOKIE)
    return session.decode_session(secret(request), value) if value else None


def signed_in(request: Request) -> User:
    """The signed-in user, or a redirect to the sign-in page (which comes back here after).
    Every page asks first: the tracking hits answered so far are rolled up before it reads."""
    request.app.state.tracker.catch_up()
    s = current_session(request)
    user = None
    if s is not None:
        with engine(request).connect() as conn:
            user = get_user(conn, s.account_id, s.email)
        if user is not None and user.session_epoch != s.epoch:
            user = None
    if user is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise Redirect(url_with(f"{PREFIX}/login", next=target if target != f"{PREFIX}/" else None))
    request.state.user = user
    request.state.session = s
    return user


async def checked_form(request: Request) -> dict[str, str]:
    """The posted form, refused (403) unless it carries this session's CSRF token."""
    form = await request.form()
    s: session.Session | None = getattr(request.state, "session", None) or current_session(request)
    token = form.get("csrf")
    if s is None or not session.csrf_ok(secret(request), s.nonce, token if isinstance(token, str) else None):
        raise PageError(403, "This form has expired or did not come from this dashboard (CSRF check failed). "
                             "Go back, reload the page and try again.")
    return {k: v for k, v in form.items() if isinstance(v, str)}


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    s: session.Session | None = getattr(request.state, "session", None)
    context.setdefault("user", getattr(request.state, "user", None))
    context.setdefault("csrf", session.csrf_token(secret(request), s.nonce) if s else "")
    context.setdefault("path", request.url.path)
    html = env.get_template(template).render(request=request, **context)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def error_page(status: int, message: str) -> Response:
    html = env.get_template("error.html").render(status=status, message=message, user=None, csrf="", path="")
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def html_renderer(status: int, code: str, message: str, details: Any) -> Response:
    """Framework errors under /ui (unknown page, bad parameter) as HTML pages."""
    if details and isinstance(details, list) and isinstance(details[0], dict) and status == 400:
        message = "; ".join(f"{d.get('field')}: {d.get('message')}" for d in details)
    return error_page(status, message if status != 500 else "Something went wrong on our side.")


def csv_response(filename: str, header: list[str], rows: Callable[[Connection], Iterable[Iterable[Any]]],
                 request: Request) -> StreamingResponse:
    """A CSV file streamed as it is read: rows come a page at a time from their own connection,
    so an export of any size holds one page in memory."""
    eng = engine(request)

    def chunks() -> Iterator[bytes]:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(header)
        with eng.connect() as conn:
            for i, row in enumerate(rows(conn)):
                writer.writerow(_cell(v) for v in row)
                if i % 1000 == 999:
                    yield buf.getvalue().encode()
                    buf.seek(0)
                    buf.truncate()
        yield buf.getvalue().encode()

    return StreamingResponse(chunks(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{filename}"',
                                      "Cache-Control": "no-store"})


def _cell(value: Any) -> Any:
    # A cell starting with = + - @ is a formula to spreadsheet programs: quoted as text.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def parse_key(value: str | None) -> tuple[int, int] | None:
    """A page position ``time.tie`` from a URL; a malformed one is a 400."""
    if not value:
        return None
    a, _, b = value.partition(".")
    try:
        key = (int(a), int(b))
    except ValueError:
        raise PageError(400, f"after={value!r} is not a page position") from None
    if not all(-(2**63) <= v < 2**63 for v in key):
        raise PageError(400, f"after={value!r} is not a page position")
    return key


def key_of(at: int, tie: int) -> str:
    return f"{at}.{tie}"


def parse_date(value: str | None, name: str) -> int | None:
    """YYYY-MM-DD (UTC) from a filter form, as ms; bad dates are a 400 saying so."""
    if not value:
        return None
    try:
        d = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise PageError(400, f"{name}={value!r} is not a date (YYYY-MM-DD)") from None
    return int(d.timestamp() * 1000)


errors.register(PREFIX, html_renderer)
