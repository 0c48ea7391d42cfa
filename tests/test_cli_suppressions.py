"""`mailtally suppressions import/export/policy` and `bounces reclassify` as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mailtally.events import Event
from mailtally.store import catalog, raw_messages, suppressions
from mailtally.store.accounts import account_id
from mailtally.store.db import open_engine, writing
from mailtally.store.stats import activity_stats
from mailtally.store.writer import write_events
from mailtally.vocab import EventType

from .conftest import TEST_SECRET
from .support.mail import dsn


def test_import_export_policy_reclassify(tmp_path: Path, own_database: str) -> None:
    env = {**os.environ, "MAILTALLY_DATABASE_URL": own_database, "MAILTALLY_SECRET": TEST_SECRET}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mailtally", *args], env=env, capture_output=True, text=True)

    assert run("accounts", "create", "shop").returncode == 0
    (tmp_path / "ok.csv").write_text("email,reason,note\nAnn@example.com,manual,by phone\nbob@example.com,,\n")
    (tmp_path / "bad.csv").write_text("email\nok@example.com\nbroken line\n")
    ok = run("suppressions", "import", str(tmp_path / "ok.csv"), "--account", "shop")
    assert ok.returncode == 0 and "2 rows read, 2 entries added or replaced" in ok.stdout
    assert "importing suppressions" in ok.stderr  # the progress bar
    bad = run("suppressions", "import", str(tmp_path / "bad.csv"), "--account", "shop")
    assert bad.returncode == 1 and "line 3" in bad.stderr and "nothing imported" in bad.stderr
    out = run("suppressions", "export", "--account", "shop")
    lines = out.stdout.splitlines()
    assert lines[0] == "email,reason,suppressed_at,expires_at,note"
    assert [x.split(",")[0] for x in lines[1:]] == ["ann@example.com", "bob@example.com"]  # not ok@example.com
    assert "exporting suppressions" in out.stderr and "2/2" in out.stderr  # the progress bar, beside the CSV
    changed = run("suppressions", "policy", "--account", "shop", "soft_count=5", "blocks=soft")
    assert '"soft_count": 5' in changed.stdout and '"blocks": "soft"' in changed.stdout
    assert '"soft_count": 5' in run("suppressions", "policy", "--account", "shop").stdout
    assert run("suppressions", "policy", "--account", "shop", "soft_count=zero").returncode == 1
    assert run("suppressions", "export", "--account", "nobody").returncode == 1
    dry = run("bounces", "reclassify", "--account", "shop", "--dry-run")
    assert dry.returncode == 0 and "0 messages, 0 would change" in dry.stdout

    # A stored message an older engine logged nothing for: today's reading finds its recipient.
    engine = open_engine(own_database)
    with writing(engine) as conn:
        account = account_id(conn, "shop")
        activity = catalog.create_activity(conn, account, catalog.create_campaign(conn, account, "c").id).id
        contact = catalog.contacts_for_emails(conn, account, ["gone@remote.example"])["gone@remote.example"]
        write_events(conn, account, [Event(EventType.SEND, activity, 1_709_200_000_000, contact)])
        raw_messages.keep(conn, account, dsn("gone@remote.example"), source="test")
    dry = run("bounces", "reclassify", "--account", "shop", "--dry-run")
    assert "gone@remote.example: nothing logged -> userunknown (B)" in dry.stdout, dry.stdout + dry.stderr
    assert "1 messages, 1 would change" in dry.stdout
    done = run("bounces", "reclassify", "--account", "shop")
    assert done.returncode == 0 and "1 messages, 1 changed" in done.stdout, done.stdout + done.stderr
    with engine.connect() as conn:
        assert activity_stats(conn, account, [activity])[activity].counts["bounces_b"] == 1
        assert suppressions.get(conn, account, "gone@remote.example") is not None
    assert "1 messages, 0 changed" in run("bounces", "reclassify", "--account", "shop").stdout
    engine.dispose()
