"""Bounce mailboxes: IMAP (IDLE when offered), POP3, Maildir and mbox; thin around `ingest.mailbox`.

Each message is recorded in a transaction that also writes the checkpoint (IMAP: the
folder's UIDVALIDITY, the last UID handled, and the moves still owed); the move happens
only after that commit. A restart first settles the moves owed, then resumes after the
last UID, so nothing counts twice and nothing handled is left behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import mailbox
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from sqlalchemy import Engine

from ..ingest.mailbox import Action, Policy, action_for, handle
from ..store import sources
from ..store.db import writing
from ..store.raw_messages import MAX_STORED_BYTES
from .config import MailboxConfig

log = logging.getLogger("mailtally.sources.mailbox")

FETCH_BATCH = 50
_PORTS = {"imaps": 993, "imap": 143, "pop3s": 995, "pop3": 110}


class MailboxUrlError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class MailboxUrl:
    scheme: str  # imaps, imap, pop3s, pop3, maildir, mbox
    host: str = ""
    port: int = 0
    user: str = ""
    password: str | None = None
    folder: str = "INBOX"
    path: str = ""

    @classmethod
    def parse(cls, url: str) -> MailboxUrl:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme in ("maildir", "mbox"):
            path = unquote((parts.netloc + parts.path) if parts.netloc not in ("", "localhost") else parts.path)
            if not path:
                raise MailboxUrlError(f"{url!r}: give a path, e.g. {scheme}:///var/mail/bounces")
            return cls(scheme, path=path)
        if scheme not in _PORTS:
            raise MailboxUrlError(f"{url!r}: the scheme must be imaps, imap, pop3s, pop3, maildir or mbox")
        if not parts.hostname:
            raise MailboxUrlError(f"{url!r}: no host")
        try:
            port = parts.port or _PORTS[scheme]
        except ValueError:
            raise MailboxUrlError(f"{url!r}: bad port") from None
        folder = unquote(parts.path.lstrip("/"))
        if scheme.startswith("pop3") and folder:
            raise MailboxUrlError(f"{url!r}: a POP3 mailbox has no folders")
        return cls(scheme, parts.hostname, port, unquote(parts.username or ""),
                   unquote(parts.password) if parts.password is not None else None, folder or "INBOX")

    def safe(self) -> str:
        """The URL without its password, for logs and names."""
        if self.scheme in ("maildir", "mbox"):
            return f"{self.scheme}://{self.path}"
        if self.scheme.startswith("pop3"):
            return f"{self.scheme}://{self.user + '@' if self.user else ''}{self.host}:{self.port}"
        return f"{self.scheme}://{self.user + '@' if self.user else ''}{self.host}:{self.port}/{self.folder}"


@dataclass(slots=True)
class Totals:
    messages: int = 0
    bounces: int = 0
    recorded: int = 0
    left: int = 0


class Watcher:
    """Common to every kind: the recording transaction, the checkpoint, the source's state."""

    kind = "mailbox"

    def __init__(self, engine: Engine, secret: bytes, account: int, config: MailboxConfig, url: MailboxUrl,
                 keep_bytes: int = MAX_STORED_BYTES) -> None:
        self.engine, self.secret, self.account, self.config, self.url = engine, secret, account, config, url
        self.keep_bytes = keep_bytes
        self.policy = Policy(config.move_to, config.other_to, config.delete_handled)
        self.name = config.name
        self.totals = Totals()
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def _record(self, raw: bytes, checkpoint: dict[str, Any] | None, backlog: int) -> Action:
        with writing(self.engine) as conn:
            result = handle(conn, self.account, self.secret, raw, self.url.scheme, self.keep_bytes)
            action = action_for(result, self.policy)
            if checkpoint is not None:
                checkpoint = dict(checkpoint)
                if action.kind != "leave":
                    checkpoint["pending"] = [*checkpoint.get("pending", []), [checkpoint["last_uid"], action.kind,
                                                                              action.folder]]
            sources.record_success(conn, self.name, "mailbox", handled=1, backlog=backlog, checkpoint=checkpoint)
        self.totals.messages += 1
        self.totals.bounces += bool(result.outcomes)
        self.totals.recorded += result.recorded
        self.totals.left += action.kind == "leave"
        log.info("%s: message %s: %d bounce record(s), %d event(s) recorded; %s", self.name, result.message_key,
                 len(result.outcomes), result.recorded,
                 {"move": f"moved to {action.folder}", "delete": "deleted", "leave": "left in place"}[action.kind])
        return action

    def _checkpoint(self) -> dict[str, Any]:
        with self.engine.connect() as conn:
            return sources.checkpoint(conn, self.name) or {}

    def _polled(self, checkpoint: dict[str, Any]) -> None:
        """A poll read the mailbox through, new mail or none: `mailtally sources` shows when."""
        with writing(self.engine) as conn:
            sources.record_success(conn, self.name, "mailbox", backlog=0, checkpoint=checkpoint)

    def _save(self, checkpoint: dict[str, Any]) -> None:
        with writing(self.engine) as conn:
            sources.save_checkpoint(conn, self.name, "mailbox", checkpoint)

    def run_once(self) -> Totals:
        raise NotImplementedError

    def watch(self, stop: threading.Event) -> None:
        raise NotImplementedError

    def _forever(self) -> None:
        delay = 1.0
        while not self.stopping.is_set():
            try:
                self.watch(self.stopping)
                delay = 1.0
            except Exception as e:
                log.warning("%s: %s: %s; reconnecting in %.0f s", self.name, type(e).__name__, e, delay)
                sources.record_error(self.engine, self.name, "mailbox", f"{type(e).__name__}: {e}")
                if self.stopping.wait(delay):
                    return
                delay = min(delay * 2, 300.0)

    def start(self) -> Watcher:
        sources.register(self.engine, self.name, "mailbox")
        self.thread = threading.Thread(target=self._forever, name=self.name, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(30)


class ImapWatcher(Watcher):
    def __init__(self, *args: Any, password: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.password = password if password is not None else self.url.password

    def _connect(self) -> Any:
        from imapclient import IMAPClient
        from imapclient.imapclient import SocketTimeout

        client = IMAPClient(self.url.host, self.url.port, ssl=self.url.scheme == "imaps",
                            timeout=SocketTimeout(connect=15, read=60))
        client.login(self.url.user, self.password or "")
        return client

    def _ensure_folder(self, client: Any, folder: str) -> None:
        if not client.folder_exists(folder):
            client.create_folder(folder)

    def _apply(self, client: Any, uids: list[int], kind: str, folder: str | None) -> None:
        if not uids:
            return
        if kind == "move" and folder:
            self._ensure_folder(client, folder)
            if client.has_capability("MOVE"):
                client.move(uids, folder)
                return
            client.copy(uids, folder)
        client.delete_messages(uids)
        if client.has_capability("UIDPLUS"):
            client.uid_expunge(uids)
        else:
            client.expunge()

    def _settle(self, client: Any, cp: dict[str, Any]) -> dict[str, Any]:
        """Do the moves owed (recorded, committed, not yet moved), then forget them."""
        pending = cp.get("pending") or []
        if pending:
            present = set(client.search(["UID", ",".join(str(p[0]) for p in pending)]))
            for uid, kind, folder in pending:
                if uid in present:
                    self._apply(client, [uid], kind, folder)
            cp = {**cp, "pending": []}
            self._save(cp)
        return cp

    def _poll(self, client: Any, info: dict[bytes, Any] | None = None) -> int | None:
        """Read the folder through from the last UID handled.

        Returns the folder's UIDNEXT as the SELECT (``info``, made here when not given) saw it: every
        message below it has been handled. None when stopped before the end.
        """
        if info is None:
            info = client.select_folder(self.url.folder)
        validity = int(info.get(b"UIDVALIDITY", 0))
        cp = self._checkpoint()
        if cp.get("uidvalidity") != validity or cp.get("folder") != self.url.folder:
            # A new folder, or its UIDs were renumbered: read it all again (recording is idempotent).
            cp = {"folder": self.url.folder, "uidvalidity": validity, "last_uid": 0, "pending": []}
        cp = self._settle(client, cp)
        last = int(cp.get("last_uid", 0))
        uids = sorted(u for u in client.search(["UID", f"{last + 1}:*"]) if u > last)
        stopped = False
        for i in range(0, len(uids), FETCH_BATCH):
            chunk = uids[i:i + FETCH_BATCH]
            fetched = client.fetch(chunk, ["BODY.PEEK[]"])  # PEEK: the \\Seen flag stays as it was
            for n, uid in enumerate(chunk):
                data = fetched.get(uid)
                if data is None:  # expunged meanwhile
                    continue
                raw = data.get(b"BODY[]") or b""
                cp = {**cp, "last_uid": uid}
                action = self._record(bytes(raw), cp, backlog=len(uids) - i - n - 1)
                if action.kind != "leave":
                    self._apply(client, [uid], action.kind, action.folder)
                    cp = {**cp, "pending": [p for p in cp.get("pending", []) if p[0] != uid]}
            if self.stopping.is_set():
                stopped = True
                break
        if uids:
            cp = {**cp, "pending": []}  # every move owed was done
        self._polled(cp)
        return None if stopped else int(info.get(b"UIDNEXT", 0))

    def run_once(self) -> Totals:
        client = self._connect()
        try:
            self._poll(client)
        finally:
            _logout(client)
        return self.totals

    def watch(self, stop: threading.Event) -> None:
        """Poll, then wait in IDLE until the server tells of new mail (or the renewal is due).

        The server tells of a new message once, in the reply to whatever command is running when it
        notices it; imapclient keeps the news that came with other commands' replies to itself. So
        the last command before IDLE is a SELECT: its UIDNEXT shows whether mail came while the folder
        was being read (then it is read again), and of anything later the server tells in IDLE.
        """
        client = self._connect()
        try:
            idle = client.has_capability("IDLE")
            info = client.select_folder(self.url.folder)
            while not stop.is_set():
                through = self._poll(client, info)
                if through is None:
                    return
                if not idle:
                    if stop.wait(self.config.poll_seconds):
                        return
                    info = client.select_folder(self.url.folder)
                    continue
                info = client.select_folder(self.url.folder)
                if int(info.get(b"UIDNEXT", 0)) > through or self._validity_changed(info):
                    continue  # mail came while the folder was being read
                self._idle(client, stop)
                info = client.select_folder(self.url.folder)
        finally:
            _logout(client)

    def _validity_changed(self, info: dict[bytes, Any]) -> bool:
        return self._checkpoint().get("uidvalidity") != int(info.get(b"UIDVALIDITY", 0))

    def _idle(self, client: Any, stop: threading.Event) -> None:
        """Until the server reports a new message, the renewal is due, or we are stopped."""
        client.idle()
        renew = time.monotonic() + self.config.idle_renew_seconds
        try:
            while not stop.is_set():
                left = renew - time.monotonic()
                if left <= 0:
                    return
                if any(r[1:2] in ((b"EXISTS",), (b"RECENT",)) for r in client.idle_check(timeout=min(left, 5))):
                    return
        finally:
            client.idle_done()


def _logout(client: Any) -> None:
    with contextlib.suppress(Exception):  # the connection may be what failed
        client.logout()


class Pop3Watcher(Watcher):
    """A POP3 mailbox (``poplib``). POP3 has no folders and no flags: a message with bounces is
    deleted after its events are committed when ``delete_handled`` is set, and otherwise left,
    like every other message; the unique ids (UIDL) of the messages read are kept in the
    checkpoint, so the next poll reads only new mail. Messages are read with ``TOP`` (the whole
    message), not ``RETR``, which servers such as Dovecot take as reading it (``\\Seen``)."""

    def __init__(self, *args: Any, password: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.password = password if password is not None else self.url.password
        self.policy = Policy("", None, self.policy.delete_handled)  # handled bounces stay, unless deleted
        if self.config.other_to:
            raise MailboxUrlError(f"{self.name}: a POP3 mailbox has no folders to move messages that are not "
                                  "bounces to (other_to)")

    def _connect(self) -> Any:
        import poplib

        # poplib refuses lines over 2,048 bytes; stored mail has longer ones (HTML, long headers).
        poplib._MAXLINE = max(poplib._MAXLINE, 1 << 20)  # type: ignore[attr-defined]
        client: poplib.POP3
        if self.url.scheme == "pop3s":
            client = poplib.POP3_SSL(self.url.host, self.url.port, timeout=60)
        else:
            client = poplib.POP3(self.url.host, self.url.port, timeout=60)
        client.user(self.url.user)
        client.pass_(self.password or "")
        return client

    def run_once(self) -> Totals:
        client = self._connect()
        try:
            self._poll(client)
            client.quit()  # DELE takes effect only here: a connection lost before it deletes nothing
        except BaseException:
            with contextlib.suppress(Exception):
                client.close()
            raise
        return self.totals

    def _poll(self, client: Any) -> None:
        cp = self._checkpoint()
        seen = set(cp.get("seen", []))  # read and recorded (left, or deleted when the QUIT went through)
        owed = set(cp.get("delete", []))  # recorded, to delete: the QUIT that would have may not have come
        listing = [line.decode("ascii", "replace").split(" ", 1) for line in client.uidl()[1]]
        present = {uid: int(num) for num, uid in (x for x in listing if len(x) == 2)}
        new = [uid for uid in present if uid not in seen]
        for uid in sorted(owed & present.keys()):
            client.dele(present[uid])
        for n, uid in enumerate(new):
            lines = client.top(present[uid], 2**31 - 1)[1]  # the whole message, without marking it read
            raw = b"\r\n".join(lines) + b"\r\n"
            action = self._record(raw, None, backlog=len(new) - n - 1)
            seen.add(uid)
            if action.kind == "delete":
                owed.add(uid)
                self._save({"seen": sorted(seen & present.keys()), "delete": sorted(owed & present.keys())})
                client.dele(present[uid])
            if self.stopping.is_set():
                break
        # Messages gone from the server are forgotten; those deleted at this QUIT are not read again.
        self._polled({"seen": sorted(seen & present.keys()), "delete": sorted(owed & present.keys())})

    def watch(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.run_once()
            if stop.wait(self.config.poll_seconds):
                return


class FileWatcher(Watcher):
    """Maildir and mbox, read with the standard library's `mailbox` (which locks an mbox)."""

    def _open(self, path: str, create: bool = False) -> mailbox.Mailbox:
        if self.url.scheme == "maildir":
            return mailbox.Maildir(path, factory=None, create=create)
        return mailbox.mbox(path, factory=None, create=create)

    def _target(self, box: mailbox.Mailbox, folder: str) -> mailbox.Mailbox:
        if isinstance(box, mailbox.Maildir):
            try:
                return box.get_folder(folder)
            except mailbox.NoSuchMailboxError:
                return box.add_folder(folder)
        path = folder if os.path.isabs(folder) else os.path.join(os.path.dirname(self.url.path), folder)
        return self._open(path, create=True)

    def run_once(self) -> Totals:
        path = self.url.path
        if not Path(path).exists():
            raise FileNotFoundError(f"no such {self.url.scheme}: {path}")
        box = self._open(path)
        cp = self._checkpoint()
        left_before = set(cp.get("left", []))
        left_now: list[str] = []
        box.lock()
        try:
            keys = list(box.keys())
            removed = False
            for n, key in enumerate(keys):
                raw = box.get_bytes(key)
                mark = key if isinstance(box, mailbox.Maildir) else hashlib.sha256(raw).hexdigest()[:24]
                if mark in left_before:
                    left_now.append(mark)
                    continue
                action = self._record(raw, None, backlog=len(keys) - n - 1)
                if action.kind == "leave":
                    left_now.append(mark)
                    continue
                if action.kind == "move" and action.folder:
                    target = self._target(box, action.folder)
                    target.lock()
                    try:
                        target.add(box.get_message(key))
                        target.flush()
                    finally:
                        target.unlock()
                box.remove(key)
                removed = True
                if self.stopping.is_set():
                    break
            if removed:
                box.flush()
        finally:
            box.unlock()
            box.close()
        self._polled({"left": left_now})
        return self.totals

    def watch(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.run_once()
            if stop.wait(self.config.poll_seconds):
                return


def mailbox_watcher(engine: Engine, secret: bytes, account: int, config: MailboxConfig,
                    keep_bytes: int = MAX_STORED_BYTES) -> Watcher:
    url = MailboxUrl.parse(config.url)
    if url.scheme in _PORTS:
        password = config.password
        if config.password_env:
            password = os.environ.get(config.password_env)
            if password is None:
                raise MailboxUrlError(f"{config.name}: the environment variable {config.password_env} is not set")
        kind = Pop3Watcher if url.scheme.startswith("pop3") else ImapWatcher
        return kind(engine, secret, account, config, url, keep_bytes, password=password)
    return FileWatcher(engine, secret, account, config, url, keep_bytes)
