"""/v1/suppressions over HTTP: the list, the check, CSV in and out, the policy."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import httpx

from .conftest import Account
from .support.scenario import campaign_with_activity, post_events

CSV = {"Content-Type": "text/csv"}
NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(days=7)


def day(n: int, minute: int = 0) -> str:
    """A recent time: soft suppressions made from it have not expired yet."""
    return (NOW + timedelta(days=n, minutes=minute)).isoformat().replace("+00:00", "Z")


def test_put_get_list_delete(http: httpx.Client, account: Account, other_account: Account) -> None:
    h = account.headers
    r = http.put("/v1/suppressions/Ann@Example.com", json={"note": "asked by phone"}, headers=h)
    assert r.status_code == 200 and r.json()["reason"] == "manual" and r.json()["email"] == "ann@example.com"
    http.put("/v1/suppressions/bob@example.com", json={"reason": "complaint"}, headers=h)
    assert http.get("/v1/suppressions/ann@example.com", headers=h).json()["note"] == "asked by phone"
    listed = http.get("/v1/suppressions", headers=h).json()["suppressions"]
    assert [e["email"] for e in listed] == ["ann@example.com", "bob@example.com"]
    by_reason = http.get("/v1/suppressions", params={"reason": "complaint"}, headers=h).json()["suppressions"]
    assert [e["email"] for e in by_reason] == ["bob@example.com"]
    found = http.get("/v1/suppressions", params={"q": "ANN@"}, headers=h).json()["suppressions"]
    assert [e["email"] for e in found] == ["ann@example.com"]
    # Keyset pages: one at a time, with an opaque cursor.
    first = http.get("/v1/suppressions", params={"limit": 1}, headers=h).json()
    second = http.get("/v1/suppressions", params={"limit": 1, "cursor": first["next"]}, headers=h).json()
    assert [e["email"] for e in first["suppressions"] + second["suppressions"]] == ["ann@example.com",
                                                                                    "bob@example.com"]
    assert http.get("/v1/suppressions", params={"cursor": "forged"}, headers=h).json()["error"]["code"] == "bad_cursor"
    # Another account sees nothing and cannot remove anything.
    assert http.get("/v1/suppressions", headers=other_account.headers).json()["suppressions"] == []
    assert http.delete("/v1/suppressions/ann@example.com", headers=other_account.headers).status_code == 404
    assert http.delete("/v1/suppressions/ann@example.com", headers=h).status_code == 204
    assert http.get("/v1/suppressions/ann@example.com", headers=h).status_code == 404
    assert http.delete("/v1/suppressions/ann@example.com", headers=h).status_code == 404


def test_bad_input_gets_v1_errors(http: httpx.Client, account: Account) -> None:
    h = account.headers
    for r in (
        http.put("/v1/suppressions/not-an-address", headers=h),
        http.put("/v1/suppressions/a@example.com", json={"reason": "because"}, headers=h),
        http.put("/v1/suppressions/a@example.com", json={"extra": 1}, headers=h),
        http.get("/v1/suppressions", params={"reason": "nope"}, headers=h),
        http.post("/v1/suppressions/check", json={"emails": "a@example.com"}, headers=h),
        http.put("/v1/suppressions/policy", json={"soft_count": -1}, headers=h),
        http.put("/v1/suppressions/policy", content=b"[1", headers=h),
    ):
        assert r.status_code == 400, r.text
        assert set(r.json()["error"]) >= {"code", "message"}
    assert http.get("/v1/suppressions", headers={}).status_code == 401


def test_check_100k_addresses_in_one_call(http: httpx.Client, account: Account) -> None:
    h = account.headers
    rows = "email,reason\n" + "".join(f"user{i}@example.com,import\n" for i in range(0, 100_000, 97))
    assert http.post("/v1/suppressions/import", content=rows, headers={**h, **CSV}).status_code == 200
    emails = [f"USER{i}@example.com" for i in range(100_000)]
    r = http.post("/v1/suppressions/check", json={"emails": emails}, headers=h, timeout=120)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["checked"] == 100_000
    assert sorted(e["email"] for e in body["suppressed"]) == sorted(f"user{i}@example.com"
                                                                    for i in range(0, 100_000, 97))
    too_many = http.post("/v1/suppressions/check", json={"emails": [*emails, "x@example.com"]}, headers=h,
                         timeout=120)
    assert too_many.status_code == 400


def test_csv_import_and_export_round_trip(http: httpx.Client, account: Account) -> None:
    h = account.headers
    text = ("email,reason,suppressed_at,expires_at,note\n"
            "a@example.com,hard_bounce,2024-05-01T12:00:00Z,,from the old system\n"
            "B@example.com,,,2999-01-01T00:00:00Z,\n"
            "\n"
            "c@example.com,optout,,,\"with, a comma\"\n")
    r = http.post("/v1/suppressions/import", content=text, headers={**h, **CSV})
    assert r.status_code == 200 and r.json() == {"rows": 3, "imported": 3}
    out = http.get("/v1/suppressions/export", headers=h)
    assert out.status_code == 200 and out.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(out.text)))
    assert [(x["email"], x["reason"], x["note"]) for x in rows] == [
        ("a@example.com", "hard_bounce", "from the old system"), ("b@example.com", "import", ""),
        ("c@example.com", "optout", "with, a comma")]
    assert rows[0]["suppressed_at"] == "2024-05-01T12:00:00.000Z" and rows[1]["expires_at"].startswith("2999-01-01")
    # The export imports again unchanged.
    again = http.post("/v1/suppressions/import", content=out.text, headers={**h, **CSV})
    assert again.json()["rows"] == 3
    assert http.get("/v1/suppressions/export", headers=h).text == out.text


def test_malformed_csv_names_the_line_and_imports_nothing(http: httpx.Client, account: Account) -> None:
    h = {**account.headers, **CSV}
    cases = {
        "email,reason\nok1@example.com,manual\nok2@example.com,manual\nnot an address,manual\n": 4,
        "email,reason\nok1@example.com,manual\nok2@example.com,sometimes\n": 3,
        "email,reason\nok1@example.com\n": 2,
        "email,expires_at\nok1@example.com,2024-13-45\n": 2,
        "address,reason\nok1@example.com,manual\n": 1,
        "": 1,
    }
    for text, line in cases.items():
        r = http.post("/v1/suppressions/import", content=text, headers=h)
        assert r.status_code == 400, text
        err = r.json()["error"]
        assert err["code"] == "bad_csv" and err["details"] == {"line": line} and f"line {line}" in err["message"]
    r = http.post("/v1/suppressions/import", content=b"email\nok1@example.com\n\xff\xfe@x.com\n", headers=h)
    assert r.status_code == 400 and r.json()["error"]["details"] == {"line": 3}
    assert http.get("/v1/suppressions", headers=account.headers).json()["suppressions"] == []


def test_policy_api_and_a_suppressed_send(http: httpx.Client, account: Account) -> None:
    h = account.headers
    assert http.get("/v1/suppressions/policy", headers=h).json() == {
        "hard_bounces": True, "soft_count": 3, "soft_window_days": 30, "blocks": "ignore", "complaints": True,
        "optouts": True, "soft_expiry_days": 90}
    changed = http.put("/v1/suppressions/policy", json={"soft_count": 2, "blocks": "soft"}, headers=h).json()
    assert (changed["soft_count"], changed["blocks"], changed["soft_window_days"]) == (2, "soft", 30)
    assert http.get("/v1/suppressions/policy", headers=h).json() == changed

    _, activity = campaign_with_activity(http, h)
    post_events(http, h, [{"type": "send", "activity_id": activity, "email": "x@example.com",
                           "occurred_at": day(0)},
                          {"type": "bounce", "activity_id": activity, "email": "x@example.com", "bounce_code": "Z",
                           "occurred_at": day(0, 1)},
                          {"type": "bounce", "activity_id": activity, "email": "x@example.com", "bounce_code": "F",
                           "occurred_at": day(1)}])
    entry = http.get("/v1/suppressions/x@example.com", headers=h).json()
    assert entry["reason"] == "soft_bounce" and entry["caused_by_event"] is True
    _, later = campaign_with_activity(http, h, "later")
    post_events(http, h, [{"type": "send", "activity_id": later, "email": "x@example.com",
                           "occurred_at": day(2)}])
    counts = http.get(f"/v1/activities/{later}/stats", headers=h).json()["counts"]
    assert (counts["sends"], counts["bounces_s"]) == (1, 1)
    rows = http.get(f"/v3/reports/email_reports/{later}/tracking/bounces", headers=h).json()["tracking_activities"]
    assert [r["bounce_code"] for r in rows] == ["S"]
