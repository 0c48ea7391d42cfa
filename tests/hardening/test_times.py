"""Item 1: one time range for every time from every source, and serializers that never raise."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from mailtally.timefmt import MAX_MS, BadTime, iso_ms, parse_time

from ..conftest import Account
from ..support.mail import dsn
from ..support.scenario import campaign_with_activity, post_events

OUT_OF_RANGE = ["9999-12-31T23:59:59-14:00", "1969-12-31T23:59:59Z", "0001-01-01T00:00:00+14:00",
                MAX_MS, -1, "10000-01-01T00:00:00Z"]


@pytest.mark.parametrize("value", OUT_OF_RANGE)
def test_one_rule_for_iso_and_integers(value: object) -> None:
    with pytest.raises(BadTime, match=r"out of range|not an ISO-8601"):
        parse_time(value)


def test_range_ends() -> None:
    assert parse_time("1970-01-01T00:00:00Z") == 0 == parse_time(0)
    assert parse_time("9999-12-31T23:59:59.999Z") == MAX_MS - 1 == parse_time(MAX_MS - 1)
    assert parse_time("2024-05-01T14:00:00+02:00") == parse_time("2024-05-01T12:00:00Z") == 1714564800000


def test_serializers_are_total() -> None:
    assert iso_ms(-10**15) == "1970-01-01T00:00:00.000Z"
    assert iso_ms(10**17) == "9999-12-31T23:59:59.999Z"


def _reports(http: httpx.Client, account: Account, activity: str, campaign: str) -> dict[str, int]:
    """Every report that showed a stored time and answered 500 when it was out of range."""
    h = account.headers
    num = http.get(f"/v1/campaigns/{campaign}", headers=h).json().get("num_id")
    paths = [f"/v1/activities/{activity}/stats", "/v1/campaigns", f"/v1/campaigns/{campaign}", "/v1/contacts",
             "/v1/bounces/unmatched",
             f"/v3/reports/email_reports/{activity}/tracking/sends",
             f"/v3/reports/email_reports/{activity}/tracking/bounces",
             f"/v3/reports/email_reports/{activity}/tracking/opens",
             f"/v3/reports/stats/email_campaign_activities/{activity}",
             "/v3/reports/summary_reports/email_campaign_summaries",
             f"/v2/emailmarketing/campaigns/{num}/tracking/sends?api_key=k",
             f"/v2/emailmarketing/campaigns/{num}/tracking/bounces?api_key=k",
             f"/v2/emailmarketing/campaigns/{num}/tracking/reports/summary?api_key=k"]
    codes = {p: http.get(p, headers=h).status_code for p in paths}
    codes["/rest/bounces"] = http.get("/rest/bounces", auth=(account.name, account.token),
                                      headers={"Accept": "application/vnd.whatcounts-v1+json"}).status_code
    codes["/emailapi/v2/reports/event/bounce"] = http.get(
        "/emailapi/v2/reports/event/bounce", headers={"Authorization": f"Zoho-oauthtoken {account.token}"}).status_code
    return codes


@pytest.mark.parametrize("value", OUT_OF_RANGE)
def test_batch_refuses_a_time_out_of_range_per_item(http: httpx.Client, account: Account, value: Any) -> None:
    campaign, activity = campaign_with_activity(http, account.headers)
    ok = {"type": "send", "activity_id": activity, "email": "a@example.com", "occurred_at": "2024-05-01T12:00:00Z"}
    bad = {**ok, "email": "b@example.com", "occurred_at": value}
    for batch, index in (([bad], 0), ([ok, bad], 1)):
        r = http.post("/v1/events", json=batch, headers=account.headers)
        assert r.status_code == 400, r.text
        err = r.json()["error"]
        assert err["code"] == "invalid_events"
        assert [(d["index"], d["field"]) for d in err["details"]] == [(index, "occurred_at")]
    assert http.get(f"/v1/activities/{activity}/stats", headers=account.headers).json()["counts"]["sends"] == 0
    assert set(_reports(http, account, activity, campaign).values()) == {200}


def test_a_bounce_dated_out_of_range_takes_its_time_of_receipt(http: httpx.Client, account: Account) -> None:
    campaign, activity = campaign_with_activity(http, account.headers)
    post_events(http, account.headers, [{"type": "send", "activity_id": activity, "email": "gone@example.com",
                                         "occurred_at": "2024-05-01T12:00:00Z"}])
    for date in ("Fri, 31 Dec 9999 23:59:59 -1400", "Thu, 01 Jan 1920 00:00:00 +0000"):
        raw = dsn("gone@example.com", message_id=f"<{date[-5:]}@x>").replace(
            b"Date: Fri, 01 Mar 2024 10:05:00 +0000", b"Date: " + date.encode()).replace(
            b"Arrival-Date: Fri,  1 Mar 2024 10:04:58 +0000 (UTC)", b"Arrival-Date: " + date.encode())
        r = http.post("/v1/bounces", content=raw, headers=account.headers | {"Content-Type": "message/rfc822"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["message_date"] == date  # the original is kept...
        assert body["records"][0]["occurred_at"][:2] == "20"  # ...and the event is dated when it came in
    assert set(_reports(http, account, activity, campaign).values()) == {200}


def test_reports_never_fail_on_a_stored_time_out_of_range(http: httpx.Client, account: Account,
                                                          engine: Engine) -> None:
    """Times stored before the rule existed (here set by hand) are shown clamped, never a 500."""
    campaign, activity = campaign_with_activity(http, account.headers)
    post_events(http, account.headers, [
        {"type": "send", "activity_id": activity, "email": "a@example.com", "occurred_at": "2024-05-01T12:00:00Z"},
        {"type": "bounce", "activity_id": activity, "email": "a@example.com", "occurred_at": "2024-05-01T12:01:00Z",
         "bounce_code": "B"},
        {"type": "open", "activity_id": activity, "email": "b@example.com", "occurred_at": "2024-05-01T12:01:00Z"}])
    for value in (253402350000000, -62135596800000):
        v = {"v": value, "a": account.id}
        with engine.begin() as conn:
            conn.execute(text("UPDATE events SET occurred_at = :v WHERE account_id = :a"), v)
            conn.execute(text("UPDATE recipients SET sent_at = :v, bounced_at = :v, first_open_at = :v, "
                              "last_open_at = :v WHERE account_id = :a"), v)
            conn.execute(text("UPDATE activity_counters SET last_event_at = :v WHERE account_id = :a"), v)
            conn.execute(text("UPDATE campaigns SET last_sent_at = :v WHERE account_id = :a"), v)
        codes = _reports(http, account, activity, campaign)
        assert set(codes.values()) == {200}, codes
