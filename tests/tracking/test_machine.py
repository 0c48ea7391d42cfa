"""Each machine heuristic over the real server, and the counting policy the vendor reports follow."""

from __future__ import annotations

import httpx
from sqlalchemy import Engine, select

from mailtally.store.schema import activities, events
from tests.conftest import Account
from tests.support.scenario import campaign_with_activity

from .support import DESKTOP, IPHONE, paths, render, sent_long_ago, stats

APPLE_MPP = "Mozilla/5.0"
GMAIL = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"


def _whys(engine: Engine, account: Account, activity_id: str, type_: str) -> list[tuple[str, str]]:
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
    assert _whys(engine, account, activity, "open") == [("machine", "apple_mpp"), ("machine", "gmail_proxy"),
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
    assert s["verdicts"]["clicks"] == {"human": 1, "machine": 4}  # the sweep's first click looked human
    assert (s["counts"]["clicks"], s["counts"]["clicks_all"]) == (1, 1)
    assert _whys(engine, account, activity, "click") == [
        ("machine", "bot_user_agent"), ("machine", "head_request"), ("machine", "honeypot"),
        ("human", "no_signal"), ("machine", "click_burst")]
    # A person clicking a link now counts as usual.
    assert http.get(paths(c["html"], "c")[1], headers={"User-Agent": IPHONE}).status_code == 302
    s = stats(http, account.headers, activity)
    assert (s["counts"]["clicks"], s["counts"]["clicks_all"], s["counts"]["clicks_mobile"]) == (2, 2, 1)


def test_hits_within_seconds_of_the_send_are_machine(http: httpx.Client, account: Account, engine: Engine) -> None:
    _, activity = campaign_with_activity(http, account.headers)
    [m] = render(http, account.headers, activity, ["quick@example.com"], record_send=True)  # sent just now
    http.get(paths(m["html"], "o")[0], headers={"User-Agent": DESKTOP})
    http.get(paths(m["html"], "c")[1], headers={"User-Agent": DESKTOP})
    assert _whys(engine, account, activity, "open") == [("machine", "too_soon")]
    assert _whys(engine, account, activity, "click") == [("machine", "too_soon")]
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
