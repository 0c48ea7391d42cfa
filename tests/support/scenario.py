"""Building data the way a user does: through the HTTP API."""

from __future__ import annotations

from typing import Any

import httpx


def campaign_with_activity(http: httpx.Client, headers: dict[str, str], name: str = "Test campaign",
                           links: list[dict[str, str]] | None = None) -> tuple[str, str]:
    r = http.post("/v1/campaigns", json={"name": name}, headers=headers)
    assert r.status_code == 201, r.text
    campaign_id = r.json()["id"]
    r = http.post(f"/v1/campaigns/{campaign_id}/activities", json={"subject": f"{name}!"}, headers=headers)
    assert r.status_code == 201, r.text
    activity_id = r.json()["id"]
    if links:
        r = http.put(f"/v1/activities/{activity_id}/links", json=links, headers=headers)
        assert r.status_code == 200, r.text
    return campaign_id, activity_id


def post_events(http: httpx.Client, headers: dict[str, str], events: list[dict[str, Any]]) -> dict[str, Any]:
    r = http.post("/v1/events", json=events, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def seed_004(activity_id: str) -> list[dict[str, Any]]:
    """The scenario of the reporting overview (seed 004), as BRIEF.md gives its numbers.

    15 sends; 6 bounces, one each of B, D, F, V, X, Z; 6 unique opens (mobile 5, other 1);
    2 clicks (mobile 1, other 1); 1 forward; 1 opt-out; so 3 delivered did not open.
    """
    def at(minute: int) -> str:
        return f"2024-03-01T10:{minute:02d}:00Z"

    emails = [f"person{i:02d}@example.com" for i in range(15)]
    ev: list[dict[str, Any]] = [
        {"type": "send", "activity_id": activity_id, "email": e, "occurred_at": at(0)} for e in emails
    ]
    for e, code in zip(emails[:6], "BDFVXZ", strict=True):
        ev.append({"type": "bounce", "activity_id": activity_id, "email": e, "occurred_at": at(5),
                   "bounce_code": code})
    openers = emails[6:12]
    for i, e in enumerate(openers):
        ev.append({"type": "open", "activity_id": activity_id, "email": e, "occurred_at": at(10 + i),
                   "device_type": "other" if i == 5 else "mobile"})
    ev.append({"type": "click", "activity_id": activity_id, "email": openers[0], "occurred_at": at(20),
               "device_type": "mobile", "url_id": "1"})
    ev.append({"type": "click", "activity_id": activity_id, "email": openers[5], "occurred_at": at(21),
               "device_type": "other", "url_id": "1"})
    ev.append({"type": "forward", "activity_id": activity_id, "email": openers[1], "occurred_at": at(22)})
    ev.append({"type": "optout", "activity_id": activity_id, "email": openers[2], "occurred_at": at(23),
               "optout_reason": "Too many emails"})
    return ev


GOLDEN_COUNTS = {"sends": 15, "bounces": 6, "opens": 6, "opens_computer": 0, "opens_mobile": 5,
                 "opens_tablet": 0, "opens_other": 1, "clicks": 2, "clicks_mobile": 1, "clicks_other": 1,
                 "forwards": 1, "optouts": 1, "not_opened": 3, "bounces_b": 1, "bounces_d": 1,
                 "bounces_f": 1, "bounces_v": 1, "bounces_x": 1, "bounces_z": 1, "bounces_s": 0}
GOLDEN_PERCENTS = {"bounce": 40.0, "open": 66.7, "click": 33.3, "did_not_open": 33.3, "unsubscribe": 11.1,
                   "desktop_open": 16.7, "mobile_open": 83.3, "desktop_click": 50.0, "mobile_click": 50.0}
