"""Items 11 and 12: what today's Constant Contact clients send. List parameters in both the
comma and the repeated form; a repeated single-valued parameter is a 400; the parameters the
reference OpenAPI predates (tracking_activity_type, include_campaign_activity_names,
no_clicks), with answers that still validate against the reference."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import Engine

from ..api.cc_v3_support import V3, Scenario, assert_cc_error, build_scenario, validate
from ..conftest import LiveServer, make_account

TYPES = ["em_sends", "em_opens", "em_clicks"]


@pytest.fixture(scope="module")
def scenario(server: LiveServer, engine: Engine) -> Iterator[Scenario]:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield build_scenario(http, make_account(engine))


@pytest.fixture(scope="module")
def v3(server: LiveServer, scenario: Scenario) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url + V3, timeout=30, headers=scenario.account.headers) as client:
        yield client


def _details(v3: httpx.Client, s: Scenario, params: list[tuple[str, str]]) -> httpx.Response:
    return v3.get(f"/reports/contact_reports/{s.opener_contact_id}/activity_details", params=params)


@pytest.mark.parametrize("params", [
    [("tracking_activities_list", ",".join(TYPES))],
    [("tracking_activities_list", t) for t in TYPES],  # what the current SDK sends
    [("tracking_activity_type", t) for t in TYPES],
    [("tracking_activity_type", ",".join(TYPES))],
])
def test_tracking_types_in_every_form(v3: httpx.Client, scenario: Scenario, params: list[tuple[str, str]]) -> None:
    r = _details(v3, scenario, params)
    assert r.status_code == 200, r.text
    validate("getContactTracking", r.json())
    rows = r.json()["tracking_activities"]
    assert [row["tracking_activity_type"] for row in rows] == ["em_clicks", "em_opens", "em_sends"]


def test_the_two_type_parameters_are_mutually_exclusive(v3: httpx.Client, scenario: Scenario) -> None:
    r = _details(v3, scenario, [("tracking_activities_list", "em_sends"), ("tracking_activity_type", "em_opens")])
    assert "mutually exclusive" in assert_cc_error(r, 400)[0]["error_message"]
    assert_cc_error(_details(v3, scenario, []), 400)


def test_campaign_activity_names(v3: httpx.Client, scenario: Scenario) -> None:
    default = _details(v3, scenario, [("tracking_activity_type", "em_sends")])
    assert default.status_code == 200
    validate("getContactTracking", default.json())
    assert [row["campaign_activity_name"] for row in default.json()["tracking_activities"]] == ["Seed 004"]
    off = _details(v3, scenario, [("tracking_activity_type", "em_sends"), ("include_campaign_activity_names", "false")])
    assert "campaign_activity_name" not in off.json()["tracking_activities"][0]
    bad = _details(v3, scenario, [("tracking_activity_type", "em_sends"), ("include_campaign_activity_names", "yes")])
    assert_cc_error(bad, 400)


def test_links_report_no_clicks(v3: httpx.Client, scenario: Scenario) -> None:
    path = f"/reports/email_reports/{scenario.activity_id}/links"
    clicked = v3.get(path)
    every = v3.get(path, params={"no_clicks": "true"})
    for r in (clicked, every):
        assert r.status_code == 200
        validate("getCampaignActivityLinkStats", r.json())
    assert [(x["url_id"], x["unique_clicks"]) for x in clicked.json()["link_click_counts"]] == [("1", 2)]
    assert [(x["url_id"], x["unique_clicks"]) for x in every.json()["link_click_counts"]] == [("1", 2), ("2", 0)]
    assert v3.get(path, params={"no_clicks": "false"}).json() == clicked.json()
    assert_cc_error(v3.get(path, params={"no_clicks": "maybe"}), 400)


def test_bounce_codes_comma_or_repeated(v3: httpx.Client, scenario: Scenario) -> None:
    path = f"/reports/email_reports/{scenario.activity_id}/tracking/bounces"
    a = v3.get(path, params=[("bounce_code", "B"), ("bounce_code", "Z")])
    b = v3.get(path, params={"bounce_code": "B,Z"})
    assert a.status_code == b.status_code == 200
    assert sorted(r["bounce_code"] for r in a.json()["tracking_activities"]) == ["B", "Z"]
    assert a.json()["tracking_activities"] == b.json()["tracking_activities"]


@pytest.mark.parametrize(("path", "params"), [
    ("/v3/reports/email_reports/{a}/tracking/sends", [("limit", "5"), ("limit", "500")]),
    ("/v3/reports/summary_reports/email_campaign_summaries", [("limit", "1"), ("limit", "2")]),
    ("/v3/reports/contact_reports/{c}/open_and_click_rates",
     [("start", "2024-01-01T00:00:00Z"), ("end", "2024-12-31T00:00:00Z"), ("end", "2025-01-01T00:00:00Z")]),
    ("/v3/reports/contact_reports/{c}/activity_details",
     [("tracking_activity_type", "em_sends"), ("limit", "1"), ("limit", "2")]),
])
def test_a_single_valued_parameter_given_twice_is_400(
        server: LiveServer, scenario: Scenario, path: str, params: list[tuple[str, str]]) -> None:
    url = server.url + path.format(a=scenario.activity_id, c=scenario.opener_contact_id)
    r = httpx.get(url, params=params, headers=scenario.account.headers)
    body = assert_cc_error(r, 400)
    assert "only once" in body[0]["error_message"]


def test_repeats_are_refused_in_other_dialects_too(server: LiveServer, scenario: Scenario) -> None:
    h = scenario.account.headers
    r = httpx.get(server.url + "/v1/campaigns", params=[("limit", "1"), ("limit", "2")], headers=h)
    assert r.status_code == 400 and "only once" in r.json()["error"]["message"]
    r = httpx.get(server.url + "/emailapi/v2/reports/event/bounce", params=[("start_index", "1"), ("start_index", "2")],
                  headers={"Authorization": f"Zoho-oauthtoken {scenario.account.token}"})
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == 400
