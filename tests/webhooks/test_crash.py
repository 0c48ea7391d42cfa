"""A ``kill -9`` of a real ``mailtally serve`` in the middle of a webhook batch: the batch was never
acknowledged, so the provider sends it again, and every event counts exactly once."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import orjson
from sqlalchemy import Engine, text

from mailtally.events import Event
from mailtally.store import catalog
from mailtally.store import webhooks as store
from mailtally.store.db import writing
from mailtally.store.writer import write_events
from mailtally.verp import SendRef, token
from mailtally.vocab import EventType

from ..conftest import TEST_SECRET, free_port, make_account
from .support import SendGridKeys

N = 8000


@contextmanager
def serving(db_url: str) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    env = {**os.environ, "MAILTALLY_DATABASE_URL": db_url, "MAILTALLY_SECRET": TEST_SECRET}
    proc = subprocess.Popen([sys.executable, "-m", "mailtally", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "mailtally serve did not start"
            time.sleep(0.1)
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def test_kill_9_mid_batch_then_redelivery_counts_once(engine: Engine, db_url: str) -> None:
    account = make_account(engine)
    keys = SendGridKeys()
    with writing(engine) as conn:
        campaign = catalog.create_campaign(conn, account.id, "crash")
        activity = catalog.create_activity(conn, account.id, campaign.id)
        emails = [f"c{i}@crash-{uuid.uuid4().hex[:6]}.example" for i in range(N)]
        ids = catalog.contacts_for_emails(conn, account.id, emails)
        write_events(conn, account.id, [Event(EventType.SEND, activity.id, 1_709_280_000_000, ids[e]) for e in emails])
        nums = {r[0]: int(r[1]) for r in conn.execute(text(
            "SELECT id, num_id FROM contacts WHERE account_id = :a"), {"a": account.id})}
        endpoint = store.create_endpoint(conn, account.id, "sendgrid", keys.public_b64, {})
    batch = orjson.dumps([
        {"email": e, "timestamp": 1709287200 + i, "event": "open", "sg_event_id": f"crash-{i}",
         "mailtally_id": token(TEST_SECRET.encode(), SendRef(account.id, activity.num_id, nums[ids[e]]))}
        for i, e in enumerate(emails)])
    path = f"/hooks/sendgrid/{endpoint.id}"

    unacknowledged = 0
    answers: list[bytes] = []
    for delay in (0.1, 1.0):
        with serving(db_url) as (proc, port):
            headers = keys.sign(batch)
            request = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                       f"Content-Length: {len(batch)}\r\n"
                       + "".join(f"{k}: {v}\r\n" for k, v in headers.items() if k != "Content-Type")
                       + "\r\n").encode() + batch
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(request)
                time.sleep(delay)
                answered = bool(select.select([sock], [], [], 0)[0])
                if answered:
                    answers.append(sock.recv(300))
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)
            unacknowledged += not answered
    assert unacknowledged >= 1, f"every batch was answered before the kill: {answers}"

    with serving(db_url) as (_, port):  # the provider tries again, and this time hears back
        r = httpx.post(f"http://127.0.0.1:{port}{path}", content=batch, headers=keys.sign(batch), timeout=120)
        assert r.status_code == 200, r.text
        assert r.json()["recorded"] + r.json()["duplicates"] == N
        stats = httpx.get(f"http://127.0.0.1:{port}/v1/activities/{activity.id}/stats", headers=account.headers)
        assert (stats.json()["counts"]["opens"], stats.json()["counts"]["opens_all"]) == (N, N)
    with engine.connect() as conn:
        logged = conn.execute(text("SELECT count(*) FROM events WHERE account_id = :a AND type = 'open'"),
                              {"a": account.id}).scalar_one()
    assert logged == N
