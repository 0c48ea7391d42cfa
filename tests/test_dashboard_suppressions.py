"""The dashboard's suppressions page and the contact's suppression state, checked against
``/v1/suppressions`` on SQLite and PostgreSQL: the same list, the same entries after a change
made on either side, the same CSV import rules."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import Engine

from mailtally.store import outbox
from mailtally.store.db import writing
from mailtally.vocab import WebhookEvent

from .conftest import Account, make_account
from .support.dashboard import csrf_of, figures, make_user, number, sign_in
from .support.scenario import campaign_with_activity, post_events, seed_004


def _api_list(http: httpx.Client, account: Account, **params: str) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    cursor = None
    while True:
        q = {**params, "limit": "500", **({"cursor": cursor} if cursor else {})}
        body = http.get("/v1/suppressions", params=q, headers=account.headers).json()
        out += body["suppressions"]
        cursor = body.get("next")
        if not cursor:
            return out


def _listed(html: str) -> set[str]:
    return set(re.findall(r'<tr data-suppressed="([^"]+)">', html))


def _every_page(client: httpx.Client, path: str) -> set[str]:
    """The addresses on this page and on every page its "More" links lead to."""
    seen: set[str] = set()
    while path:
        text = client.get(path).text
        seen |= _listed(text)
        more = re.search(r'rel="next" href="([^"]+)"', text)
        path = more.group(1).replace("&amp;", "&") if more else ""
    return seen


def _seeded(http: httpx.Client, account: Account) -> str:
    _, activity_id = campaign_with_activity(http, account.headers, "Seed 004")
    post_events(http, account.headers, seed_004(activity_id))
    return activity_id


def _contact_id(signed_in: httpx.Client, email: str) -> str:
    found = signed_in.get(f"/ui/contacts?q={email}").text
    m = re.search(r'href="/ui/contacts/([0-9a-f-]{36})"', found)
    assert m, found
    return m.group(1)


def test_the_list_and_its_figures_match_the_api(account: Account, http: httpx.Client,
                                                signed_in: httpx.Client) -> None:
    _seeded(http, account)
    for i in range(60):  # more than a page
        assert http.put(f"/v1/suppressions/hand{i:02d}@example.net", json={"note": f"n{i}"},
                        headers=account.headers).status_code == 200
    api = _api_list(http, account)
    reasons = {str(s["reason"]) for s in api}
    assert {"hard_bounce", "optout", "manual"} <= reasons  # the B bounce and the opt-out of seed 004

    page = signed_in.get("/ui/suppressions")
    assert page.status_code == 200
    shown = figures(page.text)
    assert number(shown.values["suppressions"]) == len(api) == 62
    for reason in reasons:
        expected = _api_list(http, account, reason=reason)
        assert number(shown.values[f"suppressions_{reason}"]) == len(expected), reason
        assert _every_page(signed_in, shown.links[f"suppressions_{reason}"]) == {str(s["email"]) for s in expected}
    assert len(_listed(page.text)) == 50
    assert _every_page(signed_in, "/ui/suppressions") == {str(s["email"]) for s in api}

    searched = signed_in.get("/ui/suppressions?q=hand0").text
    assert _listed(searched) == {f"hand0{i}@example.net" for i in range(10)} \
        == {str(s["email"]) for s in _api_list(http, account, q="hand0")}
    # The address of a contact links to that contact's page.
    bounced = signed_in.get("/ui/suppressions?reason=hard_bounce").text
    assert re.search(r'<a href="/ui/contacts/[0-9a-f-]{36}">person00@example.com</a>', bounced)


def test_add_and_remove_by_hand(engine: Engine, account: Account, http: httpx.Client,
                                signed_in: httpx.Client) -> None:
    with writing(engine) as conn:
        sub = outbox.create_subscription(conn, account.id, "https://hooks.example.com/in",
                                         [WebhookEvent.SUPPRESSION_ADDED, WebhookEvent.SUPPRESSION_REMOVED],
                                         "whsec_" + "A" * 32, "")
    csrf = csrf_of(signed_in.get("/ui/suppressions").text)
    until = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%d")
    r = signed_in.post("/ui/suppressions", data={"csrf": csrf, "email": " Ann@Example.COM ", "reason": "manual",
                                                 "note": "asked by phone", "expires": until})
    assert r.status_code == 303
    assert r.headers["location"] == "/ui/suppressions?q=ann%40example.com&added=ann%40example.com"
    entry = http.get("/v1/suppressions/ann@example.com", headers=account.headers).json()
    assert entry["reason"] == "manual" and entry["note"] == "asked by phone"
    assert entry["expires_at"].startswith(until)
    page = signed_in.get(r.headers["location"]).text
    assert "ann@example.com is suppressed." in page and _listed(page) == {"ann@example.com"}

    # An address the API suppressed is removed here, and the API no longer has it.
    assert http.put("/v1/suppressions/bob@example.com", headers=account.headers).status_code == 200
    r = signed_in.post("/ui/suppressions/remove", data={"csrf": csrf, "email": "bob@example.com"})
    assert r.status_code == 303
    assert http.get("/v1/suppressions/bob@example.com", headers=account.headers).status_code == 404
    again = signed_in.post("/ui/suppressions/remove", data={"csrf": csrf, "email": "bob@example.com"})
    assert again.status_code == 404 and "not on the suppression list of this account" in again.text

    # Subscribers heard of each change, as they do of the API's.
    with engine.connect() as conn:
        sent = [(d.event_type, d.payload) for d in outbox.deliveries(conn, account.id, subscription_id=sub.id,
                                                                      state=None, before=None, limit=10)]
    kinds = [k for k, _ in sent]
    assert kinds.count("suppression.added") == 2 and kinds.count("suppression.removed") == 1
    removed = next(p for k, p in sent if k == "suppression.removed")
    assert '"removed_by":"dashboard"' in removed and "bob@example.com" in removed


@pytest.mark.parametrize("fields, message", [
    ({"email": "not an address"}, "is not an email address"),
    ({"email": "x@example.com", "reason": "whim"}, "Choose one of the reasons"),
    ({"email": "x@example.com", "expires": "2001-01-01"}, "must be after today"),
    ({"email": "x@example.com", "expires": "someday"}, "is not a date"),
    ({"email": "x@example.com", "note": "n" * 2001}, "longer than 2,000"),
])
def test_bad_additions_change_nothing(account: Account, http: httpx.Client, signed_in: httpx.Client,
                                      fields: dict[str, str], message: str) -> None:
    csrf = csrf_of(signed_in.get("/ui/suppressions").text)
    r = signed_in.post("/ui/suppressions", data={"csrf": csrf, **fields})
    assert r.status_code == 400 and message in r.text and 'role="alert"' in r.text
    assert _api_list(http, account) == []


def test_changes_need_the_csrf_token(account: Account, http: httpx.Client, signed_in: httpx.Client) -> None:
    assert http.put("/v1/suppressions/kept@example.com", headers=account.headers).status_code == 200
    for path, data in (("/ui/suppressions", {"email": "new@example.com"}),
                       ("/ui/suppressions/remove", {"email": "kept@example.com"})):
        for token in ({}, {"csrf": "forged"}):
            r = signed_in.post(path, data={**data, **token})
            assert r.status_code == 403 and "CSRF" in r.text, path
    r = signed_in.post("/ui/suppressions/import", data={"csrf": "forged"},
                       files={"file": ("a.csv", b"email\nnew@example.com\n", "text/csv")})
    assert r.status_code == 403
    assert [s["email"] for s in _api_list(http, account)] == ["kept@example.com"]


def test_import_and_export(account: Account, http: httpx.Client, signed_in: httpx.Client) -> None:
    csrf = csrf_of(signed_in.get("/ui/suppressions").text)
    good = ("\ufeffemail,reason,expires_at,note\n"
            "one@example.com,,,\n"
            "TWO@example.com,complaint,,=cmd|' /C calc'!A0\n"
            "three@example.com,manual,2999-01-01T00:00:00Z,until the year 2999\n").encode()
    r = signed_in.post("/ui/suppressions/import", data={"csrf": csrf},
                       files={"file": ("list.csv", good, "text/csv")})
    assert r.status_code == 200 and "Imported list.csv: 3 rows read, 3 entries added or changed." in r.text
    api = {str(s["email"]): s for s in _api_list(http, account)}
    assert set(api) == {"one@example.com", "two@example.com", "three@example.com"}
    assert api["one@example.com"]["reason"] == "import" and api["two@example.com"]["reason"] == "complaint"
    assert str(api["three@example.com"]["expires_at"]).startswith("2999-01-01")

    # A bad line refuses the whole file, naming the line, as the API does.
    bad = b"email,reason\nfour@example.com,manual\nfive@example.com,whim\n"
    r = signed_in.post("/ui/suppressions/import", data={"csrf": csrf}, files={"file": ("bad.csv", bad, "text/csv")})
    assert r.status_code == 400 and "Nothing was imported: bad.csv, line 3: reason &#39;whim&#39;" in r.text
    via_api = http.post("/v1/suppressions/import", content=bad, headers={**account.headers,
                                                                          "Content-Type": "text/csv"})
    assert via_api.status_code == 400 and via_api.json()["error"]["details"]["line"] == 3
    r = signed_in.post("/ui/suppressions/import", data={"csrf": csrf},
                       files={"file": ("latin1.csv", "email\nzoë@example.com\n".encode("latin-1"), "text/csv")})
    assert r.status_code == 400 and "line 2: not UTF-8" in r.text
    assert set(str(s["email"]) for s in _api_list(http, account)) == set(api)
    r = signed_in.post("/ui/suppressions/import", data={"csrf": csrf})
    assert r.status_code == 400 and "Choose a CSV file" in r.text

    # The export: the API's entries, in the columns an import reads; formulas defused.
    exported = signed_in.get("/ui/suppressions.csv")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    theirs = list(csv.DictReader(io.StringIO(http.get("/v1/suppressions/export", headers=account.headers).text)))
    assert [r["email"] for r in rows] == [r["email"] for r in theirs] == sorted(api)
    assert [r["reason"] for r in rows] == [r["reason"] for r in theirs]
    assert [r["expires_at"][:10] for r in rows] == [r["expires_at"][:10] for r in theirs]
    assert next(r for r in rows if r["email"] == "two@example.com")["note"].startswith("'=")
    assert list(rows[0]) == ["email", "reason", "suppressed_at", "expires_at", "note"]


def test_contact_page_shows_and_changes_the_suppression(account: Account, http: httpx.Client,
                                                        signed_in: httpx.Client) -> None:
    _seeded(http, account)
    hard = _contact_id(signed_in, "person00@")  # its B bounce suppressed it
    page = signed_in.get(f"/ui/contacts/{hard}").text
    state = re.search(r'<dd id="suppression-state">(.*?)</dd>', page, re.S)
    assert state and "Suppressed" in state.group(1) and "hard_bounce" in state.group(1)
    assert http.get("/v1/suppressions/person00@example.com", headers=account.headers).json()["reason"] \
        == "hard_bounce"

    r = signed_in.post("/ui/suppressions/remove", data={"csrf": csrf_of(page), "email": "person00@example.com",
                                                        "next": f"/ui/contacts/{hard}"})
    assert r.status_code == 303 and r.headers["location"] == f"/ui/contacts/{hard}"
    assert http.get("/v1/suppressions/person00@example.com", headers=account.headers).status_code == 404
    page = signed_in.get(f"/ui/contacts/{hard}").text
    assert "Not suppressed" in page

    r = signed_in.post("/ui/suppressions", data={"csrf": csrf_of(page), "email": "person00@example.com",
                                                 "reason": "manual", "next": "https://evil.example/"})
    assert r.status_code == 303 and r.headers["location"].startswith("/ui/suppressions")  # never off-site
    assert http.get("/v1/suppressions/person00@example.com", headers=account.headers).json()["reason"] == "manual"
    assert "(manual)" in signed_in.get(f"/ui/contacts/{hard}").text

    opener = _contact_id(signed_in, "person06@")
    assert "Not suppressed" in signed_in.get(f"/ui/contacts/{opener}").text


def test_another_accounts_list_is_not_seen_or_changed(engine: Engine, account: Account, http: httpx.Client,
                                                      signed_in: httpx.Client) -> None:
    stranger = make_account(engine)
    assert http.put("/v1/suppressions/theirs@example.com", json={"note": "secret note"},
                    headers=stranger.headers).status_code == 200
    page = signed_in.get("/ui/suppressions").text
    assert "theirs@example.com" not in page and "secret note" not in page
    assert number(figures(page).values["suppressions"]) == 0
    assert "theirs@example.com" not in signed_in.get("/ui/suppressions.csv").text
    assert "theirs@example.com" not in signed_in.get("/ui/suppressions?q=theirs").text
    r = signed_in.post("/ui/suppressions/remove", data={"csrf": csrf_of(page), "email": "theirs@example.com"})
    assert r.status_code == 404
    assert http.get("/v1/suppressions/theirs@example.com", headers=stranger.headers).status_code == 200

    # Their user sees theirs, and not ours.
    assert http.put("/v1/suppressions/ours@example.com", headers=account.headers).status_code == 200
    with httpx.Client(base_url=str(signed_in.base_url), follow_redirects=False) as outsider:
        assert sign_in(outsider, make_user(engine, stranger.name)).status_code == 303
        theirs = outsider.get("/ui/suppressions").text
        assert _listed(theirs) == {"theirs@example.com"}


@pytest.mark.parametrize("path", ["/ui/suppressions?reason=whim", "/ui/suppressions?q=%00",
                                  "/ui/suppressions?q=" + "x" * 400])
def test_bad_parameters_are_clear_html_errors(signed_in: httpx.Client, path: str) -> None:
    r = signed_in.get(path)
    assert r.status_code == 400 and r.headers["content-type"].startswith("text/html") and "<h1>" in r.text


def test_needs_sign_in(browser_like: httpx.Client) -> None:
    for path in ("/ui/suppressions", "/ui/suppressions.csv"):
        assert browser_like.get(path).status_code == 303
    assert browser_like.post("/ui/suppressions", data={"email": "a@example.com"}).status_code == 303
