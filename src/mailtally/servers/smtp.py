"""The SMTP receiver (aiosmtpd): speaks SMTP around `mailtally.ingest.smtp`, nothing more.

A message is answered 250 only once the transaction that recorded it has committed; when
the store fails the answer is 451, so the sending MTA keeps the message and retries.
Messages arriving together are committed together (one transaction per batch, a single
writer thread), which is what lets eight clients at once be fast on SQLite.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import ssl
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import Engine

from ..ingest.bounce_messages import Ingested
from ..ingest.smtp import Recipients, Refusal, Target, receive
from ..store import sources
from ..store.db import writing
from ..store.raw_messages import MAX_STORED_BYTES

log = logging.getLogger("mailtally.sources.smtp")

BATCH = 64


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
    future: Future[list[Ingested]]


class Committer:
    """One writer thread: takes received messages, records a batch per transaction, commits."""

    def __init__(self, engine: Engine, secret: bytes, name: str = "smtp", keep_bytes: int = MAX_STORED_BYTES) -> None:
        self.engine, self.secret, self.name, self.keep_bytes = engine, secret, name, keep_bytes
        self.jobs: queue.Queue[_Job | None] = queue.Queue()
        self.thread = threading.Thread(target=self._run, name=f"{name}-writer", daemon=True)
        self.thread.start()

    def submit(self, targets: list[Target], raw: bytes) -> Future[list[Ingested]]:
        fut: Future[list[Ingested]] = Future()
        self.jobs.put(_Job(targets, raw, fut))
        return fut

    def close(self) -> None:
        self.jobs.put(None)
        self.thread.join(30)

    def _run(self) -> None:
        stop = False
        while not stop:
            first = self.jobs.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < BATCH:
                try:
                    job = self.jobs.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                batch.append(job)
            self._commit(batch)

    def _commit(self, batch: list[_Job]) -> None:
        try:
            results = self._write(batch)
        except Exception:
            if len(batch) == 1:
                self._fail(batch[0])
                return
            for job in batch:  # one bad message must not refuse the others
                try:
                    results = self._write([job])
                except Exception:
                    self._fail(job)
                else:
                    job.future.set_result(results[0])
            return
        for job, result in zip(batch, results, strict=True):
            job.future.set_result(result)

    def _write(self, batch: list[_Job]) -> list[list[Ingested]]:
        with writing(self.engine) as conn:
            results = [receive(conn, self.secret, job.targets, job.raw, self.keep_bytes) for job in batch]
            sources.record_success(conn, self.name, "smtp", handled=len(batch), backlog=self.jobs.qsize())
        return results

    def _fail(self, job: _Job) -> None:
        error = "could not record a received message"
        log.exception("%s: %s", self.name, error)
        job.future.set_exception(RuntimeError(error))
        sources.record_error(self.engine, self.name, "smtp", error, backlog=self.jobs.qsize())


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
            results = await asyncio.wrap_future(self.committer.submit(targets, raw))
        except Exception:
            return "451 4.3.0 Temporarily unable to store the message; try again later"
        records = sum(len(r.outcomes) for r in results)
        recorded = sum(r.recorded for r in results)
        log.info("%s: message %s from <%s> for %d recipient(s): %d bounce record(s), %d event(s) recorded",
                 self.options.name, results[0].message_key if results else "-", envelope.mail_from,
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
