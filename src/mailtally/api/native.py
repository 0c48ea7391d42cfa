"""mailtally's own API under /v1: the catalogue (contacts, campaigns, activities, links)
and event ingestion. Errors: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator
from sqlalchemy import Connection, Row
from sqlalchemy.exc import IntegrityError
from starlette.responses import Response

from ..ingest.batch import BadBody, parse_body, to_events
from ..store import catalog
from ..store.accounts import Principal
from ..store.db import writing
from ..store.stats import activity_stats
from ..store.writer import BatchRejected, write_events
from ..timefmt import iso_ms
from ..vocab import Scope
from . import auth, limits
from .body import body_schema, json_body
from .deps import engine, inline, read_conn
from .errors import ApiError, json_response
from .query import CheckedRoute

router = APIRouter(route_class=CheckedRoute, prefix="/v1", tags=["native"])
MAX_ID = 2**62  # ids are 64-bit in every database; larger numbers are refused, not overflowed
MAX_LINKS = 1000  # links in one PUT (docs/events.md)
BULK_EVENTS = 100  # a batch this big lets small writes (a bounce, a contact) go first (store/write_gate.py)
limits.body_limit("POST", "/v1/events", "max_body_bytes", "batch_too_large", "batches")


def caller(scope: Scope) -> Any:
    async def dependency(request: Request) -> Principal:
        return auth.bearer_caller(request, scope, _refused)

    return Depends(dependency)


def _refused(why: auth.Refusal, scope: Scope) -> ApiError:
    if why is auth.Refusal.UNAUTHENTICATED:
        return ApiError(401, "unauthorized", "send Authorization: Bearer <token> with a valid token",
                        headers={"WWW-Authenticate": "Bearer"})
    return ApiError(403, "forbidden", f"this token lacks the {scope.value} scope")


Ingest = Annotated[Principal, caller(Scope.INGEST)]
Campaigns = Annotated[Principal, caller(Scope.CAMPAIGN_DATA)]
Contacts = Annotated[Principal, caller(Scope.CONTACT_DATA)]
Conn = Annotated[Connection, Depends(read_conn)]


def _uuid(value: str, what: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ApiError(400, "bad_id", f"{what} {value!r} is not a UUID") from None


def _ms(v: int | None) -> str | None:
    return iso_ms(v) if v is not None else None


# -- contacts ----------------------------------------------------------------------------


def _no_nul(value: Any) -> Any:
    """Text with NUL characters is refused: PostgreSQL cannot store it, and no name needs it."""
    texts = [value] if isinstance(value, str) else list(value.keys()) + list(value.values()) \
        if isinstance(value, dict) else []
    if any(isinstance(t, str) and "\x00" in t for t in texts):
        raise ValueError("must not contain NUL characters")
    return value


class Input(BaseModel):
    """A request body: unknown fields and NUL characters are errors."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return _no_nul(value)


class ContactIn(Input):
    email: EmailStr
    first_name: str | None = Field(None, max_length=200)
    last_name: str | None = Field(None, max_length=200)
    company_name: str | None = Field(None, max_length=200)
    job_title: str | None = Field(None, max_length=200)
    phone: str | None = Field(None, max_length=64)
    street: str | None = Field(None, max_length=400)
    city: str | None = Field(None, max_length=200)
    state: str | None = Field(None, max_length=200)
    postal_code: str | None = Field(None, max_length=64)
    country: str | None = Field(None, max_length=200)
    custom_fields: dict[str, str | int | float | bool | None] = Field(default_factory=dict)


class ContactPatch(ContactIn):
    email: EmailStr | None = None  # type: ignore[assignment]


def contact_body(r: Row[Any]) -> dict[str, Any]:
    m = r._mapping
    body = {k: m[k] for k in catalog.CONTACT_FIELDS}
    body.update(id=r.id, num_id=r.num_id, created_at=_ms(r.created_at), updated_at=_ms(r.updated_at),
                deleted_at=_ms(r.deleted_at))
    return body


def _email_taken(email: str) -> ApiError:
    return ApiError(409, "conflict", f"a contact with email {email.lower()} exists")


@router.post("/contacts", status_code=201, openapi_extra=body_schema(ContactIn.model_json_schema()))
def create_contact(who: Ingest, body: Annotated[ContactIn, json_body(ContactIn)], request: Request) -> Response:
    try:
        with writing(engine(request)) as conn:
            if catalog.contact_by_email(conn, who.account_id, body.email) is not None:
                raise _email_taken(body.email)
            row = catalog.create_contact(conn, who.account_id, body.model_dump())
    except IntegrityError:  # the same address created at the same moment by another request
        raise _email_taken(body.email) from None
    return json_response(contact_body(row), 201)


@router.get("/contacts")
@inline
def list_contacts(who: Contacts, conn: Conn, after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
                  limit: Annotated[int, Query(ge=1, le=500)] = 100) -> Response:
    rows = catalog.list_contacts(conn, who.account_id, after, limit)
    body: dict[str, Any] = {"contacts": [contact_body(r) for r in rows]}
    if len(rows) == limit:
        body["next"] = f"/v1/contacts?after={rows[-1].num_id}&limit={limit}"
    return json_response(body)


