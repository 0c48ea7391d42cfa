"""Item 14: the OpenAPI document says what the API does; 405s carry the right Allow header."""

from __future__ import annotations

import httpx

from ..conftest import Account


def test_no_422_is_declared_and_400s_are(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert "422" not in op["responses"], (method, path)
            if op.get("parameters") or op.get("requestBody"):
                assert "400" in op["responses"], (method, path)
    assert "HTTPValidationError" not in spec.get("components", {}).get("schemas", {})


def test_what_was_a_422_is_a_400(http: httpx.Client, account: Account) -> None:
    r = http.get("/v1/contacts", params={"limit": "many"}, headers=account.headers)
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request"
    r = http.post("/v1/campaigns", json={"nom": "x"}, headers=account.headers)
    assert r.status_code == 400 and r.json()["error"]["details"]


def test_v2_ids_and_cursors_are_described(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    params = {p["name"]: p for p in spec["paths"]["/v2/contacts/{contact_id}/tracking"]["get"]["parameters"]}
    assert params["contact_id"]["schema"]["pattern"] == "^[0-9]{1,19}$"
    assert "num_id" in params["contact_id"]["description"]
    assert "cursor" in params["next"]["description"] and "account" in params["next"]["description"]
    assert params["api_key"]["required"] is True
    campaign = spec["paths"]["/v2/emailmarketing/campaigns/{campaign_id}/tracking/reports/summary"]["get"]
    assert {p["name"]: p for p in campaign["parameters"]}["campaign_id"]["schema"]["pattern"]


def test_405_names_every_method_of_the_path(http: httpx.Client) -> None:
    cases = {("PUT", "/v1/contacts"): "GET, HEAD, POST",
             ("POST", "/v1/contacts/0d8a9c4e-0000-4000-8000-000000000000"): "GET, HEAD, PATCH, DELETE",
             ("GET", "/v1/events"): "POST",
             ("POST", "/rest/bounces"): "GET, HEAD"}
    for (method, path), allow in cases.items():
        r = http.request(method, path)
        assert r.status_code == 405, (method, path)
        assert r.headers["allow"] == allow, (method, path)
