"""What follows a correction, as a user expects it to: alert rules evaluated again, the
soft-bounce threshold counted again, and recipients a new reading finds recorded as events."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from mailtally.events import Event
from mailtally.store import catalog, corrections, outbox, raw_messages, reactions, suppressions
from mailtally.store.db import now_ms, writing
from mailtally.store.schema import contacts
from mailtally.store.writer import write_events
from mailtally.vocab import DeviceType, EventType, Reason, WebhookEvent, bounce_code_for, is_hard
from mailtally.webhooks import signing

from .conftest import Account, make_account
from .support.mail import dsn
from .support.scenario import campaign_with_activity, post_events
from .test_corrections import assert_counters_match_the_log


def _subscribe(engine: Engine, account: int, *wanted: WebhookEvent) -> None:
    with writing(engine) as conn:
        outbox.create_subscription(conn, account, "https://hooks.example.com/in", wanted, signing.new_secret())


def _outbox(engine: Engine, account: int) -> list[tuple[str, dict[str, object]]]:
    """The outbox, oldest first: (event type, data)."""
    with engine.connect() as conn:
        rows = outbox.deliveries(conn, account, limit=500)
    return [(str(r.event_type), json.loads(r.payload)["data"]) for r in reversed(rows)]


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_alerts_follow_a_correction(http: httpx.Client, account: Account, engine: Engine) -> None:
    """A false positive that fired a rule, undone: the alert is re-armed (by the correction);
    the bounce read as hard again: the rule fires again, and subscribers hear it."""
    h = account.headers
    r = http.put("/v1/alerts/rules", json={"hard_bounce_rate": {"min_sends": 10, "threshold": 5},
                                           "bounce_rate": {"enabled": False}}, headers=h)
    assert r.status_code == 200, r.text
    _subscribe(engine, account.id, WebhookEvent.ALERT_FIRED)
    _, activity = campaign_with_activity(http, h)
    post_events(http, h, [{"type": "send", "activity_id": activity, "email": f"r{i}@example.com",
                           "occurred_at": "2024-05-01T12:00:00Z"} for i in range(20)])
    post_events(http, h, [{"type": "bounce", "activity_id": activity, "email": f"r{i}@example.com",
                           "occurred_at": "2024-05-01T12:05:00Z", "reason": "userunknown"} for i in range(2)])
    [fired] = http.get("/v1/alerts", params={"live": "true"}, headers=h).json()["alerts"]
    assert (fired["kind"], fired["rate"], fired["count"], fired["rearmed_by"]) == ("hard_bounce_rate", 10.0, 2, None)

    # r1's bounce was a full mailbox: 1 hard bounce in 20 sends is 5%, not over the threshold.
    r = http.post("/v1/bounces/override", json={"activity_id": activity, "email": "r1@example.com",
                                                "reason": "mailboxfull"}, headers=h)
    assert r.status_code == 200, r.text
    assert http.get("/v1/alerts", params={"live": "true"}, headers=h).json()["alerts"] == []
    [cleared] = http.get("/v1/alerts", headers=h).json()["alerts"]
    assert cleared["id"] == fired["id"] and cleared["rearmed_at"] is not None
    assert cleared["rearmed_by"] == "correction"

    # And back: the condition holds again, so the rule fires again (a new alert).
    http.post("/v1/bounces/override", json={"activity_id": activity, "email": "r1@example.com",
                                            "reason": "userunknown"}, headers=h)
    live = http.get("/v1/alerts", params={"live": "true"}, headers=h).json()["alerts"]
    assert [(a["kind"], a["count"]) for a in live] == [("hard_bounce_rate", 2)] and live[0]["id"] != fired["id"]
    sent = [(kind, data["alert_id"]) for kind, data in _outbox(engine, account.id)]
    assert sent == [("alert.fired", fired["id"]), ("alert.fired", live[0]["id"])]
    # A correction that leaves the condition true leaves the live alert alone.
    http.post("/v1/bounces/override", json={"activity_id": activity, "email": "r1@example.com",
                                            "reason": "suspend"}, headers=h)
    assert [a["id"] for a in http.get("/v1/alerts", params={"live": "true"}, headers=h).json()["alerts"]] == [
        live[0]["id"]]
    # A person's re-arm says so.
    assert http.post(f"/v1/alerts/{live[0]['id']}/rearm", headers=h).json()["rearmed_by"] == "person"
    assert_counters_match_the_log(engine, account.id, activity)


def test_soft_threshold_suppression_follows_a_correction(http: httpx.Client, account: Account,
                                                        engine: Engine) -> None:
    """Three soft bounces in the window suppress (default policy); a correction that takes one of
    them away lifts it, one that gives it back suppresses again; with a fourth in the window the
    count still holds after the first is corrected away, and the suppression stays."""
    h = account.headers
    _subscribe(engine, account.id, WebhookEvent.SUPPRESSION_ADDED, WebhookEvent.SUPPRESSION_REMOVED)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=10)
    who = "soft@remote.example"
    acts = [campaign_with_activity(http, h, name=f"c{i}")[1] for i in range(4)]
    post_events(http, h, [{"type": "send", "activity_id": a, "email": who, "occurred_at": _iso(start)} for a in acts])

    def bounce(i: int) -> None:
        post_events(http, h, [{"type": "bounce", "activity_id": acts[i], "email": who, "reason": "mailboxfull",
                               "occurred_at": _iso(start + timedelta(days=i + 1))}])

    def entry() -> dict[str, object] | None:
        r = http.get(f"/v1/suppressions/{who}", headers=h)
        return r.json() if r.status_code == 200 else None

    def override(i: int, reason: str) -> dict[str, object]:
        r = http.post("/v1/bounces/override", json={"activity_id": acts[i], "email": who, "reason": reason},
                      headers=h)
        assert r.status_code == 200, r.text
        [change] = r.json()["changes"]
        return change  # type: ignore[no-any-return]

    for i in range(3):
        bounce(i)
    made = entry()
    assert made is not None and made["reason"] == "soft_bounce"
    assert [k for k, _ in _outbox(engine, account.id)] == ["suppression.added"]

    # The first was a block (ignored by default): two soft bounces are under the threshold.
    assert override(0, "blocked")["suppression_lifted"] is True
    assert entry() is None
    removed = _outbox(engine, account.id)[-1]
    assert removed[0] == "suppression.removed" and removed[1]["removed_by"] == "correction"
    assert removed[1]["reason"] == "soft_bounce"

    # And back to a full mailbox: three again, suppressed again by the third.
    assert override(0, "mailboxfull")["suppression_lifted"] is False
    again = entry()
    assert again is not None and again["reason"] == "soft_bounce"
    added = _outbox(engine, account.id)[-1]
    assert added[0] == "suppression.added" and added[1]["added_by"] == "correction"

    # A fourth soft bounce: the first corrected away leaves three in the window, still suppressed.
    bounce(3)
    before = len(_outbox(engine, account.id))
    assert override(0, "blocked")["suppression_lifted"] is False
    kept = entry()
    assert kept is not None and kept["reason"] == "soft_bounce"
    assert len(_outbox(engine, account.id)) == before  # nothing changed that subscribers need to hear
    # Now two in the window: lifted.
    assert override(1, "blocked")["suppression_lifted"] is True
    assert entry() is None
    for a in acts:
        assert_counters_match_the_log(engine, account.id, a)


def test_a_person_or_import_entry_is_not_revisited(http: httpx.Client, account: Account, engine: Engine) -> None:
    """A soft bounce corrected away does not lift what a person put on the list."""
    h = account.headers
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=5)
    _, activity = campaign_with_activity(http, h)
    who = "kept@remote.example"
    post_events(http, h, [{"type": "send", "activity_id": activity, "email": who, "occurred_at": _iso(start)},
                          {"type": "bounce", "activity_id": activity, "email": who, "reason": "mailboxfull",
                           "occurred_at": _iso(start + timedelta(hours=1))}])
    assert http.put(f"/v1/suppressions/{who}", json={"reason": "manual"}, headers=h).status_code == 200
    http.post("/v1/bounces/override", json={"activity_id": activity, "email": who, "reason": "blocked"}, headers=h)
    assert http.get(f"/v1/suppressions/{who}", headers=h).json()["reason"] == "manual"


def test_reclassify_records_a_recipient_the_new_reading_finds(http: httpx.Client, account: Account,
                                                             engine: Engine) -> None:
    """Stored messages an older engine read as no bounce at all: today's reading finds the
    recipients, and each bounce lands through the writer (counters, suppression, webhooks), or
    among the unmatched when no send is its; once."""
    h = account.headers
    _, activity = campaign_with_activity(http, h)
    _subscribe(engine, account.id, WebhookEvent.BOUNCE, WebhookEvent.SUPPRESSION_ADDED)
    post_events(http, h, [{"type": "send", "activity_id": activity, "email": "gone@remote.example",
                           "occurred_at": "2024-03-01T10:00:00Z"}])
    with writing(engine) as conn:  # what an older engine left: the messages kept, nothing logged
        known = raw_messages.keep(conn, account.id, dsn("gone@remote.example"), source="test").id
        stranger = raw_messages.keep(conn, account.id, dsn("nobody@elsewhere.example"), source="test").id
    before = http.get(f"/v1/activities/{activity}/stats", headers=h).json()["counts"]
    assert (before["bounces"], before["bounces_b"], before["not_opened"]) == (0, 0, 1)

    dry = http.post("/v1/bounces/reclassify", json={"all": True, "dry_run": True}, headers=h).json()
    assert dry["differences"] == 2
    assert sorted((c["message_id"], c["email"], c["from"]["reason"], c["to"]["reason"], c["added"], c["applied"])
                  for c in dry["changes"]) == [
        (known, "gone@remote.example", None, "userunknown", True, False),
        (stranger, "nobody@elsewhere.example", None, "userunknown", True, False)]
    assert http.get(f"/v1/activities/{activity}/stats", headers=h).json()["counts"] == before
    assert http.get("/v1/suppressions/gone@remote.example", headers=h).status_code == 404

    done = http.post("/v1/bounces/reclassify", json={"all": True}, headers=h).json()
    assert sorted((c["email"], c["activity_id"], c["applied"]) for c in done["changes"]) == [
        ("gone@remote.example", activity, True), ("nobody@elsewhere.example", None, True)]
    after = http.get(f"/v1/activities/{activity}/stats", headers=h).json()["counts"]
    assert (after["bounces"], after["bounces_b"], after["not_opened"]) == (1, 1, 0)
    assert http.get("/v1/suppressions/gone@remote.example", headers=h).json()["reason"] == "hard_bounce"
    shown = http.get(f"/v1/bounces/{known}", headers=h).json()
    assert [(e["reason"], e["bounce_code"]) for e in shown["events"]] == [("userunknown", "B")]
    assert [u["recipient"] for u in http.get("/v1/bounces/unmatched", headers=h).json()["unmatched"]] == [
        "nobody@elsewhere.example"]
    assert sorted(k for k, _ in _outbox(engine, account.id)) == ["bounce", "suppression.added"]
    assert_counters_match_the_log(engine, account.id, activity)

    # Read again: nothing new, nothing counted twice.
    assert http.post("/v1/bounces/reclassify", json={"all": True}, headers=h).json()["differences"] == 0
    assert http.get(f"/v1/activities/{activity}/stats", headers=h).json()["counts"] == after
    # A filter by logged reason names what was logged: a recipient never logged is not in it.
    assert http.post("/v1/bounces/reclassify", json={"reason": "userunknown", "dry_run": True},
                     headers=h).json()["differences"] == 0


def test_a_lifted_entry_is_made_again_from_the_log(http: httpx.Client, account: Account, engine: Engine) -> None:
    """The hard bounce that suppressed an address was a false positive; what else its log holds
    decides: later soft bounces it overshadowed reach the threshold, a later complaint suppresses."""
    h = account.headers
    _subscribe(engine, account.id, WebhookEvent.SUPPRESSION_ADDED, WebhookEvent.SUPPRESSION_REMOVED)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=10)
    acts = [campaign_with_activity(http, h, name=f"c{i}")[1] for i in range(4)]
    soft, complained = "soft@remote.example", "angry@remote.example"
    post_events(http, h, [{"type": "send", "activity_id": a, "email": e, "occurred_at": _iso(start)}
                          for a in acts for e in (soft, complained)])
    post_events(http, h, [
        {"type": "bounce", "activity_id": acts[i], "email": soft, "occurred_at": _iso(start + timedelta(days=i + 1)),
         "reason": "userunknown" if i == 0 else "mailboxfull"} for i in range(4)])
    post_events(http, h, [
        {"type": "bounce", "activity_id": acts[0], "email": complained, "reason": "userunknown",
         "occurred_at": _iso(start + timedelta(days=1))},
        {"type": "abuse", "activity_id": acts[1], "email": complained, "occurred_at": _iso(start + timedelta(days=2))}])
    for who in (soft, complained):
        assert http.get(f"/v1/suppressions/{who}", headers=h).json()["reason"] == "hard_bounce"
    n = len(_outbox(engine, account.id))

    for who in (soft, complained):
        r = http.post("/v1/bounces/override", json={"activity_id": acts[0], "email": who, "reason": "vacation"},
                      headers=h)
        assert r.status_code == 200 and r.json()["changes"][0]["suppression_lifted"] is False, r.text
    made = http.get(f"/v1/suppressions/{soft}", headers=h).json()
    assert made["reason"] == "soft_bounce" and made["expires_at"] is not None
    assert made["suppressed_at"] == _iso(start + timedelta(days=4)).replace("Z", ".000Z")  # the third soft one
    assert http.get(f"/v1/suppressions/{complained}", headers=h).json()["reason"] == "complaint"
    news = _outbox(engine, account.id)[n:]
    assert [(k, d["email"], d["reason"], d["added_by"]) for k, d in news] == [
        ("suppression.added", soft, "soft_bounce", "correction"), ("suppression.added", complained, "complaint",
                                                                    "correction")]


def _kind(reason: str | None) -> str | None:
    return reason if reason is None or reason in suppressions.WEAK else "permanent"


CODES = {"B": Reason.USERUNKNOWN, "F": Reason.MAILBOXFULL, "D": Reason.EXPIRED, "Z": Reason.BLOCKED,
         "V": Reason.VACATION}
step = st.tuples(st.integers(0, 2), st.sampled_from([*CODES, "open", "abuse"]), st.integers(0, 40))
fix = st.tuples(st.integers(0, 30), st.sampled_from(sorted(CODES)))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=1, max_size=12), fixes=st.lists(fix, min_size=1, max_size=6))
def test_after_any_corrections_the_list_is_what_the_log_makes(
    engine: Engine, steps: list[tuple[int, str, int]], fixes: list[tuple[int, str]]
) -> None:
    """Whatever bounces are corrected, to whatever reason, each address's automatic entry is the
    one the policy makes from its log as it reads now (the soft threshold counted again)."""
    account = make_account(engine).id
    day = 86_400_000
    start = now_ms() - 60 * day
    emails = [f"p{i}@remote.example" for i in range(3)]
    with writing(engine) as conn:
        campaign = catalog.create_campaign(conn, account, "prop")
        acts = [catalog.create_activity(conn, account, campaign.id) for _ in range(3)]
        ids = catalog.contacts_for_emails(conn, account, emails)
        write_events(conn, account, [Event(EventType.SEND, a.id, start - day, ids[e]) for a in acts for e in emails])
    bounces = []
    for n, (who, what, at_day) in enumerate(sorted(steps, key=lambda s: s[2])):
        act = acts[n % 3]
        at = start + at_day * day + n
        if what in CODES:
            code = bounce_code_for(CODES[what])
            ev = Event(EventType.BOUNCE, act.id, at, ids[emails[who]], reason=CODES[what], bounce_code=code,
                       hard=code is not None and is_hard(code), idempotency_key=f"b{n}")
            bounces.append((act.num_id, at, ev.idem()))
        else:
            ev = Event(EventType(what), act.id, at, ids[emails[who]], idempotency_key=f"e{n}",
                       device_type=DeviceType.COMPUTER if what == "open" else None)
        with writing(engine) as conn:
            write_events(conn, account, [ev])
    for n, reason in fixes:
        if bounces:
            num, at, idem = bounces[n % len(bounces)]
            with writing(engine) as conn:
                corrections.override_event(conn, account, num, at, idem, CODES[reason])
    for email in emails:
        with engine.connect() as conn:
            trans = conn.begin()  # what the policy makes, then rolled back
            row = suppressions.get(conn, account, email)
            held = row.reason if row is not None else None
            suppressions.remove(conn, account, email)
            contact = conn.execute(select(contacts.c.num_id).where(contacts.c.account_id == account,
                                                                   contacts.c.email == email)).scalar_one()
            made = reactions.suppress(conn, account, suppressions.policy_for(conn, account),
                                      corrections._suppressing(conn, account, contact, ids[email], email),
                                      live_at=now_ms())
            trans.rollback()
        # Whether, and for good or for a while (soft_bounce, block): not which permanent reason nor
        # which event. As when events land out of order, the first permanent verdict to land
        # stands, so an earlier bounce corrected to hard does not replace a complaint or a later
        # hard bounce's entry.
        wanted = made[-1].reason.value if made else None
        assert _kind(held) == _kind(wanted), (email, held, wanted)

    for a in acts:
        assert_counters_match_the_log(engine, account, a.id)
