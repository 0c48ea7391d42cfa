"""Overriding a bounce's reason and re-classifying stored messages: events, counters and
suppressions corrected together, and the counters always equal a recount of the log."""

from __future__ import annotations

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from mailtally.events import Event
from mailtally.ingest.bounce_messages import ingest_message
from mailtally.store import catalog, corrections, outbox, raw_messages, suppressions
from mailtally.store.db import writing
from mailtally.store.schema import events
from mailtally.store.stats import activity_stats
from mailtally.store.writer import write_events
from mailtally.vocab import BounceCode, EventType, Reason, WebhookEvent
from mailtally.webhooks import signing

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


def _outbox_kinds(engine: Engine, account: int) -> list[str]:
    with engine.connect() as conn:
        return sorted(str(r.event_type) for r in outbox.deliveries(conn, account))


def _subscribe(engine: Engine, account: int) -> None:
    with writing(engine) as conn:
        outbox.create_subscription(conn, account, "https://hooks.example.com/in",
                                   [WebhookEvent.SUPPRESSION_ADDED, WebhookEvent.SUPPRESSION_REMOVED],
                                   signing.new_secret())


def test_override_a_bounce_that_came_without_a_message(http: httpx.Client, account: Account, engine: Engine) -> None:
    """A bounce from /v1/events (as from a provider's webhook or a log): no stored message, still correctable."""
    h = account.headers
    _, activity = campaign_with_activity(http, h)
    _subscribe(engine, account.id)
    post_events(http, h, [
        {"type": "send", "activity_id": activity, "email": "full@remote.example",
         "occurred_at": "2024-03-01T10:00:00Z"},
        {"type": "bounce", "activity_id": activity, "email": "full@remote.example",
         "occurred_at": "2024-03-01T10:05:00Z", "reason": "userunknown", "status": "5.1.1"}])
    assert http.get("/v1/suppressions/full@remote.example", headers=h).json()["reason"] == "hard_bounce"
    assert _outbox_kinds(engine, account.id) == ["suppression.added"]

    r = http.post("/v1/bounces/override", json={"activity_id": activity, "email": "Full@remote.example",
                                                "reason": "mailboxfull"}, headers=h)
    assert r.status_code == 200, r.text
    [change] = r.json()["changes"]
    assert change["message_id"] is None and change["suppression_lifted"] is True and change["applied"] is True
    assert change["to"] == {"reason": "mailboxfull", "bounce_code": "F"}
    counts = http.get(f"/v1/activities/{activity}/stats", headers=h).json()["counts"]
    assert (counts["bounces"], counts["bounces_b"], counts["bounces_f"]) == (1, 0, 1)
    assert http.get("/v1/suppressions/full@remote.example", headers=h).status_code == 404
    assert _outbox_kinds(engine, account.id) == ["suppression.added", "suppression.removed"]
    assert_counters_match_the_log(engine, account.id, activity)

    # And back to a hard reason: suppressed again, and subscribers hear of it.
    r = http.post("/v1/bounces/override", json={"activity_id": activity, "email": "full@remote.example",
                                                "reason": "suspend"}, headers=h)
    assert r.json()["changes"][0]["to"] == {"reason": "suspend", "bounce_code": "S"}
    assert http.get("/v1/suppressions/full@remote.example", headers=h).json()["reason"] == "hard_bounce"
    assert _outbox_kinds(engine, account.id) == ["suppression.added", "suppression.added", "suppression.removed"]
    assert_counters_match_the_log(engine, account.id, activity)

    for body, status in (({"activity_id": activity, "email": "nobody@remote.example", "reason": "mailboxfull"}, 404),
                         ({"activity_id": activity, "email": "full@remote.example", "reason": "feedback"}, 400),
                         ({"activity_id": "not-a-uuid", "email": "full@remote.example", "reason": "mailboxfull"}, 400),
                         ({"activity_id": activity, "reason": "mailboxfull"}, 400)):
        r = http.post("/v1/bounces/override", json=body, headers=h)
        assert r.status_code == status, (body, r.text)
    other = make_account(engine)
    r = http.post("/v1/bounces/override", json={"activity_id": activity, "email": "full@remote.example",
                                                "reason": "mailboxfull"}, headers=other.headers)
    assert r.status_code == 404