def _contact(conn: Connection, who: Principal, contact_id: str) -> Row[Any]:
    row = catalog.get_contact(conn, who.account_id, _uuid(contact_id, "contact id"))
    if row is None:
        raise ApiError(404, "not_found", f"no contact {contact_id}")
    return row


@router.get("/contacts/{contact_id}")
@inline
def get_contact(who: Contacts, conn: Conn, contact_id: str) -> Response:
    return json_response(contact_body(_contact(conn, who, contact_id)))


@router.patch("/contacts/{contact_id}", openapi_extra=body_schema(ContactPatch.model_json_schema()))
def patch_contact(who: Ingest, contact_id: str, body: Annotated[ContactPatch, json_body(ContactPatch)],
                  request: Request) -> Response:
    try:
        with writing(engine(request)) as conn:
            row = _contact(conn, who, contact_id)
            if body.email is not None:
                other = catalog.contact_by_email(conn, who.account_id, body.email)
                if other is not None and other.id != row.id:
                    raise _email_taken(body.email)
            catalog.update_contact(conn, who.account_id, row.id, body.model_dump(exclude_unset=True))
            row = _contact(conn, who, row.id)
    except IntegrityError:
        raise _email_taken(body.email or "") from None
    return json_response(contact_body(row))


@router.delete("/contacts/{contact_id}", status_code=204)
def delete_contact(who: Ingest, contact_id: str, request: Request) -> Response:
    with writing(engine(request)) as conn:
        row = _contact(conn, who, contact_id)
        catalog.delete_contact(conn, who.account_id, row.id)
    return Response(status_code=204)


# -- campaigns, activities, links ----------------------------------------------------------


class CampaignIn(Input):
    name: str = Field(min_length=1, max_length=400)
    type: str = Field("Newsletter", max_length=64)


class ActivityIn(Input):
    role: str = Field("primary_email", pattern="^(primary_email|resend)$")
    subject: str = Field("", max_length=998)
    from_name: str = Field("", max_length=200)
    from_email: str = Field("", max_length=320)


class LinkIn(Input):
    url_id: str = Field(min_length=1, max_length=64)
    url: str = Field(min_length=1, max_length=4000)
    link_tag: str | None = Field(None, max_length=200)


def activity_body(r: Row[Any]) -> dict[str, Any]:
    return {"id": r.id, "num_id": r.num_id, "campaign_id": r.campaign_id, "role": r.role, "status": r.status,
            "subject": r.subject, "from_name": r.from_name, "from_email": r.from_email,
            "created_at": _ms(r.created_at)}


