"""/v1/bounces: raw bounce messages in, bounce events out; unmatched bounces listed.

Also hands senders the VERP return path and headers for a send, so bounces find it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import AwareDatetime, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ..bounces import parse
from ..ingest.bounce_messages import Ingested, ingest_message
from ..ingest.bounce_messages import reclassify as reclassify_messages
from ..store import corrections, matching, raw_messages
from ..store.db import writing
from ..timefmt import iso_ms
from ..verp import SendRef, headers, return_path
from ..vocab import Reason
from . import limits
from .body import body_schema, json_body
from .deps import engine, inline
from .errors import ApiError, json_response
from .native import MAX_ID, Campaigns, Conn, Ingest, Input, _activity, _contact
from .query import CheckedRoute

router = APIRouter(route_class=CheckedRoute, prefix="/v1", tags=["bounces"])
MAX_MESSAGE_BYTES = 10 * 1024 * 1024
limits.body_limit("POST", "/v1/bounces", MAX_MESSAGE_BYTES, "message_too_large", "messages")


@router.post(
    "/bounces",
    openapi_extra={"requestBody": {"content": {"message/rfc822": {"schema": {"type": "string", "format": "binary"}}},
                                   "required": True}},
)
async def post_bounce(who: Ingest, request: Request,
                      envelope_to: Annotated[str | None, Query(max_length=320)] = None) -> Response:
    """Read one raw message (a DSN, an auto-reply, an ARF report) and record what it says."""
    raw = await request.body()  # its size is bounded while it is read (api/limits.py)
    if not raw.strip():
        raise ApiError(400, "empty_message", "send the raw message as the body (Content-Type: message/rfc822)")
    secret: bytes = request.app.state.secret
    cap: int = request.app.state.settings.raw_message_max_bytes

    def work() -> Ingested:
        with writing(engine(request)) as conn:
            return ingest_message(conn, who.account_id, secret, raw, envelope_to, source="api", keep_bytes=cap)

    result = await run_in_threadpool(work)
    return json_response({
        "id": result.raw_message_id,
        "message_key": result.message_key,
        "is_bounce": bool(result.outcomes),
        "recorded": result.recorded,
        "duplicates": result.duplicates,
        "unmatched": result.unmatched_new,
        "message_date": result.message_date,
        # Sent to List-Unsubscribe's mailto: address: the opt-out it made (null for anything else).
        "unsubscribe": result.unsubscribe.to_dict() if result.unsubscribe else None,
        "records": [
            {**o.record.to_dict(), "event_type": o.event_type.value if o.event_type else None,
             "matched_by": o.matched_by, "activity_id": o.activity_id, "contact_id": o.contact_id,
             "occurred_at": iso_ms(o.occurred_at) if o.occurred_at is not None else None}
            for o in result.outcomes
        ],
    })


@router.get("/bounces/unmatched")
@inline
def unmatched(who: Campaigns, conn: Conn, before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
              limit: Annotated[int, Query(ge=1, le=500)] = 100) -> Response:
    """Bounces that matched no send, newest first."""
    rows = matching.list_unmatched(conn, who.account_id, before, limit)
    body: dict[str, Any] = {"unmatched": [
        {"id": r.id, "received_at": iso_ms(r.received_at), "recipient": r.recipient, "reason": r.reason,
         "bounce_code": r.bounce_code, "status": r.dsn_status, "reply_code": r.reply_code,
         "diagnostic": r.diagnostic, "remote_mta": r.remote_mta, "original_message_id": r.original_message_id,
         "original_subject": r.original_subject}
        for r in rows
    ]}
    if len(rows) == limit:
        body["next"] = f"/v1/bounces/unmatched?before={rows[-1].id}&limit={limit}"
    return json_response(body)


@router.get("/activities/{activity_id}/return_path")
@inline
def send_address(who: Ingest, conn: Conn, request: Request, activity_id: str,
                 contact_id: Annotated[str, Query()],
                 domain: Annotated[str, Query(min_length=3, max_length=253, pattern=r"^[A-Za-z0-9.-]+$")],
                 ) -> Response:
    """The VERP envelope sender and headers to use when sending this activity to this contact."""
    activity = _activity(conn, who, activity_id)
    contact = _contact(conn, who, contact_id)
    secret: bytes = request.app.state.secret
    ref = SendRef(who.account_id, activity.num_id, contact.num_id)
    return json_response({"return_path": return_path(secret, ref, domain), "headers": headers(secret, ref, domain)})




@router.get("/bounces")
@inline
def list_messages(who: Campaigns, conn: Conn, before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
                  limit: Annotated[int, Query(ge=1, le=500)] = 100) -> Response:
    """The stored raw messages, newest first."""
    rows = raw_messages.list_messages(conn, who.account_id, before, limit)
    body: dict[str, Any] = {"bounces": [_meta(r) for r in rows]}
    if len(rows) == limit:
        body["next"] = f"/v1/bounces?before={rows[-1].id}&limit={limit}"
    return json_response(body)


def _meta(r: Any) -> dict[str, Any]:
    return {"id": r.id, "received_at": iso_ms(r.received_at), "source": r.source, "envelope_to": r.envelope_to,
            "size": r.size, "truncated": bool(r.truncated), "sha256": r.sha256, "records": r.records,
            "raw": f"/v1/bounces/{r.id}/raw"}


def _stored(conn: Any, who: Any, message_id: int) -> Any:
    row = raw_messages.get(conn, who.account_id, message_id)
    if row is None:
        raise ApiError(404, "not_found", f"no stored bounce message {message_id}")
    return row


@router.get("/bounces/{message_id}")
@inline
def show_message(who: Campaigns, conn: Conn, message_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> Response:
    """One stored message: what today's engine reads in it, and the events it produced as logged."""
    row = _stored(conn, who, message_id)
    raw = raw_messages.body(conn, who.account_id, message_id) or b""
    return json_response({
        **_meta(row),
        "parsed": [r.to_dict() for r in parse(raw)],
        "events": [
            {"activity_id": e.activity_id, "contact_id": e.contact_id, "email": e.recipient, "type": e.type,
             "occurred_at": iso_ms(e.occurred_at), "reason": e.reason, "bounce_code": e.bounce_code,
             "hard_bounce": e.hard, "status": e.dsn_status, "reply_code": e.reply_code,
             "diagnostic": e.diagnostic, "remote_mta": e.remote_mta}
            for e in raw_messages.events_of(conn, who.account_id, message_id)
        ],
        "unmatched": [
            {"id": u.id, "recipient": u.recipient, "reason": u.reason, "bounce_code": u.bounce_code,
             "status": u.dsn_status, "diagnostic": u.diagnostic}
            for u in raw_messages.unmatched_of(conn, who.account_id, message_id)
        ],
    })


