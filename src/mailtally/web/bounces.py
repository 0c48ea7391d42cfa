"""Bounces across the account, filtered by reason, code, domain and date; unmatched bounces;
one bounce, and a person's correction of its reason (re-classify)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import Connection
from starlette.responses import RedirectResponse, Response

from ..api.query import CheckedRoute
from ..store import catalog, corrections, dashboard, raw_messages
from ..store.db import writing
from ..vocab import CODE_DESCRIPTION, BounceCode, Reason, bounce_code_for
from .common import (
    PREFIX,
    PageError,
    User,
    checked_form,
    csv_response,
    engine,
    env,
    iso,
    key_of,
    parse_date,
    parse_key,
    render,
    signed_in,
    url_with,
)

router = APIRouter(route_class=CheckedRoute, prefix=PREFIX, include_in_schema=False)
SignedIn = Annotated[User, Depends(signed_in)]
PAGE = 50
# In the vocabulary's order (vocab.Reason), as the docs list them: never alphabetical.
REASONS = [r.value for r in Reason if r not in (Reason.DELIVERED, Reason.FEEDBACK)]
CODES = [(c.value, CODE_DESCRIPTION[c]) for c in BounceCode]
ReasonQ = Annotated[str, Query(pattern="^(|" + "|".join(r.value for r in Reason) + ")$")]
CodeQ = Annotated[str, Query(pattern="^[" + "".join(c.value for c in BounceCode) + "]?$")]
DomainQ = Annotated[str, Query(max_length=255, pattern=r"^[A-Za-z0-9.\-]*$")]


def _filter(reason: str, code: str, domain: str, since: str, until: str) -> dashboard.BounceFilter:
    start, end = parse_date(since, "from"), parse_date(until, "to")
    if start is not None and end is not None and end < start:
        raise PageError(400, "the 'to' date is before the 'from' date")
    # "to" names a whole day: bounces on that day are included.
    return dashboard.BounceFilter(reason or None, code or None, domain.lower() or None, start,
                                  end + 86_400_000 if end is not None else None)


@router.get("/bounces")
def bounce_list(request: Request, user: SignedIn, reason: ReasonQ = "", code: CodeQ = "", domain: DomainQ = "",
                since: Annotated[str, Query(alias="from", max_length=10)] = "",
                until: Annotated[str, Query(alias="to", max_length=10)] = "",
                after: Annotated[str | None, Query(max_length=60)] = None) -> Response:
    f = _filter(reason, code, domain, since, until)
    key = parse_key(after)
    with engine(request).connect() as conn:
        found = dashboard.bounces(conn, user.account_id, f, after=key, limit=PAGE)
    params = {"reason": reason, "code": code, "domain": domain, "from": since, "to": until}
    return render(request, "bounces.html", rows=found.rows, params=params, reasons=REASONS, codes=CODES,
                  scanned_to=found.scanned_to, next_after=key_of(*found.next) if found.next else None)


@router.get("/bounces.csv")
def bounce_csv(request: Request, user: SignedIn, reason: ReasonQ = "", code: CodeQ = "", domain: DomainQ = "",
               since: Annotated[str, Query(alias="from", max_length=10)] = "",
               until: Annotated[str, Query(alias="to", max_length=10)] = "") -> Response:
    f = _filter(reason, code, domain, since, until)
    account = user.account_id

    def rows(conn: Connection) -> Iterator[list[Any]]:
        for r in dashboard.iter_bounces(conn, account, f):
            yield [iso(r.at), r.email, r.contact_id, r.campaign_name, r.activity_id, r.reason, r.bounce_code,
                   r.dsn_status, r.reply_code, r.diagnostic, r.remote_mta]

    return csv_response("bounces.csv", ["at", "email", "contact_id", "campaign", "activity_id", "reason",
                                        "bounce_code", "dsn_status", "reply_code", "diagnostic", "remote_mta"],
                        rows, request)


@router.get("/bounces/unmatched")
def unmatched_list(request: Request, user: SignedIn,
                   after: Annotated[str | None, Query(max_length=60)] = None) -> Response:
    key = parse_key(after)
    with engine(request).connect() as conn:
        rows = dashboard.unmatched(conn, user.account_id, after=key, limit=PAGE + 1)
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    return render(request, "unmatched.html", rows=rows,
                  next_after=key_of(rows[-1].received_at, rows[-1].id) if more else None)


@router.get("/bounces/unmatched.csv")
def unmatched_csv(request: Request, user: SignedIn) -> Response:
    account = user.account_id

    def rows(conn: Connection) -> Iterator[list[Any]]:
        pages = dashboard.iter_all(lambda after, limit: dashboard.unmatched(conn, account, after=after, limit=limit),
                                   lambda r: (r.received_at, r.id))
        for r in pages:
            yield [iso(r.received_at), r.recipient, r.reason, r.bounce_code, r.dsn_status, r.reply_code,
                   r.diagnostic, r.remote_mta, r.original_message_id, r.original_subject]

    return csv_response("unmatched-bounces.csv", ["received_at", "recipient", "reason", "bounce_code", "dsn_status",
                                                  "reply_code", "diagnostic", "remote_mta", "original_message_id",
                                                  "original_subject"], rows, request)


# -- one bounce, and a person's correction of its reason -------------------------------------

CORRECTABLE = [r.value for r in corrections.BOUNCE_REASONS]
CODE_OF = {r: str(bounce_code_for(Reason(r))) for r in CORRECTABLE}
env.globals["code_of"] = CODE_OF


def _bounce(conn: Connection, user: User, activity_id: str, key: str) -> tuple[Any, Any]:
    at_tie = parse_key(key)
    try:
        activity = catalog.get_activity(conn, user.account_id, str(uuid.UUID(activity_id)))
    except ValueError:
        activity = None
    found = None
    if activity is not None and at_tie is not None:
        found = corrections.logged_bounce(conn, user.account_id, activity.num_id, *at_tie)
    if activity is None or found is None:
        raise PageError(404, "There is no such bounce in this account.")
    return activity, found


def bounce_href(activity_id: str, at: int, tie: int) -> str:
    return f"{PREFIX}/bounces/{activity_id}/{key_of(at, tie)}"


env.globals["bounce_href"] = bounce_href


@router.get("/bounces/{activity_id}/{key}")
def bounce_page(request: Request, user: SignedIn, activity_id: str, key: str,
                was: ReasonQ = "", lifted: Annotated[str, Query(pattern="^1?$")] = "",
                unchanged: Annotated[str, Query(pattern="^1?$")] = "") -> Response:
    with engine(request).connect() as conn:
        activity, b = _bounce(conn, user, activity_id, key)
        full = dashboard.bounce_detail(conn, user.account_id, activity.num_id, b.occurred_at, b.idem)
        mid = raw_messages.message_of_event(conn, user.account_id, activity.num_id, b.idem)
    return render(request, "bounce.html", b=full, activity=activity, message_id=mid, reasons=CORRECTABLE,
                  codes=dict(CODES), was=was, lifted=lifted == "1", unchanged=unchanged == "1")


@router.post("/bounces/{activity_id}/{key}/reclassify")
async def reclassify(request: Request, user: SignedIn, activity_id: str, key: str) -> Response:
    form = await checked_form(request)
    reason = form.get("reason", "")
    if reason not in CORRECTABLE:
        raise PageError(400, f"Choose one of the bounce reasons listed, not {reason[:40]!r}.")
    with writing(engine(request)) as conn:
        activity, b = _bounce(conn, user, activity_id, key)
        done = corrections.override_event(conn, user.account_id, activity.num_id, b.occurred_at, b.idem,
                                          Reason(reason))
    assert done is not None
    return RedirectResponse(url_with(bounce_href(activity.id, b.occurred_at, b.idem),
                                     was=done.old_reason if done.applied else None,
                                     unchanged=None if done.applied else "1",
                                     lifted="1" if done.suppression_lifted else None), status_code=303)
