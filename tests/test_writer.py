"""The writer's roll-ups always equal a recount of the event log, however events are batched."""

from __future__ import annotations

import itertools
import random
from collections import defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from mailtally.events import Event
from mailtally.store import catalog
from mailtally.store.stats import activity_stats
from mailtally.store.writer import write_events
from mailtally.vocab import BounceCode, DeviceType, EventType

from .conftest import make_account

event_st = st.tuples(
    st.sampled_from(list(EventType)),
    st.integers(0, 7),  # contact
    st.integers(0, 50),  # minute
    st.sampled_from([d for d in DeviceType]),
    st.sampled_from(list(BounceCode)),
)


def recount(engine: Engine, account: int, activity: str) -> dict[str, int]:
    """The counters as a naive reading of the log would compute them."""
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT e.contact_num, e.type, e.occurred_at, e.device_type, e.bounce_code FROM events e "
                 "JOIN activities a ON a.account_id = e.account_id AND a.num_id = e.activity_num "
                 "WHERE e.account_id = :a AND a.id = :b ORDER BY e.occurred_at, e.id"),
            {"a": account, "b": activity},
        ).all()
    c: dict[str, int] = defaultdict(int)
    per: dict[str, dict[str, object]] = defaultdict(dict)
    for contact, type_, _t, device, code in rows:
        p = per[contact]
        if type_ in ("open", "click"):
            c[f"{type_}s_all"] += 1
            c[f"{type_}s_{device}"] += 1
        if type_ == "forward":
            c["forwards"] += 1
        if type_ == "bounce" and "bounce" not in p:
            c[f"bounces_{code.lower()}"] += 1
        p.setdefault(type_, True)
    for p in per.values():
        c["sends"] += "send" in p
        c["opens"] += "open" in p
        c["clicks"] += "click" in p
        c["optouts"] += "optout" in p
        c["abuse"] += "abuse" in p
        c["bounces"] += "bounce" in p
        c["not_opened"] += "send" in p and "open" not in p and "bounce" not in p
    return c


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.lists(event_st, max_size=60), cuts=st.lists(st.integers(0, 60), max_size=4), seed=st.integers(),
       overlap=st.booleans())
def test_counters_match_a_recount(engine: Engine, raw: list[tuple], cuts: list[int], seed: int,
                                  overlap: bool) -> None:
    """``overlap``: each batch carries the ones before it again, so most batches mix events the
    log holds with new ones (the writer's path for batches with duplicates)."""
    account = make_account(engine)
    with engine.begin() as conn:
        campaign = catalog.create_campaign(conn, account.id, "prop")
        activity = catalog.create_activity(conn, account.id, campaign.id).id
        ids = catalog.contacts_for_emails(conn, account.id, [f"c{i}@example.com" for i in range(8)])
    contacts = [ids[f"c{i}@example.com"] for i in range(8)]
    events = [
        Event(t, activity, 1_700_000_000_000 + m * 60_000, contacts[c],
              device_type=d if t in (EventType.OPEN, EventType.CLICK) else None,
              url_id="1" if t is EventType.CLICK else None,
              bounce_code=b if t is EventType.BOUNCE else None)
        for t, c, m, d, b in raw
    ]
    random.Random(seed).shuffle(events)
    bounds = sorted({0, len(events), *(min(x, len(events)) for x in cuts)})
    for lo, hi in itertools.pairwise(bounds):
        with engine.begin() as conn:
            write_events(conn, account.id, events[0 if overlap else lo:hi])
    # Replaying everything changes nothing.
    with engine.begin() as conn:
        result = write_events(conn, account.id, events)
    assert result.accepted == 0
    with engine.connect() as conn:
        stats = activity_stats(conn, account.id, [activity]).get(activity)
    expected = recount(engine, account.id, activity)
    got = stats.counts if stats else {}
    for name in set(expected) | {k for k, v in got.items() if v}:
        assert got.get(name, 0) == expected.get(name, 0), name
