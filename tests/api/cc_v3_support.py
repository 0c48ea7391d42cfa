"""Helpers for the Constant Contact v3 tests: the official OpenAPI description, a validator
for its response schemas, and a seeded scenario that exercises every field of every report."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from ..conftest import Account, need_shared
from ..support.scenario import campaign_with_activity, post_events, seed_004

SPEC_PATH = ("reference", "constant-contact-v3-reporting.openapi.yaml")
SPEC_URI = "urn:mailtally:cc-v3-openapi"
V3 = "/v3"


def spec_path() -> Path:
    return need_shared(*SPEC_PATH)


@cache
def _spec(path: Path) -> dict[str, Any]:
    with path.open() as f:
        return yaml.safe_load(f)  # type: ignore[no-any-return]


def spec() -> dict[str, Any]:
    return _spec(spec_path())


def operations() -> dict[str, tuple[str, dict[str, Any]]]:
    """operationId -> (path, operation) for every operation of the description."""
    out = {}
    for path, item in spec()["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                out[op["operationId"]] = (path, op)
    return out


def response_schema_ref(operation_id: str) -> str:
    _, op = operations()[operation_id]
    return str(op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"])


_formats = jsonschema.FormatChecker()


@_formats.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not value.endswith("Z") or "T" not in value:
        raise ValueError(f"{value!r} is not a UTC ISO 8601 date-time")
    datetime.fromisoformat(value)
    return True


@_formats.checks("date", raises=ValueError)
def _date(value: object) -> bool:
    if isinstance(value, str):
        date.fromisoformat(value)
        if len(value) != 10:
            raise ValueError(f"{value!r} is not YYYY-MM-DD")
    return True


@_formats.checks("uuid", raises=ValueError)
def _uuid(value: object) -> bool:
    if isinstance(value, str) and str(uuid.UUID(value)) != value:
        raise ValueError(f"{value!r} is not a canonical UUID")
    return True


def validate(operation_id: str, body: Any) -> None:
    """Validate a 200 body against the operation's schema in the official description,
    resolving its ``$ref``s through a registry that holds the whole document."""
    registry: Registry[Any] = Registry().with_resource(SPEC_URI, Resource.from_contents(spec(), DRAFT4))
    schema = {"$ref": SPEC_URI + response_schema_ref(operation_id)}
    validator = jsonschema.Draft4Validator(schema, registry=registry, format_checker=_formats)
    problems = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    assert not problems, f"{operation_id}: " + "; ".join(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in problems[:5])


ERROR_BODY = {
    "type": "array", "minItems": 1,
    "items": {"type": "object", "required": ["error_key", "error_message"],
              "properties": {"error_key": {"type": "string", "minLength": 1},
                             "error_message": {"type": "string", "minLength": 1}}},
}


def assert_cc_error(r: httpx.Response, status: int) -> list[dict[str, str]]:
    """The response has ``status`` and Constant Contact's error body."""
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    jsonschema.validate(body, ERROR_BODY)
    return body  # type: ignore[no-any-return]


@dataclass
class Scenario:
    """The seed-004 numbers plus what makes every optional field appear at least once."""

    account: Account
    campaign_id: str
    activity_id: str
    unsent_activity_id: str
    named_contact_id: str
    deleted_contact_id: str
    opener_contact_id: str

    def op_urls(self) -> dict[str, str]:
        """A request URL (under /v3) for every operation, on this scenario's ids."""
        a, c = self.activity_id, self.opener_contact_id
        email = f"/reports/email_reports/{a}"
        contact = f"/reports/contact_reports/{c}"
        rng = "start=2024-01-01T00:00:00-0500&end=2024-12-31T00:00:00Z"
        return {
            "getSends": f"{email}/tracking/sends",
            "getOpens": f"{email}/tracking/opens",
            "getUniqueOpens": f"{email}/tracking/unique_opens",
            "getDidNotOpens": f"{email}/tracking/didnotopens",
            "getClicks": f"{email}/tracking/clicks",
            "getForwards": f"{email}/tracking/forwards",
            "getOptouts": f"{email}/tracking/optouts",
            "getBounces": f"{email}/tracking/bounces",
            "getCampaignActivityLinkStats": f"{email}/links",
            "getEmailSummary": f"/reports/stats/email_campaigns/{self.campaign_id}",
            "getEmailCampaignActivitySummary": f"/reports/stats/email_campaign_activities/{a}",
            "getAllBulkEmailCampaignSummaries": "/reports/summary_reports/email_campaign_summaries",
            "getContactTracking": f"{contact}/activity_details?tracking_activities_list="
                                  "em_sends,em_opens,em_clicks,em_bounces,em_optouts,em_forwards",
            "getContactOpenClickRate": f"{contact}/open_and_click_rates?{rng}",
            "getContactTrackingCount": f"{contact}/activity_summary?{rng}",
        }


def build_scenario(http: httpx.Client, account: Account) -> Scenario:
    """Seed 004 through the native API, with named contacts, a deleted one and two links."""
    h = account.headers
    campaign_id, activity_id = campaign_with_activity(
        http, h, "Seed 004", links=[{"url_id": "1", "url": "https://shop.example.com/spring", "link_tag": "hero"},
                                    {"url_id": "2", "url": "https://shop.example.com/about"}])
    _, unsent = campaign_with_activity(http, h, "Never sent")
    ids = {}
    for i in range(15):
        body: dict[str, Any] = {"email": f"person{i:02d}@example.com"}
        if i % 2 == 0:
            body.update(first_name=f"First{i}", last_name=f"Last{i}")
        r = http.post("/v1/contacts", json=body, headers=h)
        assert r.status_code == 201, r.text
        ids[i] = r.json()["id"]
    post_events(http, h, seed_004(activity_id))
    # person00 bounced (B) and was then deleted: its bounce row carries deleted_at.
    assert http.delete(f"/v1/contacts/{ids[0]}", headers=h).status_code == 204
    return Scenario(account, campaign_id, activity_id, unsent, ids[6], ids[0], ids[6])
