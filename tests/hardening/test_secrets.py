"""Item 10: the signing secret stays off the disk when it is configured; database files are
private; the demo token has no admin scope; v2 cursors are bound to the account."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, insert, select

from mailtally.config import Settings
from mailtally.store import migrate
from mailtally.store.accounts import create_account, hash_token, instance_secret, principal_for_token
from mailtally.store.db import open_engine
from mailtally.store.schema import api_tokens, instance
from mailtally.vocab import Scope

from ..conftest import Account, make_account
from ..support.scenario import campaign_with_activity, post_events

CLI = [sys.executable, "-m", "mailtally"]


def _stored_secret(url: str) -> Any:
    with open_engine(url).connect() as conn:
        return conn.execute(select(instance.c.value).where(instance.c.key == "secret")).scalar()


def test_new_database_files_are_private(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    engine = open_engine(url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS probe (x)")
        for name in ("new.db", "new.db-wal", "new.db-shm"):
            assert (tmp_path / name).stat().st_mode & 0o777 == 0o600, name
    engine.dispose()


def test_an_existing_readable_database_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    path.touch(mode=0o644)
    os.chmod(path, 0o644)
    open_engine(f"sqlite:///{path}").dispose()
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_secret_file_keeps_the_secret_out_of_the_database(tmp_path: Path, monkeypatch: Any) -> None:
    from mailtally.api.app import create_app
    from mailtally.demo import DEMO_ACCOUNT, DEMO_SCOPES, demo_token, ensure_demo

    url = f"sqlite:///{tmp_path / 'm.db'}"
    engine = open_engine(url)
    migrate.upgrade(engine)
    with engine.begin() as conn:  # a demo account as older versions made it: an admin token from the stored secret
        stored_token = demo_token(instance_secret(conn))
        account = create_account(conn, DEMO_ACCOUNT)
        conn.execute(insert(api_tokens).values(account_id=account, token_hash=hash_token(stored_token), name="demo",
                                               scopes=",".join(s.value for s in Scope), created_at=0))
    assert _stored_secret(url)
    secret_file = tmp_path / "secret"
    secret_file.write_text("a-long-secret-from-a-file-0123456789\n")
    secret_file.chmod(0o600)
    monkeypatch.setenv("MAILTALLY_SECRET_FILE", str(secret_file))
    monkeypatch.delenv("MAILTALLY_SECRET", raising=False)
    settings = Settings.from_env(database_url=url)
    assert settings.secret == "a-long-secret-from-a-file-0123456789"
    app = create_app(settings)
    assert app.state.secret == b"a-long-secret-from-a-file-0123456789"
    assert _stored_secret(url) is None  # configured: the stored one is gone, nothing new written
    token, created = ensure_demo(engine, secret=settings.secret)
    assert not created and token != stored_token
    assert _stored_secret(url) is None
    with engine.connect() as conn:
        assert principal_for_token(conn, stored_token) is None  # the token derived from the old one is dead
        who = principal_for_token(conn, token)
    assert who is not None and Scope.ADMIN.value not in who.scopes  # demo tokens are never admin
    assert not who.can(Scope.ADMIN)
    assert Scope.ADMIN.value not in DEMO_SCOPES.split(",")  # and so are new ones


def test_an_unreadable_secret_file_is_a_clear_error(tmp_path: Path) -> None:
    proc = subprocess.run([*CLI, "demo", "--database", f"sqlite:///{tmp_path / 'x.db'}"], capture_output=True,
                          text=True, timeout=120, env=os.environ | {"MAILTALLY_SECRET_FILE": str(tmp_path / "nope")})
    assert proc.returncode == 1
    assert "MAILTALLY_SECRET_FILE" in proc.stderr and "Traceback" not in proc.stderr


def test_v2_cursors_are_bound_to_the_account(http: httpx.Client, engine: Engine) -> None:
    a, b = make_account(engine), make_account(engine)

    def first_contact_events(acct: Account) -> int:
        r = http.post("/v1/contacts", json={"email": "same@example.com"}, headers=acct.headers)
        assert r.status_code == 201, r.text
        _, activity = campaign_with_activity(http, acct.headers)
        post_events(http, acct.headers, [{"type": t, "activity_id": activity, "contact_id": r.json()["id"],
                                          "occurred_at": f"2024-05-01T12:0{i}:00Z"}
                                         for i, t in enumerate(["send", "open", "forward"])])
        return int(r.json()["num_id"])

    num_a, num_b = first_contact_events(a), first_contact_events(b)
    assert num_a == num_b  # the same path in both accounts
    h = {"Accept": "application/json"}
    r = http.get(f"/v2/contacts/{num_a}/tracking", params={"api_key": "k", "limit": 1}, headers=a.headers | h)
    link = r.json()["meta"]["pagination"]["next_link"] + "&api_key=k"
    mine = http.get(link, headers=a.headers | h)
    assert mine.status_code == 200 and len(mine.json()["results"]) == 1
    r = http.get(link, headers=b.headers | h)
    assert r.status_code == 400, r.text
    assert r.json()[0]["error_key"]
