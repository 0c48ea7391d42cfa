"""The tracking endpoints and the toolkit over a real HTTP server, on SQLite and PostgreSQL."""

from __future__ import annotations

import html as htmllib
import re

import httpx
from sqlalchemy import Engine, select

from mailtally.store.db import writing
from mailtally.store.schema import activities, contacts, events
from mailtally.store.tracking_keys import load_keyring, rotate
from mailtally.tracking.tokens import HitRef, Kind
from tests.conftest import TEST_SECRET, Account
from tests.support.scenario import campaign_with_activity

from .support import DESKTOP, HTML, IPHONE, paths, render, rolled_up, sent_long_ago, stats

GIF = b"GIF89a"


def _num(engine: Engine, account: Account, activity_id: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(activities.c.num_id).where(
            activities.c.account_id == account.id, activities.c.id == activity_id)).scalar_one())


def _log(http: httpx.Client, engine: Engine, account: Account, activity_id: str,
         type_: str) -> list[tuple[str | None, ...]]:
    rolled_up(http, account.headers, activity_id)
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(events.c.verdict, events.c.verdict_why, events.c.device_type, events.c.user_agent, events.c.ip,
                   events.c.url_id, events.c.optout_source, events.c.optout_reason)
            .where(events.c.account_id == account.id, events.c.activity_num == _num(engine, account, activity_id),
                   events.c.type == type_).order_by(events.c.id))]


def test_render_rewrites_links_registers_them_once_and_adds_headers(http: httpx.Client, account: Account) -> None:
    _, activity = campaign_with_activity(http, account.headers)
    first = render(http, account.headers, activity, ["ann@example.com", "bob@example.com"], record_send=True)
    again = render(http, account.headers, activity, ["cy@example.com"])
    links = http.get(f"/v1/activities/{activity}/links", headers=account.headers).json()["links"]
    by_url = {link["url"]: link["url_id"] for link in links}
    assert set(by_url) >= {"https://shop.example.com/sale?utm=mail&x=1", "https://shop.example.com/new"}
    assert "https://shop.example.com/private" not in by_url  # data-mailtally="off"
    assert len(links) == 3  # two distinct URLs (the sale twice, in both bodies) and the honeypot
    for m in [*first, *again]:
        body, text = m["html"], m["text"]
        assert "shop.example.com/sale" not in body and "shop.example.com/new" not in body
        assert 'href="https://shop.example.com/private"' in body and 'href="mailto:help@example.com"' in body
        assert len(paths(body, "c")) == 4  # three links and the hidden honeypot
        pixel = body.index("/t/o/")
        assert pixel < body.index("</body>") and body.count("/t/o/") == 1
        assert "{{" not in body and "{{" not in text and len(paths(text, "u")) == 1 and len(paths(body, "f")) == 1
        assert len(paths(text, "c")) == 1
        h = m["headers"]
        assert h["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert re.fullmatch(r"<http://[^>]+/t/u/[\w-]+>, <mailto:unsubscribe\+mt[a-z2-7]+@[^>]+>",
                            h["List-Unsubscribe"])
        assert h["Return-Path"].startswith("<bounces+mt") and h["X-Mailtally-Id"].startswith("mt")
        assert m["email"] not in body + text + str(h)  # no address in clear anywhere
    # The same URL gets the same signed link for one recipient, whichever body it is in.
    assert paths(first[0]["text"], "c")[0] == paths(first[0]["html"], "c")[1]
    assert stats(http, account.headers, activity)["counts"]["sends"] == 2  # record_send only the first time


def test_render_ndjson_streams_a_line_per_recipient(http: httpx.Client, account: Account) -> None:
    _, activity = campaign_with_activity(http, account.headers)
    emails = [f"p{i}@example.com" for i in range(50)]
    body = "\n".join(['{"text": "Hi https://example.org/x {{forward_url}}", "record_send": true}',
                      *[f'{{"email": "{e}"}}' for e in emails]])
    with http.stream("POST", f"/v1/activities/{activity}/messages", content=body,
                     headers={**account.headers, "Content-Type": "application/x-ndjson"}) as r:
        assert r.status_code == 200 and r.headers["content-type"] == "application/x-ndjson"
        lines = [line for line in r.iter_lines() if line]
    import json

    got = [json.loads(line) for line in lines]
    assert [g["email"] for g in got] == emails and all(g["html"] is None for g in got)
    assert stats(http, account.headers, activity)["counts"]["sends"] == 50


