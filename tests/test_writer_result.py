"""What write_events hands to the steps that follow it in the same transaction."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import Engine, text

from mailtally.events import Event
from mailtally.store import catalog
from mailtally.store.db import writing
from mailtally.store.writer import BatchRejected, write_events
from mailtally.vocab import BounceCode, DeviceType, EventType, Reason

from .conftest import make_account

T = 1_717_200_000_000


def _activity(engine: Engine, account: int) -> tuple[str, dict[str, str]]:
    with engine.begin() as conn:
        campaign = catalog.create_campaign(conn, account, "result")
        activity = catalog.create_activity(conn, account, campaign.id).id
        contacts = catalog.contacts_for_emails(conn, account, ["a@example.com", "b@example.com"])
    return activity, contacts


def test_new_events_are_the_accepted_ones_in_batch_order(engine: Engine) -> None:
    account = make_account(engine).id
    activity, contacts = _activity(engine, account)
    a = contacts["a@example.com"]
    first = [Event(EventType.SEND, activity, T, a), Event(EventType.OPEN, activity, T + 1, a,
                                                          device_type=DeviceType.MOBILE)]
    with writing(engine) as conn:
        write_events(conn, account, first)
    batch = [
        first[1],  # known: left out
        Event(EventType.BOUNCE, activity, T + 2, email="New@Example.com", reason=Reason.MAILBOXFULL,
              bounce_code=BounceCode.MAILBOX_FULL),
        first[0],  # known
        Event(EventType.CLICK, activity, T + 3, a, device_type=DeviceType.MOBILE, url_id="1"),
        Event(EventType.CLICK, activity, T + 3, a, device_type=DeviceType.MOBILE, url_id="1"),  # repeated
    ]
    with writing(engine) as conn:
        result = write_events(conn, account, batch)
        staged = conn.execute(text("SELECT n FROM mt_stage ORDER BY n")).scalars().all()
        new_contact = conn.execute(text("SELECT id FROM contacts WHERE account_id = :a AND email = :e"),
                                   {"a": account, "e": "new@example.com"}).scalar_one()
        ids = dict(conn.execute(text(
            "SELECT e.occurred_at, e.id FROM events e JOIN activities v ON v.account_id = e.account_id "
            "AND v.num_id = e.activity_num WHERE e.account_id = :a AND v.id = :v"),
            {"a": account, "v": activity}).all())
    assert (result.accepted, result.duplicates, result.contacts_created) == (2, 3, 1)
    new = result.new_events
    assert [e.batch_index for e in new] == [1, 3] == staged
    assert [e.event for e in new] == [batch[1], batch[3]]
    assert [e.contact_id for e in new] == [new_contact, a]
    assert [e.id for e in new] == [ids[T + 2], ids[T + 3]]


def test_nothing_new_means_no_new_events(engine: Engine) -> None:
    account = make_account(engine).id
    activity, contacts = _activity(engine, account)
    batch = [Event(EventType.SEND, activity, T, contacts["b@example.com"])]
    with writing(engine) as conn:
        write_events(conn, account, batch)
    with writing(engine) as conn:
        again = write_events(conn, account, batch)
    assert (again.accepted, again.duplicates, again.new_events) == (0, 1, [])


def test_a_rejected_batch_creates_no_contacts(engine: Engine) -> None:
    account = make_account(engine).id
    activity, _ = _activity(engine, account)
    missing = str(uuid.uuid4())
    batch = [Event(EventType.SEND, activity, T, email="fresh@example.com"),
             Event(EventType.SEND, missing, T, email="other@example.com"),
             Event(EventType.OPEN, activity, T, missing)]
    with pytest.raises(BatchRejected) as caught, writing(engine) as conn:
        write_events(conn, account, batch)
    assert [(e.index, e.field) for e in caught.value.errors] == [(1, "activity_id"), (2, "contact_id")]
    with engine.connect() as conn:
        n = conn.execute(text("SELECT COUNT(*) FROM contacts WHERE account_id = :a AND email LIKE :e"),
                         {"a": account, "e": "%@example.com"}).scalar_one()
    assert n == 2  # a@ and b@ from the setup only


def test_two_batches_in_one_transaction(engine: Engine) -> None:
    """The staging tables are emptied per batch, not per transaction."""
    account = make_account(engine).id
    activity, contacts = _activity(engine, account)
    a, b = contacts["a@example.com"], contacts["b@example.com"]
    with writing(engine) as conn:
        one = write_events(conn, account, [Event(EventType.SEND, activity, T, a)])
        two = write_events(conn, account, [Event(EventType.SEND, activity, T, b),
                                           Event(EventType.SEND, activity, T, a)])
    assert (one.accepted, two.accepted, two.duplicates) == (1, 1, 1)
    assert [e.contact_id for e in two.new_events] == [b]
