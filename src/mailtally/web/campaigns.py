"""Campaigns, an activity's figures and charts, and the contacts behind each figure."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from sqlalchemy import Connection, Row
from starlette.responses import RedirectResponse, Response

from ..api.query import CheckedRoute
from ..store import catalog, dashboard
from ..store.stats import Stats, percent
from ..store.summaries import link_clicks
from ..vocab import CODE_DESCRIPTION, BounceCode, DeviceType, Reason, Verdict
from .common import (
    PREFIX,
    PageError,
    User,
    csv_response,
    engine,
    fmt_time,
    iso,
    key_of,
    parse_key,
    render,
    signed_in,
)

router = APIRouter(route_class=CheckedRoute, prefix=PREFIX, include_in_schema=False)
SignedIn = Annotated[User, Depends(signed_in)]
PAGE = 50
Sort = Annotated[str, Query(pattern="^(" + "|".join(dashboard.CAMPAIGN_SORTS) + ")$")]
Dir = Annotated[str, Query(pattern="^(asc|desc)$")]


@router.get("/")
def home(user: SignedIn) -> Response:
    return RedirectResponse(f"{PREFIX}/campaigns", status_code=303)


def _rates(r: Row[Any]) -> dict[str, float]:
    delivered = r.sends - r.bounces
    return {"bounce": percent(r.bounces, r.sends), "open": percent(r.opens, delivered),
            "click": percent(r.clicks, r.opens)}


@router.get("/campaigns")
def campaign_list(request: Request, user: SignedIn, q: Annotated[str, Query(max_length=200)] = "",
                  sort: Sort = "sent", dir: Dir = "desc",
                  page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> Response:
    with engine(request).connect() as conn:
        rows = dashboard.campaign_rows(conn, user.account_id, search=q, sort=sort, descending=dir == "desc",
                                       offset=(page - 1) * PAGE, limit=PAGE)
        total = dashboard.count_campaigns(conn, user.account_id, q)
    return render(request, "campaigns.html", rows=[(r, _rates(r)) for r in rows], q=q, sort=sort, dir=dir,
                  page=page, total=total, pages=max(1, -(-total // PAGE)))


@router.get("/campaigns.csv")
def campaign_csv(request: Request, user: SignedIn, q: Annotated[str, Query(max_length=200)] = "",
                 sort: Sort = "sent", dir: Dir = "desc") -> Response:
    def rows(conn: Connection) -> Iterator[list[Any]]:
        for r in dashboard.campaign_rows(conn, user.account_id, search=q, sort=sort, descending=dir == "desc",
                                         limit=None):
            rates = _rates(r)
            yield [r.id, r.name, r.status, iso(r.created_at), iso(r.last_sent_at), r.sends, r.bounces,
                   rates["bounce"], r.opens, rates["open"], r.clicks, rates["click"], r.optouts, r.abuse]

    return csv_response("campaigns.csv", ["campaign_id", "name", "status", "created_at", "last_sent_at", "sends",
                                          "bounces", "bounce_rate", "unique_opens", "open_rate", "unique_clicks",
                                          "click_rate", "optouts", "complaints"], rows, request)


def _uuid(value: str, what: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise PageError(404, f"There is no {what} {value!r}.") from None


def _campaign(conn: Connection, user: User, campaign_id: str) -> Row[Any]:
    row = catalog.get_campaign(conn, user.account_id, _uuid(campaign_id, "campaign"))
    if row is None:
        raise PageError(404, f"There is no campaign {campaign_id} in this account.")
    return row


def _activity(conn: Connection, user: User, activity_id: str) -> tuple[Row[Any], Row[Any]]:
    row = catalog.get_activity(conn, user.account_id, _uuid(activity_id, "campaign activity"))
    if row is None:
        raise PageError(404, f"There is no campaign activity {activity_id} in this account.")
    campaign = catalog.get_campaign(conn, user.account_id, row.campaign_id)
    assert campaign is not None
    return row, campaign


@router.get("/campaigns/{campaign_id}")
def campaign_page(request: Request, user: SignedIn, campaign_id: str) -> Response:
    with engine(request).connect() as conn:
        campaign = _campaign(conn, user, campaign_id)
        acts = catalog.activities_of(conn, user.account_id, campaign.id)
        if len(acts) == 1:
            return RedirectResponse(f"{PREFIX}/activities/{acts[0].id}", status_code=303)
        counters = {a.id: dashboard.activity_counters_row(conn, user.account_id, a.id) for a in acts}
    return render(request, "campaign.html", campaign=campaign, activities=acts, counters=counters)


@router.get("/campaigns/{campaign_id}/activities.csv")
def campaign_activities_csv(request: Request, user: SignedIn, campaign_id: str) -> Response:
    with engine(request).connect() as conn:
        campaign = _campaign(conn, user, campaign_id)

    def rows(conn: Connection) -> Iterator[list[Any]]:
        for a in catalog.activities_of(conn, user.account_id, campaign.id):
            c = dashboard.activity_counters_row(conn, user.account_id, a.id)
            yield [a.id, a.role, a.subject, c["sends"], c["bounces"], c["opens"], c["clicks"]]

    return csv_response("activities.csv", ["activity_id", "role", "subject", "sends", "bounces", "unique_opens",
                                           "unique_clicks"], rows, request)


DEVICES = [d.value for d in DeviceType]


def _figures(c: dict[str, int]) -> dict[str, Any]:
    stats = Stats(counts=dict(c))
    return {"delivered": stats.delivered, "percents": stats.percents()}


@dataclass(slots=True)
class ActivityTables:
    """What the activity page shows beside its cards, as its tables and their CSV files read it."""

    counters: dict[str, int]
    timeline: dashboard.Timeline
    reasons: list[tuple[str, str | None, int]]
    links: list[tuple[Any, list[str]]]  # (the link's clicks, the url ids its list takes)

    def codes(self) -> list[tuple[BounceCode, str, int]]:
        return [(code, CODE_DESCRIPTION[code], self.counters["bounces_" + code.value.lower()]) for code in BounceCode]


def activity_tables(conn: Connection, account: int, activity: Row[Any]) -> ActivityTables:
    c = dashboard.activity_counters_row(conn, account, activity.id)
    start = dashboard.first_send_at(conn, account, activity.num_id)
    tl = dashboard.timeline(conn, account, activity.num_id, start)
    reasons = dashboard.bounce_reasons(conn, account, activity.num_id)
    ids_by_url: dict[str, list[str]] = {}
    for link in catalog.links_of(conn, account, activity.id):
        ids_by_url.setdefault(link.url, []).append(link.url_id)
    links = sorted(((lc, ids_by_url.get(lc.url or "", [lc.url_id])) for lc in link_clicks(conn, account, activity.id)),
                   key=lambda x: (-x[0].unique_clicks, x[0].url_id))
    return ActivityTables(c, tl, reasons, links)


@router.get("/activities/{activity_id}")
def activity_page(request: Request, user: SignedIn, activity_id: str) -> Response:
    with engine(request).connect() as conn:
        activity, campaign = _activity(conn, user, activity_id)
        t = activity_tables(conn, user.account_id, activity)
        siblings = catalog.activities_of(conn, user.account_id, campaign.id)
    c, tl = t.counters, t.timeline
    chart = {"x": [b // 1000 for b in tl.buckets], "opens": tl.opens, "clicks": tl.clicks}
    return render(request, "activity.html", activity=activity, campaign=campaign, c=c, f=_figures(c),
                  timeline=tl, chart_json=orjson.dumps(chart).decode().replace("<", "\\u003c"), codes=t.codes(),
                  reasons=t.reasons, links=t.links, devices=DEVICES, siblings=siblings)


# The activity page's tables as CSV files: (header, rows from its ActivityTables).
ACTIVITY_TABLES: dict[str, tuple[list[str], Callable[[ActivityTables], Iterable[list[Any]]]]] = {
    "timeline": (["from", "period", "opens", "clicks"],
                 lambda t: ([iso(b), "hour" if hourly else "day", o, k] for b, o, k, hourly in t.timeline.rows())),
    "bounce-codes": (["bounce_code", "meaning", "contacts"],
                     lambda t: ([code.value, desc, n] for code, desc, n in t.codes())),
    "bounce-reasons": (["reason", "bounce_code", "bounce_messages"],
                       lambda t: ([reason, code, n] for reason, code, n in t.reasons)),
    "links": (["url_ids", "url", "link_tag", "unique_clicks"],
              lambda t: ([" ".join(ids), lc.url, lc.link_tag, lc.unique_clicks] for lc, ids in t.links)),
    "devices": (["device_type", "opens", "clicks"],
                lambda t: ([d, t.counters["opens_" + d], t.counters["clicks_" + d]] for d in DEVICES)),
}


LIST_TITLES = {
    "sends": "Sent to", "delivered": "Delivered to", "opens": "Opened (unique)", "opens_all": "Opens (every one)",
    "clicks_all": "Clicks (every one)", "opens_device": "Opens on",
    "did_not_open": "Did not open", "clicks": "Clicked (unique)", "link": "Clicked the link",
    "clicks_device": "Clicks on", "opens_verdict": "Opens by", "clicks_verdict": "Clicks by",
    "forwards": "Forwarded", "optouts": "Opted out", "abuse": "Complained (spam)",
    "bounces": "Bounced",
}
ListKind = Annotated[str, Query(alias="list", pattern="^(" + "|".join(dashboard.CONTACT_LISTS) + ")$")]
CodeQ = Annotated[str | None, Query(pattern="^[" + "".join(c.value for c in BounceCode) + "]$")]
ReasonQ = Annotated[str | None, Query(pattern="^(" + "|".join(r.value for r in Reason) + ")$")]
DeviceQ = Annotated[str | None, Query(pattern="^(" + "|".join(DEVICES) + ")$")]
VerdictQ = Annotated[str | None, Query(pattern="^(" + "|".join(v.value for v in Verdict) + ")$")]
UrlIds = Annotated[list[str] | None, Query(max_length=20)]
# A period of the chart (ms, [from, to)) for list=opens_all / clicks_all.
Since = Annotated[int | None, Query(alias="from", ge=0, le=2**53)]
Until = Annotated[int | None, Query(alias="to", ge=0, le=2**53)]


def _filter(kind: str, code: str | None, reason: str | None, device: str | None,
            url_id: list[str] | None, verdict: str | None = None, since: int | None = None,
            until: int | None = None) -> dashboard.ListFilter:
    if kind == "link" and not url_id:
        raise PageError(400, "list=link needs url_id (the link's id)")
    if kind in ("opens_device", "clicks_device") and not device:
        raise PageError(400, f"list={kind} needs device ({', '.join(DEVICES)})")
    if kind in ("opens_verdict", "clicks_verdict") and not verdict:
        raise PageError(400, f"list={kind} needs verdict (human or machine)")
    if (since is not None or until is not None) and kind not in ("opens_all", "clicks_all"):
        raise PageError(400, "from and to are for list=opens_all and list=clicks_all (a period of the chart)")
    return dashboard.ListFilter(kind, code, reason, device, tuple(u[:64] for u in (url_id or [])), verdict,
                                since, until)


def _title(f: dashboard.ListFilter) -> str:
    title = LIST_TITLES[f.kind]
    if f.device:
        title += f" {f.device}"
    if f.verdict:
        title += " people" if f.verdict == Verdict.HUMAN.value else " machines (image proxies, scanners)"
    if f.code:
        title += f", code {f.code} ({CODE_DESCRIPTION[BounceCode(f.code)]})"
    if f.reason:
        title += f", reason {f.reason}"
    if f.since is not None or f.until is not None:
        title += (f" from {fmt_time(f.since)}" if f.since is not None else "") + (
            f" until {fmt_time(f.until)}" if f.until is not None else "")
    return title


@router.get("/activities/{activity_id}/contacts")
def activity_contacts(request: Request, user: SignedIn, activity_id: str, kind: ListKind = "sends",
                      code: CodeQ = None, reason: ReasonQ = None, device: DeviceQ = None, url_id: UrlIds = None,
                      verdict: VerdictQ = None, since: Since = None, until: Until = None,
                      after: Annotated[str | None, Query(max_length=60)] = None) -> Response:
    f = _filter(kind, code, reason, device, url_id, verdict, since, until)
    key = parse_key(after)
    with engine(request).connect() as conn:
        activity, campaign = _activity(conn, user, activity_id)
        rows = dashboard.activity_contacts(conn, user.account_id, activity.num_id, f, after=key, limit=PAGE + 1)
        if f.since is not None or f.until is not None:  # a period of the chart: its figure is the roll-up's
            opens, clicks = dashboard.hourly_totals(conn, user.account_id, activity.num_id, f.since, f.until)
            total: int | None = opens if kind == "opens_all" else clicks
        else:
            total = _figure_total(dashboard.activity_counters_row(conn, user.account_id, activity.id), f)
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    params = {"list": kind, "code": code, "reason": reason, "device": device, "url_id": url_id or None,
              "verdict": verdict, "from": since, "to": until}
    return render(request, "activity_contacts.html", activity=activity, campaign=campaign, rows=rows,
                  title=_title(f), total=total, params=params, f=f,
                  next_after=key_of(rows[-1].at, rows[-1].tie) if more else None)


def _figure_total(c: dict[str, int], f: dashboard.ListFilter) -> int | None:
    """The figure the list is behind, as the counters have it (None where no counter holds it)."""
    if f.kind == "bounces":
        if f.reason:
            return None
        return c["bounces_" + f.code.lower()] if f.code else c["bounces"]
    simple = {"sends": "sends", "opens": "opens", "opens_all": "opens_all", "clicks_all": "clicks_all",
              "did_not_open": "not_opened", "clicks": "clicks",
              "forwards": "forwards", "optouts": "optouts", "abuse": "abuse"}
    if f.kind in simple:
        return c[simple[f.kind]]
    if f.kind == "delivered":
        return c["sends"] - c["bounces"]
    if f.kind in ("opens_verdict", "clicks_verdict"):
        return c[("opens_" if f.kind == "opens_verdict" else "clicks_") + (f.verdict or "")]
    if f.kind in ("opens_device", "clicks_device"):
        return c[("opens_" if f.kind == "opens_device" else "clicks_") + (f.device or "none")]
    return None


@router.get("/activities/{activity_id}/contacts.csv")
def activity_contacts_csv(request: Request, user: SignedIn, activity_id: str, kind: ListKind = "sends",
                          code: CodeQ = None, reason: ReasonQ = None, device: DeviceQ = None,
                          url_id: UrlIds = None, verdict: VerdictQ = None, since: Since = None,
                          until: Until = None) -> Response:
    f = _filter(kind, code, reason, device, url_id, verdict, since, until)
    with engine(request).connect() as conn:
        activity, _ = _activity(conn, user, activity_id)
    account, num = user.account_id, activity.num_id

    def rows(conn: Connection) -> Iterator[list[Any]]:
        pages = dashboard.iter_all(
            lambda after, limit: dashboard.activity_contacts(conn, account, num, f, after=after, limit=limit),
            lambda r: (r.at, r.tie))
        for r in pages:
            m = r._mapping
            yield [r.contact_id, r.email, r.first_name, r.last_name, iso(r.at), m.get("device_type"),
                   m.get("bounce_code"), m.get("reason"), m.get("url_id"), m.get("diagnostic"), m.get("verdict"),
                   m.get("verdict_why")]

    which = code or reason or device or verdict
    name = f"{kind}-{which}.csv" if which else f"{kind}.csv"
    return csv_response(name, ["contact_id", "email", "first_name", "last_name", "at", "device_type", "bounce_code",
                               "reason", "url_id", "diagnostic", "verdict", "verdict_why"], rows, request)


@router.get("/activities/{activity_id}/{table}.csv")
def activity_table_csv(request: Request, user: SignedIn, activity_id: str,
                       table: Annotated[str, Path(pattern="^(" + "|".join(ACTIVITY_TABLES) + ")$")]) -> Response:
    """One of the activity page's tables (the chart's figures, bounces by code or reason, links, devices)."""
    with engine(request).connect() as conn:
        activity, _ = _activity(conn, user, activity_id)
    header, make_rows = ACTIVITY_TABLES[table]
    return csv_response(f"{table}.csv", header,
                        lambda conn: make_rows(activity_tables(conn, user.account_id, activity)), request)
