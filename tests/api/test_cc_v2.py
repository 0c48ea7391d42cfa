"""Constant Contact v2 tracking over HTTP, on data ingested through POST /v1/events.

Bodies are compared with the reference files in ../shared (key sets, value types, formats).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from sqlalchemy import Engine

from mailtally.store.accounts import create_token
from mailtally.vocab import Scope

from ..conftest import Account, LiveServer, make_account, need_shared
from ..support.scenario import post_events

KEY = {"api_key": "app-key"}
DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
KINDS = ("bounces", "clicks", "forwards", "opens", "sends", "unsubscribes")


def t(minute: int, day: int = 1) -> str:
    return f"2024-03-{day:02d}T10:{minute:02d}:00Z"


@dataclass
class World:
    account: Account
    other: Account
    campaign_only: Account
    contacts: dict[str, int]  # name -> num_id
    campaign_a: int
    campaign_b: int
    link_url: dict[str, str]


def _contact(http: httpx.Client, acct: Account, name: str, **extra: Any) -> tuple[str, int]:
    r = http.post("/v1/contacts", json={"email": f"{name}@example.com", "first_name": name.title(), **extra},
                  headers=acct.headers)
    assert r.status_code == 201, r.text
    return r.json()["id"], r.json()["num_id"]


def _campaign(http: httpx.Client, acct: Account, name: str, links: list[dict[str, str]]) -> tuple[int, str]:
    r = http.post("/v1/campaigns", json={"name": name}, headers=acct.headers)
    assert r.status_code == 201, r.text
    num, cid = r.json()["num_id"], r.json()["id"]
    r = http.post(f"/v1/campaigns/{cid}/activities", json={"subject": name}, headers=acct.headers)
    activity = r.json()["id"]
    assert http.put(f"/v1/activities/{activity}/links", json=links, headers=acct.headers).status_code == 200
    return num, activity


@pytest.fixture(scope="module")
def world(server: LiveServer, engine: Engine) -> Iterator[World]:
    acct, other = make_account(engine), make_account(engine)
    with engine.begin() as conn:  # the same account, a token with campaign_data only
        campaign_only = Account(acct.id, acct.name, create_token(conn, acct.id, frozenset({Scope.CAMPAIGN_DATA.value})))
    with httpx.Client(base_url=server.url, timeout=30) as http:
        # Dave is mailed campaign B after a hard bounce in A: the default suppression policy would
        # report that send as suppressed (S). This scenario is about the v2 shapes, not the policy.
        assert http.put("/v1/suppressions/policy", json={"hard_bounces": False}, headers=acct.headers).is_success
        ids, nums = {}, {}
        for name in ("alice", "bob", "carol", "dave", "erin"):
            ids[name], nums[name] = _contact(http, acct, name)
        links_a = [{"url_id": "1", "url": "https://a.example/1"}, {"url_id": "2", "url": "https://a.example/2"}]
        num_a, act_a = _campaign(http, acct, "Campaign A", links_a)
        num_b, act_b = _campaign(http, acct, "Campaign B", [{"url_id": "1", "url": "https://b.example/"}])
        extras = [f"extra{i:02d}@example.com" for i in range(12)]

        def ev(type_: str, activity: str, who: str, at: str, **kw: Any) -> dict[str, Any]:
            target = {"contact_id": ids[who]} if who in ids else {"email": who}
            return {"type": type_, "activity_id": activity, "occurred_at": at, **target, **kw}

        a = [ev("send", act_a, who, t(0)) for who in [*ids, *extras]]
        a += [ev("bounce", act_a, "dave", t(5), bounce_code="B", diagnostic="550 5.1.1 <dave@example.com>: unknown"),
              ev("bounce", act_a, extras[0], t(6), bounce_code="Z", diagnostic="554 5.7.1 blocked"),
              ev("bounce", act_a, extras[1], t(7), reason="vacation", diagnostic="I am away"),
              ev("bounce", act_a, extras[2], t(8), bounce_code="F"),
              ev("bounce", act_a, extras[3], t(9), reason="suspend")]
        a += [ev("open", act_a, "alice", t(m), device_type="mobile") for m in (10, 11, 12)]
        a += [ev("open", act_a, "bob", t(13))] + [ev("open", act_a, e, t(14)) for e in extras[4:]]
        a += [ev("click", act_a, "alice", t(20), url_id="1"), ev("click", act_a, "alice", t(21), url_id="2"),
              ev("click", act_a, "bob", t(22), url_id="1")]
        a += [ev("forward", act_a, "alice", t(23)), ev("forward", act_a, "bob", t(24))]
        a += [ev("optout", act_a, "carol", t(25), optout_reason="Too many emails"),
              ev("optout", act_a, "erin", t(26), optout_source="ACTION_BY_OWNER")]
        b = [ev("send", act_b, who, t(0, 2)) for who in ("alice", "carol", "dave")]
        b += [ev("bounce", act_b, "dave", t(5, 2), reason="vacation"),
              ev("open", act_b, "alice", t(9, 2), device_type="computer"),
              ev("forward", act_b, "alice", t(10, 2)),
              ev("optout", act_b, "carol", t(11, 2))]
        post_events(http, acct.headers, a + b)
        yield World(acct, other, campaign_only, nums, num_a, num_b,
                    {"1": "https://a.example/1", "2": "https://a.example/2"})


@pytest.fixture
def v2(world: World, http: httpx.Client) -> Any:
    def get(path: str, token: Account | None = None, **params: Any) -> httpx.Response:
        """GET with api_key added to the query, keeping any query the path (a next_link) has."""
        headers = (token or world.account).headers | {"Accept": "application/json"}
        path, _, query = path.partition("?")
        return http.get(path, params=[*parse_qsl(query), *KEY.items(), *params.items()], headers=headers)

    return get


def reference(name: str) -> Any:
    return json.loads(need_shared("reference", "constant-contact-v2-tracking", name).read_text())


def same_shape(ours: Any, ref: Any, where: str = "$") -> None:
    """Same keys, same value types, the same formats (dates, numeric-string ids) as the reference."""
    if isinstance(ref, dict):
        assert isinstance(ours, dict), where
        assert set(ours) == set(ref), f"{where}: {sorted(ours)} != {sorted(ref)}"
        for k in ref:
            if k == "next_link":
                assert isinstance(ours[k], str) and re.fullmatch(r"/v2/[\w/]+\?next=[A-Za-z0-9_-]+", ours[k]), ours[k]
            else:
                same_shape(ours[k], ref[k], f"{where}.{k}")
    elif isinstance(ref, list):
        assert isinstance(ours, list) and ours, where
        for i, item in enumerate(ours):
            same_shape(item, ref[0], f"{where}[{i}]")
    else:
        assert type(ours) is type(ref), f"{where}: {ours!r} vs {ref!r}"
        if isinstance(ref, str) and DATE.fullmatch(ref):
            assert DATE.fullmatch(ours), f"{where}: {ours!r}"
        if isinstance(ref, str) and ref.isdigit() and not where.endswith("link_id"):
            assert ours.isdigit(), f"{where}: {ours!r}"
        if where.endswith("activity_type"):
            assert ours == ref


CONTACT_FOR = {"sends": "alice", "opens": "alice", "clicks": "alice", "forwards": "alice",
               "unsubscribes": "carol", "bounces": "dave"}


@pytest.mark.parametrize("kind", KINDS)
def test_contact_tracking_matches_reference(world: World, v2: Any, kind: str) -> None:
    num = world.contacts[CONTACT_FOR[kind]]
    r = v2(f"/v2/contacts/{num}/tracking/{kind}", limit=1)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    same_shape(body, reference(f"contact_tracking_{kind}_response.json"))
    assert body["meta"]["pagination"]["next_link"].startswith(f"/v2/contacts/{num}/tracking/{kind}?next=")
    assert all(row["contact_id"] == str(num) for row in body["results"])


@pytest.mark.parametrize("kind", KINDS)
def test_campaign_tracking_matches_reference(world: World, v2: Any, kind: str) -> None:
    r = v2(f"/v2/emailmarketing/campaigns/{world.campaign_a}/tracking/{kind}", limit=1)
    assert r.status_code == 200, r.text
    body = r.json()
    same_shape(body, reference(f"campaign_tracking_{kind}_response.json"))
    assert body["results"][0]["campaign_id"] == world.campaign_a  # a number, as the reference shows


def test_summaries_match_reference(world: World, v2: Any) -> None:
    alice = world.contacts["alice"]
    body = v2(f"/v2/contacts/{alice}/tracking/reports/summary").json()
    same_shape(body, reference("contact_tracking_summary_response.json"))
    assert body == {"sends": 2, "opens": 4, "clicks": 2, "forwards": 2, "unsubscribes": 0, "bounces": 0,
                    "contact_id": str(alice)}

    body = v2(f"/v2/emailmarketing/campaigns/{world.campaign_a}/tracking/reports/summary").json()
    same_shape(body, reference("campaign_tracking_summary_response.json"))
    assert body == {"sends": 17, "opens": 12, "clicks": 3, "forwards": 2, "unsubscribes": 2, "bounces": 5}


def test_summary_by_campaign(world: World, v2: Any) -> None:
    body = v2(f"/v2/contacts/{world.contacts['alice']}/tracking/reports/summaryByCampaign").json()
    assert body == [
        {"campaign_id": str(world.campaign_b), "sends": 1, "opens": 1, "clicks": 0, "forwards": 1, "bounces": 0},
        {"campaign_id": str(world.campaign_a), "sends": 1, "opens": 3, "clicks": 2, "forwards": 1, "bounces": 0},
    ]
    carol = v2(f"/v2/contacts/{world.contacts['carol']}/tracking/reports/summaryByCampaign").json()
    assert all("unsubscribes" not in row for row in carol)


def test_contact_all_activities_newest_first(world: World, v2: Any) -> None:
    body = v2(f"/v2/contacts/{world.contacts['alice']}/tracking").json()
    rows = body["results"]
    assert body["meta"]["pagination"] == {}
    dates = [next(v for k, v in row.items() if k.endswith("_date")) for row in rows]
    assert dates == sorted(dates, reverse=True)
    assert [row["activity_type"] for row in rows[:4]] == ["EMAIL_FORWARD", "EMAIL_OPEN", "EMAIL_SEND",
                                                          "EMAIL_FORWARD"]
    assert {row["campaign_id"] for row in rows} == {str(world.campaign_a), str(world.campaign_b)}
    clicks = [row for row in rows if row["activity_type"] == "EMAIL_CLICK"]
    assert [(c["link_id"], c["link_uri"]) for c in clicks] == [("2", world.link_url["2"]), ("1", world.link_url["1"])]
    assert clicks[0]["click_date"] == "2024-03-01T10:21:00.000Z"


def test_bounces_in_words_with_vacation(world: World, v2: Any) -> None:
    rows = v2(f"/v2/emailmarketing/campaigns/{world.campaign_a}/tracking/bounces").json()["results"]
    got = [(r["bounce_code"], r["bounce_description"], r["bounce_message"], r["bounce_date"]) for r in rows]
    assert got == [
        ("S", "Suspended", "", "2024-03-01T10:09:00.000Z"),
        ("F", "Mailbox full", "", "2024-03-01T10:08:00.000Z"),
        ("V", "Vacation or autoreply", "I am away", "2024-03-01T10:07:00.000Z"),
        ("Z", "Blocked", "554 5.7.1 blocked", "2024-03-01T10:06:00.000Z"),
        ("B", "Non-existent address", "550 5.1.1 <dave@example.com>: unknown", "2024-03-01T10:05:00.000Z"),
    ]
    dave = v2(f"/v2/contacts/{world.contacts['dave']}/tracking/bounces").json()["results"]
    assert [r["bounce_code"] for r in dave] == ["V", "B"]


def test_unsubscribe_source_and_reason(world: World, v2: Any) -> None:
    rows = v2(f"/v2/emailmarketing/campaigns/{world.campaign_a}/tracking/unsubscribes").json()["results"]
    assert [(r["email_address"], r["unsubscribe_source"], r["unsubscribe_reason"]) for r in rows] == [
        ("erin@example.com", "ACTION_BY_CUSTOMER", ""), ("carol@example.com", "ACTION_BY_CONTACT", "Too many emails")]


def test_clicks_on_one_link(world: World, v2: Any) -> None:
    rows = v2(f"/v2/emailmarketing/campaigns/{world.campaign_a}/tracking/clicks/1").json()["results"]
    assert [(r["email_address"], r["link_id"]) for r in rows] == [("bob@example.com", "1"), ("alice@example.com", "1")]
    rows = v2(f"/v2/contacts/{world.contacts['alice']}/tracking/clicks/2").json()["results"]
    assert [(r["link_id"], r["link_uri"]) for r in rows] == [("2", world.link_url["2"])]
    assert v2(f"/v2/emailmarketing/campaigns/{world.campaign_a}/tracking/clicks/9").json()["results"] == []


def test_created_since(world: World, v2: Any) -> None:
    path = f"/v2/emailmarketing/campaigns/{world.campaign_a}/tracking/opens"
    rows = v2(path, created_since="2024-03-01T10:12:00.000Z").json()["results"]
    assert len(rows) == 10 and min(r["open_date"] for r in rows) == "2024-03-01T10:12:00.000Z"
    assert len(v2(path, created_since="2024-03-01T11:12:00+01:00").json()["results"]) == 10
    assert len(v2(path, created_since="2024-03-02").json()["results"]) == 0


def walk(v2: Any, path: str, **params: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    r = v2(path, **params)
    while True:
        assert r.status_code == 200, r.text
        body = r.json()
        rows += body["results"]
        link = body["meta"]["pagination"].get("next_link")
        if link is None:
            return rows
        assert len(body["results"]) == params.get("limit", 500)
        r = v2(link)  # the client appends api_key to next_link, as v2 asks


@pytest.mark.parametrize("limit", [1, 2, 3, 7])
def test_pagination_walks_to_the_end(world: World, v2: Any, limit: int) -> None:
    for path in (f"/v2/emailmarketing/campaigns/{world.campaign_a}/tracking/sends",
                 f"/v2/emailmarketing/campaigns/{world.campaign_a}/tracking/opens",
                 f"/v2/contacts/{world.contacts['alice']}/tracking"):
        everything = v2(path).json()["results"]
        walked = walk(v2, path, limit=limit)
        assert walked == everything
        assert len({json.dumps(r, sort_keys=True) for r in walked}) == len(walked)  # no repeats
    # created_since travels inside the cursor
    path = f"/v2/emailmarketing/campaigns/{world.campaign_a}/tracking/opens"
    assert walk(v2, path, limit=limit, created_since="2024-03-01T10:12:00Z") == \
        v2(path, created_since="2024-03-01T10:12:00Z").json()["results"]


def _endpoints(world: World) -> list[str]:
    c, k = world.contacts["alice"], world.campaign_a
    return ([f"/v2/contacts/{c}/tracking", f"/v2/contacts/{c}/tracking/clicks/1",
             f"/v2/contacts/{c}/tracking/reports/summary", f"/v2/contacts/{c}/tracking/reports/summaryByCampaign",
             f"/v2/emailmarketing/campaigns/{k}/tracking/clicks/1",
             f"/v2/emailmarketing/campaigns/{k}/tracking/reports/summary"]
            + [f"/v2/contacts/{c}/tracking/{kind}" for kind in KINDS]
            + [f"/v2/emailmarketing/campaigns/{k}/tracking/{kind}" for kind in KINDS])


def assert_v2_error(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert isinstance(body, list) and len(body) == 1 and set(body[0]) == {"error_key", "error_message"}
    assert all(isinstance(v, str) and v for v in body[0].values())
    return str(body[0]["error_key"])


def test_every_endpoint_errors(world: World, v2: Any, http: httpx.Client) -> None:
    for path in _endpoints(world):
        assert v2(path).status_code == 200, path
        # no bearer token / wrong token / no api_key
        assert_v2_error(http.get(path, params=KEY), 401)
        assert_v2_error(http.get(path, params=KEY, headers={"Authorization": "Bearer nope"}), 401)
        assert_v2_error(http.get(path, headers=world.account.headers), 401)
        # Accept other than JSON
        assert assert_v2_error(http.get(path, params=KEY, headers=world.account.headers | {"Accept": "text/xml"}),
                               406) == "http.status.not_acceptable"
        assert http.get(path, params=KEY, headers=world.account.headers | {"Accept": "*/*"}).status_code == 200
        # another account's ids are unknown to it
        assert_v2_error(v2(path, token=world.other), 404)
        # unknown and malformed ids
        for bad_id, status in (("999999999", 404), ("abc", 400), ("-1", 400)):
            bad = re.sub(r"^(/v2/contacts/|/v2/emailmarketing/campaigns/)\d+", rf"\g<1>{bad_id}", path)
            assert_v2_error(v2(bad), status)


def test_bad_parameters(world: World, v2: Any) -> None:
    path = f"/v2/emailmarketing/campaigns/{world.campaign_a}/tracking/opens"
    for params in ({"limit": 0}, {"limit": 501}, {"limit": "ten"}, {"limit": ""}, {"created_since": "yesterday"},
                   {"created_since": "2024-13-01"}, {"next": "garbage"}):
        assert assert_v2_error(v2(path, **params), 400) == "query.param.invalid", params
    assert v2(path, limit=500).status_code == 200 and v2(path, limit=1).status_code == 200
    link = v2(path, limit=2).json()["meta"]["pagination"]["next_link"]
    token = link.split("next=")[1]
    assert_v2_error(v2(path, next=token[:-2] + ("AA" if token[-2:] != "AA" else "BB")), 400)
    # a cursor only continues the report it came from
    assert_v2_error(v2(f"/v2/emailmarketing/campaigns/{world.campaign_a}/tracking/sends", next=token), 400)
    assert_v2_error(v2(path, token=world.other, next=token), 404)
    assert_v2_error(v2(f"/v2/emailmarketing/campaigns/{world.campaign_a}/tracking/nothing"), 404)
    assert_v2_error(v2("/v2/no/such/thing"), 404)


def test_scopes(world: World, v2: Any) -> None:
    contact = f"/v2/contacts/{world.contacts['alice']}/tracking/opens"
    assert assert_v2_error(v2(contact, token=world.campaign_only), 403) == "http.status.forbidden"
    campaign = f"/v2/emailmarketing/campaigns/{world.campaign_a}/tracking/opens"
    assert v2(campaign, token=world.campaign_only).status_code == 200
