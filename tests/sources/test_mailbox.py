"""`mailtally mailbox watch`: a real Dovecot over IMAP, a Maildir and an mbox."""

from __future__ import annotations

import mailbox
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from mailtally.servers.config import MailboxConfig
from mailtally.servers.mailbox import MailboxUrl, MailboxUrlError, mailbox_watcher
from mailtally.store.sources import list_sources
from mailtally.verp import return_path

from ..conftest import TEST_SECRET, Account, require_part
from ..support.mail import ORDINARY, dsn
from ..support.mailservers import DOVECOT, DOVECOT_HINT, POP3, POP3_HINT, Dovecot, dovecot
from ..support.scenario import campaign_with_activity
from ..test_bounce_ingest import ref_for, send_to

SECRET = TEST_SECRET.encode()


def cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MAILTALLY_DATABASE_URL": db_url, "MAILTALLY_SECRET": TEST_SECRET}
    return subprocess.run([sys.executable, "-m", "mailtally", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def watch_once(db_url: str, url: str, account: Account, *options: str) -> subprocess.CompletedProcess[str]:
    """``mailtally mailbox watch URL --account NAME --once [options]``: one pass over the mailbox."""
    return cli(db_url, "mailbox", "watch", url, "--account", account.name, "--once", *options)


def bounces(http: httpx.Client, account: Account, activity: str) -> int:
    return int(http.get(f"/v1/activities/{activity}/stats", headers=account.headers).json()["counts"]["bounces"])


def two_bounces(http: httpx.Client, engine: Engine, account: Account) -> tuple[str, list[bytes]]:
    _, activity = campaign_with_activity(http, account.headers)
    out = []
    for email in ("one@remote.example", "two@remote.example"):
        send_to(http, account, activity, email)
        out.append(dsn(email, to=return_path(SECRET, ref_for(engine, account, activity, email), "b.example")))
    return activity, out


@pytest.fixture
def imap() -> Iterator[Dovecot]:
    require_part("dovecot", DOVECOT is not None, DOVECOT_HINT)
    with tempfile.TemporaryDirectory(prefix="mailtally-dovecot-") as d, dovecot(Path(d)) as server:
        yield server


def _client(server: Dovecot):  # type: ignore[no-untyped-def]
    from imapclient import IMAPClient

    c = IMAPClient("127.0.0.1", server.port, ssl=False, timeout=30)
    c.login(server.user, server.password)
    return c


def test_dovecot_bounces_moved_ordinary_mail_untouched(
    http: httpx.Client, engine: Engine, account: Account, db_url: str, imap: Dovecot
) -> None:
    activity, (b1, b2) = two_bounces(http, engine, account)
    c = _client(imap)
    for raw in (b1, ORDINARY, b2):
        c.append("INBOX", raw)
    url = f"imap://{imap.user}:{imap.password}@127.0.0.1:{imap.port}/INBOX"
    p = watch_once(db_url, url, account)
    assert p.returncode == 0, p.stderr
    assert "3 messages: 2 with bounces" in p.stdout
    assert bounces(http, account, activity) == 2
    c.select_folder("INBOX")
    left = c.fetch(c.search("ALL"), ["FLAGS", "BODY.PEEK[]"])
    assert [b"Are you free on Tuesday?" in d[b"BODY[]"] for d in left.values()] == [True]
    assert [b"\\Seen" in d[b"FLAGS"] for d in left.values()] == [False]  # still unread
    c.select_folder("Bounces")
    assert len(c.search("ALL")) == 2
    # A second run counts nothing; a new bounce after it is read, and only it.
    again = watch_once(db_url, url, account)
    assert again.returncode == 0 and "0 messages" in again.stdout
    _, (b3, _) = two_bounces(http, engine, account)
    c.append("INBOX", b3)
    third = watch_once(db_url, url, account)
    assert "1 messages: 1 with bounces" in third.stdout
    assert bounces(http, account, activity) == 2
    c.logout()
    shown = cli(db_url, "sources").stdout
    assert f"mailbox:imap://{imap.user}@127.0.0.1:{imap.port}/INBOX" in shown and imap.password not in shown


@pytest.fixture
def pop3() -> Iterator[Dovecot]:
    require_part("dovecot", DOVECOT is not None, DOVECOT_HINT)
    require_part("dovecot-pop3d", POP3, POP3_HINT)
    with tempfile.TemporaryDirectory(prefix="mailtally-dovecot-") as d, dovecot(Path(d), pop3=True) as server:
        yield server


def test_dovecot_pop3_counts_once_leaves_mail_unread_deletes_only_handled_bounces(
    http: httpx.Client, engine: Engine, account: Account, db_url: str, pop3: Dovecot
) -> None:
    """listmonk's POP3 scanner deletes every message it fetched: here ordinary mail stays, unread,
    a bounce is deleted only with --delete-handled and only after it was recorded, and a message
    already read is not read again."""
    activity, (b1, b2) = two_bounces(http, engine, account)
    c = _client(pop3)
    for raw in (b1, ORDINARY):
        c.append("INBOX", raw)
    url = f"pop3://{pop3.user}:{pop3.password}@127.0.0.1:{pop3.pop3_port}"
    p = watch_once(db_url, url, account)
    assert p.returncode == 0, p.stderr
    assert "2 messages: 1 with bounces (1 events recorded), 2 left in place" in p.stdout
    assert bounces(http, account, activity) == 1
    c.select_folder("INBOX")
    left = c.fetch(c.search("ALL"), ["FLAGS"])
    assert len(left) == 2 and not any(b"\\Seen" in d[b"FLAGS"] for d in left.values())  # both still unread
    # Nothing new: nothing read. A new bounce, with --delete-handled: read, recorded, deleted; the rest stays.
    again = watch_once(db_url, url, account)
    assert again.returncode == 0 and "0 messages" in again.stdout, again.stdout
    c.append("INBOX", b2)
    third = watch_once(db_url, url, account, "--delete-handled")
    assert "1 messages: 1 with bounces (1 events recorded), 0 left in place" in third.stdout, third.stdout
    assert bounces(http, account, activity) == 2
    c.select_folder("INBOX")
    kept = c.fetch(c.search("ALL"), ["BODY.PEEK[]"])
    assert sorted(b"Are you free on Tuesday?" in d[b"BODY[]"] for d in kept.values()) == [False, True]  # b1, ORDINARY
    c.logout()
    shown = cli(db_url, "sources").stdout
    assert f"mailbox:pop3://{pop3.user}@127.0.0.1:{pop3.pop3_port}" in shown and pop3.password not in shown
    no_folders = watch_once(db_url, url, account, "--other-to", "X")
    assert no_folders.returncode == 2 and "no folders" in no_folders.stderr


def test_dovecot_bad_login_is_an_error(engine: Engine, account: Account, imap: Dovecot) -> None:
    from imapclient.exceptions import LoginError

    wrong = MailboxConfig(url=f"imap://{imap.user}:nope@127.0.0.1:{imap.port}/INBOX", account=account.name)
    with pytest.raises(LoginError):
        mailbox_watcher(engine, SECRET, account.id, wrong).run_once()


def test_maildir(http: httpx.Client, engine: Engine, account: Account, db_url: str, tmp_path: Path) -> None:
    activity, (b1, b2) = two_bounces(http, engine, account)
    md = mailbox.Maildir(tmp_path / "Maildir", create=True)
    for raw in (b1, ORDINARY, b2):
        md.add(raw)
    url = f"maildir://{tmp_path / 'Maildir'}"
    for _ in range(2):
        p = watch_once(db_url, url, account, "--move-to", "Done")
        assert p.returncode == 0, p.stderr
    assert bounces(http, account, activity) == 2
    md = mailbox.Maildir(tmp_path / "Maildir")
    assert [md.get_bytes(k) for k in list(md.iterkeys())] == [ORDINARY]
    assert len(md.get_folder("Done")) == 2


def test_mbox_delete_handled(http: httpx.Client, engine: Engine, account: Account, db_url: str,
                             tmp_path: Path) -> None:
    activity, (b1, b2) = two_bounces(http, engine, account)
    path = tmp_path / "bounces.mbox"
    box = mailbox.mbox(path)
    for raw in (b1, ORDINARY, b2):
        box.add(raw)
    box.flush()
    box.close()
    p = watch_once(db_url, f"mbox://{path}", account, "--delete-handled")
    assert p.returncode == 0, p.stderr
    assert bounces(http, account, activity) == 2
    box = mailbox.mbox(path)
    assert len(box) == 1 and b"lunch?" in box.get_bytes(box.keys()[0])
    assert not (tmp_path / "Bounces").exists()


def test_bad_urls(db_url: str, account: Account) -> None:
    for url in ("gopher://host/", "pop3://host/INBOX", "imap:///INBOX", "maildir://", "imap://host:99999/"):
        with pytest.raises(MailboxUrlError):
            MailboxUrl.parse(url)
    p = watch_once(db_url, "gopher://h/", account)
    assert p.returncode == 2 and "scheme" in p.stderr
    missing = watch_once(db_url, "maildir:///nonexistent/Maildir", account)
    assert missing.returncode == 1 and "no such" in missing.stderr


def _wait(what: str, done: Callable[[], bool], bound: float = 120) -> None:
    """Wait for ``done``; the bound only ends a hung test (it is far below the hour-long poll interval)."""
    deadline = time.monotonic() + bound
    while not done():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _handled(engine: Engine, name: str) -> int:
    with engine.connect() as conn:
        return next((s.handled for s in list_sources(conn) if s.name == name), 0)


def test_dovecot_idle_sees_mail_delivered_while_idling(
    http: httpx.Client, engine: Engine, account: Account, imap: Dovecot
) -> None:
    """Polling once an hour, IDLE renewed every 9 minutes: only IDLE's news can count these in time."""
    _, activity = campaign_with_activity(http, account.headers)
    raws = []
    for i in range(24):
        email = f"idle{i}@remote.example"
        send_to(http, account, activity, email)
        raws.append(dsn(email, to=return_path(SECRET, ref_for(engine, account, activity, email), "b.example")))
    first, during, idling = raws[:20], raws[20], raws[21:]
    name = f"idle-{account.name}"
    cfg = MailboxConfig(url=f"imap://{imap.user}@127.0.0.1:{imap.port}/INBOX", account=account.name, name=name,
                        password=imap.password, other_to="Not bounces", poll_seconds=3600)
    c = _client(imap)
    c.append("INBOX", ORDINARY)
    for raw in first:
        c.append("INBOX", raw)
    watcher = mailbox_watcher(engine, SECRET, account.id, cfg).start()
    try:
        _wait("the first poll never counted a bounce", lambda: bounces(http, account, activity) >= 1)
        # Delivered while the watcher is still busy with the first messages, after it searched the folder:
        # the server's news of it comes in the reply to one of the watcher's moves (the race that lost mail).
        c.append("INBOX", during)
        _wait("a bounce delivered during a poll was never counted", lambda: bounces(http, account, activity) >= 21)
        _wait("the watcher never finished its messages", lambda: _handled(engine, name) >= 22)
        for n, raw in enumerate(idling, 22):
            time.sleep(0.5)
            c.append("INBOX", raw)
            _wait(f"IDLE never saw bounce {n}", lambda n=n: bounces(http, account, activity) >= n)  # type: ignore[misc]
    finally:
        watcher.stop()
    assert bounces(http, account, activity) == 24
    c.select_folder("Bounces")
    assert len(c.search("ALL")) == 24
    c.select_folder("Not bounces")
    assert len(c.search("ALL")) == 1  # other_to: the ordinary mail has its own folder
    c.select_folder("INBOX")
    assert c.search("ALL") == []
    c.logout()


def test_dovecot_idle_renewed(http: httpx.Client, engine: Engine, account: Account, imap: Dovecot) -> None:
    """IDLE ended and begun again every second: the session goes on, and mail is still counted."""
    activity, (b1, b2) = two_bounces(http, engine, account)
    name = f"renew-{account.name}"
    cfg = MailboxConfig(url=f"imap://{imap.user}@127.0.0.1:{imap.port}/INBOX", account=account.name, name=name,
                        password=imap.password, poll_seconds=3600, idle_renew_seconds=1)
    c = _client(imap)
    c.append("INBOX", b1)
    watcher = mailbox_watcher(engine, SECRET, account.id, cfg).start()
    try:
        _wait("the first bounce was never counted", lambda: bounces(http, account, activity) >= 1)
        time.sleep(3.5)  # three renewals
        c.append("INBOX", b2)
        _wait("the bounce after the renewals was never counted", lambda: bounces(http, account, activity) >= 2)
    finally:
        watcher.stop()
    with engine.connect() as conn:
        state = next(s for s in list_sources(conn) if s.name == name)
    assert state.last_error is None and state.handled == 2
    c.logout()


def _last_success(engine: Engine, name: str) -> int | None:
    with engine.connect() as conn:
        return next((s.last_success_at for s in list_sources(conn) if s.name == name), None)


def test_empty_polls_are_successes(engine: Engine, account: Account, db_url: str, tmp_path: Path,
                                   imap: Dovecot) -> None:
    """A poll that finds nothing new still shows, in `mailtally sources`, that the mailbox was read."""
    mailbox.Maildir(tmp_path / "Maildir", create=True)
    mailbox.mbox(tmp_path / "empty.mbox").close()
    urls = {"maildir": f"maildir://{tmp_path / 'Maildir'}", "mbox": f"mbox://{tmp_path / 'empty.mbox'}",
            "imap": f"imap://{imap.user}:{imap.password}@127.0.0.1:{imap.port}/INBOX"}
    for kind, url in urls.items():
        name = f"empty-{kind}-{account.name}"
        before = None
        for _ in range(2):
            p = watch_once(db_url, url, account, "--name", name)
            assert p.returncode == 0 and "0 messages" in p.stdout, p.stderr
            after = _last_success(engine, name)
            assert after is not None and (before is None or after > before), (kind, before, after)
            before = after
        shown = [ln for ln in cli(db_url, "sources").stdout.splitlines() if ln.startswith(name)]
        assert len(shown) == 1 and " - " not in shown[0].split("mailbox", 1)[1][:25], shown
