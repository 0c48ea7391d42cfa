"""The sender's side of tracking under /v1: each recipient's message, friends' addresses from
the forward page, and the account's policy on counting machine hits. Native error shape."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from ..ingest.batch import EMAIL, BadBody, iter_ndjson
from ..store import hits
from ..store.accounts import Principal
from ..store.db import writing
from ..timefmt import iso_ms
from ..tracking.toolkit import Recipient, RenderError, render_messages
from ..vocab import MachineCounting, Scope
from . import limits
from .body import body_schema, json_body
from .deps import declared_length, engine, inline
from .errors import ApiError, json_response
from .native import MAX_ID, Campaigns, Conn, Contacts, Ingest, _activity, caller
from .query import CheckedRoute

router = APIRouter(route_class=CheckedRoute, prefix="/v1", tags=["tracking"])
Admin = Annotated[Principal, caller(Scope.ADMIN)]
MAX_RECIPIENTS = 100_000
MAX_BODY_CHARS = 2 * 1024 * 1024
# 100,000 recipients a call (3-4 MB of NDJSON) and two bodies: more than the default 1 MB.
limits.body_limit("POST", "/v1/activities/", "max_body_bytes", "too_large", "message requests")


class RecipientIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str | None = Field(None, max_length=320)
    contact_id: str | None = Field(None, max_length=36)


class MessagesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    html: str | None = Field(None, max_length=MAX_BODY_CHARS)
    text: str | None = Field(None, max_length=MAX_BODY_CHARS)
    recipients: list[RecipientIn] = Field(default_factory=list)
    record_send: bool = False


def _recipients(items: list[Any]) -> list[Recipient]:
    errors, out = [], []
    for i, item in enumerate(items):
        try:
            r = RecipientIn.model_validate(item)
        except ValidationError as e:
            errors.append({"index": i, "field": ".".join(str(x) for x in e.errors()[0]["loc"]) or "recipient",
                           "message": e.errors()[0]["msg"]})
            continue
        if (r.email is None) == (r.contact_id is None):
            errors.append({"index": i, "field": "recipient", "message": "give exactly one of email and contact_id"})
        elif r.email is not None and (not EMAIL.match(r.email) or "\x00" in r.email):
            errors.append({"index": i, "field": "email", "message": f"{r.email!r} is not an email address"})
        else:
            out.append(Recipient(email=r.email, contact_id=r.contact_id))
    if errors:
        raise ApiError(400, "invalid_recipients", f"{len(errors)} of {len(items)} recipients are invalid; "
                       "nothing was recorded", errors)
    if not out:
        raise ApiError(400, "no_recipients", "give at least one recipient")
    if len(out) > MAX_RECIPIENTS:
        raise ApiError(413, "too_many_recipients", f"{len(out)} recipients; the limit is {MAX_RECIPIENTS} a call")
    return out


def _parse(body: bytes, content_type: str) -> tuple[MessagesIn, list[Recipient], bool]:
    """The request and whether it came as NDJSON (a header line, then one recipient a line)."""
    ndjson = "ndjson" in content_type
    try:
        if ndjson:
            lines = list(iter_ndjson(body.splitlines()))
            if not lines or not isinstance(lines[0], dict):
                raise ApiError(400, "bad_body", "the first NDJSON line must be {\"html\": ..., \"text\": ...}")
            head, items = lines[0], lines[1:]
        else:
            head = orjson.loads(body)
            if not isinstance(head, dict):
                raise ApiError(400, "bad_body", "body must be a JSON object")
            items = head.pop("recipients", [])
            if not isinstance(items, list):
                raise ApiError(400, "bad_body", "recipients must be an array")
        req = MessagesIn.model_validate(head)
    except (orjson.JSONDecodeError, BadBody) as e:
        raise ApiError(400, "bad_body", f"body is not valid JSON: {e}") from None
    except ValidationError as e:
        details = [{"field": ".".join(str(x) for x in err["loc"]), "message": err["msg"]} for err in e.errors()]
        raise ApiError(400, "invalid_request", "the request is invalid", details) from None
    for name in ("html", "text"):
        if "\x00" in (getattr(req, name) or ""):
            raise ApiError(400, "invalid_request", f"{name} must not contain NUL characters")
    return req, _recipients(items), ndjson


@router.post(
    "/activities/{activity_id}/messages",
    openapi_extra={"requestBody": {"content": {
        "application/json": {"schema": {"type": "object"}},
        "application/x-ndjson": {"schema": {"type": "string"}},
    }, "required": True}},
)
async def post_messages(who: Ingest, activity_id: str, request: Request) -> Response:
    """Each recipient's message: links signed, pixel added, placeholders filled, headers to add."""
    settings = request.app.state.settings
    if declared_length(request) > settings.max_body_bytes:
        raise ApiError(413, "body_too_large", f"body over {settings.max_body_bytes} bytes")
    body = await request.body()
    if len(body) > settings.max_body_bytes:
        raise ApiError(413, "body_too_large", f"body over {settings.max_body_bytes} bytes")
    req, recipients, ndjson = _parse(body, request.headers.get("content-type", ""))
    with engine(request).connect() as conn:
        activity = _activity(conn, who, activity_id)

    def messages() -> Iterator[Any]:
        return render_messages(
            engine(request), who.account_id, activity.id, recipients, html=req.html, text=req.text,
            base_url=settings.base_url, secret=request.app.state.secret, record_send=req.record_send,
            bounce_domain=settings.bounce_domain)

    def first_then_rest() -> tuple[Any, Iterator[Any]]:
        it = messages()  # the generator writes everything before its first message
        return next(it), it

    try:
        first, rest = await run_in_threadpool(first_then_rest)
    except RenderError as e:
        details = [{"index": x.index, "field": x.field, "message": x.message} for x in e.errors] or None
        raise ApiError(400, "invalid_recipients" if e.errors else "invalid_request", str(e), details) from None
    warnings = [] if settings.public_url else [
        f"MAILTALLY_PUBLIC_URL is not set: links point at {settings.base_url}, which recipients may not reach"]
    if ndjson or "ndjson" in request.headers.get("accept", ""):
        def lines() -> Iterator[bytes]:
            yield orjson.dumps(first.as_dict()) + b"\n"
            for m in rest:
                yield orjson.dumps(m.as_dict()) + b"\n"

        return StreamingResponse(lines(), media_type="application/x-ndjson",
                                 headers={"X-Mailtally-Warning": warnings[0]} if warnings else None)
    body_out: dict[str, Any] = {"messages": [first.as_dict(), *(m.as_dict() for m in rest)]}
    if warnings:
        body_out["warnings"] = warnings
    return json_response(body_out)


