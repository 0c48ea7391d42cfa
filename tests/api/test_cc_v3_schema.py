"""Every operation of the official Constant Contact v3 reporting description, called over HTTP
on data recorded through ``POST /v1/events``, answers a body valid against its schema.

The operations are read from the yaml: an operation without a case here fails the suite.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from ..conftest import SHARED, LiveServer, make_account
from .cc_v3_support import SPEC_PATH, V3, Scenario, build_scenario, operations, spec, spec_path, validate

# operationId -> what else to check on its (schema-valid) body, beyond the schema.
Check = Callable[[Scenario, Any], None]
CHECKS: dict[str, Check] = {}


def check(operation_id: str) -> Callable[[Check], Check]:
    def register(fn: Check) -> Check:
        CHECKS[operation_id] = fn
        return fn

    return register


def _yaml_operation_ids() -> list[str]:
    if not SHARED.joinpath(*SPEC_PATH).exists():
        return ["(../shared missing)"]
    return sorted(operations())


@pytest.fixture(scope="module")
def scenario(server: LiveServer, engine: Engine) -> Iterator[Scenario]:
    account = make_account(engine)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield build_scenario(http, account)


@pytest.fixture(scope="module")
def v3(server: LiveServer, scenario: Scenario) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url + V3, timeout=30, headers=scenario.account.headers) as client:
        yield client


@pytest.mark.parametrize("operation_id", _yaml_operation_ids())
def test_operation_matches_official_schema(operation_id: str, scenario: Scenario, v3: httpx.Client) -> None:
    ops = operations()
    assert operation_id in CHECKS, f"no test for operation {operation_id} of the official description"
    url = scenario.op_urls()[operation_id]
    # The URL is the yaml's path with this scenario's ids in it.
    template = ops[operation_id][0]
    assert url.split("?")[0].count("/") == template.count("/")
    r = v3.get(url)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    validate(operation_id, body)
    CHECKS[operation_id](scenario, body)


def test_every_operation_has_a_case() -> None:
    """Fails when the yaml gains an operation this suite does not cover (or loses one)."""
    spec_path()  # skips, saying why, when ../shared is missing
    assert set(operations()) == set(CHECKS)
    assert len(CHECKS) == 15


def test_routes_match_official_paths_and_parameters(server: LiveServer) -> None:
    """Our OpenAPI lists each operation at the yaml's path (under /v3) with its parameters."""
    ours = server.app.openapi()["paths"]
    for operation_id, (path, op) in operations().items():
        assert V3 + path in ours, f"{operation_id}: {V3 + path} is not served"
        mine = ours[V3 + path]["get"]
        assert mine["operationId"] == operation_id
        names = {p["name"] for p in mine.get("parameters", [])}
        wanted = {p["name"] for p in op.get("parameters", [])}
        assert wanted <= names, f"{operation_id}: missing parameters {wanted - names}"
    assert spec()["paths"]


# -- the cases, one per operationId -------------------------------------------------------------


def _rows(body: Any) -> list[dict[str, Any]]:
    rows = body["tracking_activities"]
    times = [r["created_time"] for r in rows]
    assert times == sorted(times, reverse=True), "most recent first"
    return rows  # type: ignore[no-any-return]


@check("getSends")
def _sends(s: Scenario, body: Any) -> None:
    rows = _rows(body)
    assert len(rows) == 15 and {r["tracking_activity_type"] for r in rows} == {"em_sends"}
    assert all(r["campaign_activity_id"] == s.activity_id for r in rows)
    named = next(r for r in rows if r["contact_id"] == s.named_contact_id)
    assert named["first_name"] == "First6" and named["last_name"] == "Last6"


@check("getOpens")
def _opens(s: Scenario, body: Any) -> None:
    rows = _rows(body)
    assert len(rows) == 6 and sorted(r["device_type"] for r in rows) == ["mobile"] * 5 + ["other"]


@check("getUniqueOpens")
def _unique_opens(s: Scenario, body: Any) -> None:
    rows = _rows(body)
    assert len({r["contact_id"] for r in rows}) == len(rows) == 6
    assert {r["tracking_activity_type"] for r in rows} == {"em_opens"}


