"""Fixtures: real databases (SQLite, and PostgreSQL when reachable), a real HTTP server.

Every test works in accounts of its own, so tests never see each other's data and the
databases need no cleaning between tests.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from hypothesis import settings as hypothesis_settings
from sqlalchemy import Engine

from mailtally.config import Settings
from mailtally.store import migrate
from mailtally.store.accounts import create_account, create_token
from mailtally.store.db import open_engine, writing
from mailtally.vocab import Scope

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
POSTGRES_URL = os.environ.get("MAILTALLY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_POSTGRES = os.environ.get("MAILTALLY_REQUIRE_POSTGRES") == "1"
# CI installs every outside part (Postfix, Dovecot, Chromium, ...) itself: there a missing one fails.
REQUIRE_PARTS = os.environ.get("MAILTALLY_REQUIRE_PARTS") == "1"
TEST_SECRET = "test-secret-for-signing"
# Shared fixtures: ``chromium`` and ``page`` (a real browser, tests/support/browser.py);
# ``browser_like`` and ``signed_in`` (dashboard clients, tests/support/dashboard.py).
pytest_plugins = ["tests.support.browser", "tests.support.dashboard"]

# No per-example deadline: on a shared, loaded machine a slow example is not a wrong one.
hypothesis_settings.register_profile("mailtally", deadline=None)
hypothesis_settings.load_profile("mailtally")


def need_shared(*parts: str) -> Path:
    """A path under ../shared, or skip the test saying what is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is missing: these tests read ../shared beside the repository")
    return path


def require_part(name: str, present: bool, install: str) -> None:
    """Skip a test whose outside part (a mail server, a browser, ...) is missing, saying how to
    install it; under ``MAILTALLY_REQUIRE_PARTS=1`` (CI, which installs them) fail instead."""
    if present:
        return
    message = f"{name} is not installed ({install})"
    if REQUIRE_PARTS:
        pytest.fail(message + " and MAILTALLY_REQUIRE_PARTS=1", pytrace=False)
    pytest.skip(message + f": tests that need {name} skipped")


def _postgres_admin_url() -> str | None:
    import psycopg

    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3) as conn:
            conn.execute("select 1")
        return POSTGRES_URL
    except psycopg.Error:
        return None


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards; skips (or fails) without a server."""
    import psycopg

    admin = _postgres_admin_url()
    if admin is None:
        message = f"PostgreSQL not reachable at {POSTGRES_URL} (set MAILTALLY_TEST_POSTGRES_URL)"
        if REQUIRE_POSTGRES:
            pytest.fail(message + " and MAILTALLY_REQUIRE_POSTGRES=1", pytrace=False)
        pytest.skip(message + ": PostgreSQL tests skipped")
    name = f"mailtally_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = admin.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this run, dropped at the end."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def own_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new, empty database of each kind for one test (one that starts processes of its own,
    whose workers must not see the other tests' accounts)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'own.db'}"
        return
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'mailtally.db'}"
    return str(request.getfixturevalue("postgres_database"))


@pytest.fixture(scope="session")
def engine(db_url: str) -> Iterator[Engine]:
    eng = open_engine(db_url)
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


@dataclass
class Account:
    id: int
    name: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def make_account(engine: Engine, scopes: tuple[Scope, ...] = tuple(Scope)) -> Account:
    name = f"acct-{uuid.uuid4().hex[:12]}"
    # Through the store's write path: a server may be writing the same SQLite file meanwhile, and a
    # plain engine.begin() that read first fails at once ("database is locked") when it has.
    with writing(engine) as conn:
        account = create_account(conn, name)
        token = create_token(conn, account, frozenset(s.value for s in scopes))
    return Account(account, name, token)


@pytest.fixture
def account(engine: Engine) -> Account:
    return make_account(engine)


@pytest.fixture
def other_account(engine: Engine) -> Account:
    return make_account(engine)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """uvicorn serving the real app on a real port, in a thread."""

    def __init__(self, settings: Settings):
        from mailtally.api.app import create_app

        self.app = create_app(settings)
        self.port = settings.port
        self.url = f"http://127.0.0.1:{self.port}"
        # uvicorn closes an idle kept-alive connection after 5 s, httpx reuses one for up to 5 s: a test that
        # pauses about that long (a watcher stopping under load) sends into a closing socket and reads a reset.
        # Idle connections outlive any pause in a test here.
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False,
                                timeout_keep_alive=120)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="session")
def server(db_url: str, engine: Engine) -> Iterator[LiveServer]:
    # No webhook worker here: tests that deliver webhooks run their own (tests/test_webhooks.py).
    settings = Settings(database_url=db_url, secret=TEST_SECRET, port=free_port(), max_batch_events=2000,
                        webhook_worker=False)
    with LiveServer(settings) as live:
        yield live


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client