def campaign_body(r: Row[Any], acts: list[Row[Any]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"id": r.id, "num_id": r.num_id, "name": r.name, "type": r.type, "status": r.status,
                            "created_at": _ms(r.created_at), "last_sent_at": _ms(r.last_sent_at)}
    if acts is not None:
        body["activities"] = [activity_body(a) for a in acts]
    return body


def _campaign(conn: Connection, who: Principal, campaign_id: str) -> Row[Any]:
    row = catalog.get_campaign(conn, who.account_id, _uuid(campaign_id, "campaign id"))
    if row is None:
        raise ApiError(404, "not_found", f"no campaign {campaign_id}")
    return row


def _activity(conn: Connection, who: Principal, activity_id: str) -> Row[Any]:
    row = catalog.get_activity(conn, who.account_id, _uuid(activity_id, "activity id"))
    if row is None:
        raise ApiError(404, "not_found", f"no campaign activity {activity_id}")
    return row


@router.post("/campaigns", status_code=201, openapi_extra=body_schema(CampaignIn.model_json_schema()))
def create_campaign(who: Ingest, body: Annotated[CampaignIn, json_body(CampaignIn)], request: Request) -> Response:
    with writing(engine(request)) as conn:
        row = catalog.create_campaign(conn, who.account_id, body.name, body.type)
    return json_response(campaign_body(row, []), 201)


@router.get("/campaigns")
@inline
def list_campaigns(who: Campaigns, conn: Conn, after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
                   limit: Annotated[int, Query(ge=1, le=500)] = 100) -> Response:
    rows = catalog.list_campaigns(conn, who.account_id, after, limit)
    body: dict[str, Any] = {"campaigns": [campaign_body(r) for r in rows]}
    if len(rows) == limit:
        body["next"] = f"/v1/campaigns?after={rows[-1].num_id}&limit={limit}"
    return json_response(body)


@router.get("/campaigns/{campaign_id}")
@inline
def get_campaign(who: Campaigns, conn: Conn, campaign_id: str) -> Response:
    row = _campaign(conn, who, campaign_id)
    return json_response(campaign_body(row, catalog.activities_of(conn, who.account_id, row.id)))


@router.post("/campaigns/{campaign_id}/activities", status_code=201,
             openapi_extra=body_schema(ActivityIn.model_json_schema()))
def create_activity(who: Ingest, campaign_id: str, body: Annotated[ActivityIn, json_body(ActivityIn)],
                    request: Request) -> Response:
    with writing(engine(request)) as conn:
        campaign = _campaign(conn, who, campaign_id)
        row = catalog.create_activity(conn, who.account_id, campaign.id, body.role, body.subject,
                                      body.from_name, body.from_email)
    return json_response(activity_body(row), 201)


@router.get("/activities/{activity_id}")
@inline
def get_activity(who: Campaigns, conn: Conn, activity_id: str) -> Response:
    return json_response(activity_body(_activity(conn, who, activity_id)))


@router.put("/activities/{activity_id}/links", openapi_extra=body_schema(
    {"type": "array", "maxItems": MAX_LINKS, "items": LinkIn.model_json_schema()}))
def put_links(who: Ingest, activity_id: str, body: Annotated[list[LinkIn], json_body(list[LinkIn])],
              request: Request) -> Response:
    if len(body) > MAX_LINKS:
        raise ApiError(400, "too_many_links", f"{len(body)} links in one request; the limit is {MAX_LINKS}")
    seen: set[str] = set()
    for i, link in enumerate(body):
        if link.url_id in seen:
            raise ApiError(400, "duplicate_url_id", f"url_id {link.url_id!r} is given twice (again at index {i})",
                           [{"index": i, "field": "url_id", "message": "given twice"}])
        seen.add(link.url_id)
    with writing(engine(request)) as conn:
        row = _activity(conn, who, activity_id)
        catalog.put_links(conn, who.account_id, row.id, [link.model_dump() for link in body])
        rows = catalog.links_of(conn, who.account_id, row.id)
    return json_response({"links": [{"url_id": r.url_id, "url": r.url, "link_tag": r.link_tag} for r in rows]})


@router.get("/activities/{activity_id}/links")
@inline
def get_links(who: Campaigns, conn: Conn, activity_id: str) -> Response:
    row = _activity(conn, who, activity_id)
    rows = catalog.links_of(conn, who.account_id, row.id)
    return json_response({"links": [{"url_id": r.url_id, "url": r.url, "link_tag": r.link_tag} for r in rows]})


@router.get("/activities/{activity_id}/stats")
@inline
def get_stats(who: Campaigns, conn: Conn, activity_id: str) -> Response:
    row = _activity(conn, who, activity_id)
    stats = activity_stats(conn, who.account_id, [row.id]).get(row.id)
    from ..store.stats import Stats

    stats = stats or Stats()
    c = stats.counts
    return json_response({"activity_id": row.id, "counts": c, "delivered": stats.delivered,
                          "percents": stats.percents(), "last_event_at": _ms(stats.last_event_at),
                          # tracked hits by verdict, whatever the vendor reports count (docs/tracking.md)
                          "verdicts": {"opens": {"human": c["opens_human"], "machine": c["opens_machine"]},
                                       "clicks": {"human": c["clicks_human"], "machine": c["clicks_machine"]}}})


# -- events ------------------------------------------------------------------------------


@router.post(
    "/events",
    openapi_extra={"requestBody": {"content": {
        "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
        "application/x-ndjson": {"schema": {"type": "string"}},
    }, "required": True}},
)
async def post_events(who: Ingest, request: Request) -> Response:
    """Record a batch: all of it, or (if any item is invalid) none of it."""
    settings = request.app.state.settings
    body = await request.body()  # its size is bounded while it is read (api/limits.py)
    if not body.strip():
        raise ApiError(400, "bad_body", "the body is empty: send a JSON array of events or NDJSON")
    try:
        items = parse_body(body, request.headers.get("content-type", ""))
    except BadBody as e:
        raise ApiError(400, "bad_body", str(e)) from None
    if len(items) > settings.max_batch_events:
        raise ApiError(413, "batch_too_large",
                       f"{len(items)} events in one batch; the limit is {settings.max_batch_events}")
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(_record, request, who, items)


def _record(request: Request, who: Principal, items: list[Any]) -> Response:
    events, errors = to_events(items)
    if not errors:
        try:
            with writing(engine(request), bulk=len(events) > BULK_EVENTS) as conn:
                result = write_events(conn, who.account_id, events)
        except BatchRejected as e:
            errors = e.errors
    if errors:
        details = [{"index": e.index, "field": e.field, "message": e.message} for e in errors]
        raise ApiError(400, "invalid_events",
                       f"{len({e.index for e in errors})} of {len(items)} events are invalid; nothing was recorded",
                       details)
    return json_response({"received": result.received, "accepted": result.accepted,
                          "duplicates": result.duplicates, "contacts_created": result.contacts_created})


@router.get("/me")
@inline
def me(request: Request) -> Response:
    who = auth.principal(request, auth.bearer_token(request))
    if who is None:
        raise ApiError(401, "unauthorized", "send Authorization: Bearer <token> with a valid token")
    return json_response({"account": who.account_name, "scopes": sorted(who.scopes)})
