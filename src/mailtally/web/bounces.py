"""Bounces across the account, filtered by reason, code, domain and date; unmatched bounces."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import Connection
from starlette.responses import Response

from ..store import dashboard
from ..vocab import CODE_DESCRIPTION, BounceCode, Reason
from .common import (
    PREFIX,
    PageError,
    User,
    csv_response,
    engine,
    iso,
    key_of,
    parse_date,
    parse_key,
    render,
    signed_in,
)

router = APIRouter(prefix=PREFIX, include_in_schema=False)
SignedIn = Annotated[User, Depends(signed_in)]
PAGE = 50
REASONS = sorted(r.value for r in Reason if r not in (Reason.DELIVERED, Reason.FEEDBACK))
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
