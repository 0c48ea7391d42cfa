"""The event log by month on PostgreSQL, and retention on both databases (store/partitions.py).

Batches across a month's boundary land in both months' partitions with the roll-ups exact;
a log made before partitioning keeps every row through the migration; retention removes old
months whole (PostgreSQL) or their rows (SQLite), keeps the statistics, and refuses a late
replay of a removed event instead of counting it again.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, MetaData, text

from mailtally.events import Event
from mailtally.store import catalog, migrate, partitions, schema
from mailtally.store.db import open_engine, writing
from mailtally.store.partitions import Month
from mailtally.store.stats import activity_stats
from mailtally.store.writer import BatchRejected, write_events
from mailtally.vocab import EventType

from .conftest import Account, fresh_postgres_database, make_account

JAN_END = int(datetime(2023, 1, 31, 23, 59, 59, 999000, tzinfo=UTC).timestamp() * 1000)
FEB = JAN_END + 1  # 2023-02-01T00:00:00.000Z
NOW = int(datetime(2026, 12, 15, tzinfo=UTC).timestamp() * 1000)


def _activity(engine: Engine, account: Account, n: int = 4) -> tuple[str, list[str]]:
    with engine.begin() as conn:
        campaign = catalog.create_campaign(conn, account.id, "months")
        activity = catalog.create_activity(conn, account.id, campaign.id).id
        ids = catalog.contacts_for_emails(conn, account.id, [f"m{i}@example.com" for i in range(n)])
    return str(activity), [str(ids[f"m{i}@example.com"]) for i in range(n)]


def _write(engine: Engine, account: Account, batch: list[Event]) -> tuple[int, int]:
    with writing(engine) as conn:
        r = write_events(conn, account.id, batch)
    return r.accepted, r.duplicates


def _counts(engine: Engine, account: Account, activity: str, *names: str) -> tuple[int, ...]:
    with engine.connect() as conn:
        stats = activity_stats(conn, account.id, [activity])[activity]
    return tuple(stats[n] for n in names)


def _where(engine: Engine, account: Account) -> dict[int, str]:
    """Each event's partition, by time."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT occurred_at, tableoid::regclass::text FROM events WHERE account_id = :a"),
                            {"a": account.id})
        return {int(t): str(p) for t, p in rows}


def test_month_arithmetic() -> None:
    assert Month.of(JAN_END) == Month(2023, 1) and Month.of(FEB) == Month(2023, 2)
    assert Month(2023, 1).end == FEB == Month(2023, 2).start
    assert Month(2023, 12).next() == Month(2024, 1) and Month(2024, 1).minus(13) == Month(2022, 12)
    assert [m.name for m in partitions.months_between(JAN_END, FEB)] == ["events_2023_01", "events_2023_02"]
    assert Month(9999, 12).end == 253402300800000 and Month.of(0) == Month(1970, 1)


def test_a_batch_across_a_month_boundary(engine: Engine, account: Account) -> None:
    activity, (a, b, c, _) = _activity(engine, account)
    batch = [
        Event(EventType.SEND, activity, JAN_END - 1000, a), Event(EventType.SEND, activity, JAN_END - 1000, b),
        Event(EventType.SEND, activity, JAN_END, c),
        Event(EventType.OPEN, activity, JAN_END, a), Event(EventType.OPEN, activity, FEB, a),
        Event(EventType.OPEN, activity, FEB, b), Event(EventType.CLICK, activity, FEB + 5, b),
    ]
    assert _write(engine, account, batch) == (7, 0)
    assert _counts(engine, account, activity, "sends", "opens", "opens_all", "clicks") == (3, 2, 3, 1)
    if engine.dialect.name == "postgresql":
        where = _where(engine, account)
        assert {where[JAN_END - 1000], where[JAN_END]} == {"events_2023_01"}
        assert {where[FEB], where[FEB + 5]} == {"events_2023_02"}
    # Replayed, across the same boundary: nothing counted twice.
    assert _write(engine, account, batch) == (0, 7)
    assert _counts(engine, account, activity, "sends", "opens", "opens_all", "clicks") == (3, 2, 3, 1)


@pytest.fixture
def pg_engine(postgres_database: str) -> Iterator[Engine]:
    """A PostgreSQL database of its own (retention drops months; the shared one keeps them)."""
    with fresh_postgres_database() as url:
        eng = open_engine(url)
        try:
            yield eng
        finally:
            eng.dispose()


def test_a_log_made_before_partitioning_is_moved_by_month(pg_engine: Engine) -> None:
    migrate.upgrade(pg_engine, "0010")
    with pg_engine.begin() as conn:  # the log as 0010 left a database made before partitioning
        conn.execute(text("DROP TABLE events"))
        plain = MetaData()
        schema.events.to_metadata(plain).dialect_options["postgresql"]["partition_by"] = None
        plain.create_all(conn)
        assert not partitions.is_partitioned(conn)
    account = make_account(pg_engine)
    activity, (a, b, _, _) = _activity(pg_engine, account)
    batch = [Event(EventType.SEND, activity, JAN_END, a), Event(EventType.SEND, activity, FEB, b),
             Event(EventType.OPEN, activity, FEB + 60_000, b)]
    assert _write(pg_engine, account, batch) == (3, 0)
    with pg_engine.begin() as conn:  # a time out of range, stored before the writer refused them
        conn.execute(text("INSERT INTO events (account_id, activity_num, type, occurred_at, idem, id, contact_num) "
                          "VALUES (:a, 1, 'open', 253402350000000, 7, 99, 1)"), {"a": account.id})
    migrate.upgrade(pg_engine)
    migrate.upgrade(pg_engine)  # a second run finds nothing to do
    with pg_engine.connect() as conn:
        assert partitions.is_partitioned(conn)
        assert partitions.existing(conn) == [Month(2023, 1), Month(2023, 2)]
        assert conn.execute(text("SELECT to_regclass('events_unpartitioned')")).scalar() is None
    assert sorted(_where(pg_engine, account).items()) == [
        (JAN_END, "events_2023_01"), (FEB, "events_2023_02"), (FEB + 60_000, "events_2023_02"),
        (253402350000000, "events_after_range")]
    assert _write(pg_engine, account, batch) == (0, 3)
    assert _counts(pg_engine, account, activity, "sends", "opens") == (2, 1)


