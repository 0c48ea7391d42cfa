"""Event.idem() is the log's identity of an event: it must never change for a stored event."""

from __future__ import annotations

from hashlib import blake2b

from hypothesis import given
from hypothesis import strategies as st

from mailtally.events import Event
from mailtally.vocab import BounceCode, DeviceType, EventType, Reason


def reference_idem(ev: Event) -> int:
    """The hash as first defined (and as migration 0002 stored it), written plainly."""
    if ev.idempotency_key:
        raw = "key|" + ev.idempotency_key
    else:
        who = ev.contact_id or f"@{(ev.email or '').lower()}"
        raw = (f"{ev.type}|{ev.activity_id}|{who}|{ev.occurred_at}|{ev.device_type or ''}|"
               f"{ev.url_id or ''}|{ev.bounce_code or ''}|{ev.reason or ''}")
    return int.from_bytes(blake2b(raw.encode(), digest_size=8).digest(), "big", signed=True)


text = st.text(max_size=40)
events = st.builds(
    Event,
    type=st.sampled_from(list(EventType)),
    activity_id=text,
    occurred_at=st.integers(0, 253402300799999),
    contact_id=st.none() | text,
    email=st.none() | text,
    device_type=st.none() | st.sampled_from(list(DeviceType)),
    url_id=st.none() | text,
    reason=st.none() | st.sampled_from(list(Reason)),
    bounce_code=st.none() | st.sampled_from(list(BounceCode)),
    idempotency_key=st.none() | text,
)


@given(events)
def test_idem_is_the_reference_hash(ev: Event) -> None:
    assert ev.idem() == reference_idem(ev)


def test_stored_hashes_do_not_move() -> None:
    """Values computed by the writer before this rewrite (databases hold them)."""
    assert Event(EventType.OPEN, "a", 1_700_000_000_000, "c", device_type=DeviceType.MOBILE).idem() == (
        -383306080214497082)
    assert Event(EventType.BOUNCE, "a", 5, email="X@Y.com", bounce_code=BounceCode.MAILBOX_FULL,
                 reason=Reason.MAILBOXFULL).idem() == 4161922057860124551
