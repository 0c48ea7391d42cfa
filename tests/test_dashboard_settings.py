"""The dashboard's settings pages (alerts, outgoing webhooks, provider webhook endpoints),
checked against their /v1 APIs on SQLite and PostgreSQL: what a page lists is what the API
lists, and what a form changes the API sees changed; forms need the CSRF token; another
account's ids are refused."""

from __future__ import annotations

import csv
import io
import re

import httpx
import orjson
import pytest
from sqlalchemy import Engine

from mailtally.store.db import writing

from .conftest import Account, make_account
from .support.dashboard import csrf_of, make_user, sign_in
from .support.scenario import campaign_with_activity, post_events


def _csrf(client: httpx.Client, path: str = "/ui/settings/alerts") -> str:
    return csrf_of(client.get(path).text)


# -- alerts ---------------------------------------------------------------------------------


def _rule_form(rules: dict[str, dict[str, object]], csrf: str) -> dict[str, str]:
    data = {"csrf": csrf}
    for kind, r in rules.items():
        data[f"{kind}.threshold"] = str(r["threshold"])
        data[f"{kind}.min_sends"] = str(r["min_sends"])
        if r["enabled"]:
            data[f"{kind}.enabled"] = "on"
    return data


def _shown_rules(html: str) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    for kind, row in re.findall(r'<tr data-rule="([a-z_]+)">(.*?)</tr>', html, re.S):
        out[kind] = {"threshold": float(re.search(r'name="[a-z_]+\.threshold"[^>]*value="([^"]+)"', row).group(1)),  # type: ignore[union-attr]
                     "min_sends": int(re.search(r'name="[a-z_]+\.min_sends"[^>]*value="([^"]+)"', row).group(1)),  # type: ignore[union-attr]
                     "enabled": " checked" in row.split("threshold")[0]}
    return out


def test_alert_rules_match_the_api_and_change_through_the_form(account: Account, http: httpx.Client,
                                                               signed_in: httpx.Client) -> None:
    api = http.get("/v1/alerts/rules", headers=account.headers).json()
    page = signed_in.get("/ui/settings/alerts")
    assert page.status_code == 200 and _shown_rules(page.text) == api

    changed = {**api, "complaint_rate": {"threshold": 0.05, "min_sends": 500, "enabled": True},
               "optout_rate": {**api["optout_rate"], "enabled": False}}
    r = signed_in.post("/ui/settings/alerts/rules", data=_rule_form(changed, csrf_of(page.text)))
    assert r.status_code == 303 and r.headers["location"] == "/ui/settings/alerts?saved=1"
    assert http.get("/v1/alerts/rules", headers=account.headers).json() == changed
    assert _shown_rules(signed_in.get("/ui/settings/alerts").text) == changed

    for kind, field, value, message in (("bounce_rate", "threshold", "0", "percentage above 0"),
                                        ("bounce_rate", "threshold", "101", "percentage above 0"),
                                        ("hard_bounce_rate", "min_sends", "0", "whole number from 1"),
                                        ("hard_bounce_rate", "min_sends", "lots", "must be numbers")):
        data = _rule_form(changed, csrf_of(page.text))
        data[f"{kind}.{field}"] = value
        bad = signed_in.post("/ui/settings/alerts/rules", data=data)
        assert bad.status_code == 400 and message in bad.text, (kind, field, value)
    assert http.get("/v1/alerts/rules", headers=account.headers).json() == changed


