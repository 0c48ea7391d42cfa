"""Contacts, campaigns, activities and links through /v1."""

from __future__ import annotations

import httpx

from .conftest import Account
from .support.scenario import campaign_with_activity


def test_contact_lifecycle(http: httpx.Client, account: Account, other_account: Account) -> None:
    body = {"email": "Maddie@Example.com", "first_name": "Maddie", "last_name": "Brown",
            "custom_fields": {"plan": "pro"}}
    r = http.post("/v1/contacts", json=body, headers=account.headers)
    assert r.status_code == 201, r.text
    contact = r.json()
    assert contact["email"] == "maddie@example.com" and contact["num_id"] >= 1
    assert http.post("/v1/contacts", json=body, headers=account.headers).status_code == 409
    r = http.patch(f"/v1/contacts/{contact['id']}", json={"city": "Boston"}, headers=account.headers)
    assert r.json()["city"] == "Boston" and r.json()["first_name"] == "Maddie"
    assert http.get(f"/v1/contacts/{contact['id']}", headers=other_account.headers).status_code == 404
    assert http.delete(f"/v1/contacts/{contact['id']}", headers=account.headers).status_code == 204
    assert http.get(f"/v1/contacts/{contact['id']}", headers=account.headers).json()["deleted_at"]
    r = http.post("/v1/contacts", json={"email": "not-an-email"}, headers=account.headers)
    assert r.status_code == 400 and r.json()["error"]["details"][0]["field"] == "email"


def test_campaign_activity_links(http: httpx.Client, account: Account, other_account: Account) -> None:
    links = [{"url_id": "1", "url": "https://example.com/a"}, {"url_id": "2", "url": "https://example.com/b",
                                                                 "link_tag": "promo"}]
    campaign, activity = campaign_with_activity(http, account.headers, "Spring", links)
    got = http.get(f"/v1/campaigns/{campaign}", headers=account.headers).json()
    assert got["name"] == "Spring" and got["activities"][0]["id"] == activity
    assert got["activities"][0]["role"] == "primary_email"
    r = http.get(f"/v1/activities/{activity}/links", headers=account.headers)
    assert r.json()["links"][1] == {"url_id": "2", "url": "https://example.com/b", "link_tag": "promo"}
    assert http.get(f"/v1/campaigns/{campaign}", headers=other_account.headers).status_code == 404
    assert http.get(f"/v1/activities/{activity}/links", headers=other_account.headers).status_code == 404
    listed = http.get("/v1/campaigns", headers=other_account.headers).json()["campaigns"]
    assert campaign not in {c["id"] for c in listed}
    r = http.get("/v1/campaigns/not-a-uuid", headers=account.headers)
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_id"
    r = http.post(f"/v1/campaigns/{campaign}/activities", json={"role": "sms"}, headers=account.headers)
    assert r.status_code == 400


def test_openapi_lists_the_native_api(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    assert {"/v1/events", "/v1/contacts", "/v1/campaigns"} <= set(spec["paths"])
