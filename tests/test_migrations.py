"""A database made before a schema change keeps every event through ``db upgrade``."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
    func,
    inspect,
    select,
)

from mailtally.events import Event
from mailtally.store import catalog, migrate, raw_messages
from mailtally.store.db import open_engine
from mailtally.store.schema import event_keys, events, recipients
from mailtally.store.stats import activity_stats
from mailtally.store.writer import write_events
from mailtally.vocab import DeviceType, EventType

from .conftest import fresh_postgres_database, make_account

# The log and the recipients' state as revision 0001 first made them.
v1 = MetaData()
events_v1 = Table(
    "events", v1,
    Column("account_id", Integer, primary_key=True), Column("id", BigInteger, primary_key=True),
    Column("activity_id", String(36), nullable=False), Column("contact_id", String(36), nullable=False),
    Column("type", String(16), nullable=False), Column("occurred_at", BigInteger, nullable=False),
    Column("device_type", String(16)), Column("url_id", String(64)), Column("reason", String(32)),
    Column("bounce_code", String(1)), Column("hard", Boolean), Column("dsn_status", String(16)),
    Column("reply_code", String(8)), Column("diagnostic", Text), Column("remote_mta", String(255)),
    Column("optout_source", String(64)), Column("optout_reason", Text),
    Column("idem_key", String(64), nullable=False),
    UniqueConstraint("account_id", "idem_key", name="uq_events_idem"),
    Index("ix_events_activity", "account_id", "activity_id", "type", "occurred_at", "id"),
    Index("ix_events_contact", "account_id", "contact_id", "occurred_at", "id"),
)
recipients_v1 = Table(
    "recipients", v1,
    Column("account_id", Integer, primary_key=True), Column("activity_id", String(36), primary_key=True),
    Column("contact_id", String(36), primary_key=True), Column("sent_at", BigInteger),
    Column("first_open_at", BigInteger), Column("last_open_at", BigInteger), Column("last_open_device", String(16)),
    Column("opens", Integer, nullable=False), Column("clicks", Integer, nullable=False),
    Column("forwards", Integer, nullable=False), Column("optout_at", BigInteger), Column("abuse_at", BigInteger),
    Column("bounced_at", BigInteger), Column("bounce_code", String(1)),
    Index("ix_recipients_sent", "account_id", "activity_id", "sent_at", "contact_id"),
)

T = 1_700_000_000_000


def old_key(type_: str, activity: str, who: str, t: int, device: str = "") -> str:
    raw = f"{type_}|{activity}|{who}|{t}|{device}|||"
    return f"{t:012x}" + hashlib.blake2b(raw.encode(), digest_size=10).hexdigest()


@pytest.fixture(params=["sqlite", "postgres"])
def blank_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
    else:
        request.getfixturevalue("postgres_database")  # skips (or fails) like the other PostgreSQL tests
        with fresh_postgres_database() as url:
            yield url


def test_upgrade_keeps_old_events_and_their_idempotency(blank_url: str) -> None:
    engine: Engine = open_engine(blank_url)
    try:
        migrate.upgrade(engine, "0001")
        with engine.begin() as conn:
            for table in (event_keys, recipients, events):
                table.drop(conn)
            v1.create_all(conn)
        account = make_account(engine).id
        with engine.begin() as conn:
            campaign = catalog.create_campaign(conn, account, "old")
            activity = catalog.create_activity(conn, account, campaign.id)
            ids = catalog.contacts_for_emails(conn, account, ["a@example.com", "b@example.com"])
            a, b = ids["a@example.com"], ids["b@example.com"]
            conn.execute(events_v1.insert(), [
                {"account_id": account, "id": 1, "activity_id": activity.id, "contact_id": a, "type": "send",
                 "occurred_at": T, "idem_key": old_key("send", activity.id, a, T)},
                {"account_id": account, "id": 2, "activity_id": activity.id, "contact_id": b, "type": "send",
                 "occurred_at": T, "idem_key": old_key("send", activity.id, "@b@example.com", T)},
                {"account_id": account, "id": 3, "activity_id": activity.id, "contact_id": a, "type": "open",
                 "occurred_at": T + 60_000, "device_type": "mobile", "idem_key": "webhook-77"},
            ])
            conn.execute(recipients_v1.insert(), [
                {"account_id": account, "activity_id": activity.id, "contact_id": a, "sent_at": T,
                 "first_open_at": T + 60_000, "last_open_at": T + 60_000, "last_open_device": "mobile",
                 "opens": 1, "clicks": 0, "forwards": 0},
            ])
            conn.execute(recipients_v1.insert().values(account_id=account, activity_id=activity.id, contact_id=b,
                                                       sent_at=T, opens=0, clicks=0, forwards=0))

        migrate.upgrade(engine)

        with engine.connect() as conn:
            assert migrate.current(engine) == migrate.head()
            rows = conn.execute(select(events.c.id, events.c.type, events.c.contact_num).order_by(events.c.id)).all()
            assert [(r.id, r.type) for r in rows] == [(1, "send"), (2, "send"), (3, "open")]
            assert conn.execute(select(func.count()).select_from(recipients)).scalar_one() == 2
            assert conn.execute(select(func.count()).select_from(event_keys)).scalar_one() == 1
            assert not {"events_v1", "recipients_v1"} & set(inspect(conn).get_table_names())
            assert activity_stats(conn, account, [activity.id]) == {}  # counters were never part of the rebuild
        replay = [
            Event(EventType.SEND, activity.id, T, a),
            Event(EventType.SEND, activity.id, T, email="b@example.com"),
            Event(EventType.OPEN, activity.id, T + 60_000, a, device_type=DeviceType.MOBILE,
                  idempotency_key="webhook-77"),
        ]
        with engine.begin() as conn:
            result = write_events(conn, account, replay)
        assert (result.accepted, result.duplicates) == (0, 3)
    finally:
        engine.dispose()


def test_raw_message_store_added_to_a_database_made_before_it(blank_url: str) -> None:
    engine: Engine = open_engine(blank_url)
    try:
        migrate.upgrade(engine, "0002")
        with engine.begin() as conn:  # as 0001 made it before the raw message store existed
            conn.exec_driver_sql("DROP TABLE raw_message_events")
            conn.exec_driver_sql("DROP TABLE raw_messages")
            conn.exec_driver_sql("ALTER TABLE unmatched_bounces DROP COLUMN raw_message_id")
        migrate.upgrade(engine)
        migrate.upgrade(engine)  # a second run changes nothing
        with engine.connect() as conn:
            found = inspect(conn)
            assert {"raw_messages", "raw_message_events"} <= set(found.get_table_names())
            assert "raw_message_id" in {c["name"] for c in found.get_columns("unmatched_bounces")}
        account = make_account(engine).id
        with engine.begin() as conn:
            kept = raw_messages.keep(conn, account, b"Subject: x\r\n\r\nbody", source="api")
        with engine.connect() as conn:
            assert raw_messages.body(conn, account, kept.id) == b"Subject: x\r\n\r\nbody"
    finally:
        engine.dispose()


def test_tracking_columns_added_to_an_older_database(blank_url: str) -> None:
    """0004 on a database made before the tracking columns: added, with their defaults."""
    from mailtally.store.schema import accounts, activity_counters

    engine: Engine = open_engine(blank_url)
    try:
        migrate.upgrade(engine, "0002")
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE forward_addresses")
            conn.exec_driver_sql("DROP INDEX IF EXISTS ix_events_verdict")  # 0009's index needs the column
            for table, cols in (("events", ("user_agent", "ip", "since_send_s", "verdict", "verdict_why")),
                                ("accounts", ("count_machine_opens", "count_machine_clicks")),
                                ("activity_counters", ("opens_human", "opens_machine", "clicks_human",
                                                       "clicks_machine"))):
                for col in cols:
                    conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN {col}")
            conn.exec_driver_sql("INSERT INTO accounts (name, created_at, seq_contact, seq_campaign, seq_activity, "
                                 "seq_event) VALUES ('older', 1, 0, 0, 0, 0)")
        migrate.upgrade(engine)
        migrate.upgrade(engine)  # and again: nothing to do
        with engine.connect() as conn:
            names = {t: {c["name"] for c in inspect(conn).get_columns(t)}
                     for t in ("events", "accounts", "activity_counters")}
            assert {"user_agent", "ip", "since_send_s", "verdict", "verdict_why"} <= names["events"]
            assert {"opens_human", "clicks_machine"} <= names["activity_counters"]
            assert "forward_addresses" in inspect(conn).get_table_names()
            row = conn.execute(select(accounts.c.count_machine_opens, accounts.c.count_machine_clicks)
                               .where(accounts.c.name == "older")).one()
            assert tuple(row) == ("proxy", "none")
            assert activity_counters.c.opens_human.name in names["activity_counters"]
    finally:
        engine.dispose()


HOURLY = "SELECT activity_num, hour, opens, clicks FROM activity_hourly"


def test_dashboard_tables_added_to_a_database_with_events(blank_url: str) -> None:
    """0008 and 0009 on a database made before them: users and the bounce indexes appear, and the hourly
    roll-up is built from the events already logged, equal to what the writer would have made."""
    from mailtally.store import dashboard

    engine: Engine = open_engine(blank_url)
    try:
        migrate.upgrade(engine)
        account = make_account(engine).id
        with engine.begin() as conn:
            campaign = catalog.create_campaign(conn, account, "Before the dashboard")
            activity = catalog.create_activity(conn, account, campaign.id)
            batch = [Event(EventType.SEND, activity.id, T, email=f"h{i}@example.com") for i in range(5)]
            batch += [Event(EventType.OPEN, activity.id, T + i * 1_800_000, email=f"h{i}@example.com")
                      for i in range(5)]
            batch += [Event(EventType.CLICK, activity.id, T + 7_200_000, email="h1@example.com", url_id="1")]
            write_events(conn, account, batch)
        with engine.connect() as conn:
            made_by_writer = sorted(conn.exec_driver_sql(HOURLY).all())
        assert sum(r[2] for r in made_by_writer) == 5 and sum(r[3] for r in made_by_writer) == 1
        with engine.begin() as conn:  # back to how 0003 left a database
            conn.exec_driver_sql("DROP TABLE activity_hourly")
            conn.exec_driver_sql("DROP TABLE users")
            conn.exec_driver_sql("DROP INDEX ix_events_bounce_reason")
            for name in ("ix_events_bounce_reason_time", "ix_events_bounce_code_time", "ix_events_verdict"):
                conn.exec_driver_sql(f"DROP INDEX {name}")  # 0009's
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0007'")
        migrate.upgrade(engine)
        migrate.upgrade(engine)  # a second run changes nothing
        with engine.connect() as conn:
            found = inspect(conn)
            assert "users" in found.get_table_names()
            assert {"ix_events_bounce_reason", "ix_events_bounce_reason_time", "ix_events_bounce_code_time",
                    "ix_events_verdict"} <= {
                ix["name"] for ix in found.get_indexes("events")}
            rebuilt = sorted(conn.exec_driver_sql(HOURLY).all())
            assert rebuilt == made_by_writer
            tl = dashboard.timeline(conn, account, activity.num_id, T)
            assert sum(tl.opens) == 5 and sum(tl.clicks) == 1
    finally:
        engine.dispose()


def test_0012_counts_suppressions_off_a_covering_index(tmp_path: Path) -> None:
    """A database 0011 left (the reason index without the expiry) gets the covering index, and
    the dashboard's count by reason reads it alone."""
    from mailtally.store.dashboard import suppression_counts

    engine = open_engine(f"sqlite:///{tmp_path / 'old.db'}")
    migrate.upgrade(engine, "0011")
    with engine.begin() as conn:  # as 0005 made it, before 0012
        conn.exec_driver_sql("DROP INDEX ix_suppressions_reason_live")
        conn.exec_driver_sql("CREATE INDEX ix_suppressions_reason ON suppressions (account_id, reason, email)")
    migrate.upgrade(engine)
    names = {ix["name"]: ix["column_names"] for ix in inspect(engine).get_indexes("suppressions")}
    assert names["ix_suppressions_reason_live"] == ["account_id", "reason", "email", "expires_at"]
    assert "ix_suppressions_reason" not in names
    seen: list[tuple[str, Any]] = []
    event.listen(engine, "before_cursor_execute", lambda *a: seen.append((a[2], a[3])))
    with engine.connect() as conn:
        assert suppression_counts(conn, 1) == {}
        [(sql, params)] = [s for s in seen if "count(" in s[0]]
        plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params).fetchall()
    assert "COVERING INDEX ix_suppressions_reason_live" in str(plan), plan
    engine.dispose()
