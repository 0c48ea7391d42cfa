"""Each machine heuristic over the real server, and the counting policy the vendor reports follow."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import Engine, func, select

from mailtally.store.schema import (
    activities,
    activity_hourly,
    campaigns,
    contacts,
    events,
    link_clickers,
    link_counters,
    recipients,
)
from tests.conftest import Account
from tests.support.scenario import campaign_with_activity, post_events

from .support import DESKTOP, HOUR_AGO, IPHONE, paths, render, rolled_up, sent_long_ago, stats

APPLE_MPP = "Mozilla/5.0"
GMAIL = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"


def _whys(http: httpx.Client, engine: Engine, account: Account, activity_id: str,
          type_: str) -> list[tuple[str, str]]:
    rolled_up(http, account.headers, activity_id)
    with engine.connect() as conn:
        num = conn.execute(select(activities.c.num_id).where(
            activities.c.account_id == account.id, activities.c.id == activity_id)).scalar_one()
        return [(r.verdict, r.verdict_why) for r in conn.execute(
            select(events.c.verdict, events.c.verdict_why).where(
                events.c.account_id == account.id, events.c.activity_num == num, events.c.type == type_)
            .order_by(events.c.id))]


def test_proxied_opens_count_scanner_clicks_do_not(http: httpx.Client, account: Account, engine: Engine) -> None:
    activity, msgs = sent_long_ago(http, account.headers, ["a@example.com", "b@example.com", "c@example.com"])
    a, b, c = msgs
    assert http.get(paths(a["html"], "o")[0], headers={"User-Agent": APPLE_MPP}).status_code == 200
    assert http.get(paths(b["html"], "o")[0], headers={"User-Agent": GMAIL}).status_code == 200
    assert http.head(paths(c["html"], "o")[0], headers={"User-Agent": DESKTOP}).status_code == 200  # a scanner's HEAD
    s = stats(http, account.headers, activity)
    assert s["verdicts"]["opens"] == {"human": 0, "machine": 3}
    assert (s["counts"]["opens"], s["counts"]["opens_all"]) == (2, 2)  # the proxies count, the HEAD does not
    assert _whys(http, engine, account, activity, "open") == [("machine", "apple_mpp"), ("machine", "gmail_proxy"),
                                                        ("machine", "head_request")]
    # Clicks: a tool's UA, a HEAD, the hidden honeypot, and a sweep of every link within a second.
    links = paths(a["html"], "c")  # [honeypot, sale, new, sale]
    r = http.get(links[1], headers={"User-Agent": "python-requests/2.31"})
    assert r.status_code == 302  # a verdict never changes the response
    assert http.head(links[2], headers={"User-Agent": DESKTOP}).status_code == 302
    r = http.get(links[0], headers={"User-Agent": DESKTOP})
    assert r.status_code == 302 and r.headers["location"] == "/t/x"
    assert http.get("/t/x").status_code == 200
    sweep = paths(b["html"], "c")
    for url in (sweep[1], sweep[2]):
        assert http.get(url, headers={"User-Agent": DESKTOP}).status_code == 302
    s = stats(http, account.headers, activity)
    assert s["verdicts"]["clicks"] == {"human": 0, "machine": 5}  # the sweep's first click judged with the sweep
    assert (s["counts"]["clicks"], s["counts"]["clicks_all"]) == (0, 0)
    assert _whys(http, engine, account, activity, "click") == [
        ("machine", "bot_user_agent"), ("machine", "head_request"), ("machine", "honeypot"),
        ("machine", "click_burst"), ("machine", "click_burst")]
    # A person clicking a link now counts as usual.
    assert http.get(paths(c["html"], "c")[1], headers={"User-Agent": IPHONE}).status_code == 302
    s = stats(http, account.headers, activity)
    assert (s["counts"]["clicks"], s["counts"]["clicks_all"], s["counts"]["clicks_mobile"]) == (1, 1, 1)


def test_hits_within_seconds_of_the_send_are_machine(http: httpx.Client, account: Account, engine: Engine) -> None:
    _, activity = campaign_with_activity(http, account.headers)
    [m] = render(http, account.headers, activity, ["quick@example.com"], record_send=True)  # sent just now
    http.get(paths(m["html"], "o")[0], headers={"User-Agent": DESKTOP})
    http.get(paths(m["html"], "c")[1], headers={"User-Agent": DESKTOP})
    assert _whys(http, engine, account, activity, "open") == [("machine", "too_soon")]
    assert _whys(http, engine, account, activity, "click") == [("machine", "too_soon")]
    s = stats(http, account.headers, activity)
    assert (s["counts"]["opens_all"], s["counts"]["clicks_all"]) == (0, 0)


def test_counting_policy_is_the_accounts_own(http: httpx.Client, account: Account, other_account: Account) -> None:
    assert http.get("/v1/settings/tracking", headers=account.headers).json() == {
        "machine_opens": "proxy", "machine_clicks": "none"}
    r = http.put("/v1/settings/tracking", headers=account.headers,
                 json={"machine_opens": "none", "machine_clicks": "all"})
    assert r.status_code == 200 and r.json() == {"machine_opens": "none", "machine_clicks": "all"}
    assert http.put("/v1/settings/tracking", headers=account.headers,
                    json={"machine_opens": "sometimes"}).status_code == 400
    assert http.get("/v1/settings/tracking", headers=other_account.headers).json()["machine_clicks"] == "none"
    activity, [m] = sent_long_ago(http, account.headers, ["p@example.com"])
    http.get(paths(m["html"], "o")[0], headers={"User-Agent": APPLE_MPP})
    http.get(paths(m["html"], "c")[1], headers={"User-Agent": "curl/8.5.0"})
    s = stats(http, account.headers, activity)
    assert (s["counts"]["opens_all"], s["counts"]["clicks_all"], s["counts"]["clicks"]) == (0, 1, 1)
    assert s["verdicts"] == {"opens": {"human": 0, "machine": 1}, "clicks": {"human": 0, "machine": 1}}
    # The Constant Contact v3 report reads the same counters.
    r = http.get(f"/v3/reports/stats/email_campaign_activities/{activity}", headers=account.headers)
    assert r.status_code == 200, r.text
    stats_v3 = r.json()["results"][0]["stats"]
    assert (stats_v3["em_opens"], stats_v3["em_clicks"]) == (0, 1)


def _nums(engine: Engine, account: Account, campaign_id: str, contact_ids: list[str]) -> tuple[int, list[int]]:
    with engine.connect() as conn:
        campaign = conn.execute(select(campaigns.c.num_id).where(
            campaigns.c.account_id == account.id, campaigns.c.id == campaign_id)).scalar_one()
        found = dict(conn.execute(select(contacts.c.id, contacts.c.num_id).where(
            contacts.c.account_id == account.id, contacts.c.id.in_(contact_ids))).all())
    return int(campaign), [int(found[c]) for c in contact_ids]


def _recount(http: httpx.Client, engine: Engine, account: Account, activity_id: str) -> dict[str, int]:
    """What the counters should hold, counted again from the log's counted clicks."""
    rolled_up(http, account.headers, activity_id)
    with engine.connect() as conn:
        num = conn.execute(select(activities.c.num_id).where(
            activities.c.account_id == account.id, activities.c.id == activity_id)).scalar_one()
        counted = (events.c.account_id == account.id) & (events.c.activity_num == num) & (events.c.type == "click") \
            & events.c.uncounted.is_(None)
        return {
            "clicks_all": conn.execute(select(func.count()).where(counted)).scalar_one(),
            "clicks": conn.execute(select(func.count(func.distinct(events.c.contact_num))).where(counted)).scalar_one(),
            "recipients_clicks": conn.execute(select(func.coalesce(func.sum(recipients.c.clicks), 0)).where(
                recipients.c.account_id == account.id, recipients.c.activity_num == num)).scalar_one(),
            "hourly": conn.execute(select(func.coalesce(func.sum(activity_hourly.c.clicks), 0)).where(
                activity_hourly.c.account_id == account.id, activity_hourly.c.activity_num == num)).scalar_one(),
            "link_clicks": conn.execute(select(func.coalesce(func.sum(link_counters.c.clicks_all), 0)).where(
                link_counters.c.account_id == account.id, link_counters.c.activity_id == activity_id)).scalar_one(),
            "link_unique": conn.execute(select(func.coalesce(func.sum(link_counters.c.unique_clicks), 0)).where(
                link_counters.c.account_id == account.id, link_counters.c.activity_id == activity_id)).scalar_one(),
            "clickers": conn.execute(select(func.count()).select_from(link_clickers).where(
                link_clickers.c.account_id == account.id, link_clickers.c.activity_id == activity_id)).scalar_one(),
        }


