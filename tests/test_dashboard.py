"""The dashboard, server side: sign-in, CSRF, account isolation, and every figure a page shows
checked against the API's, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import Engine, func, select

from mailtally.store import catalog, dashboard
from mailtally.store.db import writing
from mailtally.store.schema import accounts, activities, events

from .conftest import Account, make_account
from .support.dashboard import PASSWORD, csrf_of, figures, make_user, number, sign_in, table_rows
from .support.scenario import campaign_with_activity, post_events, seed_004


def test_pages_need_sign_in_and_root_opens_the_dashboard(browser_like: httpx.Client) -> None:
    r = browser_like.get("/")
    assert r.status_code == 303 and r.headers["location"] == "/ui/"
    r = browser_like.get("/ui/campaigns?q=x")
    assert r.status_code == 303 and r.headers["location"] == "/ui/login?next=%2Fui%2Fcampaigns%3Fq%3Dx"
    assert browser_like.get("/docs").status_code == 200  # the API docs stay where they were
    for path in ("/ui/bounces", "/ui/contacts", "/ui/settings/tokens", "/ui/bounces.csv"):
        assert browser_like.get(path).status_code == 303


def test_sign_in_cookie_and_sign_out(engine: Engine, account: Account, browser_like: httpx.Client) -> None:
    email = make_user(engine, account.name)
    wrong = sign_in(browser_like, email, "not the password")
    assert wrong.status_code == 401 and "Wrong email address or password" in wrong.text
    assert "mt_session" not in browser_like.cookies

    r = sign_in(browser_like, email)
    assert r.status_code == 303 and r.headers["location"] == "/ui/"
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("mt_session="))
    flags = {f.strip().lower() for f in cookie.split(";")[1:]}
    assert "httponly" in flags and "samesite=lax" in flags and "secure" not in flags  # plain http here
    page = browser_like.get("/ui/campaigns")
    assert page.status_code == 200 and email in page.text and account.name in page.text

    stolen = browser_like.cookies["mt_session"]
    out = browser_like.post("/ui/logout", data={"csrf": csrf_of(page.text)})
    assert out.status_code == 303 and out.headers["location"] == "/ui/login"
    assert browser_like.get("/ui/campaigns").status_code == 303
    # A copy of the cookie taken before signing out no longer works either.
    browser_like.cookies.set("mt_session", stolen)
    assert browser_like.get("/ui/campaigns").status_code == 303


def test_tampered_cookie_is_refused(engine: Engine, account: Account, signed_in: httpx.Client) -> None:
    value = signed_in.cookies["mt_session"]
    body, _, sig = value.partition(".")
    signed_in.cookies.set("mt_session", body + "." + ("A" if sig[0] != "A" else "B") + sig[1:])
    assert signed_in.get("/ui/campaigns").status_code == 303


def test_csrf_refused(engine: Engine, account: Account, signed_in: httpx.Client) -> None:
    page = signed_in.get("/ui/settings/tokens")
    good = csrf_of(page.text)
    for data in ({}, {"csrf": "forged"}, {"csrf": good[:-1] + ("x" if good[-1] != "x" else "y")}):
        r = signed_in.post("/ui/settings/tokens", data={**data, "name": "sneaky", "scope": "admin"})
        assert r.status_code == 403 and "CSRF" in r.text, r.text
        assert r.headers["content-type"].startswith("text/html")
        assert signed_in.post("/ui/logout", data=data).status_code == 403
    assert "sneaky" not in signed_in.get("/ui/settings/tokens").text
    assert signed_in.get("/ui/campaigns").status_code == 200  # still signed in

    # The sign-in form too: without the token bound to this browser's pre-session cookie.
    with httpx.Client(base_url=str(signed_in.base_url), follow_redirects=False) as other:
        other.get("/ui/login")
        email = make_user(engine, account.name)
        r = other.post("/ui/login", data={"csrf": good, "email": email, "password": PASSWORD})
        assert r.status_code == 403 and "mt_session" not in other.cookies


def test_failed_sign_ins_are_rate_limited(engine: Engine, account: Account, browser_like: httpx.Client) -> None:
    email = make_user(engine, account.name)
    for _ in range(5):
        assert sign_in(browser_like, email, "wrong password!").status_code == 401
    r = sign_in(browser_like, email)  # the right password, but too late
    assert r.status_code == 429 and "Too many failed sign-ins" in r.text and int(r.headers["retry-after"]) > 0
    assert "mt_session" not in browser_like.cookies


def test_open_redirect_refused(engine: Engine, account: Account, browser_like: httpx.Client) -> None:
    email = make_user(engine, account.name)
    page = browser_like.get("/ui/login?next=//evil.example/")
    r = browser_like.post("/ui/login", data={"csrf": csrf_of(page.text), "email": email, "password": PASSWORD,
                                              "next": "https://evil.example/"})
    assert r.status_code == 303 and r.headers["location"] == "/ui/"


def _seeded(http: httpx.Client, account: Account) -> tuple[str, str]:
    campaign_id, activity_id = campaign_with_activity(
        http, account.headers, "Seed 004", links=[{"url_id": "1", "url": "https://example.com/a"}])
    post_events(http, account.headers, seed_004(activity_id))
    return campaign_id, activity_id


def test_activity_figures_match_the_api(account: Account, http: httpx.Client, signed_in: httpx.Client) -> None:
    _, activity_id = _seeded(http, account)
    api = http.get(f"/v1/activities/{activity_id}/stats", headers=account.headers).json()
    page = signed_in.get(f"/ui/activities/{activity_id}")
    assert page.status_code == 200
    shown = figures(page.text)
    for name, value in api["counts"].items():
        if name in shown.values:
            assert number(shown.values[name]) == value, name
    assert number(shown.values["delivered"]) == api["delivered"] == 9
    assert {"sends", "bounces", "opens", "clicks", "optouts", "abuse", "forwards", "not_opened", "bounces_b",
            "opens_mobile", "clicks_other"} <= shown.values.keys()
    for pct in ("40.0%", "66.7%", "33.3%", "11.1%"):  # bounce, open, click and did-not-open, unsubscribe
        assert pct in page.text

    # Every number links to the contacts it counts: as many rows as the figure says.
    for name in ("sends", "delivered", "bounces", "opens", "not_opened", "clicks", "forwards", "optouts",
                 "bounces_b", "bounces_v", "opens_mobile", "opens_other", "clicks_mobile"):
        listed = signed_in.get(shown.links[name])
        assert listed.status_code == 200, (name, listed.text[:300])
        assert table_rows(listed.text) == number(shown.values[name]), name

    v3 = http.get(f"/v3/reports/stats/email_campaign_activities/{activity_id}", headers=account.headers).json()
    assert v3["results"][0]["stats"]["em_bounces"] == number(shown.values["bounces"])


def test_campaign_list_figures_match_the_api(account: Account, http: httpx.Client,
                                             signed_in: httpx.Client) -> None:
    campaign_id, activity_id = _seeded(http, account)
    other_id, _ = campaign_with_activity(http, account.headers, "Quiet one")
    page = signed_in.get("/ui/campaigns")
    row = re.search(rf'<tr data-campaign="{campaign_id}">(.*?)</tr>', page.text, re.S)
    assert row, page.text
    shown = figures(row.group(1)).values
    api = http.get(f"/v1/activities/{activity_id}/stats", headers=account.headers).json()
    for name in ("sends", "bounces", "opens", "clicks", "optouts", "abuse"):
        assert number(shown[name]) == api["counts"][name], name
    assert shown["bounce_rate"] == f"{api['percents']['bounce']:.1f}%"
    assert shown["open_rate"] == f"{api['percents']['open']:.1f}%"
    assert shown["click_rate"] == f"{api['percents']['click']:.1f}%"

    # Search and sort.
    found = signed_in.get("/ui/campaigns?q=quiet")
    assert other_id in found.text and campaign_id not in found.text
    by_sends = signed_in.get("/ui/campaigns?sort=sends&dir=desc").text
    assert by_sends.index(campaign_id) < by_sends.index(other_id)
    by_sends = signed_in.get("/ui/campaigns?sort=sends&dir=asc").text
    assert by_sends.index(other_id) < by_sends.index(campaign_id)
    by_rate = signed_in.get("/ui/campaigns?sort=bounce_rate&dir=asc").text
    assert by_rate.index(campaign_id) < by_rate.index(other_id)  # no rate (nothing sent) sorts last either way
    by_name = signed_in.get("/ui/campaigns?sort=name&dir=asc").text
    assert by_name.index(other_id) < by_name.index(campaign_id)


def test_bounce_reasons_and_links(account: Account, http: httpx.Client, signed_in: httpx.Client) -> None:
    _, activity_id = campaign_with_activity(http, account.headers, "Reasons",
                                            links=[{"url_id": "1", "url": "https://example.com/x"},
                                                   {"url_id": "2", "url": "https://example.com/x"}])
    events = []
    for i in range(6):
        e = f"r{i}@example.org"
        events.append({"type": "send", "activity_id": activity_id, "email": e, "occurred_at": "2024-03-01T10:00:00Z"})
    for i, reason in enumerate(["userunknown", "userunknown", "mailboxfull"]):
        events.append({"type": "bounce", "activity_id": activity_id, "email": f"r{i}@example.org",
                       "occurred_at": "2024-03-01T10:05:00Z", "reason": reason})
    for i, url in ((3, "1"), (4, "2"), (4, "1")):
        events.append({"type": "open", "activity_id": activity_id, "email": f"r{i}@example.org",
                       "occurred_at": "2024-03-01T11:00:00Z", "device_type": "mobile"})
        events.append({"type": "click", "activity_id": activity_id, "email": f"r{i}@example.org",
                       "occurred_at": f"2024-03-01T11:0{i}:00Z", "device_type": "mobile", "url_id": url})
    post_events(http, account.headers, events)
    page = signed_in.get(f"/ui/activities/{activity_id}").text
    m = re.search(r'href="([^"]+)" data-reason="userunknown">(\d+)<', page)
    assert m and m.group(2) == "2"
    listed = signed_in.get(m.group(1).replace("&amp;", "&")).text
    assert table_rows(listed) == 2 and "r0@example.org" in listed and "r2@example.org" not in listed
    # Two url ids with one URL are one link with two unique clickers, listed once each.
    link = re.search(r'href="([^"]+)" data-link="1">(\d+)<', page)
    assert link and link.group(2) == "2"
    clickers = signed_in.get(link.group(1).replace("&amp;", "&")).text
    assert table_rows(clickers) == 2


def test_timeline_hourly_then_daily(engine: Engine, account: Account, http: httpx.Client,
                                    signed_in: httpx.Client) -> None:
    _, activity_id = campaign_with_activity(http, account.headers, "Timeline")
    at = [("send", "2024-05-01T08:10:00Z"), ("open", "2024-05-01T08:20:00Z"), ("open", "2024-05-01T09:59:00Z"),
          ("click", "2024-05-01T10:00:00Z"), ("open", "2024-05-09T07:00:00Z"), ("open", "2024-05-09T20:00:00Z"),
          ("open", "2024-05-12T01:00:00Z")]
    post_events(http, account.headers, [{"type": t, "activity_id": activity_id, "email": f"t{i}@example.com",
                                         "occurred_at": when, **({"url_id": "1"} if t == "click" else {})}
                                        for i, (t, when) in enumerate(at)])
    with engine.connect() as conn:
        num = catalog.get_activity(conn, account.id, activity_id).num_id  # type: ignore[union-attr]
        tl = dashboard.timeline(conn, account.id, num, dashboard.first_send_at(conn, account.id, num))
    rows = list(tl.rows())
    start = 1714550400000  # 2024-05-01T08:00Z: the first send's hour
    assert rows[0] == (start, 1, 0, True) and rows[1] == (start + 3_600_000, 1, 0, True)
    assert rows[2] == (start + 2 * 3_600_000, 0, 1, True)
    assert len([r for r in rows if r[3]]) == 7 * 24  # a week of hours, then days
    # Days from 05-08 08:00 (a week after the first send's hour): 05-09 07:00, 05-09 20:00, none, 05-12 01:00.
    day0 = start + 7 * 86_400_000
    assert [r for r in rows if not r[3]] == [(day0 + d * 86_400_000, n, 0, False) for d, n in enumerate([1, 1, 0, 1])]
    assert sum(tl.opens) == 5 and sum(tl.clicks) == 1
    page = signed_in.get(f"/ui/activities/{activity_id}").text
    assert 'id="timeline-data"' in page and "2024-05-01 08:00 UTC" in page

    # Each figure of the chart's table lists the opens or clicks of its period; all opens and all
    # clicks list every one.
    periods = list(tl.periods())
    assert periods[0][4:] == (None, start + 3_600_000) and periods[-1][5] is None
    linked = re.findall(r'<a href="([^"]+list=(opens|clicks)_all[^"]*)">([\d,]+)</a>', page)
    by_period = [(href.replace("&amp;", "&"), int(n)) for href, _, n in linked if "from=" in href or "to=" in href]
    assert sorted(n for _, n in by_period) == sorted([o for o in tl.opens if o] + [k for k in tl.clicks if k])
    for href, n in by_period:
        listed = signed_in.get(href)
        assert listed.status_code == 200 and table_rows(listed.text) == n, href
        assert f"{n} contact" in listed.text or f"{n} " in listed.text
    shown = figures(page)
    for name, n in (("opens_all", 5), ("clicks_all", 1)):
        assert number(shown.values[name]) == n and table_rows(signed_in.get(shown.links[name]).text) == n
    assert signed_in.get(f"/ui/activities/{activity_id}/contacts?list=sends&from=1").status_code == 400
    timeline_csv = list(csv.DictReader(io.StringIO(signed_in.get(f"/ui/activities/{activity_id}/timeline.csv").text)))
    assert [(r["from"], r["period"], int(r["opens"]), int(r["clicks"])) for r in timeline_csv[:3]] == [
        ("2024-05-01T08:00:00Z", "hour", 1, 0), ("2024-05-01T09:00:00Z", "hour", 1, 0),
        ("2024-05-01T10:00:00Z", "hour", 0, 1)]
    assert len(timeline_csv) == len(rows)


def test_bounce_list_filters_pages_and_csv(account: Account, http: httpx.Client, signed_in: httpx.Client) -> None:
    _, activity_id = campaign_with_activity(http, account.headers, "Many bounces")
    events = []
    for i in range(120):
        domain = "gmail.example" if i % 3 == 0 else "corp.example"
        e = f"b{i:03d}@{domain}"
        day = 1 + i % 4
        events.append({"type": "send", "activity_id": activity_id, "email": e,
                       "occurred_at": f"2024-06-0{day}T09:00:00Z"})
        events.append({"type": "bounce", "activity_id": activity_id, "email": e,
                       "occurred_at": f"2024-06-0{day}T10:{i % 60:02d}:00Z",
                       "reason": "mailboxfull" if i % 2 else "userunknown", "diagnostic": f"=HYPERLINK diag {i}"})
    post_events(http, account.headers, events)

    first = signed_in.get("/ui/bounces").text
    assert table_rows(first) == 50
    older = re.search(r'href="([^"]+)" rel="next"|rel="next" href="([^"]+)"', first)
    assert older
    second = signed_in.get((older.group(1) or older.group(2)).replace("&amp;", "&")).text
    assert table_rows(second) == 50
    assert not set(re.findall(r"\bb\d{3}@", first)) & set(re.findall(r"\bb\d{3}@", second))

    gmail_full = signed_in.get("/ui/bounces?reason=mailboxfull&domain=gmail.example&code=F").text
    expected = {f"b{i:03d}@gmail.example" for i in range(120) if i % 3 == 0 and i % 2}
    assert set(re.findall(r"\bb\d{3}@gmail\.example", gmail_full)) == expected
    by_date = signed_in.get("/ui/bounces?from=2024-06-02&to=2024-06-03").text
    assert table_rows(by_date) == 50  # 60 of them on those two days: a full first page
    csv_all = signed_in.get("/ui/bounces.csv?from=2024-06-02&to=2024-06-03")
    assert csv_all.status_code == 200 and csv_all.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv_all.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(csv_all.text)))
    assert len(rows) == 60 and {r["at"][:10] for r in rows} == {"2024-06-02", "2024-06-03"}
    assert all(r["diagnostic"].startswith("'=") for r in rows)  # no formula reaches a spreadsheet
    everything = list(csv.DictReader(io.StringIO(signed_in.get("/ui/bounces.csv").text)))
    assert len(everything) == 120


def test_csv_of_every_table(account: Account, http: httpx.Client, signed_in: httpx.Client) -> None:
    _, activity_id = _seeded(http, account)
    campaigns = list(csv.DictReader(io.StringIO(signed_in.get("/ui/campaigns.csv").text)))
    assert len(campaigns) == 1 and campaigns[0]["sends"] == "15" and campaigns[0]["bounce_rate"] == "40.0"
    opens_csv = signed_in.get(f"/ui/activities/{activity_id}/contacts.csv?list=opens").text
    opens = list(csv.DictReader(io.StringIO(opens_csv)))
    assert len(opens) == 6
    contacts = list(csv.DictReader(io.StringIO(signed_in.get("/ui/contacts.csv?q=person").text)))
    assert len(contacts) == 15
    timeline = signed_in.get(f"/ui/contacts/{contacts[0]['contact_id']}/timeline.csv")
    assert timeline.status_code == 200 and "send" in timeline.text
    for path in ("/ui/bounces/unmatched.csv", "/ui/settings/tokens.csv"):
        r = signed_in.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv"), path

    # The activity page's own tables, as it shows them.
    def table(name: str) -> list[dict[str, str]]:
        r = signed_in.get(f"/ui/activities/{activity_id}/{name}.csv")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv"), name
        return list(csv.DictReader(io.StringIO(r.text)))

    api = http.get(f"/v1/activities/{activity_id}/stats", headers=account.headers).json()["counts"]
    assert {r["bounce_code"]: int(r["contacts"]) for r in table("bounce-codes")} == {
        c: api["bounces_" + c.lower()] for c in "BDFSVXZ"}
    assert sum(int(r["bounce_messages"]) for r in table("bounce-reasons")) == api["bounces"] == 6
    assert [(r["device_type"], int(r["opens"]), int(r["clicks"])) for r in table("devices")] == [
        (d, api["opens_" + d], api["clicks_" + d]) for d in ("computer", "mobile", "tablet", "other", "none")]
    assert [(r["url"], r["unique_clicks"]) for r in table("links")] == [("https://example.com/a", "2")]
    assert signed_in.get(f"/ui/activities/{activity_id}/nothing.csv").status_code in (400, 404)


def test_contact_timeline(account: Account, http: httpx.Client, signed_in: httpx.Client) -> None:
    _seeded(http, account)
    found = signed_in.get("/ui/contacts?q=person06").text
    contact_id = re.search(r'href="/ui/contacts/([0-9a-f-]{36})"', found).group(1)  # type: ignore[union-attr]
    page = signed_in.get(f"/ui/contacts/{contact_id}").text
    assert "person06@example.com" in page
    assert page.count('class="ev-') == 3  # send, open, click


def test_another_accounts_pages_are_refused(engine: Engine, account: Account, http: httpx.Client,
                                            signed_in: httpx.Client) -> None:
    stranger = make_account(engine)
    campaign_id, activity_id = _seeded(http, stranger)
    contact_id = http.get("/v1/contacts", headers=stranger.headers).json()["contacts"][0]["id"]
    for path in (f"/ui/campaigns/{campaign_id}", f"/ui/activities/{activity_id}",
                 f"/ui/activities/{activity_id}/contacts?list=sends", f"/ui/activities/{activity_id}/contacts.csv",
                 f"/ui/contacts/{contact_id}", f"/ui/contacts/{contact_id}/timeline.csv"):
        r = signed_in.get(path)
        assert r.status_code == 404 and "person" not in r.text, path
    assert "Seed 004" not in signed_in.get("/ui/campaigns").text
    assert "person" not in signed_in.get("/ui/bounces").text
    assert "person" not in signed_in.get("/ui/contacts.csv").text
    # Their token cannot be revoked from here.
    with engine.connect() as conn:
        theirs = dashboard.list_tokens(conn, stranger.id)[0].token_hash
    csrf = csrf_of(signed_in.get("/ui/settings/tokens").text)
    assert signed_in.post(f"/ui/settings/tokens/{theirs}/revoke", data={"csrf": csrf}).status_code == 404
    assert http.get("/v1/me", headers=stranger.headers).status_code == 200


def test_api_tokens_shown_once_and_revoked(engine: Engine, account: Account, http: httpx.Client,
                                           signed_in: httpx.Client) -> None:
    page = signed_in.get("/ui/settings/tokens")
    r = signed_in.post("/ui/settings/tokens", data={"csrf": csrf_of(page.text), "name": "reporting",
                                                     "scope": ["campaign_data", "contact_data"]})
    assert r.status_code == 201
    token = re.search(r'id="new-token" class="token" readonly value="(mt_[^"]+)"', r.text).group(1)  # type: ignore[union-attr]
    me = http.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json() == {"account": account.name, "scopes": ["campaign_data", "contact_data"]}
    listing = signed_in.get("/ui/settings/tokens").text
    assert "reporting" in listing and token not in listing  # shown once, never again

    bad = signed_in.post("/ui/settings/tokens", data={"csrf": csrf_of(listing), "name": "x", "scope": "root"})
    assert bad.status_code == 400

    with engine.connect() as conn:
        mine = next(t for t in dashboard.list_tokens(conn, account.id) if t.name == "reporting")
    out = signed_in.post(f"/ui/settings/tokens/{mine.token_hash}/revoke", data={"csrf": csrf_of(listing)})
    assert out.status_code == 303
    assert http.get("/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert "reporting" not in signed_in.get("/ui/settings/tokens").text


@pytest.mark.parametrize("path", [
    "/ui/activities/not-a-uuid", "/ui/activities/00000000-0000-0000-0000-000000000000", "/ui/nowhere",
    "/ui/contacts/12", "/ui/bounces?code=Q", "/ui/bounces?from=2024-13-01", "/ui/bounces?after=abc",
    "/ui/bounces?domain=%3Cscript%3E", "/ui/campaigns?sort=evil", "/ui/campaigns?page=0",
    "/ui/bounces?from=2024-06-03&to=2024-06-01",
])
def test_bad_input_is_a_clear_html_error(signed_in: httpx.Client, path: str) -> None:
    r = signed_in.get(path)
    assert r.status_code in (400, 404), (path, r.status_code)
    assert r.headers["content-type"].startswith("text/html") and "<h1>" in r.text


def test_activity_list_needs_its_parameters(account: Account, http: httpx.Client, signed_in: httpx.Client) -> None:
    _, activity_id = _seeded(http, account)
    for query in ("list=link", "list=opens_device", "list=nothing", "list=bounces&reason=bogus", "after=1.x"):
        r = signed_in.get(f"/ui/activities/{activity_id}/contacts?{query}")
        assert r.status_code == 400 and r.headers["content-type"].startswith("text/html"), query


def test_security_headers(signed_in: httpx.Client) -> None:
    r = signed_in.get("/ui/campaigns")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    static = signed_in.get("/ui/static/vendor/htmx.min.js")
    assert static.status_code == 200 and "htmx" in static.text


def test_users_see_only_their_account_after_a_write(engine: Engine, account: Account, signed_in: httpx.Client) -> None:
    with writing(engine) as conn:
        catalog.create_campaign(conn, account.id, "Made in the store")
    assert "Made in the store" in signed_in.get("/ui/campaigns").text


def test_contact_shows_each_raw_bounce_message_beside_its_parsed_fields(
        account: Account, http: httpx.Client, signed_in: httpx.Client, engine: Engine) -> None:
    from .support.mail import dsn

    _, activity_id = campaign_with_activity(http, account.headers, "Raw messages")
    post_events(http, account.headers, [{"type": "send", "activity_id": activity_id, "email": "gone@remote.example",
                                         "occurred_at": "2024-03-01T10:00:00Z"}])
    raw = dsn("gone@remote.example")
    r = http.post("/v1/bounces", content=raw, headers={**account.headers, "Content-Type": "message/rfc822"})
    assert r.status_code == 200 and r.json()["recorded"] == 1, r.text
    stranger = http.post("/v1/bounces", content=dsn("nobody@remote.example"),
                         headers={**account.headers, "Content-Type": "message/rfc822"})
    assert stranger.json()["unmatched"] == 1

    found = signed_in.get("/ui/contacts?q=gone@").text
    contact_id = re.search(r'href="/ui/contacts/([0-9a-f-]{36})"', found).group(1)  # type: ignore[union-attr]
    page = signed_in.get(f"/ui/contacts/{contact_id}").text
    assert "<h2 id=\"messages\">Bounce messages</h2>" in page
    m = re.search(r'href="#message-(\d+)">bounce message', page)
    assert m, page
    mid = m.group(1)
    section = page[page.index(f'id="message-{mid}"'):]
    assert "Read from the message" in section and "userunknown" in section and "5.1.1" in section
    assert "Recipient address rejected: User unknown" in section  # the raw text, beside
    assert "Undelivered Mail Returned to Sender" in section

    message = signed_in.get(f"/ui/messages/{mid}")
    assert message.status_code == 200 and "gone@remote.example" in message.text
    download = signed_in.get(f"/ui/messages/{mid}/raw")
    assert download.status_code == 200 and download.content == raw
    assert download.headers["content-type"].startswith("message/rfc822")

    unmatched = signed_in.get("/ui/bounces/unmatched").text
    assert "nobody@remote.example" in unmatched
    other = re.search(r'href="/ui/messages/(\d+)">message', unmatched)
    assert other and "nobody@remote.example" in signed_in.get(f"/ui/messages/{other.group(1)}").text

    # Another account's user cannot read it.
    with httpx.Client(base_url=str(signed_in.base_url), follow_redirects=False) as outsider:
        stranger_account = make_account(engine)
        assert sign_in(outsider, make_user(engine, stranger_account.name)).status_code == 303
        for path in (f"/ui/messages/{mid}", f"/ui/messages/{mid}/raw"):
            refused = outsider.get(path)
            assert refused.status_code == 404 and b"gone@remote.example" not in refused.content
        assert outsider.get("/ui/messages/abc").status_code == 404


def test_human_and_machine_figures_match_the_api(account: Account, http: httpx.Client,
                                                 signed_in: httpx.Client) -> None:
    from .tracking.support import DESKTOP, IPHONE, paths, sent_long_ago

    emails = [f"reader{i}@example.com" for i in range(3)]
    activity_id, messages = sent_long_ago(http, account.headers, emails)
    for message, agent in zip(messages, [DESKTOP, IPHONE, "python-requests/2.31"], strict=True):
        [pixel] = paths(message["html"], "o")
        assert http.get(pixel, headers={"User-Agent": agent}).status_code == 200
    api = http.get(f"/v1/activities/{activity_id}/stats", headers=account.headers).json()
    page = signed_in.get(f"/ui/activities/{activity_id}")
    shown = figures(page.text)
    for verdict in ("human", "machine"):
        assert number(shown.values[f"opens_{verdict}"]) == api["verdicts"]["opens"][verdict], verdict
        listed = signed_in.get(shown.links[f"opens_{verdict}"])
        assert table_rows(listed.text) == api["verdicts"]["opens"][verdict], verdict
    assert api["verdicts"]["opens"]["machine"] >= 1 and api["verdicts"]["opens"]["human"] >= 1
    machine = signed_in.get(shown.links["opens_machine"]).text
    assert "reader2@example.com" in machine and "bot_user_agent" in machine
    # The chart counts what opens_all counts.
    timeline = re.search(r'<script type="application/json" id="timeline-data">(.*?)</script>', page.text, re.S)
    assert timeline and sum(orjson.loads(timeline.group(1))["opens"]) == api["counts"]["opens_all"]


def test_lists_leave_out_the_machine_clicks_their_figures_do_not_count(account: Account, http: httpx.Client,
                                                                        signed_in: httpx.Client) -> None:
    """A scanner's click is a machine click (the verdict figures count it) that the default
    policy keeps out of the other counters: their lists leave it out too."""
    from .tracking.support import DESKTOP, paths, sent_long_ago

    activity_id, messages = sent_long_ago(http, account.headers, ["person@example.com", "scanned@example.com"])
    for message, agent in zip(messages, [DESKTOP, "python-requests/2.31"], strict=True):
        click = paths(message["html"], "c")[1]  # the sale ([0] is the hidden honeypot)
        assert http.get(click, headers={"User-Agent": agent}).status_code in (302, 303, 307)
    api = http.get(f"/v1/activities/{activity_id}/stats", headers=account.headers).json()
    assert api["verdicts"]["clicks"] == {"human": 1, "machine": 1} and api["counts"]["clicks"] == 1
    page = signed_in.get(f"/ui/activities/{activity_id}").text
    shown = figures(page)
    for name in ("clicks", "clicks_computer", "clicks_other", "clicks_human", "clicks_machine"):
        listed = signed_in.get(shown.links[name]).text
        assert table_rows(listed) == number(shown.values[name]) == api["counts"].get(
            name, api["verdicts"]["clicks"].get(name.removeprefix("clicks_"))), name
        assert ("scanned@example.com" in listed) == (name == "clicks_machine"), name
    link = re.search(r'<a href="([^"]+list=link[^"]*)" data-link="[^"]+">1</a>', page)
    assert link, "the link's figure"
    listed = signed_in.get(link.group(1).replace("&amp;", "&")).text
    assert table_rows(listed) == 1 and "scanned@example.com" not in listed


def test_the_demo_has_human_and_machine_hits_and_each_list_holds_its_figure(tmp_path: Path) -> None:
    """``make run``'s demo records its opens and clicks as the tracking links do (judged), so the
    human and machine cards have figures; every figure's list holds as many contacts."""
    from mailtally.demo import ensure_demo
    from mailtally.store import migrate
    from mailtally.store.db import open_engine
    from mailtally.store.summaries import link_clicks
    from mailtally.web.campaigns import _figure_total

    engine = open_engine(f"sqlite:///{tmp_path / 'demo.db'}")
    migrate.upgrade(engine)
    ensure_demo(engine)
    lists = [dashboard.ListFilter(k) for k in ("sends", "delivered", "opens", "did_not_open", "clicks", "forwards",
                                               "optouts", "abuse", "bounces")]
    lists += [dashboard.ListFilter(k, device=d) for k in ("opens_device", "clicks_device")
              for d in ("mobile", "computer", "tablet", "other", "none")]
    lists += [dashboard.ListFilter(k, verdict=v) for k in ("opens_verdict", "clicks_verdict")
              for v in ("human", "machine")]
    with engine.connect() as conn:
        account = conn.execute(select(accounts.c.id).where(accounts.c.name == "demo")).scalar_one()
        for activity in conn.execute(select(activities).where(activities.c.account_id == account)).all():
            c = dashboard.activity_counters_row(conn, account, activity.id)
            assert min(c["opens_human"], c["opens_machine"], c["clicks_human"], c["clicks_machine"]) > 0, c
            assert c["clicks_machine"] > 0 and c["clicks"] == c["clicks_human"]  # scanners' clicks not counted
            for f in lists:
                rows = dashboard.activity_contacts(conn, account, activity.num_id, f, limit=None)
                assert len(rows) == _figure_total(c, f), (activity.id, f)
            for lc in link_clicks(conn, account, activity.id):
                rows = dashboard.activity_contacts(conn, account, activity.num_id,
                                                   dashboard.ListFilter("link", url_ids=(lc.url_id,)), limit=None)
                assert len(rows) == lc.unique_clicks
        # A later campaign is never sent to an address the list suppressed: no send-time "suppressed" bounce.
        assert conn.execute(select(func.count()).select_from(events).where(
            events.c.account_id == account, events.c.reason == "suppressed")).scalar_one() == 0
    engine.dispose()


def test_a_campaigns_activities_link_their_figures_and_export(account: Account, http: httpx.Client,
                                                              signed_in: httpx.Client) -> None:
    campaign_id, activity_id = _seeded(http, account)
    second = http.post(f"/v1/campaigns/{campaign_id}/activities", json={"subject": "Resend"},
                       headers=account.headers).json()["id"]
    post_events(http, account.headers, [{"type": "send", "activity_id": second, "email": "late@example.com",
                                         "occurred_at": "2024-05-03T10:00:00Z"}])
    page = signed_in.get(f"/ui/campaigns/{campaign_id}").text
    for act, list_name, n in ((activity_id, "sends", 15), (activity_id, "bounces", 6), (second, "sends", 1)):
        href = f"/ui/activities/{act}/contacts?list={list_name}"
        assert f'<a href="{href}">{n}</a>' in page, (act, list_name)
        assert table_rows(signed_in.get(href).text) == n
    rows = list(csv.DictReader(io.StringIO(signed_in.get(f"/ui/campaigns/{campaign_id}/activities.csv").text)))
    assert sorted((r["activity_id"], r["sends"]) for r in rows) == sorted([(activity_id, "15"), (second, "1")])
