"""Reading events: the quick path for everyday events agrees with the full checks."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from mailtally.ingest.batch import checked_event, to_events
from mailtally.store.writer import ItemError
from mailtally.vocab import DeviceType, EventType

ACTIVITY = "0190aaaa-0000-7000-8000-000000000007"
CONTACT = "0190aaaa-0000-7000-8000-000000000008"

texts = st.one_of(st.none(), st.text(max_size=80), st.text(min_size=60, max_size=70))
items = st.fixed_dictionaries(
    {
        "type": st.sampled_from([t.value for t in EventType] + ["nope"]),
        "activity_id": st.sampled_from([ACTIVITY, ACTIVITY.upper(), "not-a-uuid"]),
        "occurred_at": st.one_of(st.integers(-5, 2**63), st.just("2024-05-01T12:00:00Z"), st.booleans()),
    },
    optional={
        "contact_id": st.sampled_from([CONTACT, None, 7]),
        "email": st.sampled_from(["Ann@Example.com", "nope", None]),
        "device_type": st.sampled_from([d.value for d in DeviceType] + ["fridge", None]),
        "url_id": texts,
        "status": texts,
        "reply_code": texts,
        "diagnostic": texts,
        "remote_mta": texts,
        "optout_source": texts,
        "optout_reason": texts,
        "idempotency_key": texts,
        "bounce_code": st.sampled_from(["B", "Q", None]),
        "reason": st.sampled_from(["userunknown", "delivered", None]),
        "surprise": st.integers(),
    },
)


@given(item=items)
def test_every_item_reads_as_the_full_checks_read_it(item: dict[str, Any]) -> None:
    errors: list[ItemError] = []
    expected = checked_event(item, 0, errors)
    events, got_errors = to_events([item])
    assert got_errors == errors
    assert events == ([expected] if expected is not None else [])


def test_an_everyday_open_reads_with_its_defaults() -> None:
    events, errors = to_events([{"type": "open", "activity_id": ACTIVITY, "contact_id": CONTACT,
                                 "occurred_at": 1_700_000_000_000}])
    assert errors == []
    assert events[0].device_type is DeviceType.NONE and events[0].hard is None
