"""Raw bounce messages: the stored bytes beside what was read from them (``store.raw_messages``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import Connection, Row
from starlette.responses import RedirectResponse, Response

from ..api.query import CheckedRoute
from ..ingest import bounce_messages
from ..store import corrections, raw_messages
from ..store.db import writing
from ..vocab import Reason
from .bounces import CORRECTABLE
from .common import PREFIX, PageError, User, checked_form, engine, render, secret, signed_in, url_with

router = APIRouter(route_class=CheckedRoute, prefix=PREFIX, include_in_schema=False)
SignedIn = Annotated[User, Depends(signed_in)]
SHOWN_BYTES = 64 * 1024  # of the message on its page; the whole of it is a download away


def message_id(value: str) -> int:
    if not value.isdigit() or len(value) > 18:
        raise PageError(404, f"There is no stored message {value!r}.")
    return int(value)


def _message(conn: Connection, user: User, value: str) -> Row[Any]:
    row = raw_messages.get(conn, user.account_id, message_id(value))
    if row is None:
        raise PageError(404, f"There is no stored message {value} in this account (it may have been pruned).")
    return row


def as_text(raw: bytes, limit: int = SHOWN_BYTES) -> tuple[str, bool]:
    """The message as text to show (mail is mostly ASCII; anything else is shown replaced)."""
    return raw[:limit].decode("utf-8", errors="replace"), len(raw) > limit


def messages_for_events(conn: Connection, account: int, keys: list[tuple[int, int]]) -> dict[tuple[int, int], int]:
    """The stored message of each (activity_num, idem) event key that has one."""
    out: dict[tuple[int, int], int] = {}
    for key in dict.fromkeys(keys):
        found = raw_messages.message_of_event(conn, account, *key)
        if found is not None:
            out[key] = found
    return out


@router.get("/messages/{mid}")
def message_page(request: Request, user: SignedIn, mid: str,
                 changed: Annotated[int | None, Query(ge=0, le=10**6)] = None,
                 lifted: Annotated[int | None, Query(ge=0, le=10**6)] = None,
                 reread: Annotated[str, Query(pattern="^1?$")] = "") -> Response:
    with engine(request).connect() as conn:
        meta = _message(conn, user, mid)
        raw = raw_messages.body(conn, user.account_id, meta.id) or b""
        parsed = raw_messages.events_of(conn, user.account_id, meta.id)
        unmatched = raw_messages.unmatched_of(conn, user.account_id, meta.id)
    text, cut = as_text(raw)
    return render(request, "message.html", meta=meta, text=text, cut=cut, parsed=parsed, unmatched=unmatched,
                  reasons=CORRECTABLE,
                  recipients=list(dict.fromkeys([p.recipient for p in parsed] + [u.recipient for u in unmatched])),
                  changed=changed if changed is not None or reread else None, lifted=lifted, reread=reread == "1")


@router.get("/messages/{mid}/raw")
def message_raw(request: Request, user: SignedIn, mid: str) -> Response:
    with engine(request).connect() as conn:
        meta = _message(conn, user, mid)
        raw = raw_messages.body(conn, user.account_id, meta.id) or b""
    return Response(raw, media_type="message/rfc822",
                    headers={"Content-Disposition": f'attachment; filename="bounce-{meta.id}.eml"',
                             "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})


@router.post("/messages/{mid}/override")
async def message_override(request: Request, user: SignedIn, mid: str) -> Response:
    """A person's verdict on a stored message's bounces (all of them, or one recipient's)."""
    form = await checked_form(request)
    reason = form.get("reason", "")
    if reason not in CORRECTABLE:
        raise PageError(400, f"Choose one of the bounce reasons listed, not {reason[:40]!r}.")
    email = form.get("email", "").strip().lower()[:320] or None
    with writing(engine(request)) as conn:
        meta = _message(conn, user, mid)
        done = corrections.override(conn, user.account_id, meta.id, Reason(reason), email)
    if not done:
        raise PageError(404, "This message produced no bounce" + (f" for {email}." if email else "."))
    return _after(meta.id, done)


@router.post("/messages/{mid}/reclassify")
async def message_reread(request: Request, user: SignedIn, mid: str) -> Response:
    """Read the stored message again with today's engine, as ``POST /v1/bounces/reclassify`` does."""
    await checked_form(request)
    with writing(engine(request)) as conn:
        meta = _message(conn, user, mid)
        done = bounce_messages.reclassify(conn, user.account_id, secret(request), [meta.id], dry_run=False)
    return _after(meta.id, done.corrections, reread=True)


def _after(message: int, done: list[corrections.Correction], reread: bool = False) -> Response:
    changed = [c for c in done if c.applied]
    return RedirectResponse(url_with(f"{PREFIX}/messages/{message}", changed=str(len(changed)),
                                     lifted=sum(c.suppression_lifted for c in changed) or None,
                                     reread="1" if reread else None), status_code=303)
