"""Raw bounce messages: the stored bytes beside what was read from them (``store.raw_messages``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import Connection, Row
from starlette.responses import Response

from ..store import raw_messages
from .common import PREFIX, PageError, User, engine, render, signed_in

router = APIRouter(prefix=PREFIX, include_in_schema=False)
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
def message_page(request: Request, user: SignedIn, mid: str) -> Response:
    with engine(request).connect() as conn:
        meta = _message(conn, user, mid)
        raw = raw_messages.body(conn, user.account_id, meta.id) or b""
        parsed = raw_messages.events_of(conn, user.account_id, meta.id)
        unmatched = raw_messages.unmatched_of(conn, user.account_id, meta.id)
    text, cut = as_text(raw)
    return render(request, "message.html", meta=meta, text=text, cut=cut, parsed=parsed, unmatched=unmatched)


@router.get("/messages/{mid}/raw")
def message_raw(request: Request, user: SignedIn, mid: str) -> Response:
    with engine(request).connect() as conn:
        meta = _message(conn, user, mid)
        raw = raw_messages.body(conn, user.account_id, meta.id) or b""
    return Response(raw, media_type="message/rfc822",
                    headers={"Content-Disposition": f'attachment; filename="bounce-{meta.id}.eml"',
                             "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})
