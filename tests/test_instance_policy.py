"""The instance-wide default suppression policy: the ``[suppression]`` table of ``serve --config``,
which every account follows except in the fields it changed itself."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from mailtally.events import Event
from mailtally.servers.config import ConfigError, parse
from mailtally.store import catalog, migrate, suppressions
from mailtally.store.accounts import create_account, create_token
from mailtally.store.db import open_engine, writing
from mailtally.store.writer import write_events
from mailtally.suppression.policy import DAY_MS, Policy, PolicyError
from mailtally.vocab import BlockPolicy, BounceCode, EventType, Reason, Scope, SuppressionReason

from .conftest import free_port, make_account

T0 = 1_717_200_000_000


def test_config_table_is_checked_when_read() -> None:
    cfg = parse({"suppression": {"soft_count": 2, "blocks": "hard"}})
    assert cfg.suppression == {"soft_count": 2, "blocks": "hard"}
    assert parse({}).suppression is None
    for bad, message in (({"soft_count": 0}, r"config\.suppression\.soft_count: must be between"),
                         ({"blocks": "maybe"}, r"config\.suppression\.blocks"),
                         ({"nope": True}, r"config\.suppression\.nope: is not a policy field"),
                         ("soft", r"config\.suppression: must be a table")):
        with pytest.raises(ConfigError, match=message):
            parse({"suppression": bad})


def _blocks(engine: Engine, account: int, email: str, day: int) -> SuppressionReason | None:
    """One send and one block (Z) for ``email``; the suppression it left (None: none)."""
    with writing(engine) as conn:
        campaign = catalog.create_campaign(conn, account, f"c{day}")
        activity = catalog.create_activity(conn, account, campaign.id).id
        contact = catalog.contacts_for_emails(conn, account, [email])[email]
        t = T0 + day * DAY_MS
        write_events(conn, account, [
            Event(EventType.SEND, activity, t, contact),
            Event(EventType.BOUNCE, activity, t + 1000, contact, reason=Reason.BLOCKED,
                  bounce_code=BounceCode.BLOCKED),
        ])
    with engine.connect() as conn:
        entry = suppressions.get(conn, account, email, include_expired=True)
    return SuppressionReason(entry.reason) if entry is not None else None


def test_accounts_follow_the_instance_default_except_where_they_changed_it(engine: Engine) -> None:
    follower, own = make_account(engine).id, make_account(engine).id
    try:
        with writing(engine) as conn:
            suppressions.set_instance_policy(conn, {"blocks": "hard", "soft_count": 2})
            # ``own`` changes one field; the others still follow the instance.
            suppressions.change_policy(conn, own, {"blocks": "ignore"})
            assert suppressions.policy_for(conn, follower) == Policy(blocks=BlockPolicy.HARD, soft_count=2)
            assert suppressions.policy_for(conn, own) == Policy(blocks=BlockPolicy.IGNORE, soft_count=2)
        # The writer applies them as events land.
        assert _blocks(engine, follower, "z@example.com", 0) is SuppressionReason.BLOCK
        assert _blocks(engine, own, "z@example.com", 0) is None
        with writing(engine) as conn:
            # A null field goes back to the instance default; a bad one changes nothing.
            assert suppressions.change_policy(conn, own, {"blocks": None}).blocks is BlockPolicy.HARD
            with pytest.raises(PolicyError):
                suppressions.change_policy(conn, own, {"soft_count": 2, "nope": None})
            # The instance default moves; the account's own fields stay.
            suppressions.change_policy(conn, own, {"soft_count": 7})
            suppressions.set_instance_policy(conn, {"soft_count": 4})
            assert suppressions.policy_for(conn, follower) == Policy(soft_count=4)
            assert suppressions.policy_for(conn, own) == Policy(soft_count=7)
    finally:
        with writing(engine) as conn:
            suppressions.set_instance_policy(conn, None)
    with engine.connect() as conn:
        assert suppressions.policy_for(conn, follower) == Policy()


def test_serve_config_sets_the_default_seen_through_the_api(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'policy.db'}"
    engine = open_engine(db)
    migrate.upgrade(engine)
    with writing(engine) as conn:
        account = create_account(conn, "policy")
        token = create_token(conn, account, frozenset(s.value for s in Scope))
    config = tmp_path / "mailtally.toml"
    config.write_text('[suppression]\nsoft_count = 5\nblocks = "soft"\n')
    port = free_port()
    env = {**os.environ, "MAILTALLY_DATABASE_URL": db, "MAILTALLY_WEBHOOK_WORKER": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "mailtally", "serve", "--port", str(port), "--config", str(config)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10,
                          headers={"Authorization": f"Bearer {token}"}) as http:
            deadline = time.monotonic() + 60
            while True:
                try:
                    http.get("/healthz")
                    break
                except httpx.TransportError:
                    assert proc.poll() is None and time.monotonic() < deadline, "serve did not start"
                    time.sleep(0.2)
            policy = http.get("/v1/suppressions/policy").json()
            assert (policy["soft_count"], policy["blocks"], policy["soft_window_days"]) == (5, "soft", 30)
            changed = http.put("/v1/suppressions/policy", json={"soft_count": 2}).json()
            assert (changed["soft_count"], changed["blocks"]) == (2, "soft")
            back = http.put("/v1/suppressions/policy", json={"soft_count": None}).json()
            assert back["soft_count"] == 5
            r = http.put("/v1/suppressions/policy", json={"nope": None})
            assert r.status_code == 400 and r.json()["error"]["code"] == "bad_policy"
    finally:
        proc.terminate()
        proc.wait(10)
    engine.dispose()
