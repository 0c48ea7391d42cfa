"""Settings: API tokens (created, shown once, revoked), alert rules and the alerts fired,
outgoing webhook subscriptions, and provider webhook endpoints.

Each change goes through the same store functions (and the same checks) as its ``/v1`` API.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from sqlalchemy import Connection, Row
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from ..alerts.rules import RuleError, rules_from
from ..api.native import MAX_ID
from ..api.query import CheckedRoute
from ..api.webhook_endpoints import check as check_endpoint
from ..api.webhook_endpoints import hook_url
from ..store import alerts, dashboard, outbox
from ..store import webhooks as webhook_store
from ..store.accounts import create_token
from ..store.db import writing
from ..vocab import AlertKind, Scope, WebhookEvent, WebhookProvider
from ..webhooks import signing
from ..webhooks.targets import refusal
from .common import PREFIX, PageError, User, checked_form, csv_response, engine, iso, render, signed_in

router = APIRouter(route_class=CheckedRoute, prefix=PREFIX, include_in_schema=False)
SignedIn = Annotated[User, Depends(signed_in)]
SCOPES = [(s.value, desc) for s, desc in (
    (Scope.CAMPAIGN_DATA, "read campaign reports"), (Scope.CONTACT_DATA, "read contacts and their activity"),
    (Scope.INGEST, "record events and bounce messages"), (Scope.ADMIN, "everything"))]
HASH = re.compile(r"^[0-9a-f]{64}$")
PAGE = 50


@router.get("/settings")
def settings_index(user: SignedIn) -> Response:
    return RedirectResponse(f"{PREFIX}/settings/tokens", status_code=303)


def _tokens_page(request: Request, user: User, status: int = 200, **context: Any) -> Response:
    with engine(request).connect() as conn:
        tokens = dashboard.list_tokens(conn, user.account_id)
    return render(request, "tokens.html", status=status, tokens=tokens, scopes=SCOPES, **context)


@router.get("/settings/tokens")
def tokens(request: Request, user: SignedIn) -> Response:
    return _tokens_page(request, user, revoked=request.query_params.get("revoked") == "1")


@router.post("/settings/tokens")
async def create(request: Request, user: SignedIn) -> Response:
    form = await request.form()
    await checked_form(request)
    name = str(form.get("name") or "").strip()[:200]
    wanted = {str(v) for v in form.getlist("scope")}
    known = {s for s, _ in SCOPES}
    if not wanted or not wanted <= known:
        return _tokens_page(request, user, 400, error="Choose at least one of the scopes listed.", name=name)
    with writing(engine(request)) as conn:
        token = create_token(conn, user.account_id, frozenset(wanted), name)
    # Shown in this response only: the database keeps its hash.
    return _tokens_page(request, user, 201, new_token=token, new_name=name)


@router.post("/settings/tokens/{token_hash}/revoke")
async def revoke(request: Request, user: SignedIn, token_hash: str) -> Response:
    await checked_form(request)
    if not HASH.match(token_hash):
        raise PageError(404, "There is no such token.")
    with writing(engine(request)) as conn:
        found = dashboard.revoke_token(conn, user.account_id, token_hash)
    if not found:
        raise PageError(404, "There is no such token in this account.")
    request.app.state.tokens.forget()
    return RedirectResponse(f"{PREFIX}/settings/tokens?revoked=1", status_code=303)


@router.get("/settings/tokens.csv")
def tokens_csv(request: Request, user: SignedIn) -> Response:
    account = user.account_id

    def rows(conn: Connection) -> Iterator[list[Any]]:
        for r in dashboard.list_tokens(conn, account):
            yield [r.name, r.scopes, iso(r.created_at)]

    return csv_response("api-tokens.csv", ["name", "scopes", "created_at"], rows, request)


# -- alerts ---------------------------------------------------------------------------------

ALERT_KINDS = [(k.value, desc) for k, desc in (
    (AlertKind.BOUNCE_RATE, "bounces (not vacation replies) over sends"),
    (AlertKind.HARD_BOUNCE_RATE, "hard bounces (B, S) over sends"),
    (AlertKind.COMPLAINT_RATE, "complaints over sends"),
    (AlertKind.OPTOUT_RATE, "opt-outs over sends"))]


def _alerts_page(request: Request, user: User, status: int = 200, **context: Any) -> Response:
    with engine(request).connect() as conn:
        rules = alerts.rules_for(conn, user.account_id)
        fired = alerts.page(conn, user.account_id, limit=PAGE)
    return render(request, "alerts.html", status=status, rules={k.value: r for k, r in rules.items()},
                  kinds=ALERT_KINDS, fired=fired, **context)


@router.get("/settings/alerts")
def alert_settings(request: Request, user: SignedIn,
                   saved: Annotated[str, Query(pattern="^1?$")] = "",
                   rearmed: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None) -> Response:
    return _alerts_page(request, user, saved=saved == "1", rearmed=rearmed)


@router.post("/settings/alerts/rules")
async def save_alert_rules(request: Request, user: SignedIn) -> Response:
    form = await checked_form(request)
    data: dict[str, dict[str, Any]] = {}
    for kind, _ in ALERT_KINDS:
        try:
            data[kind] = {"threshold": float(form.get(f"{kind}.threshold", "")),
                          "min_sends": int(form.get(f"{kind}.min_sends", "")),
                          "enabled": form.get(f"{kind}.enabled") == "on"}
        except ValueError:
            return _alerts_page(request, user, 400, error=f"{kind}: the threshold and the sends must be numbers.")
    with writing(engine(request)) as conn:
        try:
            rules = rules_from(data, alerts.rules_for(conn, user.account_id))
        except RuleError as e:
            rules, error = None, str(e)
        if rules is not None:
            alerts.save_rules(conn, user.account_id, rules)
    if rules is None:
        return _alerts_page(request, user, 400, error=error)
    return RedirectResponse(f"{PREFIX}/settings/alerts?saved=1", status_code=303)


@router.post("/settings/alerts/{alert_id}/rearm")
async def rearm_alert(request: Request, user: SignedIn, alert_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> Response:
    await checked_form(request)
    with writing(engine(request)) as conn:
        row = alerts.rearm(conn, user.account_id, alert_id)
    if row is None:
        raise PageError(404, "There is no such alert in this account.")
    return RedirectResponse(f"{PREFIX}/settings/alerts?rearmed={alert_id}", status_code=303)


@router.get("/settings/alerts.csv")
def alerts_csv(request: Request, user: SignedIn) -> Response:
    account = user.account_id

    def rows(conn: Connection) -> Iterator[list[Any]]:
        pages = dashboard.iter_all(lambda after, limit: alerts.page(conn, account, before=after, limit=limit),
                                   lambda r: r.id)
        for r in pages:
            yield [r.id, iso(r.fired_at), r.activity_id, r.kind, r.rate, r.threshold, r.sends, r.count,
                   iso(r.rearmed_at), r.rearmed_by or ""]

    return csv_response("alerts.csv", ["id", "fired_at", "activity_id", "kind", "rate", "threshold", "sends",
                                       "count", "rearmed_at", "rearmed_by"], rows, request)


# -- outgoing webhooks ----------------------------------------------------------------------

EVENTS = [e.value for e in WebhookEvent]


def _webhooks_page(request: Request, user: User, status: int = 200, **context: Any) -> Response:
    with engine(request).connect() as conn:
        subs = outbox.list_subscriptions(conn, user.account_id)
        recent = outbox.deliveries(conn, user.account_id, limit=20)
    return render(request, "webhooks.html", status=status, subs=subs, events=EVENTS, recent=recent,
                  wanted_by=outbox.wanted_by, **context)


@router.get("/settings/webhooks")
def webhook_settings(request: Request, user: SignedIn,
                     removed: Annotated[str, Query(pattern="^1?$")] = "") -> Response:
    return _webhooks_page(request, user, removed=removed == "1")


@router.post("/settings/webhooks")
async def create_webhook(request: Request, user: SignedIn) -> Response:
    await checked_form(request)
    form = await request.form()
    url = str(form.get("url") or "").strip()
    description = str(form.get("description") or "").strip()
    wanted = [str(v) for v in form.getlist("event")]
    keep = {"url": url, "description": description, "wanted": wanted}
    error = None
    if not wanted or not set(wanted) <= set(EVENTS):
        error = "Choose at least one of the events listed."
    elif len(description) > 400:
        error = "The description is longer than 400 characters."
    else:
        error = await run_in_threadpool(refusal, url, request.app.state.settings.webhook_allow_private)
    if error:
        return _webhooks_page(request, user, 400, error=error, form=keep)
    secret = signing.new_secret()
    with writing(engine(request)) as conn:
        row = outbox.create_subscription(conn, user.account_id, url, [WebhookEvent(w) for w in wanted], secret,
                                         description)
    # The signing secret is shown in this response only.
    return _webhooks_page(request, user, 201, new_secret=secret, new_sub=row)


def _subscription(conn: Connection, user: User, sid: str) -> Row[Any]:
    try:
        row = outbox.get_subscription(conn, user.account_id, str(uuid.UUID(sid)))
    except ValueError:
        row = None
    if row is None:
        raise PageError(404, "There is no such webhook subscription in this account.")
    return row


@router.post("/settings/webhooks/{sid}/enabled")
async def toggle_webhook(request: Request, user: SignedIn, sid: str) -> Response:
    form = await checked_form(request)
    with writing(engine(request)) as conn:
        row = _subscription(conn, user, sid)
        outbox.update_subscription(conn, user.account_id, row.id, enabled=form.get("enabled") == "1")
    return RedirectResponse(f"{PREFIX}/settings/webhooks", status_code=303)


@router.post("/settings/webhooks/{sid}/remove")
async def remove_webhook(request: Request, user: SignedIn, sid: str) -> Response:
    await checked_form(request)
    with writing(engine(request)) as conn:
        row = _subscription(conn, user, sid)
        outbox.delete_subscription(conn, user.account_id, row.id)
    return RedirectResponse(f"{PREFIX}/settings/webhooks?removed=1", status_code=303)


@router.get("/settings/webhooks.csv")
def webhooks_csv(request: Request, user: SignedIn) -> Response:
    account = user.account_id

    def rows(conn: Connection) -> Iterator[list[Any]]:
        for r in outbox.list_subscriptions(conn, account):
            yield [r.id, r.url, " ".join(sorted(outbox.wanted_by(r))), r.description, bool(r.enabled),
                   iso(r.created_at)]

    return csv_response("webhooks.csv", ["id", "url", "events", "description", "enabled", "created_at"], rows,
                        request)


# -- provider webhook endpoints -------------------------------------------------------------

PROVIDERS = [p.value for p in WebhookProvider]


def _endpoints_page(request: Request, user: User, status: int = 200, **context: Any) -> Response:
    with engine(request).connect() as conn:
        found = webhook_store.list_endpoints(conn, user.account_id)
    return render(request, "endpoints.html", status=status, endpoints=found, providers=PROVIDERS,
                  url_of=lambda e: hook_url(request, e), **context)


@router.get("/settings/endpoints")
def endpoint_settings(request: Request, user: SignedIn,
                      removed: Annotated[str, Query(pattern="^1?$")] = "") -> Response:
    return _endpoints_page(request, user, removed=removed == "1")


@router.post("/settings/endpoints")
async def create_endpoint(request: Request, user: SignedIn) -> Response:
    form = await checked_form(request)
    provider = form.get("provider", "")
    secret = form.get("secret", "")
    username = form.get("username", "").strip() or None
    arns = [a.strip() for a in form.get("topic_arns", "").splitlines() if a.strip()]
    keep = {"provider": provider, "username": username or "", "topic_arns": "\n".join(arns)}
    if provider not in PROVIDERS:
        return _endpoints_page(request, user, 400, error="Choose one of the providers listed.", form=keep)
    if len(secret) > 4000 or len(arns) > 50 or (username and (len(username) > 200 or any(
            c.isspace() or c == ":" for c in username))):
        return _endpoints_page(request, user, 400, form=keep,
                               error="The secret is at most 4,000 characters, the user name has no spaces or "
                                     "colons, and there are at most 50 topic ARNs.")
    try:
        options = check_endpoint(provider, secret, username, arns)
    except ValueError as e:
        return _endpoints_page(request, user, 400, error=str(e), form=keep)
    with writing(engine(request)) as conn:
        endpoint = webhook_store.create_endpoint(conn, user.account_id, provider, secret, options)
    return _endpoints_page(request, user, 201, new_endpoint=endpoint)


@router.post("/settings/endpoints/{endpoint_id}/remove")
async def remove_endpoint(request: Request, user: SignedIn, endpoint_id: str) -> Response:
    await checked_form(request)
    with writing(engine(request)) as conn:
        gone = len(endpoint_id) <= 64 and webhook_store.delete_endpoint(conn, user.account_id, endpoint_id)
    if not gone:
        raise PageError(404, "There is no such webhook endpoint in this account.")
    return RedirectResponse(f"{PREFIX}/settings/endpoints?removed=1", status_code=303)


@router.get("/settings/endpoints.csv")
def endpoints_csv(request: Request, user: SignedIn) -> Response:
    account = user.account_id

    def rows(conn: Connection) -> Iterator[list[Any]]:
        for e in webhook_store.list_endpoints(conn, account):
            yield [e.id, e.provider, hook_url(request, e), e.options.get("username", ""),
                   " ".join(e.options.get("topic_arns", [])), iso(e.created_at)]

    return csv_response("webhook-endpoints.csv", ["id", "provider", "url", "username", "topic_arns", "created_at"],
                        rows, request)