def test_vendor_lists_follow_the_counting_policy(http: httpx.Client, account: Account, engine: Engine) -> None:
    """A burst's first click is judged with the burst, its counts taken back; the CC v3 and v2
    event lists leave out what the counters leave out (scanner clicks, and proxied opens when
    the account counts none)."""
    assert http.put("/v1/settings/tracking", headers=account.headers, json={"machine_opens": "none"}).is_success
    campaign, activity = campaign_with_activity(http, account.headers)
    emails = ["sweep@example.com", "person@example.com"]
    post_events(http, account.headers, [{"type": "send", "activity_id": activity, "email": e,
                                         "occurred_at": HOUR_AGO} for e in emails])
    sweep, person = render(http, account.headers, activity, emails)
    links = paths(sweep["html"], "c")  # [honeypot, sale, new, sale]
    assert http.get(links[1], headers={"User-Agent": DESKTOP}).status_code == 302  # alone, it looks human
    assert _recount(http, engine, account, activity)["clicks_all"] == 1
    assert http.get(links[2], headers={"User-Agent": DESKTOP}).status_code == 302  # the next link within a second
    assert http.get(paths(sweep["html"], "o")[0], headers={"User-Agent": GMAIL}).status_code == 200
    assert http.get(paths(person["html"], "o")[0], headers={"User-Agent": IPHONE}).status_code == 200
    assert http.get(paths(person["html"], "c")[1], headers={"User-Agent": IPHONE}).status_code == 302
    assert _whys(http, engine, account, activity, "click") == [("machine", "click_burst"), ("machine", "click_burst"),
                                                         ("human", "no_signal")]
    s = stats(http, account.headers, activity)
    assert (s["counts"]["clicks"], s["counts"]["clicks_all"], s["counts"]["opens"]) == (1, 1, 1)
    assert s["verdicts"]["clicks"] == {"human": 1, "machine": 2}
    assert _recount(http, engine, account, activity) == {"clicks_all": 1, "clicks": 1, "recipients_clicks": 1,
                                                   "hourly": 1, "link_clicks": 1, "link_unique": 1, "clickers": 1}
    only_person = [person["contact_id"]]

    def v3(path: str, **params: str) -> list[dict[str, Any]]:
        r = http.get(f"/v3/reports/{path}", params=params, headers=account.headers)
        assert r.status_code == 200, r.text
        return r.json()["tracking_activities"]  # type: ignore[no-any-return]

    assert [r["contact_id"] for r in v3(f"email_reports/{activity}/tracking/clicks")] == only_person
    assert [r["contact_id"] for r in v3(f"email_reports/{activity}/tracking/unique_opens")] == only_person
    assert v3(f"contact_reports/{sweep['contact_id']}/activity_details",
              tracking_activities_list="em_clicks,em_opens") == []
    r = http.get(f"/v3/reports/email_reports/{activity}/links", headers=account.headers)
    assert [lc["unique_clicks"] for lc in r.json()["link_click_counts"]] == [1]
    num, (sweep_num, person_num) = _nums(engine, account, campaign, [sweep["contact_id"], person["contact_id"]])

    def v2(path: str) -> list[dict[str, Any]]:
        r = http.get(f"/v2/{path}", params={"api_key": "app-key"}, headers=account.headers)
        assert r.status_code == 200, r.text
        return r.json()["results"]  # type: ignore[no-any-return]

    assert [r["contact_id"] for r in v2(f"emailmarketing/campaigns/{num}/tracking/clicks")] == [str(person_num)]
    assert [r["contact_id"] for r in v2(f"emailmarketing/campaigns/{num}/tracking/opens")] == [str(person_num)]
    assert v2(f"contacts/{sweep_num}/tracking/clicks") == [] and v2(f"contacts/{sweep_num}/tracking/opens") == []
    summary = http.get(f"/v2/contacts/{sweep_num}/tracking/reports/summary", params={"api_key": "app-key"},
                       headers=account.headers).json()
    assert (summary["clicks"], summary["opens"], summary["sends"]) == (0, 0, 1)