HUMAN_REPLY = (b"From: Full Person <full@remote.example>\r\nTo: news@sender.example\r\n"
               b"Subject: Re: our spring offer\r\nDate: Fri, 01 Mar 2024 10:05:00 +0000\r\n"
               b"Message-ID: <reply-1@remote.example>\r\n\r\nThanks, but please call me instead.\r\n")


def test_reclassify_takes_out_a_bounce_the_engine_no_longer_reads(http: httpx.Client, account: Account,
                                                                  engine: Engine) -> None:
    """An older engine read a person's reply as a hard bounce: re-classifying takes the bounce out
    of the log, the counters and the suppression list, and tells subscribers."""
    h = account.headers
    _, activity = campaign_with_activity(http, h)
    _subscribe(engine, account.id)
    post_events(http, h, [{"type": "send", "activity_id": activity, "email": e, "occurred_at": "2024-03-01T10:00:00Z"}
                          for e in ("full@remote.example", "kept@remote.example")])
    with writing(engine) as conn:
        ids = catalog.contacts_for_emails(conn, account.id, ["full@remote.example"])
        at = 1_709_287_500_000
        bounce = Event(EventType.BOUNCE, activity, at, ids["full@remote.example"], reason=Reason.USERUNKNOWN,
                       bounce_code=BounceCode.NONEXISTENT, hard=True, idempotency_key="old-engine")
        write_events(conn, account.id, [bounce])
        kept = raw_messages.keep(conn, account.id, HUMAN_REPLY, source="test")
        num = conn.execute(select(events.c.activity_num).where(events.c.account_id == account.id,
                                                              events.c.type == "bounce")).scalar_one()
        contact_num = conn.execute(select(events.c.contact_num).where(
            events.c.account_id == account.id, events.c.type == "bounce")).scalar_one()
        raw_messages.link_events(conn, account.id, kept.id, [
            raw_messages.Link(num, bounce.idem(), "bounce", at, contact_num, "full@remote.example")])
    # A real bounce of the other recipient, to be left alone.
    http.post("/v1/bounces", content=dsn("kept@remote.example"), headers={**h, **RFC822})
    assert http.get("/v1/suppressions/full@remote.example", headers=h).status_code == 200
    before = http.get(f"/v1/activities/{activity}/stats", headers=h).json()["counts"]
    assert (before["bounces"], before["bounces_b"], before["not_opened"]) == (2, 2, 0)

    dry = http.post("/v1/bounces/reclassify", json={"all": True, "dry_run": True}, headers=h).json()
    assert [(c["email"], c["to"], c["removed"], c["applied"]) for c in dry["changes"]] == [
        ("full@remote.example", {"reason": None, "bounce_code": None}, True, False)]
    assert http.get(f"/v1/activities/{activity}/stats", headers=h).json()["counts"] == before

    done = http.post("/v1/bounces/reclassify", json={"all": True}, headers=h).json()
    assert done["differences"] == 1 and done["changes"][0]["suppression_lifted"] is True
    after = http.get(f"/v1/activities/{activity}/stats", headers=h).json()["counts"]
    assert (after["bounces"], after["bounces_b"], after["not_opened"]) == (1, 1, 1)
    assert http.get("/v1/suppressions/full@remote.example", headers=h).status_code == 404
    assert http.get("/v1/suppressions/kept@remote.example", headers=h).status_code == 200
    assert http.get(f"/v1/bounces/{kept.id}", headers=h).json()["events"] == []
    assert _outbox_kinds(engine, account.id) == ["suppression.added", "suppression.added", "suppression.removed"]
    assert_counters_match_the_log(engine, account.id, activity)
    assert http.post("/v1/bounces/reclassify", json={"all": True}, headers=h).json()["differences"] == 0
