"""WhatCounts' Report Bounces over HTTP, against the seed's sample subscriber and 401 body."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from ..conftest import Account, LiveServer, make_account, need_shared
from ..support.scenario import post_events

PATH = "/rest/bounces"
ACCEPT = "application/vnd.whatcounts-v1+json"
WC_DATE = re.compile(r"^[A-Z][a-z]{2} \d{1,2}, \d{4} \d{1,2}:\d{2}:\d{2} [AP]M$")
CODES = "BSFZDX"
N = 1200  # bounces on 2024-06-15, beside the vacation replies and Jon's two


def seed() -> str:
    files = sorted(need_shared("reference", "seeds").glob("003_*.txt"))
    if not files:
        pytest.skip("seed 003 (WhatCounts) is missing from ../shared/reference/seeds")
    return files[0].read_text()


def seed_subscriber() -> dict[str, Any]:
    """The seed's first sample subscriber (its JSON is not well formed, so read it line by line)."""
    block = seed().split('"subscribers"', 1)[1].split("}", 1)[0]
    fields: dict[str, Any] = {}
    for key, value in re.findall(r'^"(\w+)": (.+)$', block, re.M):
        fields[key] = value.strip('"') if value.startswith('"') else int(value)
    return fields


@dataclass
class World:
    account: Account
    other: Account


def basic(user: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}", "Accept": ACCEPT}


@pytest.fixture(scope="module")
def world(server: LiveServer, engine: Engine) -> Iterator[World]:
    acct, other = make_account(engine), make_account(engine)
    with httpx.Client(base_url=server.url, timeout=60) as http:
        r = http.post("/v1/contacts", json={
            "email": "jon.doe@mydomain.com", "first_name": "Jon", "last_name": "Doe", "company_name": "My Company",
            "street": "123 Some Street North", "city": "My City", "state": "WA", "postal_code": "98000",
            "country": "United States", "phone": "(206) 555 1212"}, headers=acct.headers)
        jon = r.json()["id"]
        cid = http.post("/v1/campaigns", json={"name": "June"}, headers=acct.headers).json()["id"]
        act = http.post(f"/v1/campaigns/{cid}/activities", json={}, headers=acct.headers).json()["id"]
        ev: list[dict[str, Any]] = [
            {"type": "bounce", "activity_id": act, "contact_id": jon, "occurred_at": "2024-06-14T06:14:16Z",
             "bounce_code": "B"},
            {"type": "bounce", "activity_id": act, "contact_id": jon, "occurred_at": "2024-06-16T22:14:16Z",
             "reason": "blocked"},
        ]
        for i in range(N):
            email = f"b{i:04d}@example.com"
            at = f"2024-06-15T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z"
            ev.append({"type": "send", "activity_id": act, "email": email, "occurred_at": "2024-06-14T00:00:00Z"})
            ev.append({"type": "bounce", "activity_id": act, "email": email, "occurred_at": at,
                       "bounce_code": CODES[i % len(CODES)]})
        for i in range(30):
            ev.append({"type": "bounce", "activity_id": act, "email": f"away{i}@example.com",
                       "occurred_at": "2024-06-15T12:00:00Z", "reason": "vacation"})
        for i in range(0, len(ev), 1500):
            post_events(http, acct.headers, ev[i : i + 1500])
    yield World(acct, other)


@pytest.fixture
def get(world: World, http: httpx.Client) -> Any:
    def call(query: str = "", account: Account | None = None) -> httpx.Response:
        who = account or world.account
        return http.get(f"{PATH}?{query}", headers=basic(who.name, who.token))

    return call


def subscribers(get: Any, query: str) -> list[dict[str, Any]]:
    r = get(query)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"subscribers", "bounceTotal"} and body["bounceTotal"] == len(body["subscribers"])
    return list(body["subscribers"])


def test_subscriber_matches_seed(get: Any, world: World) -> None:
    sample = seed_subscriber()
    assert len(sample) == 22 and sample["bounceType"] == "BLOCKED"
    rows = subscribers(get, "start=2024-06-16&end=2024-06-17")
    assert len(rows) == 1
    row = rows[0]
    assert set(row) == set(sample)
    for key, value in sample.items():
        assert type(row[key]) is type(value), key
        if isinstance(value, str) and WC_DATE.fullmatch(value):
            assert WC_DATE.fullmatch(row[key]), (key, row[key])
    email = "jon.doe@mydomain.com"
    assert row | {"subscriberId": 0, "createdDate": "", "updatedDate": ""} == {
        "date": "Jun 16, 2024 10:14:16 PM", "bounceType": "BLOCKED", "subscriberId": 0, "realmId": world.account.id,
        "email": email, "firstName": "Jon", "lastName": "Doe", "company": "My Company",
        "address1": "123 Some Street North", "address2": "", "city": "My City", "state": "WA", "zip": "98000",
        "country": "United States", "phone": "(206) 555 1212", "fax": "", "createdDate": "", "updatedDate": "",
        "md5Encryption": hashlib.md5(email.encode()).hexdigest().upper(),
        "sha1Encryption": hashlib.sha1(email.encode()).hexdigest().upper(), "skip": 0, "max": 500,
    }
    assert row["subscriberId"] > 0 and re.fullmatch(r"[0-9A-F]{32}", row["md5Encryption"])
    morning = subscribers(get, "start=2024-06-14&end=2024-06-15")
    assert [(r["date"], r["bounceType"]) for r in morning] == [("Jun 14, 2024 6:14:16 AM", "HARD_BOUNCE")]


