"""Messages written a group at a time: the same verdicts as one at a time, and the SMTP receiver's
groups (several clients at once, one transaction per group, one bad message refusing only itself)."""

from __future__ import annotations

import asyncio
import smtplib
import threading
import time
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from mailtally.bounces import parse
from mailtally.events import Event
from mailtally.ingest.bounce_messages import DELIVERY_HEADERS, Ingested, header_fields, ingest_message, ingest_messages
from mailtally.servers import smtp as smtp_server
from mailtally.store import catalog, raw_messages
from mailtally.store.db import writing
from mailtally.store.group_commit import GroupCommitter
from mailtally.store.schema import events, raw_message_events, unmatched_bounces
from mailtally.store.writer import write_events
from mailtally.verp import SendRef, return_path, unsubscribe_address
from mailtally.vocab import EventType

from ..bounces._corpus import EMAILS
from ..conftest import Account, make_account
from ..support.loops import run_in_own_loop
from ..support.mail import ORDINARY, dsn
from .test_smtp_receiver import DOMAIN, SECRET, receiver

CORPUS_FILES = sorted(EMAILS.glob("*.eml"))[:90] if EMAILS.is_dir() else []


def _sends(engine: Engine, account: Account, emails: list[str]) -> tuple[str, dict[str, SendRef]]:
    with writing(engine) as conn:
        campaign = catalog.create_campaign(conn, account.id, "groups")
        activity = catalog.create_activity(conn, account.id, campaign.id, subject="groups")
        write_events(conn, account.id, [Event(EventType.SEND, activity.id, 1_700_000_000_000 + i, email=e)
                                        for i, e in enumerate(emails)])
    refs = {}
    with engine.connect() as conn:
        for e in emails:
            contact = catalog.contact_by_email(conn, account.id, e)
            assert contact is not None
            refs[e] = SendRef(account.id, activity.num_id, contact.num_id)
    return activity.id, refs


def _shape(result: Ingested) -> tuple[Any, ...]:
    return (result.recorded, result.duplicates, result.unmatched_new, result.message_date,
            bool(result.unsubscribe), [(o.matched_by, o.event_type, o.record.recipient, o.occurred_at is None,
                                        bool(o.activity_id)) for o in result.outcomes])


def _table_counts(engine: Engine, account: int) -> tuple[int, ...]:
    with engine.connect() as conn:
        rows = [int(conn.execute(select(func.count()).select_from(t).where(t.c.account_id == account)).scalar_one())
                for t in (events, raw_message_events, unmatched_bounces)]
        return (*rows, raw_messages.count(conn, account))


@pytest.mark.skipif(not CORPUS_FILES, reason=f"corpus not found at {EMAILS}")
def test_a_group_gives_what_one_message_at_a_time_gives(engine: Engine) -> None:
    """The corpus's bounces (matched by VERP, by the recipient's last send, or not at all; a
    message twice; an opt-out by the mailto: address) through one `ingest_messages` call and
    through `ingest_message` one transaction each: the same verdicts, counts and rows."""
    raws = [f.read_bytes() for f in CORPUS_FILES]
    recipients = sorted({r.recipient.lower() for raw in raws for r in parse(raw) if r.recipient})
    sent = recipients[::2]  # half the recipients were sent to: the other half is unmatched
    one, grouped = make_account(engine), make_account(engine)
    plans = []
    for account in (one, grouped):
        _, refs = _sends(engine, account, sent)
        plan: list[tuple[bytes, str | None]] = []
        for i, raw in enumerate(raws):
            rcpts = [r.recipient.lower() for r in parse(raw)]
            verp = next((refs[r] for r in rcpts if r in refs), None) if i % 3 == 0 else None
            plan.append((raw, return_path(SECRET, verp, DOMAIN) if verp else None))
        plan.append(plan[1])  # the same message again, in the same group
        plan.append((ORDINARY, unsubscribe_address(SECRET, refs[sent[0]], DOMAIN)))
        plans.append(plan)

    singly = []
    for raw, envelope in plans[0]:
        with writing(engine) as conn:
            singly.append(ingest_message(conn, one.id, SECRET, raw, envelope, source="smtp"))
    with writing(engine) as conn:
        together = ingest_messages(conn, grouped.id, SECRET, plans[1], source="smtp")

    assert [_shape(r) for r in together] == [_shape(r) for r in singly]
    assert any(o.matched_by == "verp" for r in together for o in r.outcomes)
    assert any(o.matched_by == "recent_send" for r in together for o in r.outcomes)
    assert sum(r.unmatched_new for r in together) > 0
    assert together[-1].unsubscribe is not None and together[-1].unsubscribe.recorded
    assert together[-2].raw_message_id == together[1].raw_message_id and together[-2].recorded == 0
    assert _table_counts(engine, grouped.id) == _table_counts(engine, one.id)

    # Again, the whole group: nothing new.
    with writing(engine) as conn:
        again = ingest_messages(conn, grouped.id, SECRET, plans[1], source="smtp")
    assert sum(r.recorded + r.unmatched_new for r in again) == 0
    assert [r.raw_message_id for r in again] == [r.raw_message_id for r in together]
    assert _table_counts(engine, grouped.id) == _table_counts(engine, one.id)


