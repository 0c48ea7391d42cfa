"""The SMTP receiver (aiosmtpd): speaks SMTP around `mailtally.ingest.smtp`, nothing more.

A message is answered 250 only once the transaction that recorded it has committed; when
the store fails the answer is 451, so the sending MTA keeps the message and retries.
Messages arriving together are committed together (`store.group_commit`: one transaction
per group, a single writer thread, one set-based store call per group).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import Engine

from ..ingest.bounce_messages import Ingested
from ..ingest.smtp import Recipients, Refusal, Target, receive_many
from ..store import sources
from ..store.db import writing
from ..store.group_commit import GroupCommitter
from ..store.raw_messages import MAX_STORED_BYTES

log = logging.getLogger("mailtally.sources.smtp")

BATCH = 64  # messages per transaction at most
GATHER_SECONDS = 0.02  # the first message of a group waits this long for others


@dataclass(frozen=True, slots=True)
class SmtpOptions:
    host: str = "127.0.0.1"
    port: int = 2525
    hostname: str | None = None  # the name in the greeting; the machine's name by default
    max_message_bytes: int = 10 * 1024 * 1024
    max_recipients: int = 100
    max_connections: int = 200
    session_seconds: float = 600.0  # a whole session, however busy
    idle_seconds: float = 60.0  # between two commands
    tls_cert: str | None = None  # STARTTLS is offered when a certificate is configured
    tls_key: str | None = None
    name: str = "smtp"  # the source's name in `mailtally sources`
    keep_bytes: int = MAX_STORED_BYTES  # of each raw message (Settings.raw_message_max_bytes)


@dataclass(slots=True)
class _Job:
    targets: list[Target]
    raw: bytes
    results: list[Ingested] | None = None  # set once its group's transaction has committed


class Committer:
    """Received messages written a group per transaction (`store.group_commit`): the messages
    that arrive while one group commits are the next group, staged into the store by one
    set-based call (`ingest.smtp.receive_many`). A message's ``submit`` returns only once its
    group has committed; a group that fails is written again one message at a time, so one bad
    message refuses only itself."""

    def __init__(self, engine: Engine, secret: bytes, name: str = "smtp", keep_bytes: int = MAX_STORED_BYTES,
                 window: float = GATHER_SECONDS, sessions: Callable[[], int] | None = None) -> None:
        self.engine, self.secret, self.name, self.keep_bytes = engine, secret, name, keep_bytes
        # A group is written as soon as every open session waits for it (no other message can be
        # on its way), else at the window's end: eight clients make groups of eight, not of
        # whoever came first, and a lone client waits for nobody.
        self.sessions = sessions or (lambda: 1)
        self.waiting = 0
        self.group: GroupCommitter[_Job] = GroupCommitter(self._write_group, window, max_items=BATCH,
                                                          ready=lambda: self.waiting >= self.sessions())

    async def submit(self, targets: list[Target], raw: bytes) -> list[Ingested]:
        """What the message was recorded as, once durable; raises when it could not be stored."""
        job = _Job(targets, raw)
        self.waiting += 1
        try:
            await self.group.submit(job)
        finally:
            self.waiting -= 1
        if job.results is None:
            raise RuntimeError("could not record a received message")
        return job.results

    def close(self) -> None:
        self.group.close()

    def _write_group(self, batch: list[_Job]) -> None:  # on the group committer's writer thread
        try:
            self._write(batch)
        except Exception:
            if len(batch) == 1:
                self._fail(batch[0])
                return
            for job in batch:  # one bad message must not refuse the others
                try:
                    self._write([job])
                except Exception:
                    self._fail(job)

    def _write(self, batch: list[_Job]) -> None:
        with writing(self.engine) as conn:
            results = receive_many(conn, self.secret, [(job.targets, job.raw) for job in batch], self.keep_bytes)
            sources.record_success(conn, self.name, "smtp", handled=len(batch), backlog=self.backlog)
        for job, result in zip(batch, results, strict=True):
            job.results = result

    @property
    def backlog(self) -> int:
        return self.group.pending

    def _fail(self, job: _Job) -> None:
        error = "could not record a received message"
        log.exception("%s: %s", self.name, error)
        try:
            sources.record_error(self.engine, self.name, "smtp", error, backlog=self.backlog)
        except Exception:  # the store is gone: the 451 is what matters
            log.debug("%s: could not record the error", self.name, exc_info=True)


class Handler:
    def __init__(self, recipients: Recipients, committer: Committer, options: SmtpOptions) -> None:
        self.recipients, self.committer, self.options = recipients, committer, options

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if len(envelope.rcpt_tos) >= self.options.max_recipients:
            return "452 4.5.3 Too many recipients"
        verdict = self.recipients.judge(address)
        if isinstance(verdict, Refusal):
            log.info("%s: refused RCPT %r from %s", self.options.name, address[:320], session.peer)
            return verdict.reply
        envelope.rcpt_tos.append(address)
        targets: list[Target] = getattr(envelope, "mailtally_targets", [])
        targets.append(verdict)
        envelope.mailtally_targets = targets  # type: ignore[attr-defined]
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        targets: list[Target] = getattr(envelope, "mailtally_targets", [])
        try:
            results = await self.committer.submit(targets, raw)
        except Exception:
            return "451 4.3.0 Temporarily unable to store the message; try again later"
        records = sum(len(r.outcomes) for r in results)
        recorded = sum(r.recorded for r in results)
        log.info("%s: message %s from <%s> for %d recipient(s): %d bounce record(s), %d event(s) recorded",
                 self.options.name, results[0].message_key if results else "-", (envelope.mail_from or "").strip("<>"),
                 len(targets), records, recorded)
        return "250 2.0.0 Ok: stored"


class _BoundedSMTP(SMTP):
    """aiosmtpd's SMTP with a bound on concurrent connections and on a whole session's length."""

    def __init__(self, handler: Any, *, bounds: _Bounds, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._bounds = bounds
        self._refused = False
        self._counted = False
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self.transport is None
        if first and self._bounds.active >= self._bounds.limit:
            self._refused = True
            transport.write(b"421 4.3.2 Too many connections; try again later\r\n")  # type: ignore[attr-defined]
            transport.close()
            return
        super().connection_made(transport)
        if first:
            self._bounds.active += 1
            self._counted = True
            self._deadline = self.loop.call_later(self._bounds.session_seconds, self._session_over)

    def _session_over(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, error: Exception | None) -> None:
        if self._refused:
            return
        if self._counted:
            self._bounds.active -= 1
            self._counted = False
        if self._deadline is not None:
            self._deadline.cancel()
        super().connection_lost(error)


@dataclass(slots=True)
class _Bounds:
    limit: int
    session_seconds: float
    active: int = 0


class _Controller(Controller):
    def __init__(self, handler: Handler, options: SmtpOptions, tls: ssl.SSLContext | None) -> None:
        self.options, self.tls = options, tls
        self.bounds = _Bounds(options.max_connections, options.session_seconds)
        super().__init__(handler, hostname=options.host, port=options.port, ready_timeout=10)

    def factory(self) -> SMTP:
        return _BoundedSMTP(
            self.handler, bounds=self.bounds, data_size_limit=self.options.max_message_bytes,
            enable_SMTPUTF8=True, hostname=self.options.hostname, ident="mailtally bounce receiver",
            tls_context=self.tls, timeout=self.options.idle_seconds, command_call_limit=200,
        )


def tls_context(cert: str, key: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


class SmtpReceiver:
    """The listener and its writer; ``start()`` returns once it accepts connections."""

    def __init__(self, engine: Engine, secret: bytes, recipients: Recipients, options: SmtpOptions) -> None:
        self.options = options
        self.committer = Committer(engine, secret, options.name, options.keep_bytes)
        tls = tls_context(options.tls_cert, options.tls_key) if options.tls_cert else None
        self.controller = _Controller(Handler(recipients, self.committer, options), options, tls)
        bounds = self.controller.bounds
        self.committer.sessions = lambda: bounds.active

    def start(self) -> SmtpReceiver:
        sources.register(self.committer.engine, self.options.name, "smtp")
        self.controller.start()
        log.info("%s: listening on %s:%d", self.options.name, self.options.host, self.options.port)
        return self

    def stop(self) -> None:
        self.controller.stop()
        self.committer.close()

    def __enter__(self) -> SmtpReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
