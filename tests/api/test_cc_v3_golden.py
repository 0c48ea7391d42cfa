"""The golden numbers of seed 004 (BRIEF.md), read through the Constant Contact v3 API."""

from __future__ import annotations

import httpx

from ..conftest import Account
from ..support.scenario import GOLDEN_COUNTS, GOLDEN_PERCENTS, campaign_with_activity, post_events, seed_004

# Seed 004's own example bodies, in the official schema's names.
SEED_004_CAMPAIGN_STATS = {
    "em_bounces": 6, "em_clicks": 2, "em_clicks_all": 2, "em_clicks_all_computer": 0, "em_clicks_all_mobile": 1,
    "em_clicks_all_tablet": 0, "em_clicks_all_other": 1, "em_clicks_all_none": 0, "em_forwards": 1,
    "em_not_opened": 3, "em_opens": 6, "em_opens_all": 6, "em_opens_all_computer": 0, "em_opens_all_mobile": 5,
    "em_opens_all_tablet": 0, "em_opens_all_other": 1, "em_opens_all_none": 0, "em_optouts": 1, "em_sends": 15,
}
SEED_004_BOUNCE_SPLIT = {
    "em_abuse": 0, "em_bounces_blocked": 1, "em_bounces_other": 1, "em_bounces_nonexistent_address": 1,
    "em_bounces_suspended": 0, "em_bounces_undeliverable": 1, "em_bounces_mailbox_full": 1,
    "em_bounces_vacation": 1,
}
SEED_004_UNIQUE_COUNTS = {"sends": 15, "opens": 6, "clicks": 2, "forwards": 1, "optouts": 1, "abuse": 0,
                          "bounces": 6, "not_opened": 3}


def test_seed_004_through_v3(http: httpx.Client, account: Account) -> None:
    h = account.headers
    campaign, activity = campaign_with_activity(http, h, links=[{"url_id": "1", "url": "https://x.example/"}])
    post_events(http, h, seed_004(activity))

    body = http.get(f"/v3/reports/stats/email_campaigns/{campaign}", headers=h).json()
    (result,) = body["results"]
    assert body["errors"] == []
    assert result["stats"] == SEED_004_CAMPAIGN_STATS
    assert result["percents"] == GOLDEN_PERCENTS
    assert result["last_refresh_time"].endswith("Z")

    body = http.get(f"/v3/reports/stats/email_campaign_activities/{activity}", headers=h).json()
    (result,) = body["results"]
    assert result["stats"] == {**SEED_004_CAMPAIGN_STATS, **SEED_004_BOUNCE_SPLIT}
    assert result["percents"] == GOLDEN_PERCENTS
    assert result["campaign_id"] == campaign and result["last_refresh_time"].endswith("Z")
    # The same numbers as the store's golden counts, under CC's names.
    assert result["stats"]["em_sends"] == GOLDEN_COUNTS["sends"]
    assert result["stats"]["em_not_opened"] == GOLDEN_COUNTS["not_opened"]

    body = http.get("/v3/reports/summary_reports/email_campaign_summaries", headers=h).json()
    (summary,) = body["bulk_email_campaign_summaries"]
    assert summary["unique_counts"] == SEED_004_UNIQUE_COUNTS
    assert summary["last_sent_date"].startswith("2024-03-01T10:")


def test_last_sent_date_is_the_last_send(http: httpx.Client, account: Account) -> None:
    _, activity = campaign_with_activity(http, account.headers)
    post_events(http, account.headers, seed_004(activity))
    body = http.get("/v3/reports/summary_reports/email_campaign_summaries", headers=account.headers).json()
    assert body["bulk_email_campaign_summaries"][0]["last_sent_date"] == "2024-03-01T10:00:00.000Z"


def test_bounce_codes_filter_and_unsent_activity(http: httpx.Client, account: Account) -> None:
    h = account.headers
    _, activity = campaign_with_activity(http, h)
    _, unsent = campaign_with_activity(http, h, "Draft")
    post_events(http, h, seed_004(activity))
    url = f"/v3/reports/email_reports/{activity}/tracking/bounces"
    assert sorted(r["bounce_code"] for r in http.get(url, headers=h).json()["tracking_activities"]) == list("BDFVXZ")
    r = http.get(url, params=[("bounce_code", "B"), ("bounce_code", "D")], headers=h)
    assert sorted(x["bounce_code"] for x in r.json()["tracking_activities"]) == ["B", "D"]
    assert http.get(url, params={"bounce_code": "S"}, headers=h).json()["tracking_activities"] == []

    # An activity never sent: 200 and an empty list, on every tracking report.
    for report in ("sends", "opens", "unique_opens", "didnotopens", "clicks", "forwards", "optouts", "bounces"):
        r = http.get(f"/v3/reports/email_reports/{unsent}/tracking/{report}", headers=h)
        assert r.status_code == 200 and r.json()["tracking_activities"] == [], report
    stats = http.get(f"/v3/reports/stats/email_campaign_activities/{unsent}", headers=h).json()
    assert stats["results"][0]["stats"]["em_sends"] == 0 and stats["results"][0]["last_refresh_time"]
