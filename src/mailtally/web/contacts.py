"""Contacts: search by address, and one contact's timeline."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import Connection, Row
from starlette.responses import Response

from ..api.query import CheckedRoute
from ..store import catalog, dashboard, raw_messages, suppressions
from ..store.reports import contact_events
from .common import PREFIX, PageError, User, csv_response, engine, iso, key_of, parse_key, render, signed_in
from .messages import as_text, messages_for_events

router = APIRouter(route_class=CheckedRoute, prefix=PREFIX, include_in_schema=False)
SignedIn = Annotated[User, Depends(signed_in)]
PAGE = 50
Prefix = Annotated[str, Query(max_length=320)]


@router.get("/contacts")
def contact_search(request: Request, user: SignedIn, q: Prefix = "",
                   after: Annotated[str | None, Query(max_length=320)] = None) -> Response:
    with engine(request).connect() as conn:
        rows = dashboard.find_contacts(conn, user.account_id, q, after=after, limit=PAGE + 1)
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    return render(request, "contacts.html", rows=rows, q=q, next_after=rows[-1].email if more else None)


@router.get("/contacts.csv")
def contact_search_csv(request: Request, user: SignedIn, q: Prefix = "") -> Response:
    account = user.account_id

    def rows(conn: Connection) -> Iterator[list[Any]]:
        for r in dashboard.iter_all(lambda after, limit: dashboard.find_contacts(conn, account, q, after=after,
                                                                                 limit=limit), lambda r: r.email):
            yield [r.id, r.email, r.first_name, r.last_name, iso(r.created_at), iso(r.deleted_at)]

    return csv_response("contacts.csv", ["contact_id", "email", "first_name", "last_name", "created_at",
                                         "deleted_at"], rows, request)


def _contact(conn: Connection, user: User, contact_id: str) -> Row[Any]:
    try:
        cid = str(uuid.UUID(contact_id))
    except ValueError:
        raise PageError(404, f"There is no contact {contact_id!r}.") from None
    row = catalog.get_contact(conn, user.account_id, cid)
    if row is None:
        raise PageError(404, f"There is no contact {contact_id} in this account.")
    return row


@router.get("/contacts/{contact_id}")
def contact_page(request: Request, user: SignedIn, contact_id: str,
                 after: Annotated[str | None, Query(max_length=60)] = None) -> Response:
    key = parse_key(after)
    with engine(request).connect() as conn:
        contact = _contact(conn, user, contact_id)
        suppression = suppressions.get(conn, user.account_id, contact.email)
        rows = contact_events(conn, user.account_id, contact.id, after=key, limit=PAGE + 1)
        more = len(rows) > PAGE
        rows = rows[:PAGE]
        # Each bounce's stored message, shown with what was read from it (issue 12's raw store).
        of_event = messages_for_events(conn, user.account_id,
                                       [(r.activity_num_id, r.idem) for r in rows if r.type == "bounce"])
        messages = []
        for mid in dict.fromkeys(of_event.values()):
            meta = raw_messages.get(conn, user.account_id, mid)
            if meta is None:
                continue
            text, cut = as_text(raw_messages.body(conn, user.account_id, mid) or b"", 16 * 1024)
            messages.append({"meta": meta, "text": text, "cut": cut,
                             "parsed": raw_messages.events_of(conn, user.account_id, mid),
                             "unmatched": raw_messages.unmatched_of(conn, user.account_id, mid)})
    return render(request, "contact.html", contact=contact, suppression=suppression, rows=rows,
                  message_of=of_event, messages=messages,
                  next_after=key_of(rows[-1].occurred_at, rows[-1].idem) if more else None)


@router.get("/contacts/{contact_id}/timeline.csv")
def contact_csv(request: Request, user: SignedIn, contact_id: str) -> Response:
    with engine(request).connect() as conn:
        contact = _contact(conn, user, contact_id)
    account = user.account_id

    def rows(conn: Connection) -> Iterator[list[Any]]:
        pages = dashboard.iter_all(
            lambda after, limit: contact_events(conn, account, contact.id, after=after, limit=limit),
            lambda r: (r.occurred_at, r.idem))
        for r in pages:
            yield [iso(r.occurred_at), r.type, r.campaign_name, r.activity_id, r.device_type, r.url_id, r.reason,
                   r.bounce_code, r.dsn_status, r.diagnostic, r.optout_reason]

    return csv_response(f"contact-{contact.num_id}.csv", ["at", "type", "campaign", "activity_id", "device_type",
                                                          "url_id", "reason", "bounce_code", "dsn_status",
                                                          "diagnostic", "optout_reason"], rows, request)
