"""Rendering a message through the API and pulling its tracking URLs out, as a sender would."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.support.scenario import campaign_with_activity, post_events

HTML = """<!doctype html><html><head><title>Spring</title></head><body>
<h1>Spring sale</h1>
<p><a href="https://shop.example.com/sale?utm=mail&amp;x=1">The sale</a></p>
<p><a href='https://shop.example.com/new'>New things</a> and <a href="https://shop.example.com/sale?utm=mail&x=1">again</a></p>
<p><a data-mailtally="off" href="https://shop.example.com/private">not tracked</a>
<a href="mailto:help@example.com">help</a></p>
<p><a href="{{unsubscribe_url}}">Unsubscribe</a> · <a href="{{ forward_url }}">Forward</a></p>
</body></html>"""
TEXT = "The sale: https://shop.example.com/sale?utm=mail&x=1.\nUnsubscribe: {{unsubscribe_url}}\n"
HOUR_AGO = "2020-01-01T00:00:00Z"


def render(http: httpx.Client, headers: dict[str, str], activity_id: str, emails: list[str],
           record_send: bool = False, html: str = HTML, text: str | None = TEXT) -> list[dict[str, Any]]:
    r = http.post(f"/v1/activities/{activity_id}/messages", headers=headers, json={
        "html": html, "text": text, "recipients": [{"email": e} for e in emails], "record_send": record_send})
    assert r.status_code == 200, r.text
    return r.json()["messages"]  # type: ignore[no-any-return]


def sent_long_ago(http: httpx.Client, headers: dict[str, str], emails: list[str]) -> tuple[str, list[dict[str, Any]]]:
    """An activity whose sends were recorded long ago (so hits now are not "too soon"), and its messages."""
    _, activity = campaign_with_activity(http, headers)
    post_events(http, headers, [{"type": "send", "activity_id": activity, "email": e, "occurred_at": HOUR_AGO}
                                for e in emails])
    return activity, render(http, headers, activity, emails)


def paths(body: str, kind: str) -> list[str]:
    return re.findall(rf"https?://[^/\"']+(/t/{kind}/[A-Za-z0-9_-]+)", body)


def rolled_up(http: httpx.Client, headers: dict[str, str], activity_id: str) -> None:
    """Read the activity's report, as anyone would before looking further: every hit answered so
    far is then in the log (on a SQLite file hits are journaled and rolled up soon after)."""
    stats(http, headers, activity_id)


def stats(http: httpx.Client, headers: dict[str, str], activity_id: str) -> dict[str, Any]:
    r = http.get(f"/v1/activities/{activity_id}/stats", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.4 Mobile/15E148 Safari/604.1")
DESKTOP = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
           "Safari/537.36")
