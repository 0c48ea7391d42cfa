"""The delivery worker: takes due rows from the outbox, signs and POSTs them, logs each attempt.

A thin loop started with the app (``serve``). A row is claimed for twice the timeout before
the request, and its attempt recorded after: a worker killed in between leaves the row
pending, and it is sent again, with the same ``webhook-id``, once the claim lapses. Several
workers (``serve --workers N``) share the outbox through the same claims.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import httpx
from sqlalchemy import Engine

from ..config import Settings
from ..store import outbox, raw_messages
from ..store.db import now_ms, writing
from . import signing
from .targets import TargetRefused, TargetUnresolved, post

log = logging.getLogger(__name__)
BATCH = 50
PRUNE_EVERY_S = 3600


def deliver_one(client: httpx.Client, engine: Engine, row: Any, settings: Settings) -> bool:
    """One attempt at one delivery; True when the receiver took it (2xx)."""
    with engine.connect() as conn:
        sub = outbox.get_subscription(conn, row.account_id, row.subscription_id)
    started = time.monotonic()
    status: int | None = None
    error: str | None = None
    ok = False
    if sub is None:
        error = "subscription deleted"
    else:
        body = row.payload.encode()
        try:
            headers = signing.headers(sub.secret, row.msg_id, int(time.time()), body)
            response = post(client, sub.url, body, headers, settings.webhook_allow_private)
            status = response.status_code
            ok = 200 <= status < 300
            if not ok:
                error = f"HTTP {status}: {response.text[:200]}"
        except TargetRefused as e:
            error = f"refused: {e}"
        except TargetUnresolved as e:
            error = str(e)
        except httpx.HTTPError as e:
            error = f"{type(e).__name__}: {e}"
    took = int((time.monotonic() - started) * 1000)
    with writing(engine) as conn:
        outbox.record_attempt(conn, row.account_id, row, ok=ok, status=status, error=error, duration_ms=took,
                              now=now_ms())
    return ok


def run_once(client: httpx.Client, engine: Engine, settings: Settings) -> int:
    """Deliver what is due now; returns how many attempts were made."""
    now = now_ms()
    hold = int(settings.webhook_timeout_seconds * 2000) + 1000
    with engine.connect() as conn:
        rows = outbox.due(conn, now, BATCH)
    made = 0
    for row in rows:
        with writing(engine) as conn:
            if not outbox.claim(conn, row.account_id, row.id, now, hold):
                continue  # another worker has it
        deliver_one(client, engine, row, settings)
        made += 1
    return made


class Worker:
    """The loop, on a daemon thread; also prunes raw messages past their retention, hourly."""

    def __init__(self, engine: Engine, settings: Settings):
        self.engine = engine
        self.settings = settings
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="mailtally-webhooks", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(self.settings.webhook_timeout_seconds + 5)

    def _run(self) -> None:
        pruned = 0.0
        with httpx.Client(timeout=self.settings.webhook_timeout_seconds, follow_redirects=False,
                          headers={"user-agent": "mailtally-webhooks"}) as client:
            while not self.stop.is_set():
                try:
                    if time.monotonic() - pruned > PRUNE_EVERY_S:
                        with writing(self.engine) as conn:
                            raw_messages.prune(conn, self.settings.raw_message_retention_days)
                        pruned = time.monotonic()
                    if run_once(client, self.engine, self.settings):
                        continue
                except Exception:  # a database hiccup must not end the loop
                    log.exception("webhook delivery round failed; retrying")
                    time.sleep(1)
                self.stop.wait(self.settings.webhook_poll_seconds)