def test_writers_making_the_same_month_at_once(pg_engine: Engine) -> None:
    migrate.upgrade(pg_engine)
    accounts = [make_account(pg_engine) for _ in range(4)]
    made = [_activity(pg_engine, acc) for acc in accounts]
    gate = threading.Barrier(len(accounts))
    failures: list[BaseException] = []

    def write(i: int) -> None:
        activity, contacts = made[i]
        gate.wait()
        try:
            _write(pg_engine, accounts[i], [Event(EventType.SEND, activity, FEB + i, c) for c in contacts])
        except BaseException as e:  # reported below
            failures.append(e)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(len(accounts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    with pg_engine.connect() as conn:
        assert partitions.existing(conn) == [Month(2023, 2)]
    for acc, (activity, _) in zip(accounts, made, strict=True):
        assert _counts(pg_engine, acc, activity, "sends") == (4,)


def _month_ms(m: Month, day: int = 10) -> int:
    return m.start + (day - 1) * 86_400_000


def _retention_case(engine: Engine) -> tuple[Account, str, list[Event]]:
    """Sends and opens in each of the six months up to NOW's."""
    account = make_account(engine)
    activity, contacts = _activity(engine, account, 6)
    now = Month.of(NOW)
    batch = []
    for i, c in enumerate(contacts):
        t = _month_ms(now.minus(5 - i))
        batch += [Event(EventType.SEND, activity, t, c), Event(EventType.OPEN, activity, t + 3_600_000, c)]
    assert _write(engine, account, batch) == (12, 0)
    return account, activity, batch


def _log_count(engine: Engine, account: Account) -> int:
    with engine.connect() as conn:
        found = conn.execute(text("SELECT count(*) FROM events WHERE account_id = :a"), {"a": account.id})
        return int(found.scalar_one())


@pytest.mark.parametrize("detach", [False, True])
def test_retention_on_postgres_removes_old_months_whole(pg_engine: Engine, detach: bool) -> None:
    migrate.upgrade(pg_engine)
    account, activity, batch = _retention_case(pg_engine)
    with writing(pg_engine) as conn:
        done = partitions.retire(conn, 2, detach=detach, now_ms=NOW)
    now = Month.of(NOW)
    assert done.kept_from == now.minus(2).start
    assert done.months == [now.minus(k).name for k in (5, 4, 3)]
    with pg_engine.connect() as conn:
        assert partitions.existing(conn) == [now.minus(2), now.minus(1), now]
        archived = conn.execute(text(f"SELECT to_regclass('{now.minus(5).name}_archive')")).scalar()
        assert (archived is not None) == detach
        if detach:
            assert conn.execute(text(f"SELECT count(*) FROM {now.minus(5).name}_archive")).scalar_one() == 2
    assert _log_count(pg_engine, account) == 6
    assert _counts(pg_engine, account, activity, "sends", "opens", "opens_all") == (6, 6, 6)
    _refuses_what_was_removed(pg_engine, account, activity, batch)


def _refuses_what_was_removed(engine: Engine, account: Account, activity: str, batch: list[Event]) -> None:
    with pytest.raises(BatchRejected) as rejected:
        _write(engine, account, batch)
    assert [(e.index, e.field) for e in rejected.value.errors] == [(i, "occurred_at") for i in range(6)]
    assert "retention" in rejected.value.errors[0].message
    assert _write(engine, account, batch[6:]) == (0, 6)  # the kept months: duplicates, as before
    assert _counts(engine, account, activity, "sends") == (6,)


def test_retention_on_sqlite_deletes_old_rows(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'r.db'}")
    migrate.upgrade(engine)
    try:
        account, activity, batch = _retention_case(engine)
        with writing(engine) as conn:
            done = partitions.retire(conn, 2, now_ms=NOW)
        assert (done.months, done.rows) == ([], 6)
        assert _log_count(engine, account) == 6
        assert _counts(engine, account, activity, "opens") == (6,)
        _refuses_what_was_removed(engine, account, activity, batch)
        with writing(engine) as conn:  # a shorter setting later does not move the boundary back
            assert partitions.retire(conn, 12, now_ms=NOW).kept_from == done.kept_from
        with pytest.raises(ValueError), writing(engine) as conn:
            partitions.retire(conn, 0)
    finally:
        engine.dispose()


def test_retention_command(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    env = {**os.environ, "MAILTALLY_DATABASE_URL": url, "COLUMNS": "120"}
    env.pop("MAILTALLY_EVENT_RETENTION_MONTHS", None)
    cmd = [sys.executable, "-m", "mailtally", "db", "retention"]
    unset = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert unset.returncode == 1 and "no retention set" in unset.stderr
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                          env={**env, "MAILTALLY_EVENT_RETENTION_MONTHS": "3"})
    assert done.returncode == 0, done.stderr
    boundary = Month.of(int(datetime.now(UTC).timestamp() * 1000)).minus(3)
    assert f"keeps events from {boundary.year:04d}-{boundary.month:02d}-01T00:00:00" in done.stdout
