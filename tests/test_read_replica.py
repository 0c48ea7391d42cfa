"""MAILTALLY_READ_DATABASE_URL: reports come from a real streaming replica.

Two PostgreSQL clusters of this test's own on loopback: a primary (initdb) and its standby
(pg_basebackup -R). While the standby's replay is paused, new events reach the primary but
the reports do not move; once replay resumes they catch up.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from mailtally.config import Settings
from mailtally.store import migrate
from mailtally.store.accounts import create_account, create_token
from mailtally.store.db import open_engine
from mailtally.vocab import Scope

from .conftest import TEST_SECRET, LiveServer, free_port, require_part
from .support.scenario import campaign_with_activity, post_events

BIN = Path(os.environ.get("MAILTALLY_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _as_postgres(*cmd: str) -> None:
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*prefix, *cmd], check=True, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def replica() -> Iterator[tuple[str, str]]:
    import pwd

    try:
        pwd.getpwnam("postgres")
        has_user = True
    except KeyError:
        has_user = os.geteuid() != 0
    require_part("PostgreSQL server binaries", (BIN / "pg_basebackup").exists() and has_user,
                 "apt-get install postgresql-15")
    tmp = Path(tempfile.mkdtemp(prefix="mt-replica-"))
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres")
    primary, standby = tmp / "primary", tmp / "standby"
    p_port, s_port = free_port(), free_port()
    started = []
    try:
        _as_postgres(str(BIN / "initdb"), "-D", str(primary), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        _as_postgres("sh", "-c", f"printf \"port = {p_port}\\nlisten_addresses = '127.0.0.1'\\n"
                                 f"unix_socket_directories = '{tmp}'\\n\" >> {primary}/postgresql.conf")
        _as_postgres(str(BIN / "pg_ctl"), "-D", str(primary), "-l", str(tmp / "primary.log"), "-w", "start")
        started.append(primary)
        _as_postgres(str(BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(p_port), "-U", "postgres",
                     "-D", str(standby), "-R", "-X", "stream")
        _as_postgres("sh", "-c", f"printf 'port = {s_port}\\n' >> {standby}/postgresql.auto.conf")
        _as_postgres(str(BIN / "pg_ctl"), "-D", str(standby), "-l", str(tmp / "standby.log"), "-w", "start")
        started.append(standby)
        yield (f"postgresql://postgres@127.0.0.1:{p_port}/postgres",
               f"postgresql://postgres@127.0.0.1:{s_port}/postgres")
    finally:
        for data in reversed(started):
            _as_postgres(str(BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(tmp, ignore_errors=True)


def _sends(http: httpx.Client, token: str, activity: str, start: int, n: int) -> None:
    post_events(http, {"Authorization": f"Bearer {token}"}, [
        {"type": "send", "activity_id": activity, "email": f"r{i}@example.com", "occurred_at": 1_717_200_000_000 + i}
        for i in range(start, start + n)])


def _sends_seen(http: httpx.Client, token: str, activity: str, want: int, wait: float = 30) -> int:
    deadline = time.monotonic() + wait
    while True:
        r = http.get(f"/v1/activities/{activity}/stats", headers={"Authorization": f"Bearer {token}"})
        got = r.json()["counts"]["sends"] if r.status_code == 200 else -1
        if got == want or time.monotonic() > deadline:
            return int(got)
        time.sleep(0.1)


def test_reports_are_served_from_the_replica(replica: tuple[str, str]) -> None:
    primary_url, standby_url = replica
    engine = open_engine(primary_url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        account = create_account(conn, "replica")
        token = create_token(conn, account, frozenset(s.value for s in Scope))
    engine.dispose()
    with psycopg.connect(standby_url, autocommit=True) as standby:
        assert standby.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
        settings = Settings(database_url=primary_url, read_database_url=standby_url, secret=TEST_SECRET,
                            port=free_port())
        with LiveServer(settings) as live, httpx.Client(base_url=live.url, timeout=30) as http:
            _, activity = campaign_with_activity(http, {"Authorization": f"Bearer {token}"})
            _sends(http, token, activity, 0, 5)
            assert _sends_seen(http, token, activity, 5) == 5  # replayed within moments

            standby.execute("SELECT pg_wal_replay_pause()")
            _sends(http, token, activity, 5, 7)  # written to the primary...
            with psycopg.connect(primary_url) as p:
                assert p.execute("SELECT SUM(sends) FROM activity_counters WHERE account_id = %s",
                                 (account,)).fetchone() == (12,)
            time.sleep(0.5)
            assert _sends_seen(http, token, activity, 12, wait=1) == 5  # ...but reports read the replica

            standby.execute("SELECT pg_wal_replay_resume()")
            assert _sends_seen(http, token, activity, 12) == 12
