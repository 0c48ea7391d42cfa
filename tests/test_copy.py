"""`mailtally db copy`: moving a SQLite database to PostgreSQL (or anywhere) loses nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import Engine, inspect

from mailtally.store import catalog, migrate, reports
from mailtally.store.accounts import create_account, create_token, principal_for_token
from mailtally.store.db import open_engine, writing
from mailtally.store.stats import activity_stats
from mailtally.store.writer import write_events

from .conftest import fresh_postgres_database
from .support.scenario import GOLDEN_COUNTS


def _fill(engine: Engine) -> tuple[int, str, str]:
    """The seed-004 scenario, written through the store."""
    from mailtally.ingest.batch import to_events

    from .support.scenario import seed_004

    with writing(engine) as conn:
        account = create_account(conn, "shop")
        token = create_token(conn, account, frozenset({"campaign_data"}))
        campaign = catalog.create_campaign(conn, account, "Spring")
        activity = catalog.create_activity(conn, account, campaign.id)
        events, errors = to_events(seed_004(activity.id))
        assert not errors
        write_events(conn, account, events)
    return account, str(activity.id), token


def _copy(source: str, target: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MAILTALLY_DATABASE_URL": source}
    return subprocess.run([sys.executable, "-m", "mailtally", "db", "copy", "--to", target], env=env,
                          capture_output=True, text=True, timeout=120)


def test_sqlite_to_postgres_and_back(tmp_path: Path) -> None:
    source_url = f"sqlite:///{tmp_path / 'source.db'}"
    source = open_engine(source_url)
    migrate.upgrade(source)
    account, activity, token = _fill(source)
    with fresh_postgres_database() as pg_url:
        done = _copy(source_url, pg_url)
        assert done.returncode == 0, done.stderr
        assert "events" in done.stdout and "copied into" in done.stdout
        target = open_engine(pg_url)
        with target.connect() as conn:
            stats = activity_stats(conn, account, [activity])[activity]
            assert {k: stats.counts[k] for k in GOLDEN_COUNTS} == GOLDEN_COUNTS
            assert len(reports.did_not_open(conn, account, activity)) == 3
            who = principal_for_token(conn, token)
            assert who is not None and who.account_id == account
        # New accounts after the copy get fresh ids (the sequence moved past the copied ones).
        with writing(target) as conn:
            assert create_account(conn, "another") > account
        # Copying again into a database that has data is refused.
        again = _copy(source_url, pg_url)
        assert again.returncode == 1 and "empty database" in again.stderr
        target.dispose()


def test_a_source_with_queued_hits_is_not_copied_until_they_are_rolled_up(tmp_path: Path) -> None:
    """Tracking hits answered and still queued (a server killed) would be copied where nothing
    rolls them up: refused with what to do, and nothing written to the target."""
    from mailtally.ingest.tracking import HitRecorder, PendingHit, RollUp
    from mailtally.store import hit_journal
    from mailtally.store.schema import activities, contacts
    from mailtally.tracking.tokens import HitRef, Kind
    from mailtally.tracking.verdict import Rules
    from mailtally.vocab import IpStorage

    source_url = f"sqlite:///{tmp_path / 'source.db'}"
    source = open_engine(source_url)
    migrate.upgrade(source)
    account, activity, _ = _fill(source)
    with source.connect() as conn:
        contact = conn.execute(contacts.select().where(contacts.c.account_id == account).limit(1)).first()
        num = conn.execute(activities.select().where(activities.c.id == activity)).one().num_id
    assert contact is not None
    recorder = HitRecorder(source, Rules(), IpStorage.TRUNCATED)
    journal = hit_journal.Journal(str(tmp_path / "source.db"))  # a server's, killed before it rolled up
    hits = [recorder.journaled(PendingHit(HitRef(Kind.OPEN, account, num, contact.num_id), 1_700_000_000_000,
                                          "Mozilla/5.0", "192.0.2.1"))]
    journal.append(hits)
    target_url = f"sqlite:///{tmp_path / 'target.db'}"
    refused = _copy(source_url, target_url)
    assert refused.returncode == 1 and "not yet rolled up" in refused.stderr and "mailtally serve" in refused.stderr
    target = open_engine(target_url)
    assert inspect(target).get_table_names() == []  # refused before anything was written
    target.dispose()
    journal.close()  # its server is gone
    RollUp(recorder, str(tmp_path / "source.db")).close()  # what a server does when it starts and stops
    assert not hit_journal.files(str(tmp_path / "source.db"))
    done = _copy(source_url, target_url)
    assert done.returncode == 0, done.stderr
    source.dispose()