def test_header_fields_read_as_the_email_package_reads_them() -> None:
    samples = [
        b"From MAILER-DAEMON  Fri Mar  1 10:00:00 2024\nDelivered-To: bounces+mtx@b.test\nDate: Fri, 01 Mar 2024"
        b" 10:05:00 +0000\n\nTo: body@not.header\n",
        b"To: a@b.test,\r\n\tc@d.test\r\nX-Original-To: <e@f.test>\r\nto: g@h.test\r\n\r\nbody\r\n",
        b"Subject: caf\xc3\xa9\nTo: =?utf-8?q?caf=C3=A9?= <x@y.test>\nDate:   Fri,\n  01 Mar 2024 10:05:00 +0000\n",
        b"Received: x\nnot a header line\nTo: after@defect.test\n\n",
        b"\nTo: no@headers.test\n",
        b"Envelope-To: a@b.test\rX-Envelope-To: c@d.test\r\r",
        b"To: only-header@b.test",
        b"",
    ]
    for raw in samples:
        head = BytesHeaderParser(policy=compat32).parsebytes(raw, headersonly=True)
        fields = header_fields(raw)
        for name in (*DELIVERY_HEADERS, "Date"):
            assert fields.get(name.lower(), []) == [str(v) for v in head.get_all(name) or []], (raw, name)


def test_group_committer_writes_as_soon_as_it_is_ready() -> None:
    written: list[list[int]] = []

    async def main() -> float:
        committer: GroupCommitter[int] = GroupCommitter(written.append, window=5.0,
                                                        ready=lambda: committer.pending >= 3)
        start = time.monotonic()
        await asyncio.gather(*(committer.submit(i) for i in range(3)))
        committer.close()
        return time.monotonic() - start

    took = run_in_own_loop(main)
    assert took and took[0] < 2.5  # not the 5 s window: the group was complete
    assert written == [[0, 1, 2]]


def test_receiver_groups_concurrent_clients_and_one_bad_message_refuses_only_itself(
    engine: Engine, account: Account, other_account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    emails = [f"g{i}@remote.example" for i in range(24)]
    activity, refs = _sends(engine, account, emails)
    _, other_refs = _sends(engine, other_account, emails[:1])
    real = smtp_server.receive_many

    def breaks_on_marker(conn: Any, secret: bytes, messages: Any, keep_bytes: int) -> Any:
        if any(b"X-Break-Store: yes" in raw for _, raw in messages):
            raise RuntimeError("the store refuses this message")
        return real(conn, secret, messages, keep_bytes)

    monkeypatch.setattr(smtp_server, "receive_many", breaks_on_marker)
    answers: dict[str, int] = {}
    lock = threading.Lock()
    with receiver(engine) as rx:
        def client(k: int) -> None:
            with smtplib.SMTP("127.0.0.1", rx.options.port, timeout=30) as s:
                for i in range(k, len(emails), 8):
                    verp = return_path(SECRET, refs[emails[i]], DOMAIN)
                    rcpts = [verp]
                    if i == 0:  # also for the other account: recorded once for each
                        rcpts.append(return_path(SECRET, other_refs[emails[0]], DOMAIN))
                    message = dsn(emails[i], to=verp, message_id=f"<m{i}@sender.example>")
                    if i == 5:
                        message = message.replace(b"Subject:", b"X-Break-Store: yes\r\nSubject:", 1)
                    try:
                        s.sendmail("", rcpts, message)
                        code = 250
                    except smtplib.SMTPDataError as e:
                        code = e.smtp_code
                    with lock:
                        answers[emails[i]] = code

        threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        groups = rx.committer.group.groups
    assert answers == {e: 451 if i == 5 else 250 for i, e in enumerate(emails)}
    assert groups < len(emails)  # messages that arrived together were committed together
    with engine.connect() as conn:
        bounced = {r.email for r in conn.execute(
            select(catalog.contacts.c.email).select_from(events.join(catalog.contacts, (
                catalog.contacts.c.account_id == events.c.account_id) & (
                catalog.contacts.c.num_id == events.c.contact_num)))
            .where(events.c.account_id == account.id, events.c.type == "bounce"))}
        assert bounced == set(emails) - {emails[5]}
        assert raw_messages.count(conn, account.id) == len(emails) - 1
        assert conn.execute(select(func.count()).select_from(events).where(
            events.c.account_id == other_account.id, events.c.type == "bounce")).scalar_one() == 1
    assert activity
