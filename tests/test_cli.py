"""The mailtally command, run as a user runs it: as a subprocess."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest

from .conftest import free_port

MAILTALLY = [sys.executable, "-m", "mailtally"]


def run(*args: str, db: str, stdin: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MAILTALLY_DATABASE_URL": db, "COLUMNS": "120"}
    proc = subprocess.run([*MAILTALLY, *args], input=stdin.decode() if stdin else None, capture_output=True,
                          text=True, env=env, timeout=120)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def test_accounts_and_tokens(db: str) -> None:
    assert "account shop" in run("accounts", "create", "shop", db=db).stdout
    out = run("tokens", "create", "--account", "shop", "--scopes", "campaign_data,ingest", db=db).stdout
    assert re.fullmatch(r"mt_[A-Za-z0-9_-]{20,}\n", out)
    bad = run("tokens", "create", "--account", "nobody", db=db, check=False)
    assert bad.returncode == 1 and "no account named 'nobody'" in bad.stderr
    bad = run("tokens", "create", "--account", "shop", "--scopes", "everything", db=db, check=False)
    assert bad.returncode == 1 and "unknown scope" in bad.stderr


def _setup_activity(db: str) -> str:
    from mailtally.store import catalog
    from mailtally.store.accounts import account_id
    from mailtally.store.db import open_engine

    run("accounts", "create", "shop", db=db)
    with open_engine(db).begin() as conn:
        acc = account_id(conn, "shop")
        campaign = catalog.create_campaign(conn, acc, "cli")
        return str(catalog.create_activity(conn, acc, campaign.id).id)


def test_ingest_file_replay_and_bad_lines(db: str, tmp_path: Path) -> None:
    activity = _setup_activity(db)
    lines = [{"type": "send", "activity_id": activity, "email": f"p{i}@example.com",
              "occurred_at": f"2024-01-01T00:00:{i % 60:02d}Z"} for i in range(250)]
    path = tmp_path / "events.ndjson"
    path.write_bytes(b"\n".join(orjson.dumps(x) for x in lines))
    out = run("ingest", str(path), "--account", "shop", "--batch-size", "100", db=db)
    assert "250 events read, 250 recorded, 0 already known, 250 new contacts" in out.stdout
    out = run("ingest", str(path), "--account", "shop", db=db)
    assert "250 events read, 0 recorded, 250 already known" in out.stdout
    # stdin works too
    out = run("ingest", "-", "--account", "shop", db=db, stdin=path.read_bytes())
    assert "0 recorded, 250 already known" in out.stdout

    bad = tmp_path / "bad.ndjson"
    good = {"type": "open", "activity_id": activity, "email": "p1@example.com", "occurred_at": "2024-01-02T00:00:00Z"}
    bad.write_bytes(orjson.dumps(good) + b"\n" + orjson.dumps({**good, "occurred_at": "soon"}))
    proc = run("ingest", str(bad), "--account", "shop", db=db, check=False)
    assert proc.returncode == 1
    assert "occurred_at" in proc.stderr and "rejected" in proc.stderr
    # the batch was all-or-nothing: the good open was not recorded either
    out = run("ingest", "-", "--account", "shop", db=db, stdin=orjson.dumps(good))
    assert "1 recorded" in out.stdout

    missing = run("ingest", str(tmp_path / "nope.ndjson"), "--account", "shop", db=db, check=False)
    assert missing.returncode == 1 and "cannot read" in missing.stderr


def test_demo_is_idempotent(db: str) -> None:
    first = run("demo", db=db).stdout.strip()
    second = run("demo", db=db).stdout.strip()
    assert first == second and first.startswith("mt_demo_")
    assert run("accounts", "list", db=db).stdout.count("demo") == 1


def test_serve_with_demo_answers_with_the_printed_token(db: str) -> None:
    """What `make run` does: set up, print the token and URLs, serve."""
    port = free_port()
    env = {**os.environ, "MAILTALLY_DATABASE_URL": db}
    proc = subprocess.Popen([*MAILTALLY, "serve", "--demo", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        token = login = None
        deadline = time.monotonic() + 90
        while (token is None or login is None) and time.monotonic() < deadline:
            line = proc.stdout.readline()
            m = re.search(r"(mt_demo_\w+)", line)
            token = m.group(1) if m else token
            found = re.search(r"sign in as (\S+) with password (\S+)", line)
            login = (found.group(1), found.group(2)) if found else login
        assert token, "serve --demo printed no token"
        assert login, "serve --demo printed no dashboard login"
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                r = httpx.get(f"{base}/v1/campaigns", headers={"Authorization": f"Bearer {token}"})
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert r.status_code == 200
        names = [c["name"] for c in r.json()["campaigns"]]
        assert len(names) >= 4
        assert httpx.get(f"{base}/openapi.json").status_code == 200
        with httpx.Client(base_url=base, follow_redirects=True) as browser:
            form = browser.get("/")  # the root opens the dashboard (its sign-in page first)
            assert form.url.path == "/ui/login"
            csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
            home = browser.post("/ui/login", data={"csrf": csrf, "email": login[0], "password": login[1]})
            assert home.url.path == "/ui/campaigns" and all(n in home.text for n in names)
    finally:
        proc.terminate()
        proc.wait(10)


def test_users_create_and_sign_in(db: str) -> None:
    run("accounts", "create", "shop", db=db)
    env_password = {**os.environ, "MAILTALLY_DATABASE_URL": db, "MAILTALLY_USER_PASSWORD": "a long passphrase"}
    made = subprocess.run([*MAILTALLY, "users", "create", "Ann@Shop.example", "--account", "shop"], env=env_password,
                          capture_output=True, text=True, timeout=120)
    assert made.returncode == 0 and "user ann@shop.example in account shop" in made.stdout, made.stderr
    again = subprocess.run([*MAILTALLY, "users", "create", "ann@shop.example", "--account", "shop"],
                           env=env_password, capture_output=True, text=True, timeout=120)
    assert again.returncode == 1 and "exists" in again.stderr
    weak = run("users", "create", "bob@shop.example", "--account", "shop", "--password", "short", db=db, check=False)
    assert weak.returncode == 1 and "at least 10 characters" in weak.stderr
    nobody = run("users", "create", "c@x.example", "--account", "nobody", "--generate", db=db, check=False)
    assert nobody.returncode == 1 and "no account named 'nobody'" in nobody.stderr
    generated = run("users", "create", "dee@shop.example", "--account", "shop", "--generate", db=db).stdout
    password = re.search(r"password: (\S+)", generated).group(1)  # type: ignore[union-attr]
    assert run("users", "list", "--account", "shop", db=db).stdout.split() == ["ann@shop.example", "dee@shop.example"]

    from mailtally.store.db import open_engine
    from mailtally.store.users import authenticate

    engine = open_engine(db)
    with engine.begin() as conn:
        assert authenticate(conn, "ANN@shop.example", "a long passphrase") is not None
        assert authenticate(conn, "dee@shop.example", password) is not None
        assert authenticate(conn, "dee@shop.example", password + "x") is None
        stored = conn.exec_driver_sql("SELECT password_hash FROM users").scalars().all()
    assert all(h.startswith("$argon2id$") for h in stored) and "a long passphrase" not in "".join(stored)
    engine.dispose()
