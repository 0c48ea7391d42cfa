"""``kill -9`` during a storm of pixel hits on a real ``mailtally serve``: every hit that got
an answer is in the log and the counters, and none twice. Killed whole, the server holds some
answered hits journaled (``store.hit_journal``), not yet rolled up: the next start applies them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import httpx
import pytest
from sqlalchemy import func, select

from mailtally.events import Event
from mailtally.store import catalog, hit_journal
from mailtally.store.accounts import create_account
from mailtally.store.db import open_engine, writing
from mailtally.store.migrate import upgrade
from mailtally.store.schema import activity_counters, contacts, events
from mailtally.store.writer import write_events
from mailtally.tracking.toolkit import Recipient, render_messages
from mailtally.vocab import EventType
from tests.conftest import free_port

SECRET = "kill-test-secret"
PEOPLE = 3000
DESKTOP = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"


@pytest.mark.parametrize("victim", ["everything", "one worker"])
def test_kill_9_loses_no_answered_hit_and_doubles_none(tmp_path: Path, victim: str) -> None:
    """``everything``: the server and both workers; ``one worker``: one of the two, whose
    replacement then serves beside the other (each worker writes its own groups, taking turns)."""
    url = f"sqlite:///{tmp_path / 'kill.db'}"
    engine = open_engine(url)
    upgrade(engine)
    emails = [f"r{i}@example.com" for i in range(PEOPLE)]
    with writing(engine) as conn:
        account = create_account(conn, "storm")
        activity = catalog.create_activity(conn, account, catalog.create_campaign(conn, account, "storm").id)
        ids = catalog.contacts_for_emails(conn, account, emails)
        write_events(conn, account, [Event(EventType.SEND, activity.id, 1_600_000_000_000, ids[e]) for e in emails])
    port = free_port()
    messages = render_messages(engine, account, activity.id, [Recipient(email=e) for e in emails],
                               text="{{unsubscribe_url}}", html="<p>hi</p>", base_url=f"http://127.0.0.1:{port}",
                               secret=SECRET.encode())
    pixels = {m.email: re.search(r"/t/o/[\w-]+", m.html or "").group(0) for m in messages}  # type: ignore[union-attr]
    env = {**os.environ, "MAILTALLY_SECRET": SECRET, "MAILTALLY_DATABASE_URL": url}
    log = (tmp_path / "serve.log").open("wb")
    server = _serve(port, env, log)
    answered: set[str] = set()
    lock = threading.Lock()
    try:
        _wait_up(port, server, tmp_path / "serve.log")
        todo = list(pixels.items())
        stop = threading.Event()

        def storm(part: list[tuple[str, str]]) -> None:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
                for email, path in part:
                    if stop.is_set():
                        return
                    try:
                        r = client.get(path, headers={"User-Agent": DESKTOP})
                    except httpx.HTTPError:
                        continue  # the server is gone: this hit got no answer
                    if r.status_code == 200 and r.content.startswith(b"GIF"):
                        with lock:
                            answered.add(email)

        threads = [threading.Thread(target=storm, args=(todo[i::8],)) for i in range(8)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while len(answered) < PEOPLE // 4 and time.monotonic() < deadline:
            time.sleep(0.005)
        if victim == "everything":
            os.killpg(server.pid, signal.SIGKILL)  # the server and both workers, mid-storm
            server.wait(10)
        else:
            while len(_workers(server.pid)) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            os.kill(_workers(server.pid)[0], signal.SIGKILL)
        for t in threads:
            t.join(60)
        stop.set()
        if victim != "everything":
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)
        log.close()
    if victim == "everything":
        assert PEOPLE // 4 <= len(answered) < PEOPLE, "the kill did not land during the storm"
    else:
        assert len(answered) >= PEOPLE // 2  # the other worker and the replacement answered on
    engine.dispose()
    engine = open_engine(url)
    if victim == "everything":  # started again, as anyone would: it rolls up what the queue kept
        with engine.connect() as conn:
            queued = hit_journal.waiting(conn, str(tmp_path / "kill.db"))
        log = (tmp_path / "serve-again.log").open("wb")
        server = _serve(port, env, log)
        try:
            _wait_up(port, server, tmp_path / "serve-again.log")
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)
            log.close()
    with engine.connect() as conn:
        assert not hit_journal.files(str(tmp_path / "kill.db"))  # all applied, and the files deleted
        rows = conn.execute(
            select(contacts.c.email, func.count())
            .select_from(events.join(contacts, (contacts.c.account_id == events.c.account_id)
                                     & (contacts.c.num_id == events.c.contact_num)))
            .where(events.c.account_id == account, events.c.type == "open")
            .group_by(contacts.c.email)).all()
        per_person = dict(rows)
        opens_all, opens_human = conn.execute(select(activity_counters.c.opens_all, activity_counters.c.opens_human)
                                              .where(activity_counters.c.account_id == account)).one()
    assert max(per_person.values()) == 1  # none twice
    missing = answered - set(per_person)
    assert not missing, f"{len(missing)} answered hits are not in the log" + (
        f" ({queued} bytes were journaled at the kill)" if victim == "everything" else "")
    assert opens_all == opens_human == len(per_person)  # the counters moved with the log, in the same commits
    engine.dispose()


def _serve(port: int, env: dict[str, str], log: IO[bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "mailtally", "serve", "--port", str(port), "--workers", "2"],
                            env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=log)


def _workers(pid: int) -> list[int]:
    found = [int(p) for task in Path(f"/proc/{pid}/task").glob("*")
             for p in (task / "children").read_text().split()]
    return [p for p in found if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]


def _wait_up(port: int, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"mailtally serve exited: {log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("mailtally serve did not start")
