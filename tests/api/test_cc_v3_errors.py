"""Every refusal of the v3 API, in Constant Contact's error body, and account isolation."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import Engine

from mailtally.vocab import Scope

from ..conftest import Account, LiveServer, make_account
from ..support.scenario import campaign_with_activity, post_events
from .cc_v3_support import Scenario, assert_cc_error, build_scenario

ALL_OPS = ("getSends", "getOpens", "getUniqueOpens", "getDidNotOpens", "getClicks", "getForwards", "getOptouts",
           "getBounces", "getCampaignActivityLinkStats", "getEmailSummary", "getEmailCampaignActivitySummary",
           "getAllBulkEmailCampaignSummaries", "getContactTracking", "getContactOpenClickRate",
           "getContactTrackingCount")
CONTACT_OPS = {"getContactTracking", "getContactOpenClickRate", "getContactTrackingCount"}
PAGED = {"getSends", "getOpens", "getUniqueOpens", "getDidNotOpens", "getClicks", "getForwards", "getOptouts",
         "getBounces", "getAllBulkEmailCampaignSummaries", "getContactTracking"}


@pytest.fixture(scope="module")
def mine(server: LiveServer, engine: Engine) -> Iterator[Scenario]:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield build_scenario(http, make_account(engine))


@pytest.fixture(scope="module")
def theirs(server: LiveServer, engine: Engine) -> Iterator[Scenario]:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield build_scenario(http, make_account(engine))


def v3(s: Scenario, op: str) -> str:
    return "/v3" + s.op_urls()[op]


def test_operation_list_is_complete(mine: Scenario) -> None:
    assert set(mine.op_urls()) == set(ALL_OPS)


@pytest.mark.parametrize("op", ALL_OPS)
def test_401_without_or_with_a_bad_token(op: str, mine: Scenario, http: httpx.Client) -> None:
    url = v3(mine, op)
    body = assert_cc_error(http.get(url), 401)
    assert body[0]["error_key"] == "unauthorized"
    assert_cc_error(http.get(url, headers={"Authorization": "Bearer not-a-token"}), 401)
    assert_cc_error(http.get(url, headers={"Authorization": f"Basic {mine.account.token}"}), 401)


@pytest.mark.parametrize("op", ALL_OPS)
def test_403_without_the_scope(op: str, mine: Scenario, http: httpx.Client, engine: Engine) -> None:
    wrong = Scope.CAMPAIGN_DATA if op in CONTACT_OPS else Scope.CONTACT_DATA
    stranger = make_account(engine, (wrong, Scope.INGEST))
    # The scope is checked before the id: the stranger learns nothing about these ids.
    body = assert_cc_error(http.get(v3(mine, op), headers=stranger.headers), 403)
    assert body[0]["error_key"] == "forbidden"


@pytest.mark.parametrize("op", sorted(set(ALL_OPS) - {"getAllBulkEmailCampaignSummaries"}))
def test_404_for_another_accounts_ids(op: str, mine: Scenario, theirs: Scenario, http: httpx.Client) -> None:
    r = http.get(v3(theirs, op), headers=mine.account.headers)
    assert_cc_error(r, 404)
    assert "example.com" not in r.text and "em_" not in r.text  # an error, never their data


@pytest.mark.parametrize("op", sorted(set(ALL_OPS) - {"getAllBulkEmailCampaignSummaries"}))
def test_404_for_unknown_ids_and_400_for_malformed(op: str, mine: Scenario, http: httpx.Client) -> None:
    h = mine.account.headers
    url = v3(mine, op)
    ids = (mine.activity_id, mine.campaign_id, mine.opener_contact_id)
    unknown, malformed = url, url
    for value in ids:
        unknown = unknown.replace(value, str(uuid.uuid4()))
        malformed = malformed.replace(value, "not-a-uuid")
    assert_cc_error(http.get(unknown, headers=h), 404)
    assert_cc_error(http.get(malformed, headers=h), 400)


def test_summaries_list_only_own_campaigns(mine: Scenario, theirs: Scenario, http: httpx.Client) -> None:
    r = http.get(v3(mine, "getAllBulkEmailCampaignSummaries"), headers=mine.account.headers)
    assert [c["campaign_id"] for c in r.json()["bulk_email_campaign_summaries"]] == [mine.campaign_id]


def test_stats_with_a_foreign_id_among_own(mine: Scenario, theirs: Scenario, http: httpx.Client) -> None:
    h = mine.account.headers
    r = http.get(f"/v3/reports/stats/email_campaigns/{mine.campaign_id},{theirs.campaign_id}", headers=h)
    assert_cc_error(r, 404)  # CC: any unknown campaign is a 404 for all
    r = http.get(f"/v3/reports/stats/email_campaign_activities/{mine.activity_id},{theirs.activity_id}", headers=h)
    assert r.status_code == 200
    body = r.json()
    assert [x["campaign_activity_id"] for x in body["results"]] == [mine.activity_id]
    assert len(body["errors"]) == 1 and theirs.activity_id in body["errors"][0]["error_message"]
    assert theirs.campaign_id not in r.text


@pytest.mark.parametrize("op", sorted(PAGED))
@pytest.mark.parametrize("limit", ["0", "-1", "501", "abc", "1.5"])
def test_400_for_a_bad_limit(op: str, limit: str, mine: Scenario, http: httpx.Client) -> None:
    if op == "getContactTracking" and limit == "501":
        limit = "101"  # its maximum is 100
    url = v3(mine, op)
    sep = "&" if "?" in url else "?"
    body = assert_cc_error(http.get(f"{url}{sep}limit={limit}", headers=mine.account.headers), 400)
    assert "limit" in body[0]["error_key"]


@pytest.mark.parametrize("op", sorted(PAGED))
def test_400_for_a_bad_cursor(op: str, mine: Scenario, http: httpx.Client) -> None:
    h = mine.account.headers
    url = v3(mine, op)
    sep = "&" if "?" in url else "?"
    for bad in ("garbage", "MTIzNDU2Nzg5MA", "", "500"):
        assert_cc_error(http.get(f"{url}{sep}next={bad}", headers=h), 400)


def test_400_for_a_cursor_of_another_report_or_account(mine: Scenario, theirs: Scenario, http: httpx.Client) -> None:
    h = mine.account.headers
    post_events(http, h, [{"type": "send", "activity_id": mine.activity_id, "email": f"more{i}@example.com",
                           "occurred_at": "2024-03-01T09:00:00Z"} for i in range(3)])
    base = f"/v3/reports/email_reports/{mine.activity_id}/tracking"
    href = http.get(f"{base}/sends?limit=2", headers=h).json()["_links"]["next"]["href"]
    cursor = href.split("next=")[1]
    assert http.get(href, headers=h).status_code == 200
    assert_cc_error(http.get(f"{base}/opens?next={cursor}", headers=h), 400)  # another report
    assert_cc_error(http.get(f"{base}/bounces?next={cursor}", headers=h), 400)
    assert_cc_error(http.get(href, headers=theirs.account.headers), 404)  # their token: not their activity
    tampered = cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB")
    assert_cc_error(http.get(f"{base}/sends?next={tampered}", headers=h), 400)


def test_400_for_bad_filters_and_ranges(mine: Scenario, http: httpx.Client) -> None:
    h = mine.account.headers
    a, c = mine.activity_id, mine.opener_contact_id
    email = f"/v3/reports/email_reports/{a}/tracking"
    contact = f"/v3/reports/contact_reports/{c}"
    for url in (
        f"{email}/bounces?bounce_code=Q",
        f"{email}/bounces?bounce_code=B&bounce_code=b",
        f"{email}/clicks?url_id=" + "9" * 65,
        f"{contact}/activity_details",  # tracking_activities_list is required
        f"{contact}/activity_details?tracking_activities_list=em_sends,em_nope",
        f"{contact}/activity_details?tracking_activities_list=,",
        f"{contact}/open_and_click_rates?start=2024-01-01T00:00:00Z",  # end is required
        f"{contact}/open_and_click_rates?start=yesterday&end=2024-01-01T00:00:00Z",
        f"{contact}/open_and_click_rates?start=2024-02-01T00:00:00Z&end=2024-01-01T00:00:00Z",
        f"{contact}/open_and_click_rates?start=2010-01-01T00:00:00Z&end=2024-01-01T00:00:00Z",  # > 5 years
        f"{contact}/activity_summary?start=2024-01-01T00:00:00Z&end=31/12/2024",
        "/v3/reports/stats/email_campaign_activities/" + ",".join(str(uuid.uuid4()) for _ in range(11)),
        "/v3/reports/stats/email_campaigns/,",
    ):
        assert_cc_error(http.get(url, headers=h), 400)


def test_unknown_v3_path_is_a_cc_404(mine: Scenario, http: httpx.Client) -> None:
    assert_cc_error(http.get("/v3/reports/nothing/here", headers=mine.account.headers), 404)


def test_error_case_uses_other_accounts_data(http: httpx.Client, account: Account, other_account: Account) -> None:
    """A fresh pair of accounts: one's activity is invisible to the other on every tracking report."""
    _, activity = campaign_with_activity(http, other_account.headers)
    post_events(http, other_account.headers, [{"type": "send", "activity_id": activity, "email": "z@example.com",
                                               "occurred_at": "2024-03-01T10:00:00Z"}])
    for report in ("sends", "opens", "unique_opens", "didnotopens", "clicks", "forwards", "optouts", "bounces"):
        r = http.get(f"/v3/reports/email_reports/{activity}/tracking/{report}", headers=account.headers)
        assert_cc_error(r, 404)
        assert "z@example.com" not in r.text
