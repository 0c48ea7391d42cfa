"""Keyset pagination of the v3 reports: following ``_links.next.href`` yields every row once,
even while new events arrive between pages."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from ..conftest import Account
from ..support.scenario import campaign_with_activity, post_events

BASE = 1_714_560_000_000  # 2024-05-01T10:40:00Z


def at(ms: int) -> str:
    from mailtally.timefmt import iso_ms

    return iso_ms(ms)


def walk(http: httpx.Client, headers: dict[str, str], url: str, key: str = "tracking_activities",
         between: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    """All rows of a report, page by page; ``between(n)`` runs after page ``n``."""
    rows: list[dict[str, Any]] = []
    pages = 0
    while url:
        r = http.get(url, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        rows.extend(body[key])
        pages += 1
        nxt = body["_links"].get("next")
        url = nxt["href"] if nxt else ""
        if url:
            assert url.startswith("/v3/"), url
            cursor = parse_qs(urlsplit(url).query)["next"][0]
            assert not cursor.isdigit(), "the cursor is opaque, not an offset"
        if between is not None:
            between(pages)
    return rows


def test_walk_2000_sends_while_events_arrive(http: httpx.Client, account: Account) -> None:
    h = account.headers
    _, activity = campaign_with_activity(http, h)
    # Three sends share each millisecond, so ties are broken by the key's second part.
    post_events(http, h, [{"type": "send", "activity_id": activity, "email": f"p{i:04d}@example.com",
                           "occurred_at": at(BASE + (i // 3) * 1000)} for i in range(2000)])
    originals = {f"p{i:04d}@example.com" for i in range(2000)}

    def arrive(page: int) -> None:
        if page != 20:
            return
        late = []
        for j in range(150):
            when = BASE + 10**9 + j if j < 50 else (BASE - 10**6 - j if j < 100 else BASE + (j - 100) * 13_000)
            late.append({"type": "send", "activity_id": activity, "email": f"late{j}@example.com",
                         "occurred_at": at(when)})
        # Opens and bounces for originals, too: they must not disturb the sends report.
        late += [{"type": "open", "activity_id": activity, "email": f"p{i:04d}@example.com",
                  "occurred_at": at(BASE + 10**8), "device_type": "mobile"} for i in range(0, 2000, 7)]
        post_events(http, h, late)

    rows = walk(http, h, f"/v3/reports/email_reports/{activity}/tracking/sends?limit=50", between=arrive)
    seen = Counter(r["email_address"] for r in rows)
    assert max(seen.values()) == 1, "no row twice"
    assert originals <= set(seen), f"missed {sorted(originals - set(seen))[:5]}"
    times = [r["created_time"] for r in rows]
    assert times == sorted(times, reverse=True)
    # Rows that arrived behind the cursor are part of the walk; those ahead of it are not.
    assert {e for e in seen if e.startswith("late")} <= {f"late{j}@example.com" for j in range(50, 150)}
    assert {f"late{j}@example.com" for j in range(50, 100)} <= set(seen)


def test_unique_opens_walk_is_a_snapshot(http: httpx.Client, account: Account) -> None:
    h = account.headers
    _, activity = campaign_with_activity(http, h)
    emails = [f"o{i:03d}@example.com" for i in range(300)]
    post_events(http, h, [{"type": "send", "activity_id": activity, "email": e, "occurred_at": at(BASE)}
                          for e in emails])
    post_events(http, h, [{"type": "open", "activity_id": activity, "email": e, "occurred_at": at(BASE + i * 1000),
                           "device_type": "computer"} for i, e in enumerate(emails)])

    def reopen(page: int) -> None:
        if page == 2:  # everyone opens again, later than any first open, and a newcomer opens
            post_events(http, h, [{"type": "open", "activity_id": activity, "email": e,
                                   "occurred_at": at(BASE + 10**7 + i), "device_type": "mobile"}
                                  for i, e in enumerate([*emails, "new@example.com"])])

    rows = walk(http, h, f"/v3/reports/email_reports/{activity}/tracking/unique_opens?limit=50", between=reopen)
    assert Counter(r["email_address"] for r in rows) == Counter(emails)
    assert {r["device_type"] for r in rows} == {"computer"}  # as of the walk's start

    fresh = http.get(f"/v3/reports/email_reports/{activity}/tracking/unique_opens", headers=h).json()
    assert len(fresh["tracking_activities"]) == 301
    assert {r["device_type"] for r in fresh["tracking_activities"]} == {"mobile"}


def test_did_not_opens_walk_drops_openers_without_repeats(http: httpx.Client, account: Account) -> None:
    h = account.headers
    _, activity = campaign_with_activity(http, h)
    emails = [f"d{i:03d}@example.com" for i in range(400)]
    post_events(http, h, [{"type": "send", "activity_id": activity, "email": e, "occurred_at": at(BASE + i)}
                          for i, e in enumerate(emails)])

    def some_open(page: int) -> None:
        if page == 3:
            post_events(http, h, [{"type": "open", "activity_id": activity, "email": e,
                                   "occurred_at": at(BASE + 10**6)} for e in emails[::2]])

    rows = walk(http, h, f"/v3/reports/email_reports/{activity}/tracking/didnotopens?limit=50", between=some_open)
    seen = Counter(r["email_address"] for r in rows)
    assert max(seen.values()) == 1
    # Pages 1-3 showed the 150 latest sends; of the rest only those who did not open remain.
    assert set(seen) == set(emails[250:]) | set(emails[1:250:2])


def test_campaign_summaries_pages(http: httpx.Client, account: Account) -> None:
    h = account.headers
    campaigns = []
    for i in range(7):
        campaign, activity = campaign_with_activity(http, h, f"Campaign {i}")
        campaigns.append(campaign)
        post_events(http, h, [{"type": "send", "activity_id": activity, "email": "x@example.com",
                               "occurred_at": at(BASE + i * 60_000)}])
    rows = walk(http, h, "/v3/reports/summary_reports/email_campaign_summaries?limit=3",
                key="bulk_email_campaign_summaries")
    assert [r["campaign_id"] for r in rows] == campaigns[::-1]


def test_contact_activity_details_pages(http: httpx.Client, account: Account) -> None:
    h = account.headers
    events = []
    for i in range(5):
        _, activity = campaign_with_activity(http, h, f"C{i}")
        events += [{"type": "send", "activity_id": activity, "email": "reader@example.com",
                    "occurred_at": at(BASE + i * 60_000)},
                   {"type": "open", "activity_id": activity, "email": "reader@example.com",
                    "occurred_at": at(BASE + i * 60_000 + 5000), "device_type": "tablet"}]
    post_events(http, h, events)
    contact = http.get("/v1/contacts", headers=h).json()["contacts"][0]["id"]
    rows = walk(http, h, f"/v3/reports/contact_reports/{contact}/activity_details"
                         "?tracking_activities_list=em_opens,em_sends&limit=3")
    assert len(rows) == 10
    assert [r["tracking_activity_type"] for r in rows[:2]] == ["em_opens", "em_sends"]
