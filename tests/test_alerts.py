"""Alerts on an activity's rates: evaluated as events land, once until re-armed, listed."""

from __future__ import annotations

import httpx
import pytest

from mailtally.alerts.rules import DEFAULT_RULES, Rule, RuleError, fires, rules_from
from mailtally.vocab import AlertKind

from .conftest import Account
from .support.scenario import campaign_with_activity, post_events


def events(activity: str, kind: str, n: int, start: int = 0, **extra: str) -> list[dict[str, str]]:
    return [{"type": kind, "activity_id": activity, "email": f"r{i}@example.com",
             "occurred_at": f"2024-05-01T12:{i // 60:02d}:{i % 60:02d}Z", **extra} for i in range(start, start + n)]


def test_rules_fire_once_until_rearmed(http: httpx.Client, account: Account, other_account: Account) -> None:
    h = account.headers
    r = http.put("/v1/alerts/rules", json={"bounce_rate": {"min_sends": 10}, "hard_bounce_rate": {"enabled": False},
                                           "optout_rate": {"min_sends": 10, "threshold": 10}}, headers=h)
    assert r.status_code == 200 and r.json()["bounce_rate"] == {"threshold": 5.0, "min_sends": 10, "enabled": True}
    _, activity = campaign_with_activity(http, h)
    post_events(http, h, events(activity, "send", 20))
    post_events(http, h, events(activity, "bounce", 1, bounce_code="F"))  # 5%: not over
    assert http.get("/v1/alerts", headers=h).json()["alerts"] == []
    post_events(http, h, events(activity, "bounce", 1, start=1, bounce_code="B"))  # 10%
    fired = http.get("/v1/alerts", headers=h).json()["alerts"]
    assert [(a["kind"], a["rate"], a["sends"], a["count"]) for a in fired] == [("bounce_rate", 10.0, 20, 2)]
    post_events(http, h, events(activity, "bounce", 3, start=2, bounce_code="B"))  # higher still: no second alert
    assert len(http.get("/v1/alerts", headers=h).json()["alerts"]) == 1
    post_events(http, h, events(activity, "optout", 3))  # 15% > 10%
    kinds = [a["kind"] for a in http.get("/v1/alerts", params={"activity_id": activity}, headers=h).json()["alerts"]]
    assert kinds == ["optout_rate", "bounce_rate"]

    assert http.get("/v1/alerts", headers=other_account.headers).json()["alerts"] == []
    assert http.post(f"/v1/alerts/{fired[0]['id']}/rearm", headers=other_account.headers).status_code == 404
    rearmed = http.post(f"/v1/alerts/{fired[0]['id']}/rearm", headers=h).json()
    assert rearmed["rearmed_at"] is not None
    post_events(http, h, events(activity, "bounce", 1, start=5, bounce_code="D"))
    again = http.get("/v1/alerts", params={"live": "true"}, headers=h).json()["alerts"]
    assert [(a["kind"], a["count"]) for a in again] == [("bounce_rate", 6), ("optout_rate", 3)]


def test_min_sends_and_the_documented_defaults(http: httpx.Client, account: Account) -> None:
    h = account.headers
    assert http.get("/v1/alerts/rules", headers=h).json() == {k.value: r.to_dict() for k, r in DEFAULT_RULES.items()}
    _, activity = campaign_with_activity(http, h)
    post_events(http, h, events(activity, "send", 50))
    post_events(http, h, events(activity, "bounce", 25, bounce_code="B"))  # 50%, but under 100 sends
    post_events(http, h, events(activity, "abuse", 5))
    assert http.get("/v1/alerts", headers=h).json()["alerts"] == []
    for bad in ({"complaint_rate": {"threshold": 0}}, {"nope": {}}, {"bounce_rate": {"min_sends": "x"}},
                {"bounce_rate": {"colour": 1}}, {"bounce_rate": 5}):
        r = http.put("/v1/alerts/rules", json=bad, headers=h)
        assert r.status_code == 400 and r.json()["error"]["code"] == "bad_rule", bad


def test_pure_rule() -> None:
    rule = Rule(0.1, 1000)
    assert fires(AlertKind.COMPLAINT_RATE, rule, {"sends": 999, "abuse": 50}) is None
    assert fires(AlertKind.COMPLAINT_RATE, rule, {"sends": 1000, "abuse": 1}) is None  # exactly 0.1%
    assert fires(AlertKind.COMPLAINT_RATE, rule, {"sends": 1000, "abuse": 2}) == pytest.approx(0.2)
    assert fires(AlertKind.BOUNCE_RATE, Rule(5, 10), {"sends": 10, "bounces": 3, "bounces_v": 3}) is None
    with pytest.raises(RuleError):
        rules_from({"optout_rate": {"threshold": 101}})
