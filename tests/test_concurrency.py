"""Writers at the same time: every request succeeds, nothing is lost or counted twice."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from .conftest import Account, LiveServer
from .support.mail import dsn
from .support.scenario import campaign_with_activity


def test_concurrent_events_bounces_and_contacts(server: LiveServer, http: httpx.Client, account: Account) -> None:
    _, activity = campaign_with_activity(http, account.headers)
    sends = [{"type": "send", "activity_id": activity, "email": f"c{i}@remote.example",
              "occurred_at": f"2024-03-01T10:00:{i % 60:02d}Z"} for i in range(400)]
    batches = [sends[i : i + 20] for i in range(0, len(sends), 20)]

    def post_batch(batch: list[dict[str, object]]) -> int:
        with httpx.Client(base_url=server.url, timeout=60) as c:
            return c.post("/v1/events", json=batch, headers=account.headers).status_code

    def post_bounce(i: int) -> int:
        with httpx.Client(base_url=server.url, timeout=60) as c:
            raw = dsn(f"c{i}@remote.example")
            return c.post("/v1/bounces", content=raw, headers={**account.headers,
                                                               "Content-Type": "message/rfc822"}).status_code

    def post_contact(i: int) -> int:
        with httpx.Client(base_url=server.url, timeout=60) as c:
            return c.post("/v1/contacts", json={"email": f"new{i}@remote.example"}, headers=account.headers).status_code

    # Sends first (bounces match the most recent send), then everything at once.
    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(post_batch, batches)) == {200}
        jobs = [pool.submit(post_batch, b) for b in batches]  # replays
        jobs += [pool.submit(post_bounce, i) for i in range(0, 400, 10)]
        jobs += [pool.submit(post_contact, i) for i in range(20)]
        codes = [j.result() for j in jobs]
    assert codes.count(200) == len(batches) + 40 and codes.count(201) == 20, codes
    counts = http.get(f"/v1/activities/{activity}/stats", headers=account.headers).json()["counts"]
    assert counts["sends"] == 400 and counts["bounces"] == 40 and counts["bounces_b"] == 40
