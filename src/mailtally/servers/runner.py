"""Every source a config declares, started together beside the API and stopped together."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

from sqlalchemy import Engine

from ..config import Settings
from ..ingest.smtp import Recipients
from ..store.accounts import UnknownAccount, account_id, instance_secret
from ..store.db import writing
from .config import ConfigError, SourcesConfig
from .smtp import SmtpReceiver

log = logging.getLogger("mailtally.sources")


class Source(Protocol):
    def start(self) -> object: ...
    def stop(self) -> None: ...


def secret_of(engine: Engine, settings: Settings) -> bytes:
    if settings.secret:
        return settings.secret.encode()
    with writing(engine) as conn:
        return instance_secret(conn).encode()


def account_ids(engine: Engine, names: set[str]) -> dict[str, int]:
    out = {}
    with engine.connect() as conn:
        for name in sorted(names):
            try:
                out[name] = account_id(conn, name)
            except UnknownAccount:
                raise ConfigError(f"no account named {name!r}; create it with: mailtally accounts create {name}") \
                    from None
    return out


class Loop:
    """A poller's thread: calls ``step`` until stopped; ``step`` waits on the event it is given."""

    def __init__(self, name: str, step: Callable[[threading.Event], None]) -> None:
        self.name, self.step = name, step
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        while not self.stopping.is_set():
            self.step(self.stopping)

    def start(self) -> Loop:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(15)


def build(engine: Engine, settings: Settings, config: SourcesConfig) -> list[Source]:
    """The sources, not yet started; an unknown account or a bad option is a `ConfigError` here."""
    names = {*config.feedback.values(), *(m.account for m in config.mailboxes), *(x.account for x in config.logs)}
    ids = account_ids(engine, names)
    secret = secret_of(engine, settings)
    out: list[Source] = []
    if config.smtp is not None:
        # The domain the sending toolkit puts in VERP return paths (MAILTALLY_BOUNCE_DOMAIN) is always ours.
        domains = (*(config.bounce_domains or settings.bounce_domains),
                   *((settings.bounce_domain,) if settings.bounce_domain else ()))
        if not domains and not config.feedback:
            raise ConfigError("the SMTP receiver accepts nothing: set bounce_domains (or MAILTALLY_BOUNCE_DOMAINS) "
                              "or [smtp.feedback] addresses")
        recipients = Recipients.of(secret, domains, {a: ids[n] for a, n in config.feedback.items()})
        out.append(SmtpReceiver(engine, secret, recipients, config.smtp))
    for box in config.mailboxes:
        from .mailbox import mailbox_watcher

        out.append(mailbox_watcher(engine, secret, ids[box.account], box, settings.raw_message_max_bytes))
    for lg in config.logs:
        from .logs import log_follower

        out.append(log_follower(engine, secret, ids[lg.account], lg))
    return out


class Running:
    def __init__(self, sources: list[Source]) -> None:
        self.sources = sources

    def __enter__(self) -> Running:
        started: list[Source] = []
        try:
            for s in self.sources:
                s.start()
                started.append(s)
        except BaseException:
            for s in reversed(started):
                s.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for s in reversed(self.sources):
            try:
                s.stop()
            except Exception:
                log.exception("stopping a source")
