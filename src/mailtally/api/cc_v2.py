"""Constant Contact v2 contact and campaign tracking, under ``/v2``.

Faithful to the v2 documentation (``reference/seeds/001_*`` and
``reference/constant-contact-v2-tracking/``): numeric-string ids, ``meta.pagination.next_link``
carrying an opaque signed cursor, dates with milliseconds and ``Z``, newest first, and errors
as ``[{"error_key", "error_message"}]``. Contact reports need the ``contact_data`` scope,
campaign reports ``campaign_data``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import Connection, Row
from starlette.responses import Response

from ..store import catalog, cursor, reports, tracking
from ..store.accounts import Principal
from ..store.reports import Key, contact_events
from ..store.stats import campaign_stats
from ..timefmt import iso_ms
from ..vocab import CODE_DESCRIPTION, BounceCode, EventType, Scope
from . import auth, errors
from .deps import inline, read_conn
from .errors import ApiError, json_response
from .query import CheckedRoute

router = APIRouter(route_class=CheckedRoute, prefix="/v2", tags=["Constant Contact v2 tracking"])

MAX_LIMIT = 500
KINDS: dict[str, EventType] = {
    "bounces": EventType.BOUNCE,
    "clicks": EventType.CLICK,
    "forwards": EventType.FORWARD,
    "opens": EventType.OPEN,
    "sends": EventType.SEND,
    "unsubscribes": EventType.OPTOUT,
}
# v2's names for tracked activities, mapped from our event types; v2 has none for abuse reports.
CC_V2_ACTIVITY_TYPE: dict[EventType, str] = {
    EventType.SEND: "EMAIL_SEND",
    EventType.OPEN: "EMAIL_OPEN",
    EventType.CLICK: "EMAIL_CLICK",
    EventType.FORWARD: "EMAIL_FORWARD",
    EventType.OPTOUT: "EMAIL_UNSUBSCRIBE",
    EventType.BOUNCE: "EMAIL_BOUNCE",
}
ALL_TYPES: tuple[str, ...] = tuple(t.value for t in CC_V2_ACTIVITY_TYPE)  # v2 does not track abuse
DATE_FIELD: dict[EventType, str] = {
    EventType.SEND: "send_date",
    EventType.OPEN: "open_date",
    EventType.CLICK: "click_date",
    EventType.FORWARD: "forward_date",
    EventType.OPTOUT: "unsubscribe_date",
    EventType.BOUNCE: "bounce_date",
}

BAD_PARAM = "query.param.invalid"
NOT_FOUND = "http.status.not_found"
ERROR_KEYS: dict[int, str] = {
    400: BAD_PARAM,
    401: "http.status.authentication.invalid_token",
    403: "http.status.forbidden",
    404: NOT_FOUND,
    405: "http.status.method_not_allowed",
    406: "http.status.not_acceptable",
    500: "http.status.internal_error",
}


def render_error(status: int, code: str, message: str, details: Any) -> Response:
    """v2's error body: a list of ``{error_key, error_message}``; framework errors get a key by status."""
    key = code if "." in code else ERROR_KEYS.get(status, "http.status.error")
    return json_response([{"error_key": key, "error_message": message}], status)


errors.register("/v2", render_error)


# -- the caller ------------------------------------------------------------------------


def accepts_json(header: str) -> bool:
    """True when the Accept header allows application/json (absent means anything)."""
    if not header.strip():
        return True
    for part in header.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for p in params:
            name, _, value = p.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0 and media.lower() in ("*/*", "application/*", "application/json"):
            return True
    return False


def caller(scope: Scope) -> Any:
    """Accept, then ``api_key`` (required, its value not checked: mailtally has no application keys),
    then the bearer token and its scope."""

    def dependency(
        request: Request,
        api_key: Annotated[str | None, Query(description="REQUIRED; the API key of your application "
                                                         "(any non-empty value)")] = None,
    ) -> Principal:
        if not accepts_json(request.headers.get("accept", "")):
            raise ApiError(406, "http.status.not_acceptable",
                           "Unsupported accept header value, must be application/json")
        if not (api_key or "").strip():
            raise ApiError(401, "http.status.authentication.api_key_missing",
                           "The api_key query parameter is required")
        return auth.bearer_caller(request, scope, _refused)

    return Depends(inline(dependency))


def _refused(why: auth.Refusal, scope: Scope) -> ApiError:
    if why is auth.Refusal.UNAUTHENTICATED:
        return ApiError(401, "http.status.authentication.invalid_token",
                        "Send Authorization: Bearer <token> with a valid mailtally API token",
                        headers={"WWW-Authenticate": "Bearer"})
    return ApiError(403, "http.status.forbidden", f"This token lacks the {scope.value} scope")


