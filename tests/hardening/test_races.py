"""Item 7: races and duplicates on contacts and links are 409 or 400, never 500."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from ..conftest import Account, LiveServer
from ..support.scenario import campaign_with_activity


def test_concurrent_creation_of_one_contact(server: LiveServer, account: Account) -> None:
    def create(_: int) -> int:
        with httpx.Client(base_url=server.url, timeout=60) as c:
            return c.post("/v1/contacts", json={"email": "Race@Example.com"}, headers=account.headers).status_code

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(create, range(80)))
    assert sorted(set(codes)) == [201, 409], codes
    assert codes.count(201) == 1


def test_patching_an_email_onto_another_contact_is_409(http: httpx.Client, account: Account) -> None:
    a = http.post("/v1/contacts", json={"email": "ann@example.com"}, headers=account.headers).json()
    b = http.post("/v1/contacts", json={"email": "bob@example.com"}, headers=account.headers).json()
    for email in ("ann@example.com", "ANN@Example.COM"):
        r = http.patch(f"/v1/contacts/{b['id']}", json={"email": email}, headers=account.headers)
        assert r.status_code == 409, r.text
        assert r.json()["error"]["code"] == "conflict"
    r = http.patch(f"/v1/contacts/{a['id']}", json={"email": "Ann@example.com", "city": "Oslo"},
                   headers=account.headers)
    assert r.status_code == 200 and r.json()["city"] == "Oslo"  # its own address, in another case, is fine
    assert http.get(f"/v1/contacts/{b['id']}", headers=account.headers).json()["email"] == "bob@example.com"


def test_links_given_twice_or_too_many(http: httpx.Client, account: Account) -> None:
    _, activity = campaign_with_activity(http, account.headers)
    twice = [{"url_id": "new", "url": "https://a.example/"}, {"url_id": "new", "url": "https://b.example/"}]
    r = http.put(f"/v1/activities/{activity}/links", json=twice, headers=account.headers)
    assert r.status_code == 400 and r.json()["error"]["code"] == "duplicate_url_id", r.text
    many = [{"url_id": str(i), "url": "https://a.example/"} for i in range(1001)]
    r = http.put(f"/v1/activities/{activity}/links", json=many, headers=account.headers)
    assert r.status_code == 400 and r.json()["error"]["code"] == "too_many_links", r.text
    huge = [{"url_id": str(i), "url": f"https://a.example/{i}"} for i in range(200_000)]
    r = http.put(f"/v1/activities/{activity}/links", json=huge, headers=account.headers)
    assert r.status_code == 413, r.text
    assert http.get(f"/v1/activities/{activity}/links", headers=account.headers).json()["links"] == []
    ok = [{"url_id": str(i), "url": "https://a.example/"} for i in range(1000)]
    assert http.put(f"/v1/activities/{activity}/links", json=ok, headers=account.headers).status_code == 200