@router.get("/bounces/{message_id}/raw",
            responses={200: {"content": {"message/rfc822": {"schema": {"type": "string", "format": "binary"}}}}})
@inline
def raw_message(who: Campaigns, conn: Conn, message_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> Response:
    """The message as received (its first ``raw_message_max_bytes`` when ``truncated``)."""
    row = _stored(conn, who, message_id)
    headers = {"X-Mailtally-Truncated": "true"} if row.truncated else {}
    return Response(raw_messages.body(conn, who.account_id, message_id) or b"", media_type="message/rfc822",
                    headers=headers)


class ReclassifyIn(Input):
    ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] | None = Field(None, max_length=10_000)
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    reason: Reason | None = Field(None, description="only bounces logged with this reason")
    all: bool = False
    dry_run: bool = False


RECLASSIFY_BATCH = 100
MAX_LISTED = 1000


@router.post("/bounces/reclassify", openapi_extra=body_schema(ReclassifyIn.model_json_schema()))
async def reclassify(who: Ingest, body: Annotated[ReclassifyIn, json_body(ReclassifyIn)], request: Request) -> Response:
    """Re-read stored messages with today's engine; correct events, counters and suppressions.

    Give ``ids``, a time range (``since``/``until``, when received), ``reason``, or ``all``.
    ``dry_run`` shows the differences and changes nothing. One transaction per 100 messages.
    """
    if not (body.ids or body.since or body.until or body.reason or body.all):
        raise ApiError(400, "no_filter", "name the messages: ids, since/until, reason, or all: true")
    since = int(body.since.timestamp() * 1000) if body.since else None
    until = int(body.until.timestamp() * 1000) if body.until else None
    secret: bytes = request.app.state.secret

    def work() -> dict[str, Any]:
        eng = engine(request)
        messages, changed = 0, 0
        listed: list[dict[str, Any]] = []
        wanted = sorted(set(body.ids)) if body.ids else None
        after = 0
        while True:
            with (eng.connect() if body.dry_run else writing(eng)) as conn:
                if wanted is not None:
                    batch = wanted[:RECLASSIFY_BATCH]
                    wanted = wanted[RECLASSIFY_BATCH:]
                else:
                    batch = raw_messages.ids(conn, who.account_id, since=since, until=until, after_id=after,
                                             limit=RECLASSIFY_BATCH)
                if not batch:
                    break
                after = batch[-1]
                done = reclassify_messages(conn, who.account_id, secret, batch, dry_run=body.dry_run,
                                           only_reason=body.reason.value if body.reason else None)
            messages += done.messages
            changed += len(done.corrections)
            listed += [c.to_dict() for c in done.corrections][:MAX_LISTED - len(listed)]
        return {"dry_run": body.dry_run, "messages": messages, "differences": changed, "changes": listed}

    return json_response(await run_in_threadpool(work))