ContactReader = Annotated[Principal, caller(Scope.CONTACT_DATA)]
CampaignReader = Annotated[Principal, caller(Scope.CAMPAIGN_DATA)]
Conn = Annotated[Connection, Depends(read_conn)]


# -- parameters ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RawPage:
    created_since: str | None
    limit: str | None
    next: str | None


def raw_page(
    created_since: Annotated[str | None, Query(
        description="Only activity on or after this ISO-8601 date-time (UTC when no zone is given)")] = None,
    limit: Annotated[str | None, Query(description="Results per page, 1-500, default 500")] = None,
    next_: Annotated[str | None, Query(alias="next", description="From meta.pagination.next_link; carries "
                                       "the first page's limit and created_since")] = None,
) -> RawPage:
    """Kept as text so every bad value gets v2's own 400, checked after the caller."""
    return RawPage(created_since, limit, next_)


Page = Annotated[RawPage, Depends(inline(raw_page))]


@dataclass(frozen=True, slots=True)
class PageSpec:
    limit: int
    since: int | None
    after: Key | None


_ID = re.compile(r"[0-9]{1,18}")
_LINK_ID = re.compile(r"[^\x00-\x1f]{1,64}")
_SPACED_OFFSET = re.compile(r"(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:?\d{2})$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_since(value: str) -> int:
    """ISO-8601 to UTC ms; a ``+`` that a client left unencoded (read back as a space) is restored."""
    text = _SPACED_OFFSET.sub(r"\1+\2", value.strip())
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise ApiError(400, BAD_PARAM, f"created_since {value!r} is not an ISO-8601 date-time "
                       "such as 2024-05-01T12:00:00.000Z") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - _EPOCH) // timedelta(milliseconds=1)


def parse_limit(value: str | None) -> int:
    if value is None:
        return MAX_LIMIT
    value = value.strip()
    if not re.fullmatch(r"[0-9]{1,6}", value) or not 1 <= int(value) <= MAX_LIMIT:
        raise ApiError(400, BAD_PARAM, f"limit {value!r} must be an integer from 1 to {MAX_LIMIT}")
    return int(value)


def _cursor_key(request: Request, account: int) -> bytes:
    """Cursors are signed with a key bound to the account, as v3's are: a cursor from another
    account (whose contact or campaign has the same number) does not verify."""
    secret: bytes = request.app.state.secret
    return secret + b"|cc_v2|" + str(account).encode()


def page_spec(request: Request, account: int, raw: RawPage, path: str) -> PageSpec:
    """The page asked for: from the ``next`` cursor (bound to the account and ``path``), else
    from limit/created_since."""
    if raw.next is None:
        since = parse_since(raw.created_since) if raw.created_since is not None else None
        return PageSpec(parse_limit(raw.limit), since, None)
    try:
        values = cursor.decode(_cursor_key(request, account), raw.next, 5)
    except cursor.BadCursor as e:
        raise ApiError(400, BAD_PARAM, f"next: {e}") from None
    scope, t, i, limit, since = values
    if scope != path:
        raise ApiError(400, BAD_PARAM, "next: this cursor belongs to another report")
    if not (isinstance(t, int) and isinstance(i, int) and isinstance(limit, int) and 1 <= limit <= MAX_LIMIT
            and (since is None or isinstance(since, int))):
        raise ApiError(400, BAD_PARAM, "next: cursor is malformed")
    return PageSpec(limit, since, (t, i))


def parse_id(value: str, name: str) -> int:
    if not _ID.fullmatch(value):
        raise ApiError(400, "path.param.invalid", f"{name} {value!r} must be a number")
    return int(value)


def parse_link_id(value: str) -> str:
    if not _LINK_ID.fullmatch(value):
        raise ApiError(400, "path.param.invalid", "linkId must be 1 to 64 characters")
    return value


# -- bodies ----------------------------------------------------------------------------


def unsubscribe_source(source: str | None) -> str:
    """v2 tells who removed the contact: the account's owner (customer) or the contact."""
    if source and source.strip().upper() in ("ACTION_BY_CUSTOMER", "ACTION_BY_OWNER"):
        return "ACTION_BY_CUSTOMER"
    return "ACTION_BY_CONTACT"