def test_alerts_fired_are_listed_and_re_armed(account: Account, http: httpx.Client,
                                              signed_in: httpx.Client) -> None:
    _, activity_id = campaign_with_activity(http, account.headers, "Too many bounces")
    events = [{"type": "send", "activity_id": activity_id, "email": f"a{i}@example.com",
               "occurred_at": "2024-03-01T10:00:00Z"} for i in range(120)]
    events += [{"type": "bounce", "activity_id": activity_id, "email": f"a{i}@example.com",
                "occurred_at": "2024-03-01T10:05:00Z", "reason": "userunknown"} for i in range(10)]
    post_events(http, account.headers, events)
    api = http.get("/v1/alerts", headers=account.headers).json()["alerts"]
    assert {a["kind"] for a in api} == {"bounce_rate", "hard_bounce_rate"}

    page = signed_in.get("/ui/settings/alerts").text
    assert set(re.findall(r'<tr data-alert="(\d+)">', page)) == {str(a["id"]) for a in api}
    assert f'href="/ui/activities/{activity_id}"' in page
    first = api[0]
    r = signed_in.post(f"/ui/settings/alerts/{first['id']}/rearm", data={"csrf": csrf_of(page)})
    assert r.status_code == 303
    after = {a["id"]: a for a in http.get("/v1/alerts", headers=account.headers).json()["alerts"]}
    assert after[first["id"]]["rearmed_at"] is not None and after[api[1]["id"]]["rearmed_at"] is None
    assert f"Alert {first['id']} re-armed" in signed_in.get(r.headers["location"]).text

    rows = list(csv.DictReader(io.StringIO(signed_in.get("/ui/settings/alerts.csv").text)))
    assert [int(r["id"]) for r in rows] == [a["id"] for a in api]
    assert [r["kind"] for r in rows] == [a["kind"] for a in api]
    assert signed_in.post("/ui/settings/alerts/999999/rearm", data={"csrf": csrf_of(page)}).status_code == 404


# -- outgoing webhooks ----------------------------------------------------------------------


def test_outgoing_webhooks_created_paused_and_removed(account: Account, http: httpx.Client,
                                                      signed_in: httpx.Client) -> None:
    csrf = _csrf(signed_in, "/ui/settings/webhooks")
    url = "https://hooks.mailtally-test.invalid/in"  # .invalid never resolves: allowed, checked at delivery
    r = signed_in.post("/ui/settings/webhooks", data={"csrf": csrf, "url": url, "description": "ops",
                                                      "event": ["bounce", "suppression.added"]})
    assert r.status_code == 201, r.text
    secret = re.search(r'id="new-secret" class="token" readonly value="(whsec_[^"]+)"', r.text)
    assert secret
    api = http.get("/v1/webhooks", headers=account.headers).json()["webhooks"]
    assert [(w["url"], w["events"], w["description"], w["enabled"]) for w in api] == \
        [(url, ["bounce", "suppression.added"], "ops", True)]
    sid = api[0]["id"]
    listing = signed_in.get("/ui/settings/webhooks").text
    assert f'data-subscription="{sid}"' in listing and secret.group(1) not in listing  # shown once

    assert signed_in.post(f"/ui/settings/webhooks/{sid}/enabled", data={"csrf": csrf, "enabled": "0"}).status_code \
        == 303
    assert http.get(f"/v1/webhooks/{sid}", headers=account.headers).json()["enabled"] is False
    assert "paused" in signed_in.get("/ui/settings/webhooks").text

    # What the API refuses, the page refuses, with the API's reason.
    for data, message in (({"url": "http://127.0.0.1:9/", "event": "bounce"}, "loopback or private"),
                          ({"url": "ftp://example.com/", "event": "bounce"}, "must start with http"),
                          ({"url": url, "event": "everything"}, "Choose at least one"),
                          ({"url": url}, "Choose at least one")):
        bad = signed_in.post("/ui/settings/webhooks", data={"csrf": csrf, **data})
        assert bad.status_code == 400 and message in bad.text, data
    assert len(http.get("/v1/webhooks", headers=account.headers).json()["webhooks"]) == 1

    rows = list(csv.DictReader(io.StringIO(signed_in.get("/ui/settings/webhooks.csv").text)))
    assert [(r["id"], r["url"], r["events"]) for r in rows] == [(sid, url, "bounce suppression.added")]
    assert signed_in.post(f"/ui/settings/webhooks/{sid}/remove", data={"csrf": csrf}).status_code == 303
    assert http.get(f"/v1/webhooks/{sid}", headers=account.headers).status_code == 404
    assert signed_in.post(f"/ui/settings/webhooks/{sid}/remove", data={"csrf": csrf}).status_code == 404


