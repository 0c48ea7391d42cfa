"""Overriding a bounce's reason and re-classifying stored messages: events, counters and
suppressions corrected together, and the counters always equal a recount of the log."""

from __future__ import annotations

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from mailtally.events import Event
from mailtally.ingest.bounce_messages import ingest_message
from mailtally.store import catalog, corrections, suppressions
from mailtally.store.db import writing
from mailtally.store.stats import activity_stats
from mailtally.store.writer import write_events
from mailtally.vocab import EventType, Reason

from .conftest import TEST_SECRET, Account, make_account
from .support.mail import dsn
from .support.scenario import campaign_with_activity, post_events
from .test_writer import recount

RFC822 = {"Content-Type": "message/rfc822"}
# Status codes the engine reads as different reasons.
STATUSES = {"5.1.1": "smtp; 550 5.1.1 <{r}>: User unknown", "5.2.2": "smtp; 552 5.2.2 Mailbox full",
            "4.4.7": "smtp; 450 4.4.7 Message expired", "5.7.1": "smtp; 554 5.7.1 Message rejected as spam"}
REASONS = sorted(corrections.BOUNCE_REASONS)


def assert_counters_match_the_log(engine: Engine, account: int, activity: str) -> None:
    with engine.connect() as conn:
        stats = activity_stats(conn, account, [activity]).get(activity)
    expected = recount(engine, account, activity)
    got = stats.counts if stats else {}
    for name in set(expected) | {k for k, v in got.items() if v}:
        assert got.get(name, 0) == expected.get(name, 0), name


def test_override_undoes_a_false_positive(http: httpx.Client, account: Account, engine: Engine) -> None:
    h = account.headers
    _, activity = campaign_with_activity(http, h)
    post_events(http, h, [{"type": "send", "activity_id": activity, "email": "full@remote.example",
                           "occurred_at": "2024-03-01T10:00:00Z"}])
    # The message says "user unknown", but the mailbox was only full: a false positive.
    posted = http.post("/v1/bounces", content=dsn("full@remote.example"), headers={**h, **RFC822}).json()
    assert http.get("/v1/suppressions/full@remote.example", headers=h).json()["reason"] == "hard_bounce"
    counts = http.get(f"/v1/activities/{activity}/stats", headers=h).json()["counts"]
    assert (counts["bounces_b"], counts["bounces_f"]) == (1, 0)

    r = http.post(f"/v1/bounces/{posted['id']}/override", json={"reason": "mailboxfull"}, headers=h)
    assert r.status_code == 200, r.text
    [change] = r.json()["changes"]
    assert change["from"] == {"reason": "userunknown", "bounce_code": "B"}
    assert change["to"] == {"reason": "mailboxfull", "bounce_code": "F"} and change["suppression_lifted"] is True
    counts = http.get(f"/v1/activities/{activity}/stats", headers=h).json()["counts"]
    assert (counts["bounces"], counts["bounces_b"], counts["bounces_f"]) == (1, 0, 1)
    assert http.get("/v1/suppressions/full@remote.example", headers=h).status_code == 404
    shown = http.get(f"/v1/bounces/{posted['id']}", headers=h).json()
    assert [(e["reason"], e["bounce_code"]) for e in shown["events"]] == [("mailboxfull", "F")]
    assert_counters_match_the_log(engine, account.id, activity)

    assert http.post(f"/v1/bounces/{posted['id']}/override", json={"reason": "feedback"}, headers=h).status_code == 400
    assert http.post(f"/v1/bounces/{posted['id']}/override", json={"reason": "nonsense"},
                     headers=h).status_code == 400
    other = make_account(engine)
    assert http.post(f"/v1/bounces/{posted['id']}/override", json={"reason": "mailboxfull"},
                     headers=other.headers).status_code == 404