class OverrideIn(Input):
    reason: Reason
    email: str | None = Field(None, max_length=320, description="one recipient of the message; all when absent")


class RecipientOverrideIn(Input):
    activity_id: str = Field(max_length=36)
    email: str = Field(min_length=3, max_length=320)
    reason: Reason


@router.post("/bounces/override", openapi_extra=body_schema(RecipientOverrideIn.model_json_schema()))
def override_recipient(who: Ingest, request: Request,
                       body: Annotated[RecipientOverrideIn, json_body(RecipientOverrideIn)]) -> Response:
    """A person's verdict on a recipient's bounce in one activity, whatever brought it (a stored
    message, a provider's webhook, a log line, ``/v1/events``): the event is corrected, the
    counters follow, and a suppression it caused is lifted unless the new reason suppresses too."""
    if body.reason not in corrections.BOUNCE_REASONS:
        raise ApiError(400, "bad_reason", f"{body.reason.value} is not a bounce reason")
    with writing(engine(request)) as conn:
        activity = _activity(conn, who, body.activity_id)
        done = corrections.override_recipient(conn, who.account_id, activity.id, body.email, body.reason)
    if not done:
        raise ApiError(404, "not_found", f"{body.email} has no bounce in activity {activity.id}")
    return json_response({"changes": [c.to_dict() for c in done]})


@router.post("/bounces/{message_id}/override", openapi_extra=body_schema(OverrideIn.model_json_schema()))
def override(who: Ingest, request: Request, body: Annotated[OverrideIn, json_body(OverrideIn)],
             message_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> Response:
    """A person's verdict on a stored message's bounce: the event is corrected, the counters
    follow, and a suppression it caused is lifted unless the new reason suppresses too."""
    if body.reason not in corrections.BOUNCE_REASONS:
        raise ApiError(400, "bad_reason", f"{body.reason.value} is not a bounce reason")
    with writing(engine(request)) as conn:
        _stored(conn, who, message_id)
        done = corrections.override(conn, who.account_id, message_id, body.reason, body.email)
    if not done:
        whom = f" for {body.email}" if body.email else ""
        raise ApiError(404, "not_found", f"this message produced no bounce{whom}")
    return json_response({"changes": [c.to_dict() for c in done]})