@router.get("/activities/{activity_id}/forwards")
@inline
def get_forwards(who: Contacts, conn: Conn, activity_id: str,
                 limit: Annotated[int, Query(ge=1, le=500)] = 100,
                 after: Annotated[str | None, Query(max_length=400)] = None) -> Response:
    """Friends' addresses given on the forward page, oldest first (mailtally sends them nothing)."""
    activity = _activity(conn, who, activity_id)
    key = None
    if after:
        at, _, rest = after.partition(":")
        num, _, friend = rest.partition(":")
        if not (at.isdigit() and num.isdigit() and int(at) < MAX_ID and int(num) < MAX_ID and friend):
            raise ApiError(400, "bad_cursor", "after must be a cursor from a previous page's next link")
        key = (int(at), int(num), friend)
    rows = hits.forwards_of(conn, who.account_id, int(activity.num_id), limit, key)
    body: dict[str, Any] = {"forwards": [
        {"contact_id": r.contact_id, "email": r.email, "friend_email": r.friend_email,
         "forwarded_at": iso_ms(r.forwarded_at)} for r in rows]}
    if len(rows) == limit:
        last = rows[-1]
        body["next"] = (f"/v1/activities/{activity.id}/forwards?limit={limit}"
                        f"&after={last.forwarded_at}:{last.contact_num}:{last.friend_email}")
    return json_response(body)


class CountingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    machine_opens: MachineCounting | None = None
    machine_clicks: MachineCounting | None = None


def _counting_body(opens: MachineCounting, clicks: MachineCounting) -> dict[str, str]:
    return {"machine_opens": opens.value, "machine_clicks": clicks.value}


@router.get("/settings/tracking")
@inline
def get_counting(who: Campaigns, conn: Conn) -> Response:
    """Which machine opens and clicks the Constant Contact, Zoho and WhatCounts reports count."""
    return json_response(_counting_body(*hits.counting(conn, who.account_id)))


@router.put("/settings/tracking", openapi_extra=body_schema(CountingIn.model_json_schema()))
def put_counting(who: Admin, body: Annotated[CountingIn, json_body(CountingIn)], request: Request) -> Response:
    """Applies to hits from now on; hits already counted stay as they were."""
    with writing(engine(request)) as conn:
        hits.set_counting(conn, who.account_id, body.machine_opens, body.machine_clicks)
        now = hits.counting(conn, who.account_id)
    request.app.state.tracker.forget_policy(who.account_id)
    return json_response(_counting_body(*now))