def activity_body(r: Row[Any], campaign_id: str | int, link_uri: str | None = None) -> dict[str, Any]:
    """One tracked activity, keys in the documentation's order."""
    etype = EventType(r.type)
    body: dict[str, Any] = {
        "activity_type": CC_V2_ACTIVITY_TYPE[etype],
        "campaign_id": campaign_id,
        "contact_id": str(r.contact_num_id),
        "email_address": r.email,
    }
    date = iso_ms(r.occurred_at)
    if etype is EventType.CLICK:
        body["link_id"] = r.url_id or ""
        if link_uri is not None:
            body["link_uri"] = link_uri
    elif etype is EventType.OPTOUT:
        body["unsubscribe_date"] = date
        body["unsubscribe_source"] = unsubscribe_source(r.optout_source)
        body["unsubscribe_reason"] = r.optout_reason or ""
        return body
    elif etype is EventType.BOUNCE:
        code = BounceCode(r.bounce_code or BounceCode.OTHER)
        body["bounce_code"] = code.value
        body["bounce_description"] = CODE_DESCRIPTION[code]
        body["bounce_message"] = r.diagnostic or ""
    body[DATE_FIELD[etype]] = date
    return body


def listing(request: Request, account: int, path: str, spec: PageSpec, rows: Sequence[Row[Any]],
            serialize: Callable[[Row[Any]], dict[str, Any]]) -> Response:
    """A page of results; ``rows`` holds one more than the page when there is a next page."""
    pagination: dict[str, str] = {}
    if len(rows) > spec.limit:
        rows = rows[: spec.limit]
        last = rows[-1]
        token = cursor.encode(_cursor_key(request, account),
                              [path, last.occurred_at, last.idem, spec.limit, spec.since])
        pagination["next_link"] = f"{path}?next={token}"
    return json_response({"meta": {"pagination": pagination}, "results": [serialize(r) for r in rows]})


# -- contact tracking ------------------------------------------------------------------


def _contact(conn: Connection, who: Principal, contact_id: str) -> Row[Any]:
    row = catalog.get_contact(conn, who.account_id, parse_id(contact_id, "contactId"))
    if row is None:
        raise ApiError(404, NOT_FOUND, f"The specified contactId {contact_id} was not found")
    return row


def contact_listing(request: Request, who: Principal, conn: Connection, raw: RawPage, contact_id: str,
                    types: Sequence[str], suffix: str, url_id: str | None = None) -> Response:
    contact = _contact(conn, who, contact_id)
    path = f"/v2/contacts/{contact.num_id}/tracking{suffix}"
    spec = page_spec(request, who.account_id, raw, path)
    rows = contact_events(conn, who.account_id, contact.id, types, since=spec.since, url_id=url_id,
                          after=spec.after, limit=spec.limit + 1, counted_only=True)
    clicks = [(r.activity_id, r.url_id) for r in rows if r.type == EventType.CLICK and r.url_id]
    urls = reports.link_urls(conn, who.account_id, clicks)

    def serialize(r: Row[Any]) -> dict[str, Any]:
        uri = urls.get((r.activity_id, r.url_id), "") if r.type == EventType.CLICK else None
        return activity_body(r, str(r.campaign_num_id), uri)

    return listing(request, who.account_id, path, spec, rows, serialize)


@router.get("/contacts/{contact_id}/tracking", summary="All activities of a contact, newest first")
@inline
def contact_all(request: Request, who: ContactReader, conn: Conn, raw: Page, contact_id: str) -> Response:
    return contact_listing(request, who, conn, raw, contact_id, ALL_TYPES, "")


def _contact_kind(kind: str, etype: EventType) -> Callable[..., Response]:
    def endpoint(request: Request, who: ContactReader, conn: Conn, raw: Page, contact_id: str) -> Response:
        return contact_listing(request, who, conn, raw, contact_id, (etype.value,), f"/{kind}")

    endpoint.__name__ = f"contact_{kind}"
    return endpoint


for _kind, _etype in KINDS.items():
    router.add_api_route(f"/contacts/{{contact_id}}/tracking/{_kind}", inline(_contact_kind(_kind, _etype)),
                         methods=["GET"], summary=f"A contact's {_kind}, newest first")


@router.get("/contacts/{contact_id}/tracking/clicks/{link_id}", summary="A contact's clicks on one link")
@inline
def contact_link_clicks(request: Request, who: ContactReader, conn: Conn, raw: Page, contact_id: str,
                        link_id: str) -> Response:
    url_id = parse_link_id(link_id)
    return contact_listing(request, who, conn, raw, contact_id, (EventType.CLICK.value,),
                           f"/clicks/{quote(url_id, safe='')}", url_id=url_id)