def test_render_takes_more_than_a_megabyte(http: httpx.Client, account: Account) -> None:
    """100,000 recipients over NDJSON are 3-4 MB: the route's body limit is the batches' one, not
    the 1 MB of other requests."""
    _, activity = campaign_with_activity(http, account.headers)
    head = '{"text": "Hi https://example.org/x ' + "x" * 1_500_000 + '"}'
    r = http.post(f"/v1/activities/{activity}/messages", content=head + '\n{"email": "big@example.com"}',
                  headers={**account.headers, "Content-Type": "application/x-ndjson"})
    assert r.status_code == 200, r.text[:300]


def test_render_bad_input_records_nothing(http: httpx.Client, account: Account, other_account: Account) -> None:
    _, activity = campaign_with_activity(http, account.headers)
    url = f"/v1/activities/{activity}/messages"
    r = http.post(url, headers=account.headers, json={"html": HTML, "record_send": True, "recipients": [
        {"email": "ok@example.com"}, {"contact_id": "01234567-89ab-7def-8123-456789abcdef"}, {"email": "nope"}]})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_recipients"
    assert {d["index"] for d in r.json()["error"]["details"]} == {2}
    r = http.post(url, headers=account.headers, json={"html": HTML, "record_send": True, "recipients": [
        {"email": "ok@example.com"}, {"contact_id": "01234567-89ab-7def-8123-456789abcdef"}]})
    assert r.status_code == 400 and r.json()["error"]["details"][0]["index"] == 1
    for bad in ({"recipients": [{"email": "a@example.com"}]}, {"html": "x", "recipients": []},
                {"html": "x", "recipients": [{"email": "a@example.com"}], "extra": 1}):
        r = http.post(url, headers=account.headers, json=bad)
        assert r.status_code == 400, (bad, r.text)
    assert http.post(url, headers=account.headers, content=b"{nope").status_code == 400
    assert http.post(url, headers=other_account.headers, json={"html": "x", "recipients": [
        {"email": "a@example.com"}]}).status_code == 404  # another account's activity
    assert http.post(url, json={"html": "x", "recipients": []}).status_code == 401
    assert stats(http, account.headers, activity)["counts"]["sends"] == 0
    assert http.get(f"/v1/activities/{activity}/links", headers=account.headers).json()["links"] == []


def test_pixel_counts_a_valid_hit_and_blanks_everything_else(http: httpx.Client, account: Account,
                                                             engine: Engine) -> None:
    activity, msgs = sent_long_ago(http, account.headers, ["ann@example.com"])
    pixel = paths(msgs[0]["html"], "o")[0]
    r = http.get(pixel, headers={"User-Agent": IPHONE})
    assert r.status_code == 200 and r.content.startswith(GIF) and r.headers["content-type"] == "image/gif"
    assert "no-store" in r.headers["cache-control"]
    token = pixel.rsplit("/", 1)[1]
    for bad in (token[:-2], token[:-1] + ("A" if token[-1] != "A" else "B"), "x", "A" * 300, token + token,
                paths(msgs[0]["html"], "c")[1].rsplit("/", 1)[1]):  # a click token is no pixel
        r = http.get(f"/t/o/{bad}", headers={"User-Agent": IPHONE})
        assert r.status_code == 200 and r.content.startswith(GIF), bad
    assert http.get(pixel + "/more").status_code == 404
    s = stats(http, account.headers, activity)
    assert (s["counts"]["opens"], s["counts"]["opens_all"], s["counts"]["opens_mobile"]) == (1, 1, 1)
    assert s["verdicts"]["opens"] == {"human": 1, "machine": 0}
    [(verdict, why, device, ua, ip, *_)] = _log(http, engine, account, activity, "open")
    assert (verdict, why, device, ua, ip) == ("human", "no_signal", "mobile", IPHONE, "127.0.0.0")  # IP cut to /24
    # The same token again is another open (people reopen mail): counted as such, the unique count stays.
    http.get(pixel, headers={"User-Agent": IPHONE})
    s = stats(http, account.headers, activity)
    assert (s["counts"]["opens"], s["counts"]["opens_all"]) == (1, 2)


