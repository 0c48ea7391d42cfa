"""``mailtally mailbox watch URL``: a bounce mailbox (IMAP, POP3, Maildir, mbox), once (``--once``) or watched."""

from __future__ import annotations

import os
import signal
import threading

import typer
from sqlalchemy import Engine

from ..config import Settings
from ..servers.config import ConfigError, MailboxConfig
from ..servers.mailbox import MailboxUrl, MailboxUrlError, mailbox_watcher
from ..servers.runner import account_ids, secret_of
from .sources import setup_logging


def _error(message: str) -> None:
    typer.secho(f"Error: {message}", fg=typer.colors.RED, err=True)


def run(engine: Engine, settings: Settings, url: str, account: str, *, once: bool, move_to: str,
        other_to: str | None, delete_handled: bool, password_env: str, name: str | None) -> int:
    try:
        parsed = MailboxUrl.parse(url)
        acc = account_ids(engine, {account})[account]
    except (MailboxUrlError, ConfigError) as e:
        _error(str(e))
        return 2 if isinstance(e, MailboxUrlError) else 1
    env_password = password_env if parsed.password is None and os.environ.get(password_env) is not None else None
    config = MailboxConfig(url=url, account=account, name=name or f"mailbox:{parsed.safe()}", move_to=move_to,
                           other_to=other_to, delete_handled=delete_handled, password_env=env_password)
    setup_logging()
    try:
        watcher = mailbox_watcher(engine, secret_of(engine, settings), acc, config, settings.raw_message_max_bytes)
    except MailboxUrlError as e:
        _error(str(e))
        return 2
    if once:
        imap_error, pop3_error = _mailbox_errors()
        try:
            t = watcher.run_once()
        except (OSError, imap_error, pop3_error) as e:
            _error(f"{parsed.safe()}: {e}")
            return 1
        print(f"{t.messages:,} messages: {t.bounces:,} with bounces ({t.recorded:,} events recorded), "
              f"{t.left:,} left in place")
        return 0
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    watcher.start()
    print(f"watching {parsed.safe()} (Ctrl+C stops)", flush=True)
    stop.wait()
    watcher.stop()
    return 0


def _mailbox_errors() -> tuple[type[Exception], type[Exception]]:
    import poplib

    from imapclient.exceptions import IMAPClientError

    return IMAPClientError, poplib.error_proto