# -- provider webhook endpoints -------------------------------------------------------------


def test_provider_endpoints_created_used_and_removed(account: Account, http: httpx.Client,
                                                     signed_in: httpx.Client) -> None:
    csrf = _csrf(signed_in, "/ui/settings/endpoints")
    r = signed_in.post("/ui/settings/endpoints", data={"csrf": csrf, "provider": "postmark",
                                                       "secret": "a-long-password", "username": ""})
    assert r.status_code == 201, r.text
    hook = re.search(r'id="new-url" class="token" readonly value="([^"]+)"', r.text)
    assert hook
    api = http.get("/v1/webhook-endpoints", headers=account.headers).json()["webhook_endpoints"]
    assert [(e["provider"], e["url"], e["has_secret"]) for e in api] == [("postmark", hook.group(1), True)]
    assert hook.group(1) in signed_in.get("/ui/settings/endpoints").text
    assert "a-long-password" not in signed_in.get("/ui/settings/endpoints").text

    # The URL shown works with the secret given, as the provider would call it.
    _, activity_id = campaign_with_activity(http, account.headers, "Postmark")
    post_events(http, account.headers, [{"type": "send", "activity_id": activity_id, "email": "ann@example.com",
                                         "occurred_at": "2024-05-01T12:00:00Z"}])
    path = hook.group(1).split("://", 1)[1].split("/", 1)[1]
    body = {"RecordType": "Bounce", "ID": 42, "TypeCode": 1, "Email": "ann@example.com",
            "BouncedAt": "2024-05-01T12:01:00Z", "Details": "smtp;550 5.1.1 user unknown"}
    called = http.post("/" + path, content=orjson.dumps(body), auth=("mailtally", "a-long-password"),
                       headers={"Content-Type": "application/json"})
    assert called.status_code == 200, called.text
    assert http.post("/" + path, content=orjson.dumps(body), auth=("mailtally", "wrong"),
                     headers={"Content-Type": "application/json"}).status_code in (401, 403)

    bad = signed_in.post("/ui/settings/endpoints", data={"csrf": csrf, "provider": "sendgrid", "secret": ""})
    assert bad.status_code == 400 and 'role="alert"' in bad.text
    assert signed_in.post("/ui/settings/endpoints", data={"csrf": csrf, "provider": "pigeon"}).status_code == 400
    assert signed_in.post("/ui/settings/endpoints", data={"csrf": csrf, "provider": "postmark", "secret": "x",
                                                          "username": "has space"}).status_code == 400
    assert len(http.get("/v1/webhook-endpoints", headers=account.headers).json()["webhook_endpoints"]) == 1

    rows = list(csv.DictReader(io.StringIO(signed_in.get("/ui/settings/endpoints.csv").text)))
    assert [(r["provider"], r["url"]) for r in rows] == [("postmark", hook.group(1))]
    eid = api[0]["id"]
    assert signed_in.post(f"/ui/settings/endpoints/{eid}/remove", data={"csrf": csrf}).status_code == 303
    assert http.get("/v1/webhook-endpoints", headers=account.headers).json()["webhook_endpoints"] == []
    assert http.post("/" + path, content=orjson.dumps(body), auth=("mailtally", "a-long-password"),
                     headers={"Content-Type": "application/json"}).status_code == 404


# -- every settings form: CSRF, and another account's ids -----------------------------------