def test_click_redirects_only_to_registered_urls(http: httpx.Client, account: Account, other_account: Account,
                                                 engine: Engine) -> None:
    activity, msgs = sent_long_ago(http, account.headers, ["ann@example.com"])
    click = paths(msgs[0]["html"], "c")[1]
    r = http.get(click, headers={"User-Agent": DESKTOP})
    assert r.status_code == 302 and r.headers["location"] == "https://shop.example.com/sale?utm=mail&x=1"
    token = click.rsplit("/", 1)[1]
    ring = _ring(engine)
    num = _num(engine, account, activity)
    contact = 1
    forged = [token[:-3], token[:10], token[:-1] + ("A" if token[-1] != "A" else "B"), "", "%2e%2e",
              "aHR0cHM6Ly9ldmlsLmV4YW1wbGU", paths(msgs[0]["html"], "o")[0].rsplit("/", 1)[1],
              # validly signed, but for a link the activity never registered
              ring.sign(HitRef(Kind.CLICK, account.id, num, contact, "999")),
              # validly signed, naming another account with this activity's number and link
              ring.sign(HitRef(Kind.CLICK, other_account.id, num, contact, "1"))]
    for bad in forged:
        r = http.get(f"/t/c/{bad}", headers={"User-Agent": DESKTOP})
        assert r.status_code == 404 and "location" not in r.headers, bad
        assert "text/html" in r.headers["content-type"]
    assert http.get(f"/t/c/{token}?url=https://evil.example.com", headers={"User-Agent": DESKTOP}).headers[
        "location"].startswith(
        "https://shop.example.com/")
    assert http.post(click).status_code == 405
    s = stats(http, account.headers, activity)
    assert (s["counts"]["clicks"], s["counts"]["clicks_all"], s["counts"]["clicks_computer"]) == (1, 2, 2)
    links = {x["url_id"]: x for x in http.get(f"/v1/activities/{activity}/links", headers=account.headers)
             .json()["links"]}
    assert "1" in links
    assert http.get(f"/v1/activities/{activity}/stats", headers=other_account.headers).status_code == 404


def _ring(engine: Engine):  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return load_keyring(conn, TEST_SECRET.encode())


