"""The golden numbers of the reporting overview (seed 004), computed by the store."""

from __future__ import annotations

import httpx

from .conftest import Account
from .support.scenario import GOLDEN_COUNTS, GOLDEN_PERCENTS, campaign_with_activity, post_events, seed_004


def test_seed_004_statistics(http: httpx.Client, account: Account) -> None:
    _, activity = campaign_with_activity(http, account.headers, links=[{"url_id": "1", "url": "https://x.example/"}])
    result = post_events(http, account.headers, seed_004(activity))
    assert result["accepted"] == 31 and result["duplicates"] == 0 and result["contacts_created"] == 15

    stats = http.get(f"/v1/activities/{activity}/stats", headers=account.headers).json()
    for name, want in GOLDEN_COUNTS.items():
        assert stats["counts"][name] == want, name
    assert stats["delivered"] == 9
    assert stats["percents"] == GOLDEN_PERCENTS
    assert stats["last_event_at"] == "2024-03-01T10:23:00.000Z"