def test_settings_forms_need_csrf_and_refuse_another_accounts_ids(engine: Engine, account: Account,
                                                                  http: httpx.Client,
                                                                  signed_in: httpx.Client) -> None:
    stranger = make_account(engine)
    theirs = http.post("/v1/webhook-endpoints", json={"provider": "postmark", "secret": "their-secret"},
                       headers=stranger.headers).json()["id"]
    _, activity_id = campaign_with_activity(http, stranger.headers, "Theirs")
    post_events(http, stranger.headers,
                [{"type": "send", "activity_id": activity_id, "email": f"t{i}@example.com",
                  "occurred_at": "2024-03-01T10:00:00Z"} for i in range(100)]
                + [{"type": "bounce", "activity_id": activity_id, "email": f"t{i}@example.com",
                    "occurred_at": "2024-03-01T10:05:00Z", "reason": "userunknown"} for i in range(10)])
    their_alert = http.get("/v1/alerts", headers=stranger.headers).json()["alerts"][0]["id"]
    with writing(engine) as conn:
        from mailtally.store import outbox
        from mailtally.vocab import WebhookEvent
        their_sub = outbox.create_subscription(conn, stranger.id, "https://theirs.example.com/",
                                               [WebhookEvent.BOUNCE], "whsec_" + "B" * 32).id

    for path in ("/ui/settings/alerts", "/ui/settings/webhooks", "/ui/settings/endpoints"):
        page = signed_in.get(path).text
        assert "theirs.example.com" not in page and theirs not in page and f'data-alert="{their_alert}"' not in page
    csrf = _csrf(signed_in)
    assert signed_in.post(f"/ui/settings/endpoints/{theirs}/remove", data={"csrf": csrf}).status_code == 404
    assert signed_in.post(f"/ui/settings/webhooks/{their_sub}/remove", data={"csrf": csrf}).status_code == 404
    assert signed_in.post(f"/ui/settings/webhooks/{their_sub}/enabled",
                          data={"csrf": csrf, "enabled": "0"}).status_code == 404
    assert signed_in.post(f"/ui/settings/alerts/{their_alert}/rearm", data={"csrf": csrf}).status_code == 404
    assert len(http.get("/v1/webhook-endpoints", headers=stranger.headers).json()["webhook_endpoints"]) == 1
    assert http.get(f"/v1/webhooks/{their_sub}", headers=stranger.headers).json()["enabled"] is True
    assert http.get("/v1/alerts", headers=stranger.headers).json()["alerts"][0]["rearmed_at"] is None

    mine = http.post("/v1/webhook-endpoints", json={"provider": "postmark", "secret": "s"},
                     headers=account.headers).json()["id"]
    for path, data in (("/ui/settings/alerts/rules", {"bounce_rate.threshold": "1", "bounce_rate.min_sends": "1"}),
                       ("/ui/settings/webhooks", {"url": "https://x.invalid/", "event": "bounce"}),
                       ("/ui/settings/endpoints", {"provider": "postmark", "secret": "s"}),
                       (f"/ui/settings/endpoints/{mine}/remove", {})):
        for token in ({}, {"csrf": "forged"}):
            r = signed_in.post(path, data={**data, **token})
            assert r.status_code == 403 and "CSRF" in r.text, path
    assert [e["id"] for e in http.get("/v1/webhook-endpoints", headers=account.headers).json()["webhook_endpoints"]] \
        == [mine]
    assert http.get("/v1/webhooks", headers=account.headers).json()["webhooks"] == []

    with httpx.Client(base_url=str(signed_in.base_url), follow_redirects=False) as outsider:
        assert sign_in(outsider, make_user(engine, stranger.name)).status_code == 303
        assert theirs in outsider.get("/ui/settings/endpoints").text and mine not in \
            outsider.get("/ui/settings/endpoints").text


@pytest.mark.parametrize("path", ["/ui/settings/alerts", "/ui/settings/webhooks", "/ui/settings/endpoints",
                                  "/ui/settings/alerts.csv", "/ui/settings/webhooks.csv",
                                  "/ui/settings/endpoints.csv"])
def test_settings_need_sign_in(browser_like: httpx.Client, path: str) -> None:
    assert browser_like.get(path).status_code == 303