def test_unsubscribe_get_changes_nothing_post_records_once(http: httpx.Client, account: Account,
                                                           engine: Engine) -> None:
    activity, msgs = sent_long_ago(http, account.headers, ["ann@example.com", "bob@example.com", "cy@example.com"])
    ann, bob, cy = (paths(m["html"], "u")[0] for m in msgs)
    header_url = msgs[0]["headers"]["List-Unsubscribe"].split(">")[0][1:]
    assert header_url.endswith(ann)
    for url in (ann, bob, cy):  # a scanner fetches every link: nothing happens
        r = http.get(url)
        assert r.status_code == 200 and "<form" in r.text and 'method="post"' in r.text
        assert http.head(url).status_code == 200
    assert stats(http, account.headers, activity)["counts"]["optouts"] == 0
    # RFC 8058 one-click, urlencoded, no cookies: recorded at once, answered without a redirect.
    r = http.post(ann, content=b"List-Unsubscribe=One-Click",
                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200 and "location" not in r.headers
    assert stats(http, account.headers, activity)["counts"]["optouts"] == 1
    # The same again, multipart this time: still one opt-out.
    r = http.post(ann, files={"List-Unsubscribe": (None, "One-Click")})
    assert r.status_code == 200
    r = http.post(bob, files={"List-Unsubscribe": (None, "One-Click")})  # multipart for another recipient
    assert r.status_code == 200
    # The page's button, with a reason.
    r = http.post(cy, data={"confirm": "yes", "reason": "Too many emails"})
    assert r.status_code == 200 and "unsubscribed" in r.text
    # A POST with neither changes nothing.
    assert http.post(cy.replace(cy, paths(msgs[0]["html"], "u")[0]), data={"other": "1"}).status_code == 400
    assert stats(http, account.headers, activity)["counts"]["optouts"] == 3
    rows = _log(http, engine, account, activity, "optout")
    assert [(r[6], r[7]) for r in rows] == [("one_click", None), ("one_click", None), ("page", "Too many emails")]
    assert http.get("/t/u/forged").status_code == 404
    assert http.post("/t/u/forged", content=b"List-Unsubscribe=One-Click").status_code == 404


def test_forward_page_keeps_the_friend_for_the_sender(http: httpx.Client, account: Account,
                                                      other_account: Account) -> None:
    activity, msgs = sent_long_ago(http, account.headers, ["ann@example.com"])
    fwd = paths(msgs[0]["html"], "f")[0]
    r = http.get(fwd)
    assert r.status_code == 200 and 'name="friend_email"' in r.text
    assert stats(http, account.headers, activity)["counts"]["forwards"] == 0
    r = http.post(fwd, data={"friend_email": "not an address"})
    assert r.status_code == 400 and "does not look like" in htmllib.unescape(r.text)
    for _ in range(2):
        assert http.post(fwd, data={"friend_email": "Friend@Example.org"}).status_code == 200
    assert http.post(fwd, data={"friend_email": "second@example.org"}).status_code == 200
    assert stats(http, account.headers, activity)["counts"]["forwards"] == 2
    listed = http.get(f"/v1/activities/{activity}/forwards", headers=account.headers).json()["forwards"]
    assert [(f["email"], f["friend_email"]) for f in listed] == [("ann@example.com", "friend@example.org"),
                                                                 ("ann@example.com", "second@example.org")]
    assert http.get(f"/v1/activities/{activity}/forwards", headers=other_account.headers).status_code == 404
    assert http.get("/t/f/forged").status_code == 404


def test_tokens_keep_working_after_a_key_rotation(http: httpx.Client, account: Account, engine: Engine) -> None:
    activity, before = sent_long_ago(http, account.headers, ["ann@example.com"])
    with writing(engine) as conn:
        rotate(conn)
    after = render(http, account.headers, activity, ["ann@example.com"])
    old, new = paths(before[0]["html"], "c")[1], paths(after[0]["html"], "c")[1]
    assert old != new
    assert _ring(engine).key_id(new.rsplit("/", 1)[1]) == _ring(engine).current
    for url in (old, new):
        assert http.get(url, headers={"User-Agent": DESKTOP}).status_code == 302
    assert stats(http, account.headers, activity)["counts"]["clicks_all"] == 2


def test_click_targets_cannot_split_headers_or_leave_http(http: httpx.Client, account: Account,
                                                         engine: Engine) -> None:
    activity, _ = sent_long_ago(http, account.headers, ["ann@example.com"])
    r = http.put(f"/v1/activities/{activity}/links", headers=account.headers, json=[
        {"url_id": "1", "url": "https://shop.example.com/a b\r\nSet-Cookie: x=1"},
        {"url_id": "2", "url": "javascript:alert(1)"}])
    assert r.status_code == 200
    ring = _ring(engine)
    num = _num(engine, account, activity)
    with engine.connect() as conn:
        contact = int(conn.execute(select(contacts.c.num_id).where(
            contacts.c.account_id == account.id, contacts.c.email == "ann@example.com")).scalar_one())
    split = http.get(f"/t/c/{ring.sign(HitRef(Kind.CLICK, account.id, num, contact, '1'))}",
                     headers={"User-Agent": DESKTOP})
    assert split.status_code == 302 and "set-cookie" not in split.headers
    assert split.headers["location"] == "https://shop.example.com/a%20b%0D%0ASet-Cookie:%20x=1"
    js = http.get(f"/t/c/{ring.sign(HitRef(Kind.CLICK, account.id, num, contact, '2'))}")
    assert js.status_code == 404 and "location" not in js.headers
