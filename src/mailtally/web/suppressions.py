"""Suppressions: the list searched and filtered, an address added or removed by hand, CSV in and out.

Every change goes through the same store functions as ``/v1/suppressions`` (a person's
suppression replaces the entry the address had, subscribers of outgoing webhooks hear of
it), and an import reads the whole file before writing, as the API's does.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.responses import RedirectResponse, Response

from ..api import limits
from ..api.query import CheckedRoute
from ..store import dashboard, suppressions
from ..store.db import now_ms, writing
from ..suppression import csvfile
from ..vocab import SuppressionReason
from .common import (
    PREFIX,
    PageError,
    User,
    checked_form,
    csv_response,
    engine,
    iso,
    parse_date,
    render,
    safe_next,
    signed_in,
    url_with,
)

router = APIRouter(route_class=CheckedRoute, prefix=PREFIX, include_in_schema=False)
SignedIn = Annotated[User, Depends(signed_in)]
PAGE = 50
REASONS = [r.value for r in SuppressionReason]
ReasonQ = Annotated[str, Query(pattern="^(|" + "|".join(REASONS) + ")$")]
SearchQ = Annotated[str, Query(max_length=320, pattern=r"^[^\x00]*$")]
# An imported file may be as large as the API's import takes.
limits.body_limit("POST", f"{PREFIX}/suppressions/import", "max_body_bytes", "too_large", "imports")


def _page(request: Request, user: User, q: str = "", reason: str = "", after: str | None = None,
          status: int = 200, **context: Any) -> Response:
    with engine(request).connect() as conn:
        rows = suppressions.page(conn, user.account_id, reason=reason or None, search=q or None, after=after,
                                 limit=PAGE + 1)
        more = len(rows) > PAGE
        rows = rows[:PAGE]
        contact_of = dashboard.contact_ids_by_email(conn, user.account_id, [r.email for r in rows])
        counts = dashboard.suppression_counts(conn, user.account_id)
    return render(request, "suppressions.html", status=status, rows=rows, q=q, reason=reason, reasons=REASONS,
                  counts=counts, total=sum(counts.values()), contact_of=contact_of,
                  next_after=rows[-1].email if more else None, **context)


@router.get("/suppressions")
def suppression_list(request: Request, user: SignedIn, q: SearchQ = "", reason: ReasonQ = "",
                     after: Annotated[str | None, Query(max_length=320)] = None,
                     added: Annotated[str, Query(max_length=320)] = "",
                     removed: Annotated[str, Query(max_length=320)] = "") -> Response:
    return _page(request, user, q.strip(), reason, after, added=added, removed=removed)


@router.get("/suppressions.csv")
def suppression_csv(request: Request, user: SignedIn) -> Response:
    """The whole live list, in the columns an import reads."""
    account = user.account_id

    def rows(conn: Connection) -> Iterator[list[Any]]:
        for r in suppressions.every(conn, account):
            yield [r.email, r.reason, iso(r.suppressed_at), iso(r.expires_at), r.note]

    return csv_response("suppressions.csv", list(csvfile.HEADER), rows, request)


def _address(value: str) -> str | None:
    email = value.strip().lower()
    return email if csvfile.valid_email(email) else None


def _expiry(value: str) -> int | None:
    """The day (UTC) a suppression ends at its start; it must be after today."""
    at = parse_date(value.strip() or None, "expires")
    if at is not None and at <= now_ms():
        raise ValueError("The expiry date must be after today (or left empty: until removed).")
    return at


@router.post("/suppressions")
async def add(request: Request, user: SignedIn) -> Response:
    form = await checked_form(request)
    nxt = safe_next(form.get("next"), "")
    email = _address(form.get("email", ""))
    reason = form.get("reason") or SuppressionReason.MANUAL.value
    note = form.get("note", "").strip()
    error = None
    if email is None:
        error = f"{form.get('email', '')[:320]!r} is not an email address."
    elif reason not in REASONS:
        error = f"Choose one of the reasons listed ({', '.join(REASONS)})."
    elif len(note) > 2000:
        error = "The note is longer than 2,000 characters."
    try:
        expires = _expiry(form.get("expires", ""))
    except (ValueError, PageError) as e:
        error = error or (e.message if isinstance(e, PageError) else str(e))
    if error:
        return _page(request, user, status=400, error=error, form=form)
    assert email is not None
    entry = suppressions.Entry(email, SuppressionReason(reason), now_ms(), expires, note=note or None)
    with writing(engine(request)) as conn:
        suppressions.put_by_person(conn, user.account_id, entry)
    return RedirectResponse(nxt or url_with(f"{PREFIX}/suppressions", q=email, added=email), status_code=303)


@router.post("/suppressions/remove")
async def remove(request: Request, user: SignedIn) -> Response:
    form = await checked_form(request)
    email = _address(form.get("email", ""))
    if email is None:
        raise PageError(400, f"{form.get('email', '')[:320]!r} is not an email address.")
    with writing(engine(request)) as conn:
        gone = suppressions.remove_by_person(conn, user.account_id, email, "dashboard")
    if gone is None:
        raise PageError(404, f"{email} is not on the suppression list of this account.")
    nxt = safe_next(form.get("next"), "")
    return RedirectResponse(nxt or url_with(f"{PREFIX}/suppressions", removed=email), status_code=303)


@router.post("/suppressions/import")
async def import_csv(request: Request, user: SignedIn) -> Response:
    limit: int = request.app.state.settings.max_body_bytes
    form = await request.form(max_files=1, max_fields=10)
    await checked_form(request)
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return _page(request, user, status=400, import_error="Choose a CSV file to import.")
    raw = await upload.read(limit + 1)
    if len(raw) > limit:
        return _page(request, user, status=413, import_error=f"The file is over {limit:,} bytes.")
    try:
        rows = csvfile.parse_bytes(raw)
    except csvfile.CsvError as e:
        return _page(request, user, status=400,
                     import_error=f"Nothing was imported: {upload.filename}, {e}.")

    def work() -> int:
        with writing(engine(request)) as conn:
            return suppressions.import_rows(conn, user.account_id, rows)

    changed = await run_in_threadpool(work)
    return _page(request, user, imported={"file": upload.filename, "rows": len(rows), "changed": changed})