@check("getDidNotOpens")
def _did_not_opens(s: Scenario, body: Any) -> None:
    rows = _rows(body)
    assert len(rows) == 3 and {r["tracking_activity_type"] for r in rows} == {"em_didnotopens"}
    assert {r["email_address"] for r in rows} == {f"person{i:02d}@example.com" for i in (12, 13, 14)}


@check("getClicks")
def _clicks(s: Scenario, body: Any) -> None:
    rows = _rows(body)
    assert len(rows) == 2
    assert {(r["url_id"], r["link_url"]) for r in rows} == {("1", "https://shop.example.com/spring")}
    assert sorted(r["device_type"] for r in rows) == ["mobile", "other"]


@check("getForwards")
def _forwards(s: Scenario, body: Any) -> None:
    rows = _rows(body)
    assert [r["email_address"] for r in rows] == ["person07@example.com"]


@check("getOptouts")
def _optouts(s: Scenario, body: Any) -> None:
    rows = _rows(body)
    assert [(r["email_address"], r.get("opt_out_reason")) for r in rows] == [
        ("person08@example.com", "Too many emails")]


@check("getBounces")
def _bounces(s: Scenario, body: Any) -> None:
    rows = _rows(body)
    assert sorted(r["bounce_code"] for r in rows) == list("BDFVXZ")
    deleted = next(r for r in rows if r["contact_id"] == s.deleted_contact_id)
    # The fields of seed 000, in its order.
    assert list(deleted) == ["contact_id", "campaign_activity_id", "tracking_activity_type", "email_address",
                             "first_name", "last_name", "bounce_code", "current_email_address", "created_time",
                             "deleted_at"]
    assert deleted["bounce_code"] == "B" and deleted["current_email_address"] == "person00@example.com"
    assert len(deleted["deleted_at"]) == 10
    assert all("deleted_at" not in r for r in rows if r is not deleted)


@check("getCampaignActivityLinkStats")
def _links(s: Scenario, body: Any) -> None:
    assert body["campaign_activity_id"] == s.activity_id
    # Links nobody clicked are listed only with no_clicks=true (tests/hardening/test_cc_clients.py).
    assert body["link_click_counts"] == [
        {"url_id": "1", "unique_clicks": 2, "link_url": "https://shop.example.com/spring", "link_tag": "hero"},
    ]


@check("getEmailSummary")
def _campaign_stats(s: Scenario, body: Any) -> None:
    assert body["errors"] == [] and [r["campaign_id"] for r in body["results"]] == [s.campaign_id]
    assert body["results"][0]["stats"]["em_sends"] == 15 and body["results"][0]["last_refresh_time"]


@check("getEmailCampaignActivitySummary")
def _activity_stats(s: Scenario, body: Any) -> None:
    (result,) = body["results"]
    assert result["campaign_id"] == s.campaign_id and result["campaign_activity_id"] == s.activity_id
    assert result["stats"]["em_bounces_vacation"] == 1 and result["last_refresh_time"]


@check("getAllBulkEmailCampaignSummaries")
def _summaries(s: Scenario, body: Any) -> None:
    # Only the sent campaign is listed; the never-sent one has no last_sent_date.
    assert [c["campaign_id"] for c in body["bulk_email_campaign_summaries"]] == [s.campaign_id]
    assert body["bulk_email_campaign_summaries"][0]["campaign_type"] == "Newsletter"


@check("getContactTracking")
def _contact_tracking(s: Scenario, body: Any) -> None:
    rows = _rows(body)
    assert [r["tracking_activity_type"] for r in rows] == ["em_clicks", "em_opens", "em_sends"]
    assert rows[0]["link_url"] == "https://shop.example.com/spring" and rows[0]["device_type"] == "mobile"


@check("getContactOpenClickRate")
def _open_click_rate(s: Scenario, body: Any) -> None:
    assert body == {"contact_id": s.opener_contact_id, "included_activities_count": 1,
                    "average_open_rate": 1.0, "average_click_rate": 1.0}


@check("getContactTrackingCount")
def _activity_summary(s: Scenario, body: Any) -> None:
    assert body["contact_id"] == s.opener_contact_id
    assert body["campaign_activities"] == [
        {"campaign_activity_id": s.activity_id, "start_on": "2024-03-01T10:00:00.000Z", "em_bounces": 0,
         "em_clicks": 1, "em_forwards": 0, "em_opens": 1, "em_sends": 1, "em_unsubscribes": 0}]
