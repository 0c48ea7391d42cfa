"""Campaign and campaign-activity statistics, and the campaign summaries report.

All read the per-activity counters, so they cost O(1) per activity however large it is.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlalchemy import Connection, select
from starlette.responses import Response

from ...store import summaries
from ...store.db import now_ms
from ...store.schema import campaigns
from ...store.stats import Stats, campaign_stats, owned_activity_stats
from ...vocab import BounceCode
from ..body import path_ids
from ..deps import inline
from ..errors import json_response
from ..query import CheckedRoute
from .common import (
    PREFIX,
    CampaignCaller,
    Page,
    campaign_caller,
    connect,
    iso,
    not_found,
    page_of,
    parse_ids,
    parse_limit,
)

router = APIRouter(route_class=CheckedRoute, prefix=PREFIX + "/reports", tags=["Constant Contact v3: email reporting"])

# CC's stats names, mapped from our counter columns.
CAMPAIGN_STATS: dict[str, str] = {
    "em_bounces": "bounces",
    "em_clicks": "clicks",
    "em_clicks_all": "clicks_all",
    "em_clicks_all_computer": "clicks_computer",
    "em_clicks_all_mobile": "clicks_mobile",
    "em_clicks_all_tablet": "clicks_tablet",
    "em_clicks_all_other": "clicks_other",
    "em_clicks_all_none": "clicks_none",
    "em_forwards": "forwards",
    "em_not_opened": "not_opened",
    "em_opens": "opens",
    "em_opens_all": "opens_all",
    "em_opens_all_computer": "opens_computer",
    "em_opens_all_mobile": "opens_mobile",
    "em_opens_all_tablet": "opens_tablet",
    "em_opens_all_other": "opens_other",
    "em_opens_all_none": "opens_none",
    "em_optouts": "optouts",
    "em_sends": "sends",
}
BOUNCE_STAT_NAME: dict[BounceCode, str] = {
    BounceCode.NONEXISTENT: "em_bounces_nonexistent_address",
    BounceCode.SUSPENDED: "em_bounces_suspended",
    BounceCode.MAILBOX_FULL: "em_bounces_mailbox_full",
    BounceCode.VACATION: "em_bounces_vacation",
    BounceCode.BLOCKED: "em_bounces_blocked",
    BounceCode.UNDELIVERABLE: "em_bounces_undeliverable",
    BounceCode.OTHER: "em_bounces_other",
}
ACTIVITY_STATS: dict[str, str] = {
    **CAMPAIGN_STATS,
    "em_abuse": "abuse",
    **{name: f"bounces_{code.value.lower()}" for code, name in BOUNCE_STAT_NAME.items()},
}
UNIQUE_COUNTS = ("sends", "opens", "clicks", "forwards", "optouts", "abuse", "bounces", "not_opened")
MAX_CAMPAIGN_IDS = 150
MAX_ACTIVITY_IDS = 10
SUMMARIES_MAX = 500  # CC reports the 500 most recently sent campaigns
SUMMARIES_DEFAULT = 50


def _stats(stats: Stats, names: dict[str, str]) -> dict[str, int]:
    counts = stats.counts
    return {cc: max(0, counts[ours]) for cc, ours in names.items()}


def _refreshed(stats: Stats) -> str:
    """Counters change with every event, so they were last refreshed when last updated."""
    return iso(stats.updated_at or now_ms())


def campaign_stats_report(conn: Connection, account: int, campaign_ids: list[str]) -> dict[str, Any]:
    """One result per campaign; any unknown (or another account's) id is a 404 for all, as in CC."""
    known = set(conn.execute(
        select(campaigns.c.id).where(campaigns.c.account_id == account, campaigns.c.id.in_(campaign_ids))
    ).scalars())
    missing = [c for c in campaign_ids if c not in known]
    if missing:
        raise not_found("invalid_path_param.campaign_ids", f"Could not find campaign {missing[0]}")
    results = [
        {"campaign_id": cid, "stats": _stats(s, CAMPAIGN_STATS), "percents": s.percents(),
         "last_refresh_time": _refreshed(s)}
        for cid, s in campaign_stats(conn, account, campaign_ids).items()
    ]
    return {"errors": [], "results": results}


def activity_stats_report(conn: Connection, account: int, activity_ids: list[str]) -> dict[str, Any]:
    """Results for the activities found; the others are listed under ``errors`` (as CC does for
    partial failures), and a 404 when none is found. An activity not yet sent reads zeros."""
    found = owned_activity_stats(conn, account, activity_ids)
    if not found:
        raise not_found("invalid_path_param.campaign_activity_ids",
                        "Could not find any campaign stats for all requested campaign activities")
    results, errs = [], []
    for aid in activity_ids:
        if aid not in found:
            errs.append({"error_key": "reportingsvc.not_found.campaign_activity_ids",
                         "error_message": f"Could not find campaign activity {aid}"})
            continue
        campaign_id, s = found[aid]
        results.append({"campaign_id": campaign_id, "campaign_activity_id": aid,
                        "stats": _stats(s, ACTIVITY_STATS), "percents": s.percents(),
                        "last_refresh_time": _refreshed(s)})
    return {"errors": errs, "results": results}


def campaign_summaries_report(conn: Connection, page: Page) -> dict[str, Any]:
    """The most recently sent campaigns (500 at most over all pages) with unique counts.

    The cursor holds the last campaign's key and how many were shown so far, for the cap.
    """
    after = page.after(3)
    shown = int(after[2]) if after else 0
    room = min(page.limit, SUMMARIES_MAX - shown)
    rows = summaries.sent_campaigns(conn, page.account, after=(after[0], after[1]) if after else None,
                                    limit=room + 1) if room > 0 else []
    more = len(rows) > room and shown + room < SUMMARIES_MAX
    rows = rows[:room]
    stats = campaign_stats(conn, page.account, [r.id for r in rows])
    items = [
        {"campaign_id": r.id, "campaign_type": r.type, "last_sent_date": iso(r.last_sent_at),
         "unique_counts": {k: max(0, stats[r.id][k]) for k in UNIQUE_COUNTS}}
        for r in rows
    ]
    last = rows[-1] if rows else None
    nxt = [last.last_sent_at, last.num_id, shown + len(rows)] if more and last is not None else None
    return {"bulk_email_campaign_summaries": items, "_links": page.links(nxt)}


@router.get("/stats/email_campaigns/{campaign_ids}", operation_id="getEmailSummary",
            summary="Counts and percents for one or more campaigns.", response_class=Response,
            openapi_extra=path_ids("campaign_ids"))
@inline
def get_campaign_stats(request: Request) -> Response:
    who = campaign_caller(request)
    with connect(request) as conn:
        ids = parse_ids(request.path_params["campaign_ids"], "campaign_ids", MAX_CAMPAIGN_IDS)
        return json_response(campaign_stats_report(conn, who.account_id, ids))


@router.get("/stats/email_campaign_activities/{campaign_activity_ids}",
            operation_id="getEmailCampaignActivitySummary",
            summary="Counts and percents for up to ten campaign activities.", response_class=Response,
            openapi_extra=path_ids("campaign_activity_ids"))
@inline
def get_activity_stats(request: Request) -> Response:
    who = campaign_caller(request)
    with connect(request) as conn:
        ids = parse_ids(request.path_params["campaign_activity_ids"], "campaign_activity_ids", MAX_ACTIVITY_IDS)
        return json_response(activity_stats_report(conn, who.account_id, ids))


@router.get("/summary_reports/email_campaign_summaries", operation_id="getAllBulkEmailCampaignSummaries",
            summary="Unique counts of the most recently sent campaigns.", response_class=Response)
@inline
def get_campaign_summaries(
    who: CampaignCaller, request: Request,
    limit: Annotated[str | None, Query(description="Campaigns per page, 1 to 500 (default 50).")] = None,
    cursor: Annotated[str | None, Query(alias="next", description="The cursor of a `_links.next.href`.")] = None,
) -> Response:
    with connect(request) as conn:
        page = page_of(request, who.account_id, parse_limit(limit, SUMMARIES_DEFAULT, SUMMARIES_MAX), cursor)
        return json_response(campaign_summaries_report(conn, page))
