"""Contact reports: one contact's tracking activities, average open and click rates, and a
per-email summary of what they did. They need the ``contact_data`` scope."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlalchemy import Connection
from starlette.responses import Response

from ...store import catalog, reports, summaries
from ...vocab import EventType
from ..deps import inline
from ..errors import json_response
from ..query import CheckedRoute
from .common import (
    CC_DEVICES,
    EVENT_FOR_TRACKING,
    PREFIX,
    TRACKING_TYPE,
    ContactCaller,
    Page,
    bad_request,
    connect,
    iso,
    not_found,
    page_of,
    parse_flag,
    parse_limit,
    parse_uuid,
)

router = APIRouter(route_class=CheckedRoute, prefix=PREFIX + "/reports/contact_reports",
                   tags=["Constant Contact v3: contact reporting"])
DETAILS_MAX = 100
# The types activity_details accepts, as its documentation lists them.
DETAIL_TYPES = (EventType.SEND, EventType.OPEN, EventType.CLICK, EventType.BOUNCE, EventType.OPTOUT,
                EventType.FORWARD)
SUMMARY_MAX = 200  # CC summarises the 200 most recent emails
MAX_RANGE_MS = (5 * 365 + 2) * 86_400_000  # "Range cannot exceed 5 years"


def parse_types(values: Sequence[str], param: str = "tracking_activities_list") -> list[EventType]:
    """Tracking types, repeated or comma-separated (both forms are accepted for both parameters)."""
    names = [p for value in values for p in (s.strip() for s in value.split(",")) if p]
    valid = {TRACKING_TYPE[t] for t in DETAIL_TYPES}
    if not names:
        raise bad_request(param, f"{param} must name at least one type")
    for name in names:
        if name not in valid:
            raise bad_request(param, f"{name!r} is not one of {', '.join(sorted(valid))}")
    return list(dict.fromkeys(EVENT_FOR_TRACKING[n] for n in names))


def parse_instant(value: str, param: str) -> int:
    """ISO 8601 as CC writes it (2019-01-01T00:00:00-0500); a bare date means UTC midnight."""
    text = value.strip()
    if len(text) == 10:
        text += "T00:00:00Z"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise bad_request(param, f"{param} {value!r} is not an ISO 8601 time such as 2019-01-01T00:00:00-0500") \
            from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def parse_range(start: str, end: str, *, max_ms: int | None = None) -> tuple[int, int]:
    lo, hi = parse_instant(start, "start"), parse_instant(end, "end")
    if hi < lo:
        raise bad_request("end", "end must not be before start")
    if max_ms is not None and hi - lo > max_ms:
        raise bad_request("end", "the range from start to end cannot exceed 5 years")
    return lo, hi


def contact_id_of(conn: Connection, account: int, value: str) -> str:
    contact_id = parse_uuid(value, "contact_id")
    if catalog.get_contact(conn, account, contact_id) is None:
        raise not_found("contact_id", f"contact {contact_id} was not found")
    return contact_id


def activity_details_report(conn: Connection, page: Page, contact_id: str, types: list[EventType],
                            with_names: bool = False) -> dict[str, Any]:
    """The contact's tracking activities of the asked types, newest first; each row names its
    campaign activity when ``with_names`` (CC's include_campaign_activity_names)."""
    after = page.after(2)
    rows = reports.contact_events(conn, page.account, contact_id, [t.value for t in types],
                                  after=(after[0], after[1]) if after else None, limit=page.limit + 1,
                                  counted_only=True)
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    urls = reports.link_urls(conn, page.account,
                               ((r.activity_id, r.url_id) for r in rows if r.url_id is not None))
    names = reports.activity_names(conn, page.account, (r.activity_id for r in rows)) if with_names else {}
    items = []
    for r in rows:
        etype = EventType(r.type)
        item: dict[str, Any] = {"contact_id": contact_id, "campaign_activity_id": r.activity_id,
                                "created_time": iso(r.occurred_at), "tracking_activity_type": TRACKING_TYPE[etype]}
        if with_names:
            item["campaign_activity_name"] = names.get(r.activity_id, "")
        if r.device_type in CC_DEVICES:
            item["device_type"] = r.device_type
        if etype is EventType.CLICK:
            item["url_id"] = r.url_id or ""
            item["link_url"] = urls.get((r.activity_id, r.url_id), "")
        elif etype is EventType.BOUNCE:
            item["bounce_code"] = r.bounce_code
        elif etype is EventType.OPTOUT and r.optout_reason:
            item["opt_out_reason"] = r.optout_reason
        items.append(item)
    nxt = [rows[-1].occurred_at, rows[-1].idem] if more else None
    return {"tracking_activities": items, "_links": page.links(nxt)}


def open_and_click_rates_report(conn: Connection, account: int, contact_id: str, start: int, end: int
                                ) -> dict[str, Any]:
    """Over the emails sent to the contact in the range: the share opened and the share clicked."""
    tallies = summaries.contact_tallies(conn, account, contact_id, since=start, until=end, limit=10**9)
    n = len(tallies)
    opened = sum(1 for t in tallies if t[EventType.OPEN])
    clicked = sum(1 for t in tallies if t[EventType.CLICK])
    return {"contact_id": contact_id, "included_activities_count": n,
            "average_open_rate": round(opened / n, 4) if n else 0.0,
            "average_click_rate": round(clicked / n, 4) if n else 0.0}


def activity_summary_report(conn: Connection, account: int, contact_id: str, start: int, end: int
                            ) -> dict[str, Any]:
    tallies = summaries.contact_tallies(conn, account, contact_id, since=start, until=end, limit=SUMMARY_MAX)
    return {
        "contact_id": contact_id,
        "campaign_activities": [
            {"campaign_activity_id": t.activity_id, "start_on": iso(t.last_sent_at),
             "em_bounces": t[EventType.BOUNCE], "em_clicks": t[EventType.CLICK], "em_forwards": t[EventType.FORWARD],
             "em_opens": t[EventType.OPEN], "em_sends": t[EventType.SEND], "em_unsubscribes": t[EventType.OPTOUT]}
            for t in tallies
        ],
    }


Start = Annotated[str, Query(description="ISO 8601, e.g. 2019-01-01T00:00:00-0500.")]
End = Annotated[str, Query(description="ISO 8601, e.g. 2019-12-01T00:00:00-0500.")]


@router.get("/{contact_id}/activity_details", operation_id="getContactTracking",
            summary="The contact's tracking activities, newest first.", response_class=Response)
@inline
def get_activity_details(
    who: ContactCaller, request: Request, contact_id: str,
    tracking_activities_list: Annotated[list[str] | None, Query(
        description="Comma-separated (em_sends,em_opens) or repeated; give it or tracking_activity_type.")] = None,
    tracking_activity_type: Annotated[list[str] | None, Query(
        description="Repeated (tracking_activity_type=em_sends&tracking_activity_type=em_opens) or "
                    "comma-separated; the alternative to tracking_activities_list.")] = None,
    include_campaign_activity_names: Annotated[str | None, Query(
        description="true (the default) or false: each row's campaign_activity_name (its campaign's name).")] = None,
    limit: Annotated[str | None, Query(description="1 to 100 (default 100).")] = None,
    cursor: Annotated[str | None, Query(alias="next", description="The cursor of a `_links.next.href`.")] = None,
) -> Response:
    with connect(request) as conn:
        cid = contact_id_of(conn, who.account_id, contact_id)
        if tracking_activities_list is not None and tracking_activity_type is not None:
            raise bad_request("tracking_activity_type",
                              "tracking_activities_list and tracking_activity_type are mutually exclusive: give one")
        if tracking_activities_list is None and tracking_activity_type is None:
            raise bad_request("tracking_activities_list", "give tracking_activities_list or tracking_activity_type")
        param = "tracking_activities_list" if tracking_activities_list is not None else "tracking_activity_type"
        types = parse_types(tracking_activities_list or tracking_activity_type or [], param)
        with_names = parse_flag(include_campaign_activity_names, "include_campaign_activity_names", True)
        query = [(param, ",".join(TRACKING_TYPE[t] for t in types)),
                 ("include_campaign_activity_names", "true" if with_names else "false")]
        page = page_of(request, who.account_id, parse_limit(limit, DETAILS_MAX, DETAILS_MAX), cursor, query)
        return json_response(activity_details_report(conn, page, cid, types, with_names))


@router.get("/{contact_id}/open_and_click_rates", operation_id="getContactOpenClickRate",
            summary="The contact's average open and click rates over a range.", response_class=Response)
@inline
def get_open_and_click_rates(who: ContactCaller, request: Request, contact_id: str, start: Start, end: End) -> Response:
    with connect(request) as conn:
        cid = contact_id_of(conn, who.account_id, contact_id)
        lo, hi = parse_range(start, end, max_ms=MAX_RANGE_MS)
        return json_response(open_and_click_rates_report(conn, who.account_id, cid, lo, hi))


@router.get("/{contact_id}/activity_summary", operation_id="getContactTrackingCount",
            summary="What the contact did with each recent email.", response_class=Response)
@inline
def get_activity_summary(who: ContactCaller, request: Request, contact_id: str, start: Start, end: End) -> Response:
    with connect(request) as conn:
        cid = contact_id_of(conn, who.account_id, contact_id)
        lo, hi = parse_range(start, end)
        return json_response(activity_summary_report(conn, who.account_id, cid, lo, hi))
