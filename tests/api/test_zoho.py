"""Zoho Campaigns' bounce event report over HTTP, against the seed's samples and error table."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from ..conftest import Account, LiveServer, make_account, need_shared
from ..support.scenario import post_events

PATH = "/emailapi/v2/reports/event/bounce"
DAY = 86_400_000
CODES = "BDFXZS"  # every code Zoho reports; V (vacation) is added apart and must never show


def seed() -> str:
    files = sorted(need_shared("reference", "seeds").glob("002_*.txt"))
    if not files:
        pytest.skip("seed 002 (Zoho Campaigns) is missing from ../shared/reference/seeds")
    return files[0].read_text()


def seed_sample(heading: str) -> Any:
    text = seed()
    start = text.index("Copied{", text.index(heading)) + len("Copied")
    return json.JSONDecoder().raw_decode(text[start:])[0]


def seed_errors() -> dict[int, str]:
    return {int(code): message.strip() for code, message in re.findall(r"^(4003\d\d)(\S[^\n]*)$", seed(), re.M)}


def iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


@dataclass
class World:
    account: Account
    other: Account
    now: int
    base: int
    old: int
    campaign_names: tuple[str, str]


@pytest.fixture(scope="module")
def world(server: LiveServer, engine: Engine) -> Iterator[World]:
    acct, other = make_account(engine), make_account(engine)
    now = int(time.time()) * 1000
    base, old = now - 2 * DAY, now - 20 * DAY
    with httpx.Client(base_url=server.url, timeout=60) as http:
        # The seed mails John campaign 2 after his hard bounce in campaign 1, and reports that as a
        # soft bounce: with the default suppression policy the send would be suppressed (S) instead.
        assert http.put("/v1/suppressions/policy", json={"hard_bounces": False}, headers=acct.headers).is_success
        r = http.post("/v1/contacts", json={"email": "john.doe@zylker.com", "first_name": "John",
                                            "custom_fields": {"country": "JP", "ph": "1239333320"}},
                      headers=acct.headers)
        zed = r.json()["id"]
        activities = []
        for name in ("API Campaign 1", "API Campaign 2"):
            cid = http.post("/v1/campaigns", json={"name": name}, headers=acct.headers).json()["id"]
            activities.append(http.post(f"/v1/campaigns/{cid}/activities", json={},
                                        headers=acct.headers).json()["id"])
        a1, a2 = activities
        ev: list[dict[str, Any]] = [
            {"type": "send", "activity_id": a1, "contact_id": zed, "occurred_at": iso(base)},
            {"type": "bounce", "activity_id": a1, "contact_id": zed, "occurred_at": iso(base + 1000),
             "bounce_code": "B", "diagnostic": "bad-mailbox"},
            {"type": "send", "activity_id": a2, "contact_id": zed, "occurred_at": iso(base + 5000)},
            {"type": "bounce", "activity_id": a2, "contact_id": zed, "occurred_at": iso(base + 3_600_000),
             "reason": "mailboxfull", "diagnostic": "440 4.4.7 Unable to relay the email"},
        ]
        for i in range(240):
            email = f"bounce{i:03d}@example.com"
            ev.append({"type": "send", "activity_id": a1, "email": email, "occurred_at": iso(base)})
            ev.append({"type": "bounce", "activity_id": a1, "email": email,
                       "occurred_at": iso(base + 10_000 + i * 1000), "bounce_code": CODES[i % len(CODES)]})
        for i in range(10):
            ev.append({"type": "bounce", "activity_id": a1, "email": f"away{i}@example.com",
                       "occurred_at": iso(base + 20_000 + i * 1000), "reason": "vacation", "diagnostic": "VACATION"})
        ev.append({"type": "bounce", "activity_id": a1, "email": "old@example.com", "occurred_at": iso(old),
                   "bounce_code": "Z", "diagnostic": "554 blocked"})
        ev.append({"type": "bounce", "activity_id": a1, "email": "ancient@example.com",
                   "occurred_at": iso(now - 100 * DAY), "bounce_code": "B"})
        post_events(http, acct.headers, ev)
    yield World(acct, other, now, base, old, ("API Campaign 1", "API Campaign 2"))


def zoho(account: Account) -> dict[str, str]:
    return {"Authorization": f"Zoho-oauthtoken {account.token}"}


@pytest.fixture
def get(world: World, http: httpx.Client) -> Any:
    def call(account: Account | None = None, **params: Any) -> httpx.Response:
        return http.get(PATH, params=params, headers=zoho(account or world.account))

    return call


def same_shape(ours: Any, ref: Any, where: str = "$") -> None:
    if isinstance(ref, dict) and where != "$.data[].rcpt_additional_data":
        assert isinstance(ours, dict) and set(ours) == set(ref), f"{where}: {sorted(ours)} != {sorted(ref)}"
        for k in ref:
            same_shape(ours[k], ref[k], f"{where}.{k}")
    elif isinstance(ref, list):
        assert isinstance(ours, list) and ours, where
        for item in ours:
            same_shape(item, ref[0], f"{where}[]")
    else:
        assert type(ours) is type(ref), f"{where}: {ours!r} vs {ref!r}"


def walk(get: Any, page: int, **params: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    start = 1
    while True:
        body = get(start_index=start, end_index=start + page - 1, **params).json()
        rows += body["data"]
        if len(body["data"]) < page:
            return rows
        start += page


def test_success_matches_seed(get: Any, world: World) -> None:
    sample = seed_sample("Sample Response - Success")
    r = get()
    assert r.status_code == 200, r.text
    body = r.json()
    same_shape(body, sample)
    assert body["response"] == sample["response"] == {
        "code": 200301, "message": "Successfully obtained the reports for the given criteria"}
    assert len(body["data"]) == 100  # end_index defaults to 100


def test_rows_field_by_field(get: Any, world: World) -> None:
    rows = get(email="John.Doe@zylker.com").json()["data"]
    assert rows == [
        {"bounce_type": "softbounce", "action_time": world.base + 3_600_000, "injected_time": world.base + 5000,
         "rcpt_additional_data": {"country": "JP", "ph": "1239333320"}, "transmission_id": rows[0]["transmission_id"],
         "contact_id": rows[0]["contact_id"],
         "bounce_reason": "Temporary failure :440 4.4.7 Unable to relay the email",
         "transmission_name": "API Campaign 2", "zuid": world.account.id, "contact_email": "john.doe@zylker.com"},
        {"bounce_type": "hardbounce", "action_time": world.base + 1000, "injected_time": world.base,
         "rcpt_additional_data": {"country": "JP", "ph": "1239333320"}, "transmission_id": rows[1]["transmission_id"],
         "contact_id": rows[0]["contact_id"], "bounce_reason": "Permanent failure :bad-mailbox",
         "transmission_name": "API Campaign 1", "zuid": world.account.id, "contact_email": "john.doe@zylker.com"},
    ]
    assert rows[0]["transmission_id"] != rows[1]["transmission_id"]
    assert all(isinstance(r["contact_id"], int) and isinstance(r["transmission_id"], int) for r in rows)


def test_walk_without_loss_or_repeats_and_no_vacation(get: Any) -> None:
    everything = walk(get, 500)
    assert len(everything) == 242
    for page in (7, 100):
        assert walk(get, page) == everything
    keys = [(r["contact_email"], r["action_time"]) for r in everything]
    assert len(set(keys)) == len(keys)
    times = [r["action_time"] for r in everything]
    assert times == sorted(times, reverse=True)
    assert not [r for r in everything if "VACATION" in r["bounce_reason"] or r["contact_email"].startswith("away")]
    assert {r["bounce_type"] for r in everything} == {"hardbounce", "softbounce"}
    assert all(r["bounce_reason"].startswith("Permanent failure :" if r["bounce_type"] == "hardbounce"
                                             else "Temporary failure :") for r in everything)


def test_bounce_type_filter(get: Any) -> None:
    hard, soft = walk(get, 500, bounce_type="hard"), walk(get, 500, bounce_type="soft")
    assert len(hard) == 81 and {r["bounce_type"] for r in hard} == {"hardbounce"}
    assert len(soft) == 161 and {r["bounce_type"] for r in soft} == {"softbounce"}
    assert len(walk(get, 500, bounce_type="HardBounce")) == 81


def test_date_range(get: Any, world: World) -> None:
    rows = get(**{"from": world.old - 5 * DAY, "to": world.old + 5 * DAY}).json()["data"]
    assert [r["contact_email"] for r in rows] == ["old@example.com"]
    assert rows[0]["injected_time"] == rows[0]["action_time"]  # no send recorded: the bounce bounds it
    assert get(**{"from": world.old, "to": world.old}).json()["data"][0]["action_time"] == world.old  # inclusive
    # the default is the last 7 days: neither the old nor the ancient bounce
    assert {r["contact_email"] for r in walk(get, 500)}.isdisjoint({"old@example.com", "ancient@example.com"})
    assert len(get(**{"from": world.now - 7 * DAY}, end_index=500).json()["data"]) == 242
    assert len(get(to=world.now, end_index=500).json()["data"]) == 242


def assert_error(r: httpx.Response, code: int, status: int = 400) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    same_shape(body, seed_sample("Sample Response - Failure"))
    if code in seed_errors():
        assert body == {"errors": [{"code": code, "message": seed_errors()[code]}]}


def test_errors_from_the_seed(get: Any, world: World) -> None:
    assert set(seed_errors()) == {400301, 400302, 400303, 400304, 400305}
    for params in ({"from": "yesterday"}, {"to": "-5"}, {"from": world.now, "to": world.now - 1}, {"from": ""},
                   {"from": world.now + DAY}):
        assert_error(get(**params), 400301)
    for params in ({"start_index": 0}, {"start_index": "a"}, {"end_index": 0}, {"start_index": 5, "end_index": 4},
                   {"start_index": 1, "end_index": 501}, {"start_index": -1}):
        assert_error(get(**params), 400302)
    assert get(start_index=1, end_index=500).status_code == 200
    assert_error(get(**{"from": world.now - 91 * DAY, "to": world.now}), 400303)
    assert get(**{"from": world.now - 90 * DAY, "to": world.now}).status_code == 200
    for email in ("not-an-email", "", "a@b", "x" * 400 + "@example.com"):
        assert_error(get(email=email), 400304)
    for kind in ("medium", "", "hardbounces"):
        assert_error(get(bounce_type=kind), 400305)


def test_auth_and_other_accounts(world: World, http: httpx.Client, get: Any) -> None:
    assert_error(http.get(PATH), 401, 401)
    assert_error(http.get(PATH, headers={"Authorization": f"Bearer {world.account.token}"}), 401, 401)
    assert_error(http.get(PATH, headers={"Authorization": "Zoho-oauthtoken nope"}), 401, 401)
    # another account's token reports that account's (empty) data, never this one's
    assert get(world.other, email="john.doe@zylker.com").json()["data"] == []
    assert get(world.other).json() == {"data": [], "response": seed_sample("Sample Response - Success")["response"]}
    assert_error(http.get("/emailapi/v2/reports/event/nothing", headers=zoho(world.account)), 404, 404)