@router.get("/contacts/{contact_id}/tracking/reports/summary", summary="Totals of a contact's activities")
@inline
def contact_summary(who: ContactReader, conn: Conn, contact_id: str) -> Response:
    contact = _contact(conn, who, contact_id)
    n = tracking.contact_type_counts(conn, who.account_id, contact.id)
    return json_response({
        "sends": n.get(EventType.SEND, 0), "opens": n.get(EventType.OPEN, 0), "clicks": n.get(EventType.CLICK, 0),
        "forwards": n.get(EventType.FORWARD, 0), "unsubscribes": n.get(EventType.OPTOUT, 0),
        "bounces": n.get(EventType.BOUNCE, 0), "contact_id": str(contact.num_id),
    })


@router.get("/contacts/{contact_id}/tracking/reports/summaryByCampaign",
            summary="A contact's activity totals per campaign (without unsubscribes)")
@inline
def contact_summary_by_campaign(who: ContactReader, conn: Conn, contact_id: str) -> Response:
    contact = _contact(conn, who, contact_id)
    body = []
    for t in tracking.contact_campaign_counts(conn, who.account_id, contact.id):
        counts = {name: t.counts.get(etype, 0) for name, etype in (
            ("sends", EventType.SEND), ("opens", EventType.OPEN), ("clicks", EventType.CLICK),
            ("forwards", EventType.FORWARD), ("bounces", EventType.BOUNCE))}
        if any(counts.values()):  # a campaign with only an unsubscribe has nothing to show here
            body.append({"campaign_id": str(t.campaign_num_id), **counts})
    return json_response(body)


# -- campaign tracking -----------------------------------------------------------------


def _campaign(conn: Connection, who: Principal, campaign_id: str) -> Row[Any]:
    row = catalog.get_campaign(conn, who.account_id, parse_id(campaign_id, "campaignId"))
    if row is None:
        raise ApiError(404, NOT_FOUND, f"The specified campaignId {campaign_id} was not found")
    return row


def campaign_listing(request: Request, who: Principal, conn: Connection, raw: RawPage, campaign_id: str,
                     etype: EventType, suffix: str, url_id: str | None = None) -> Response:
    campaign = _campaign(conn, who, campaign_id)
    path = f"/v2/emailmarketing/campaigns/{campaign.num_id}/tracking{suffix}"
    spec = page_spec(request, who.account_id, raw, path)
    activity_ids = [a.id for a in catalog.activities_of(conn, who.account_id, campaign.id)]
    rows = tracking.campaign_events(conn, who.account_id, activity_ids, (etype.value,), since=spec.since,
                                    url_id=url_id, after=spec.after, limit=spec.limit + 1)
    num = int(campaign.num_id)  # a number here, as the campaign reports show it
    return listing(request, who.account_id, path, spec, rows, lambda r: activity_body(r, num))


def _campaign_kind(kind: str, etype: EventType) -> Callable[..., Response]:
    def endpoint(request: Request, who: CampaignReader, conn: Conn, raw: Page, campaign_id: str) -> Response:
        return campaign_listing(request, who, conn, raw, campaign_id, etype, f"/{kind}")

    endpoint.__name__ = f"campaign_{kind}"
    return endpoint


for _kind, _etype in KINDS.items():
    router.add_api_route(f"/emailmarketing/campaigns/{{campaign_id}}/tracking/{_kind}",
                         inline(_campaign_kind(_kind, _etype)), methods=["GET"],
                         summary=f"A campaign's {_kind}, newest first")


@router.get("/emailmarketing/campaigns/{campaign_id}/tracking/clicks/{link_id}",
            summary="A campaign's clicks on one link")
@inline
def campaign_link_clicks(request: Request, who: CampaignReader, conn: Conn, raw: Page, campaign_id: str,
                         link_id: str) -> Response:
    url_id = parse_link_id(link_id)
    return campaign_listing(request, who, conn, raw, campaign_id, EventType.CLICK,
                            f"/clicks/{quote(url_id, safe='')}", url_id)


@router.get("/emailmarketing/campaigns/{campaign_id}/tracking/reports/summary",
            summary="Totals of a campaign's activities")
@inline
def campaign_summary(who: CampaignReader, conn: Conn, campaign_id: str) -> Response:
    """From the counters, O(1): every open and click, unique sends, unsubscribes and bounces."""
    campaign = _campaign(conn, who, campaign_id)
    c = campaign_stats(conn, who.account_id, [campaign.id])[campaign.id].counts
    return json_response({"sends": c["sends"], "opens": c["opens_all"], "clicks": c["clicks_all"],
                          "forwards": c["forwards"], "unsubscribes": c["optouts"], "bounces": c["bounces"]})
