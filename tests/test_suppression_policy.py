"""The suppression policy: sequences of events and the suppressions they must leave, through
the real writer on both databases (and the pure rules on their own)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from sqlalchemy import Engine

from mailtally.events import Event
from mailtally.store import catalog, suppressions
from mailtally.store.stats import activity_stats
from mailtally.store.writer import write_events
from mailtally.suppression.policy import DAY_MS, Fact, Policy, PolicyError, decide
from mailtally.vocab import BlockPolicy, BounceCode, EventType, Reason, SuppressionReason

from .conftest import make_account

T0 = 1_717_200_000_000  # 2024-06-01
B, D, F, S, V, X, Z = "B", "D", "F", "S", "V", "X", "Z"
REASON = {B: Reason.USERUNKNOWN, D: Reason.EXPIRED, F: Reason.MAILBOXFULL, S: Reason.SUSPEND,
          V: Reason.VACATION, X: Reason.UNDEFINED, Z: Reason.BLOCKED}


@dataclass
class Case:
    name: str
    steps: list[tuple[int, str]]  # (day, what): a bounce code, "abuse", "optout", "open", "click", "delivery"
    expect: SuppressionReason | None
    policy: dict[str, object] = field(default_factory=dict)
    expires_day: int | None = None  # when the suppression expires, in days from T0


CASES = [
    Case("hard bounce suppresses at once", [(0, B)], SuppressionReason.HARD_BOUNCE),
    Case("suspended is hard too", [(0, S)], SuppressionReason.HARD_BOUNCE),
    Case("hard bounces can be switched off", [(0, B)], None, {"hard_bounces": False}),
    Case("one soft bounce does not", [(0, F)], None),
    Case("two soft bounces do not", [(0, F), (1, D)], None),
    Case("three soft bounces in the window do", [(0, F), (3, D), (9, X)], SuppressionReason.SOFT_BOUNCE,
         expires_day=9 + 90),
    Case("spread beyond the window they do not", [(0, F), (20, F), (40, F)], None),
    Case("a delivery in between resets the count", [(0, F), (1, F), (2, "delivery"), (3, F)], None),
    Case("an open in between resets the count", [(0, F), (1, F), (2, "open"), (3, F), (4, F)], None),
    Case("a click resets it too", [(0, F), (1, F), (2, "click"), (3, F)], None),
    Case("after the reset three more do", [(0, F), (1, "open"), (2, F), (3, F), (4, F)],
         SuppressionReason.SOFT_BOUNCE, expires_day=94),
    Case("a custom threshold", [(0, F), (1, F)], SuppressionReason.SOFT_BOUNCE, {"soft_count": 2},
         expires_day=91),
    Case("soft suppressions can be kept for good", [(0, F), (1, F), (2, F)], SuppressionReason.SOFT_BOUNCE,
         {"soft_expiry_days": 0}),
    Case("blocks do nothing by default", [(0, Z), (1, Z), (2, Z), (3, Z)], None),
    Case("blocks can count as soft", [(0, Z), (1, F), (2, Z)], SuppressionReason.BLOCK, {"blocks": "soft"},
         expires_day=92),
    Case("blocks can suppress at once", [(0, Z)], SuppressionReason.BLOCK, {"blocks": "hard"}, expires_day=90),
    Case("vacation never suppresses", [(0, V), (1, V), (2, V), (3, V)], None),
    Case("a complaint suppresses at once", [(0, "abuse")], SuppressionReason.COMPLAINT),
    Case("complaints can be switched off", [(0, "abuse")], None, {"complaints": False}),
    Case("an opt-out suppresses at once", [(0, "optout")], SuppressionReason.OPTOUT),
    Case("a hard bounce after a soft suppression makes it hard", [(0, F), (1, F), (2, F), (3, B)],
         SuppressionReason.HARD_BOUNCE),
    Case("a soft bounce does not weaken a hard suppression", [(0, B), (1, F), (2, F), (3, F)],
         SuppressionReason.HARD_BOUNCE),
]


def _event(activity: str, contact: str, day: int, what: str, n: int) -> Event:
    at = T0 + day * DAY_MS + n  # n keeps same-day steps apart and in order
    if what in REASON:
        return Event(EventType.BOUNCE, activity, at, contact, reason=REASON[what], bounce_code=BounceCode(what),
                     hard=what in (B, S))
    return Event(EventType(what), activity, at, contact)


@pytest.mark.parametrize("batched", [False, True], ids=["event by event", "one batch"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_policy_table(engine: Engine, case: Case, batched: bool) -> None:
    account = make_account(engine).id
    with engine.begin() as conn:
        if case.policy:
            suppressions.save_policy(conn, account, Policy.from_dict(case.policy))
        campaign = catalog.create_campaign(conn, account, "c")
        # Two activities: the soft count is per address, across mailings.
        acts = [catalog.create_activity(conn, account, campaign.id).id for _ in range(2)]
        contact = catalog.contacts_for_emails(conn, account, ["who@example.com"])["who@example.com"]
        write_events(conn, account, [Event(EventType.SEND, a, T0 - DAY_MS, contact) for a in acts])
    events = [_event(acts[n % 2], contact, day, what, n) for n, (day, what) in enumerate(case.steps)]
    for chunk in ([events] if batched else [[e] for e in events]):
        with engine.begin() as conn:
            write_events(conn, account, chunk)
    with engine.connect() as conn:
        entry = suppressions.get(conn, account, "Who@Example.com", include_expired=True)
    if case.expect is None:
        assert entry is None
        return
    assert entry is not None and entry.reason == case.expect.value
    if case.expires_day is None:
        assert entry.expires_at is None
    else:
        assert entry.expires_at == T0 + case.expires_day * DAY_MS + (len(case.steps) - 1)


def test_a_send_to_a_suppressed_address_is_a_suppressed_bounce(engine: Engine) -> None:
    account = make_account(engine).id
    with engine.begin() as conn:
        campaign = catalog.create_campaign(conn, account, "c")
        first, second = (catalog.create_activity(conn, account, campaign.id).id for _ in range(2))
        ids = catalog.contacts_for_emails(conn, account, ["gone@example.com", "fine@example.com"])
        write_events(conn, account, [Event(EventType.SEND, first, T0, c) for c in ids.values()])
        write_events(conn, account, [Event(EventType.BOUNCE, first, T0 + 1000, ids["gone@example.com"],
                                           reason=Reason.USERUNKNOWN, bounce_code=BounceCode.NONEXISTENT, hard=True)])
    with engine.begin() as conn:
        # The next mailing: one send before the suppression's time (a late-arriving record), one after.
        write_events(conn, account, [Event(EventType.SEND, second, T0 + DAY_MS, c) for c in ids.values()])
        write_events(conn, account, [Event(EventType.SEND, first, T0 + 500, ids["gone@example.com"],
                                           idempotency_key="late")])
    with engine.connect() as conn:
        stats = activity_stats(conn, account, [first, second])
        again = suppressions.get(conn, account, "gone@example.com")
    assert (stats[second]["sends"], stats[second]["bounces"], stats[second]["bounces_s"]) == (2, 1, 1)
    assert stats[first]["bounces_s"] == 0 and stats[first]["bounces_b"] == 1
    assert again is not None and again.reason == "hard_bounce"  # the S bounce made no new entry


def test_pure_rules_and_validation() -> None:
    p = Policy()
    soft = [Fact(EventType.BOUNCE, T0 + i, BounceCode.MAILBOX_FULL) for i in range(3)]
    assert decide(p, soft[2], soft) is not None
    assert decide(p, soft[2], soft[:1]) is None
    suppressed = Fact(EventType.BOUNCE, T0, BounceCode.SUSPENDED, Reason.SUPPRESSED)
    assert decide(p, suppressed) is None
    assert Policy.from_dict({"blocks": "soft"}).blocks is BlockPolicy.SOFT
    for bad in ({"soft_count": 0}, {"soft_count": "3"}, {"blocks": "maybe"}, {"nope": 1}, {"optouts": 1}):
        with pytest.raises(PolicyError):
            Policy.from_dict(bad)


@pytest.mark.parametrize("others", [0, 12])
def test_suppressed_sends_are_found_from_either_side(engine: Engine, others: int) -> None:
    """The writer finds the held sends from the list when it is much the shorter (``others`` = 0:
    4 entries, 18 sends) and from the sends otherwise (16 entries): the same sends either way."""
    account = make_account(engine).id
    emails = [f"r{i}@example.com" for i in range(9)]
    with engine.begin() as conn:
        campaign = catalog.create_campaign(conn, account, "c")
        first, second = (catalog.create_activity(conn, account, campaign.id).id for _ in range(2))
        ids = catalog.contacts_for_emails(conn, account, emails)
        suppressions.add(conn, account, [
            suppressions.Entry("r0@example.com", SuppressionReason.HARD_BOUNCE, T0),  # before the sends: held
            suppressions.Entry("r1@example.com", SuppressionReason.HARD_BOUNCE, T0 + 10 * DAY_MS),  # after: sent
            # expired:
            suppressions.Entry("r2@example.com", SuppressionReason.SOFT_BOUNCE, T0 - 10 * DAY_MS, T0 - DAY_MS),
            suppressions.Entry("nobody@example.com", SuppressionReason.OPTOUT, T0),  # no contact
            *(suppressions.Entry(f"other{i}@example.com", SuppressionReason.OPTOUT, T0) for i in range(others)),
        ], now=T0)
    with engine.begin() as conn:
        write_events(conn, account, [Event(EventType.SEND, a, T0 + DAY_MS + i, ids[e])
                                     for a in (first, second) for i, e in enumerate(emails)])
    with engine.connect() as conn:
        stats = activity_stats(conn, account, [first, second])
    for a in (first, second):
        assert (stats[a]["sends"], stats[a]["bounces"], stats[a]["bounces_s"]) == (9, 1, 1)