def test_reclassify_dry_run_then_apply(http: httpx.Client, account: Account, engine: Engine) -> None:
    h = account.headers
    _, activity = campaign_with_activity(http, h)
    post_events(http, h, [{"type": "send", "activity_id": activity, "email": f"r{i}@remote.example",
                           "occurred_at": "2024-03-01T10:00:00Z"} for i in range(3)])
    ids = [http.post("/v1/bounces", content=dsn(f"r{i}@remote.example", status="5.2.2",
                                                diagnostic="smtp; 552 5.2.2 Mailbox full"),
                     headers={**h, **RFC822}).json()["id"] for i in range(3)]
    # What an older engine left behind: two of them logged as "undefined" (X).
    for mid in ids[:2]:
        http.post(f"/v1/bounces/{mid}/override", json={"reason": "undefined"}, headers=h)
    before = http.get(f"/v1/activities/{activity}/stats", headers=h).json()["counts"]
    assert (before["bounces_x"], before["bounces_f"]) == (2, 1)

    assert http.post("/v1/bounces/reclassify", json={}, headers=h).json()["error"]["code"] == "no_filter"
    dry = http.post("/v1/bounces/reclassify", json={"all": True, "dry_run": True}, headers=h).json()
    assert (dry["messages"], dry["differences"]) == (3, 2)
    assert {(c["email"], c["from"]["reason"], c["to"]["reason"], c["applied"]) for c in dry["changes"]} == {
        ("r0@remote.example", "undefined", "mailboxfull", False), ("r1@remote.example", "undefined", "mailboxfull",
                                                                   False)}
    assert http.get(f"/v1/activities/{activity}/stats", headers=h).json()["counts"] == before

    only = http.post("/v1/bounces/reclassify", json={"ids": [ids[0]]}, headers=h).json()
    assert only["differences"] == 1 and only["changes"][0]["applied"] is True
    rest = http.post("/v1/bounces/reclassify", json={"reason": "undefined"}, headers=h).json()
    assert rest["differences"] == 1
    after = http.get(f"/v1/activities/{activity}/stats", headers=h).json()["counts"]
    assert (after["bounces_x"], after["bounces_f"]) == (0, 3)
    assert http.post("/v1/bounces/reclassify", json={"all": True}, headers=h).json()["differences"] == 0
    assert_counters_match_the_log(engine, account.id, activity)


step = st.tuples(st.integers(0, 4), st.sampled_from(sorted(STATUSES)), st.integers(0, 30))
override_st = st.tuples(st.integers(0, 20), st.sampled_from(REASONS))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bounces=st.lists(step, min_size=1, max_size=10), overrides=st.lists(override_st, max_size=8),
       reclassify_after=st.booleans())
def test_counters_equal_a_recount_after_any_corrections(
    engine: Engine, bounces: list[tuple[int, str, int]], overrides: list[tuple[int, Reason]], reclassify_after: bool
) -> None:
    account = make_account(engine).id
    with writing(engine) as conn:
        campaign = catalog.create_campaign(conn, account, "prop")
        activity = catalog.create_activity(conn, account, campaign.id).id
        emails = [f"c{i}@remote.example" for i in range(5)]
        ids = catalog.contacts_for_emails(conn, account, emails)
        write_events(conn, account, [Event(EventType.SEND, activity, 1_709_200_000_000, ids[e]) for e in emails])
    messages = []
    for who, status, minute in bounces:
        raw = dsn(emails[who], status=status, diagnostic=STATUSES[status]).replace(
            b"10:05:00", f"10:{minute:02d}:00".encode())
        with writing(engine) as conn:
            messages.append(ingest_message(conn, account, TEST_SECRET.encode(), raw).raw_message_id)
    for n, reason in overrides:
        mid = messages[n % len(messages)]
        with writing(engine) as conn:
            changes = corrections.override(conn, account, mid, reason)
        with engine.connect() as conn:
            for c in changes:
                if c.suppression_lifted:
                    assert suppressions.get(conn, account, c.email) is None or reason in (
                        Reason.USERUNKNOWN, Reason.HOSTUNKNOWN, Reason.HASMOVED, Reason.NOTACCEPT, Reason.SUSPEND)
    if reclassify_after:
        with writing(engine) as conn:
            corrections.reclassify(conn, account, messages, dry_run=False)
    assert_counters_match_the_log(engine, account, activity)