def test_end_is_exclusive_and_dates_are_midnight(get: Any) -> None:
    assert subscribers(get, "start=2024-06-15&end=2024-06-15") == []
    day = subscribers(get, "start=2024-06-15&end=2024-06-16&skip=1000")
    assert len(day) == N - 1000 and day[-1]["date"] == "Jun 15, 2024 12:00:00 AM"


def test_bounce_types(get: Any) -> None:
    def count(query: str) -> int:
        return sum(len(subscribers(get, f"{query}&skip={s}")) for s in (0, 500, 1000, 1500))

    assert count("bounceTypes=HARD_BOUNCE") == 401
    assert count("bounceTypes=BLOCKED") == 201
    assert count("bounceTypes=SOFT_BOUNCE") == 600
    assert count("bounceTypes=HARD_BOUNCE,BLOCKED") == 602
    assert count("bounceTypes=HARD_BOUNCE&bounceTypes=BLOCKED") == 602
    assert count("bounceType=BLOCKED") == 201  # the spelling of the seed's curl example
    assert count("bounceTypes=NOPE") == N + 2  # wrong: ignored


def test_pages_of_500_without_loss_repeats_or_vacations(get: Any, http: httpx.Client, world: World) -> None:
    pages, skip = [], 0
    while True:
        r = get(f"skip={skip}")
        page = r.json()["subscribers"]
        pages.append(len(page))
        if len(page) < 500:
            assert "link" not in r.headers
            break
        assert r.headers["link"].endswith(f'skip={skip + 500}>; rel="next"')
        assert {s["skip"] for s in page} == {skip}
        skip += 500
    assert pages == [500, 500, 202]
    everything = [s for k in (0, 500, 1000) for s in get(f"skip={k}").json()["subscribers"]]
    keys = [(s["email"], s["date"]) for s in everything]
    assert len(set(keys)) == len(keys) == N + 2
    assert not [s for s in everything if s["email"].startswith("away")]
    assert {s["bounceType"] for s in everything} == {"HARD_BOUNCE", "SOFT_BOUNCE", "BLOCKED"}


def test_wrong_query_strings_are_ignored(get: Any) -> None:
    total = len(subscribers(get, "skip=1000")) + 1000
    assert total == N + 2
    for query in ("start=2024-13-01", "Start=2024-06-16", "start=june", "end=2024-02-30", "skip=abc", "skip=-5",
                  "bounceTypes=", "whatever=1"):
        got = subscribers(get, query)
        assert len(got) == 500, query
    assert len(subscribers(get, "start=2024-06-16&END=2024-06-15")) == 1


def test_auth(world: World, http: httpx.Client, get: Any) -> None:
    unauthorized = {"error": "Unauthorized", "status": "Unauthorized", "statusCode": 401}
    a, o = world.account, world.other
    for headers in ({"Accept": ACCEPT}, basic(a.name, "wrong"), basic(o.name, a.token), basic(a.name, o.token),
                    {"Authorization": f"Bearer {a.token}"}, {"Authorization": "Basic !!!"}):
        r = http.get(PATH, headers=headers)
        assert r.status_code == 401 and r.json() == unauthorized, headers
    assert r.headers["www-authenticate"].startswith("Basic")
    # the other account, with its own credentials, sees its own (empty) report
    assert get("", account=o).json() == {"subscribers": [], "bounceTotal": 0}
    r = http.get(PATH, headers=basic(a.name, a.token) | {"Accept": "text/html"})
    assert r.status_code == 406 and set(r.json()) == {"error", "status", "statusCode"}
    assert http.get(PATH, headers=basic(a.name, a.token) | {"Accept": "application/json"}).status_code == 200
    r = http.get("/rest/nothing", headers=basic(a.name, a.token))
    assert r.status_code == 404 and r.json()["statusCode"] == 404
