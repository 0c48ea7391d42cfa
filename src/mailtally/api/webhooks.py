"""/v1/webhooks: outgoing webhook subscriptions and their delivery log.

Payloads carry contacts' addresses, so every endpoint needs the ``contact_data`` scope.
Each delivery is signed as Standard Webhooks specifies, with the secret shown once, when the
subscription is created.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import Field
from sqlalchemy import Connection, Row
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ..store import outbox
from ..store.db import writing
from ..timefmt import iso_ms
from ..vocab import WebhookDeliveryState, WebhookEvent
from ..webhooks import signing
from ..webhooks.targets import refusal
from .body import body_schema, json_body
from .deps import engine, inline
from .errors import ApiError, json_response
from .native import MAX_ID, Conn, Contacts, Input, _uuid
from .query import CheckedRoute

router = APIRouter(route_class=CheckedRoute, prefix="/v1", tags=["webhooks"])


def subscription_body(r: Row[Any]) -> dict[str, Any]:
    return {"id": r.id, "url": r.url, "events": sorted(outbox.wanted_by(r)), "description": r.description,
            "enabled": bool(r.enabled), "created_at": iso_ms(r.created_at)}


def delivery_body(r: Row[Any]) -> dict[str, Any]:
    return {"id": r.id, "subscription_id": r.subscription_id, "webhook_id": r.msg_id, "type": r.event_type,
            "state": r.state, "attempts": r.attempts, "created_at": iso_ms(r.created_at),
            "next_attempt_at": iso_ms(r.next_attempt_at) if r.state == WebhookDeliveryState.PENDING.value else None,
            "last_status": r.last_status, "last_error": r.last_error,
            "delivered_at": iso_ms(r.delivered_at) if r.delivered_at is not None else None}


class SubscriptionIn(Input):
    url: str = Field(max_length=2000)
    events: list[WebhookEvent] = Field(min_length=1, max_length=len(WebhookEvent))
    description: str = Field("", max_length=400)


class SubscriptionPatch(Input):
    url: str | None = Field(None, max_length=2000)
    events: list[WebhookEvent] | None = Field(None, min_length=1, max_length=len(WebhookEvent))
    description: str | None = Field(None, max_length=400)
    enabled: bool | None = None


async def _checked(request: Request, url: str) -> None:
    allow: bool = request.app.state.settings.webhook_allow_private
    refused = await run_in_threadpool(refusal, url, allow)
    if refused:
        raise ApiError(400, "target_refused", refused)


def _sub(conn: Connection, account: int, sid: str) -> Row[Any]:
    row = outbox.get_subscription(conn, account, _uuid(sid, "subscription id"))
    if row is None:
        raise ApiError(404, "not_found", f"no webhook subscription {sid}")
    return row


@router.post("/webhooks", status_code=201, openapi_extra=body_schema(SubscriptionIn.model_json_schema()))
async def create(who: Contacts, body: Annotated[SubscriptionIn, json_body(SubscriptionIn)],
                 request: Request) -> Response:
    """Subscribe a URL to events. The answer holds the signing secret: it is shown only here."""
    await _checked(request, body.url)
    secret = signing.new_secret()
    with writing(engine(request)) as conn:
        row = outbox.create_subscription(conn, who.account_id, body.url, body.events, secret, body.description)
    return json_response({**subscription_body(row), "secret": secret}, 201)


@router.get("/webhooks")
@inline
def list_subscriptions(who: Contacts, conn: Conn) -> Response:
    return json_response({"webhooks": [subscription_body(r) for r in outbox.list_subscriptions(conn, who.account_id)]})


@router.get("/webhooks/{subscription_id}")
@inline
def get_subscription(who: Contacts, conn: Conn, subscription_id: str) -> Response:
    return json_response(subscription_body(_sub(conn, who.account_id, subscription_id)))


@router.patch("/webhooks/{subscription_id}", openapi_extra=body_schema(SubscriptionPatch.model_json_schema()))
async def patch_subscription(who: Contacts, body: Annotated[SubscriptionPatch, json_body(SubscriptionPatch)],
                             request: Request,
                             subscription_id: str) -> Response:
    if body.url is not None:
        await _checked(request, body.url)
    values = body.model_dump(exclude_none=True)
    with writing(engine(request)) as conn:
        _sub(conn, who.account_id, subscription_id)
        row = outbox.update_subscription(conn, who.account_id, _uuid(subscription_id, "subscription id"), **values)
    assert row is not None
    return json_response(subscription_body(row))


@router.delete("/webhooks/{subscription_id}", status_code=204)
def delete_subscription(who: Contacts, request: Request, subscription_id: str) -> Response:
    with writing(engine(request)) as conn:
        _sub(conn, who.account_id, subscription_id)
        outbox.delete_subscription(conn, who.account_id, _uuid(subscription_id, "subscription id"))
    return Response(status_code=204)


@router.get("/webhooks/{subscription_id}/deliveries")
@inline
def deliveries(who: Contacts, conn: Conn, subscription_id: str,
               state: Annotated[WebhookDeliveryState | None, Query()] = None,
               before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
               limit: Annotated[int, Query(ge=1, le=500)] = 100) -> Response:
    """The delivery log, newest first."""
    sub = _sub(conn, who.account_id, subscription_id)
    rows = outbox.deliveries(conn, who.account_id, subscription_id=sub.id, state=state.value if state else None,
                             before=before, limit=limit)
    body: dict[str, Any] = {"deliveries": [delivery_body(r) for r in rows]}
    if len(rows) == limit:
        q = f"&state={state.value}" if state else ""
        body["next"] = f"/v1/webhooks/{sub.id}/deliveries?before={rows[-1].id}&limit={limit}{q}"
    return json_response(body)


def _delivery(conn: Connection, account: int, sub: Row[Any], delivery_id: int) -> Row[Any]:
    row = outbox.get_delivery(conn, account, delivery_id)
    if row is None or row.subscription_id != sub.id:
        raise ApiError(404, "not_found", f"no delivery {delivery_id} for this subscription")
    return row


@router.get("/webhooks/{subscription_id}/deliveries/{delivery_id}")
@inline
def delivery(who: Contacts, conn: Conn, subscription_id: str,
             delivery_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> Response:
    """One delivery with its payload and every attempt."""
    row = _delivery(conn, who.account_id, _sub(conn, who.account_id, subscription_id), delivery_id)
    return json_response({**delivery_body(row), "payload": row.payload, "attempts": [
        {"attempt": a.attempt, "at": iso_ms(a.at), "status": a.status, "error": a.error,
         "duration_ms": a.duration_ms} for a in outbox.attempts_of(conn, who.account_id, row.id)]})


@router.post("/webhooks/{subscription_id}/deliveries/{delivery_id}/retry")
def retry(who: Contacts, request: Request, subscription_id: str,
          delivery_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> Response:
    """Send a delivery again now (a failed one too), with the same ``webhook-id``."""
    with writing(engine(request)) as conn:
        row = _delivery(conn, who.account_id, _sub(conn, who.account_id, subscription_id), delivery_id)
        again = outbox.redeliver(conn, who.account_id, row.id)
    assert again is not None
    return json_response(delivery_body(again))
