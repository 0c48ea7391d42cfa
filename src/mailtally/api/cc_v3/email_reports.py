"""Email reports of one campaign activity: the eight tracking reports and the links report.

Each report is a function of (connection, page, activity) returning the response body, so
benchmarks and other callers use the same code as the endpoints.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlalchemy import Connection, Row
from starlette.responses import Response

from ...store import catalog, reports, summaries
from ...vocab import EventType
from ..deps import inline
from ..errors import json_response
from ..query import CheckedRoute
from .common import (
    CC_DEVICES,
    DID_NOT_OPEN,
    PREFIX,
    TRACKING_TYPE,
    CampaignCaller,
    Page,
    bad_request,
    connect,
    contact_fields,
    date_only,
    iso,
    not_found,
    page_of,
    parse_bounce_codes,
    parse_flag,
    parse_limit,
    parse_uuid,
)

router = APIRouter(route_class=CheckedRoute, prefix=PREFIX + "/reports/email_reports",
                   tags=["Constant Contact v3: email reporting"])
MAX_LIMIT = 500
Limit = Annotated[str | None, Query(description="Rows per page, 1 to 500 (default 500).")]
Next = Annotated[str | None, Query(alias="next", description="The opaque cursor of a `_links.next.href`.")]


def _row(r: Row[Any], activity_id: str, tracking_type: str, time_ms: int) -> dict[str, Any]:
    row = contact_fields(r, activity_id, tracking_type)
    row["created_time"] = iso(time_ms)
    if r.deleted_at is not None:
        row["deleted_at"] = date_only(r.deleted_at)
    return row


def _event_rows(etype: EventType, activity_id: str, urls: dict[str, str]) -> Callable[[Row[Any]], dict[str, Any]]:
    """The row shape of one tracking type: the fields CC's schema gives it, in CC's order."""
    tracking_type = TRACKING_TYPE[etype]
    with_device = etype in (EventType.OPEN, EventType.CLICK)

    def row(r: Row[Any]) -> dict[str, Any]:
        item = contact_fields(r, activity_id, tracking_type)
        if with_device and r.device_type in CC_DEVICES:
            item["device_type"] = r.device_type
        if etype is EventType.CLICK:
            item["url_id"] = r.url_id or ""
            item["link_url"] = urls.get(r.url_id or "", "")
        elif etype is EventType.OPTOUT and r.optout_reason:
            item["opt_out_reason"] = r.optout_reason
        elif etype is EventType.BOUNCE:
            item["bounce_code"] = r.bounce_code
            item["current_email_address"] = r.email
        item["created_time"] = iso(r.occurred_at)
        if r.deleted_at is not None:
            item["deleted_at"] = date_only(r.deleted_at)
        return item

    return row


def _page_body(page: Page, rows: list[Row[Any]], row: Callable[[Row[Any]], dict[str, Any]],
               key: Callable[[Row[Any]], list[Any]]) -> dict[str, Any]:
    """Rows were fetched one past the limit: the extra one says whether a next page exists."""
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return {"tracking_activities": [row(r) for r in rows], "_links": page.links(key(rows[-1]) if more else None)}


def event_report(conn: Connection, page: Page, activity_id: str, etype: EventType, *,
                 bounce_codes: list[str] | None = None, url_id: str | None = None) -> dict[str, Any]:
    """Sends, opens, clicks, forwards, opt-outs or bounces of an activity, newest first."""
    after = page.after(2)
    rows = summaries.tracking_events(
        conn, page.account, activity_id, etype.value, bounce_codes=bounce_codes, url_id=url_id,
        after=(after[0], after[1]) if after else None, limit=page.limit + 1,
    )
    urls: dict[str, str] = {}
    if etype is EventType.CLICK and rows:
        urls = {link.url_id: link.url for link in catalog.links_of(conn, page.account, activity_id)}
    return _page_body(page, rows, _event_rows(etype, activity_id, urls), lambda r: [r.occurred_at, r.idem])


def unique_opens_report(conn: Connection, page: Page, activity_id: str) -> dict[str, Any]:
    """Each contact's latest open. The cursor carries the walk's snapshot (the newest event id
    when it began), so re-opens during a walk neither repeat nor drop a contact."""
    after = page.after(3)
    as_of = after[0] if after else summaries.last_event_id(conn, page.account)
    rows = summaries.latest_opens(conn, page.account, activity_id, as_of=as_of,
                                  after=(after[1], after[2]) if after else None, limit=page.limit + 1)
    return _page_body(page, rows, _event_rows(EventType.OPEN, activity_id, {}),
                      lambda r: [as_of, r.occurred_at, r.idem])


def did_not_open_report(conn: Connection, page: Page, activity_id: str) -> dict[str, Any]:
    """Contacts sent to, not bounced, who never opened; ``created_time`` is when it was sent."""
    after = page.after(2)
    rows = reports.did_not_open(conn, page.account, activity_id, after=(after[0], after[1]) if after else None,
                                limit=page.limit + 1)
    return _page_body(page, rows, lambda r: _row(r, activity_id, DID_NOT_OPEN, r.sent_at),
                      lambda r: [r.sent_at, r.contact_num])


def links_report(conn: Connection, account: int, activity_id: str, no_clicks: bool = True) -> dict[str, Any]:
    """Unique clicks per link; links nobody clicked are listed only with ``no_clicks`` (CC's
    ``no_clicks=true``: "include link details for links that were not clicked")."""
    items = []
    for lc in summaries.link_clicks(conn, account, activity_id):
        if not no_clicks and lc.unique_clicks == 0:
            continue
        item: dict[str, Any] = {"url_id": lc.url_id, "unique_clicks": lc.unique_clicks}
        if lc.url is not None:
            item["link_url"] = lc.url
        if lc.link_tag:
            item["link_tag"] = lc.link_tag
        items.append(item)
    return {"campaign_activity_id": activity_id, "link_click_counts": items}


def activity_id_of(conn: Connection, account: int, value: str) -> str:
    """The activity's id, 400 if malformed, 404 if unknown or another account's."""
    activity_id = parse_uuid(value, "campaign_activity_id")
    if catalog.get_activity(conn, account, activity_id) is None:
        raise not_found("campaign_activity_id", f"campaign activity {activity_id} was not found")
    return activity_id


# -- endpoints -----------------------------------------------------------------------------

_TRACKING = {
    "sends": ("getSends", EventType.SEND, "Each contact the activity was sent to."),
    "opens": ("getOpens", EventType.OPEN, "Each time a contact opened the activity."),
    "forwards": ("getForwards", EventType.FORWARD, "Each time a contact forwarded the activity."),
    "optouts": ("getOptouts", EventType.OPTOUT, "Each contact that opted out from the activity."),
}


def _simple_report(etype: EventType) -> Callable[..., Response]:
    def endpoint(who: CampaignCaller, request: Request, campaign_activity_id: str,
                 limit: Limit = None, cursor: Next = None) -> Response:
        with connect(request) as conn:
            activity_id = activity_id_of(conn, who.account_id, campaign_activity_id)
            page = page_of(request, who.account_id, parse_limit(limit, MAX_LIMIT, MAX_LIMIT), cursor)
            return json_response(event_report(conn, page, activity_id, etype))

    return endpoint


for _name, (_op, _etype, _summary) in _TRACKING.items():
    router.add_api_route(f"/{{campaign_activity_id}}/tracking/{_name}", inline(_simple_report(_etype)), methods=["GET"],
                         operation_id=_op, summary=_summary, response_class=Response)


@router.get("/{campaign_activity_id}/tracking/unique_opens", operation_id="getUniqueOpens",
            summary="Each contact's latest open of the activity.", response_class=Response)
@inline
def get_unique_opens(who: CampaignCaller, request: Request, campaign_activity_id: str,
                     limit: Limit = None, cursor: Next = None) -> Response:
    with connect(request) as conn:
        activity_id = activity_id_of(conn, who.account_id, campaign_activity_id)
        page = page_of(request, who.account_id, parse_limit(limit, MAX_LIMIT, MAX_LIMIT), cursor)
        return json_response(unique_opens_report(conn, page, activity_id))


@router.get("/{campaign_activity_id}/tracking/didnotopens", operation_id="getDidNotOpens",
            summary="Each contact sent the activity who did not open it.", response_class=Response)
@inline
def get_did_not_opens(who: CampaignCaller, request: Request, campaign_activity_id: str,
                      limit: Limit = None, cursor: Next = None) -> Response:
    with connect(request) as conn:
        activity_id = activity_id_of(conn, who.account_id, campaign_activity_id)
        page = page_of(request, who.account_id, parse_limit(limit, MAX_LIMIT, MAX_LIMIT), cursor)
        return json_response(did_not_open_report(conn, page, activity_id))


@router.get("/{campaign_activity_id}/tracking/clicks", operation_id="getClicks",
            summary="Each time a contact clicked a link of the activity.", response_class=Response)
@inline
def get_clicks(who: CampaignCaller, request: Request, campaign_activity_id: str,
               url_id: Annotated[str | None, Query(description="Only clicks of this link.")] = None,
               limit: Limit = None, cursor: Next = None) -> Response:
    with connect(request) as conn:
        activity_id = activity_id_of(conn, who.account_id, campaign_activity_id)
        if url_id is not None and not 0 < len(url_id) <= 64:
            raise bad_request("url_id", "url_id must be a link id of 1 to 64 characters")
        query = [("url_id", url_id)] if url_id is not None else []
        page = page_of(request, who.account_id, parse_limit(limit, MAX_LIMIT, MAX_LIMIT), cursor, query)
        return json_response(event_report(conn, page, activity_id, EventType.CLICK, url_id=url_id))


@router.get("/{campaign_activity_id}/tracking/bounces", operation_id="getBounces",
            summary="Each bounce of the activity, with the contact and its bounce code.", response_class=Response)
@inline
def get_bounces(who: CampaignCaller, request: Request, campaign_activity_id: str,
                bounce_code: Annotated[list[str] | None, Query(description="Repeat for several codes.")] = None,
                limit: Limit = None, cursor: Next = None) -> Response:
    with connect(request) as conn:
        activity_id = activity_id_of(conn, who.account_id, campaign_activity_id)
        codes = parse_bounce_codes(bounce_code)
        query = [("bounce_code", c) for c in codes or ()]
        page = page_of(request, who.account_id, parse_limit(limit, MAX_LIMIT, MAX_LIMIT), cursor, query)
        return json_response(event_report(conn, page, activity_id, EventType.BOUNCE, bounce_codes=codes))


@router.get("/{campaign_activity_id}/links", operation_id="getCampaignActivityLinkStats",
            summary="Unique clicks of each link of the activity.", response_class=Response)
@inline
def get_links(who: CampaignCaller, request: Request, campaign_activity_id: str,
              no_clicks: Annotated[str | None, Query(
                  description="true: also list links nobody clicked (with unique_clicks 0); false (the default) "
                              "lists only clicked links.")] = None) -> Response:
    with connect(request) as conn:
        activity_id = activity_id_of(conn, who.account_id, campaign_activity_id)
        include = parse_flag(no_clicks, "no_clicks", False)
        return json_response(links_report(conn, who.account_id, activity_id, include))
