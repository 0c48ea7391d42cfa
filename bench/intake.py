"""Bounce intake straight from the mail system: the SMTP receiver and Postfix log ingestion.

1. SMTP: the shared corpus's bounces (read in place from ../shared) delivered by 8 concurrent
   local SMTP clients (threads of a process of their own, like a real MTA) to VERP addresses of
   real sends; a message counts once it was answered 250, i.e. its raw bytes and its events (or
   its unmatched record) are committed. Target: >= 500 messages/s. References, same run: a bare
   aiosmtpd server that accepts and discards each message (the floor of SMTP), the bounce
   engine alone in-process (the ceiling of parsing), and `ingest_message` one transaction per
   message (the receiver's path before group writes). By the clock and by the receiver
   process's CPU time.
2. Postfix logs: a synthetic log of 10,000 messages (50,000 lines; 5% bounced, 5% deferred,
   the rest sent) for an account that sent to every recipient. Target: >= 50,000 lines/s.
   Reference, same run: only matching each line against the Postfix line pattern (the floor
   of reading the lines at all), best of three. Both by the clock and by this process's CPU
   time: on a shared, loaded machine the clock also counts other programs' turns.

On SQLite files in a temporary folder. Prints figures; asserts nothing.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import re
import smtplib
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from mailtally.bounces import parse
from mailtally.events import Event
from mailtally.ingest.bounce_messages import ingest_message
from mailtally.ingest.mta_logs import _POSTFIX
from mailtally.ingest.smtp import Recipients
from mailtally.servers.logs import LogFile
from mailtally.servers.smtp import SmtpOptions, SmtpReceiver
from mailtally.store import catalog, migrate
from mailtally.store.accounts import create_account
from mailtally.store.db import open_engine, writing
from mailtally.store.writer import write_events
from mailtally.verp import SendRef, headers, return_path
from mailtally.vocab import EventType

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "bounces" / "emails"
CLIENTS = 8
_CRLF = re.compile(rb"\r\n|\r|\n")
SECRET = b"bench-secret"
DOMAIN = "bounces.bench.example"


def setup(db: Path, name: str, n_contacts: int) -> tuple[object, int, str, list[SendRef], list[str]]:
    engine = open_engine(f"sqlite:///{db}")
    migrate.upgrade(engine)
    with writing(engine) as conn:
        account = create_account(conn, name)
        campaign = catalog.create_campaign(conn, account, "bench")
        activity = catalog.create_activity(conn, account, campaign.id, subject="bench")
    emails = [f"r{i}@remote{i % 97}.example" for i in range(n_contacts)]
    t0 = 1_700_000_000_000
    for i in range(0, n_contacts, 10_000):
        with writing(engine) as conn:
            write_events(conn, account, [Event(EventType.SEND, activity.id, t0 + j, email=e)
                                         for j, e in enumerate(emails[i:i + 10_000], i)])
    refs = []
    with engine.connect() as conn:
        for e in emails[: min(n_contacts, 1000)]:
            c = catalog.contact_by_email(conn, account, e)
            refs.append(SendRef(account, activity.num_id, c.num_id))
    return engine, account, activity.id, refs, emails


def _clients(port: int, rcpts: list[str], messages: list[bytes], clients: int, out: Any) -> None:
    """In a process of its own (like a real MTA): ``clients`` threads, each one SMTP connection
    sending its share of the messages one after another; reports (answered 250, seconds)."""
    acked = [0] * clients

    def client(k: int) -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=120) as s:
            for i in range(k, len(messages), clients):
                s.sendmail("", [rcpts[i]], messages[i])
                acked[k] += 1

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put((sum(acked), time.perf_counter() - start))


def deliver(port: int, rcpts: list[str], messages: list[bytes]) -> tuple[int, float, float]:
    """Deliver through the clients' process; (messages answered 250, seconds, this process's CPU seconds)."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_clients, args=(port, rcpts, messages, CLIENTS, out))
    proc.start()
    cpu = time.process_time()
    acked, elapsed = out.get(timeout=600)
    used = time.process_time() - cpu
    proc.join()
    return acked, elapsed, used


class _Discard:
    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        return "250 2.0.0 Ok: discarded"


def smtp_bench(tmp: Path, n: int = 1200) -> None:
    files = sorted(CORPUS.glob("*.eml"))
    if not files:
        print(f"SMTP receiver: skipped, the corpus is missing at {CORPUS}")
        return
    # On the wire every line ends in CRLF (smtplib sends bytes as they are, and many corpus files end
    # their lines in LF alone: one endless line to the receiver), and is at most 998 bytes long (RFC 5321
    # 4.5.3.1.6); the few corpus files with longer lines could not have come over SMTP, so they are left out.
    wire = [_CRLF.sub(b"\r\n", f.read_bytes()) for f in files]
    corpus = [raw for raw in wire if max(len(line) for line in raw.split(b"\r\n")) <= 998]
    messages = [corpus[i % len(corpus)] + f"\r\nX-Bench-Copy: {i}\r\n".encode() for i in range(n)]
    # Appended after the body, the copy number makes each message distinct (so each is stored).

    # Reference 1, the floor of SMTP itself: a bare aiosmtpd server that accepts each message and
    # discards it, the same clients and messages.
    bare = Controller(_Discard(), hostname="127.0.0.1", port=_free_port())
    bare.start()
    try:
        bare_acked, bare_s, bare_cpu = deliver(bare.port, [f"x{i}@{DOMAIN}" for i in range(n)], messages)
    finally:
        bare.stop()

    # Reference 2, the ceiling of the bounce engine: the same messages through `bounces.parse`, in
    # this process, one thread, nothing stored.
    start, cpu = time.perf_counter(), time.process_time()
    parsed = sum(1 for raw in messages if parse(raw))
    engine_s, engine_cpu = time.perf_counter() - start, time.process_time() - cpu

    # Reference 3, what the receiver did before it wrote a group at a time: `ingest_message`, one
    # transaction per message, no SMTP.
    ref_engine, ref_account, _, ref_refs, _ = setup(tmp / "ref.db", "ref", 5000)
    ref_rcpts = [return_path(SECRET, ref_refs[i % len(ref_refs)], DOMAIN) for i in range(n)]
    start, cpu = time.perf_counter(), time.process_time()
    for raw, rcpt in zip(messages, ref_rcpts, strict=True):
        with writing(ref_engine) as conn:
            ingest_message(conn, ref_account, SECRET, raw, envelope_to=rcpt, source="smtp")
    one_s, one_cpu = time.perf_counter() - start, time.process_time() - cpu

    engine, account, _, refs, _ = setup(tmp / "smtp.db", "smtp", 5000)
    rcpts = [return_path(SECRET, refs[i % len(refs)], DOMAIN) for i in range(n)]
    rx = SmtpReceiver(engine, SECRET, Recipients.of(SECRET, [DOMAIN]), SmtpOptions(port=_free_port()))
    with rx:
        acked, elapsed, used = deliver(rx.options.port, rcpts, messages)
        groups = rx.committer.group.groups
    from sqlalchemy import func, select

    from mailtally.store.schema import events, raw_messages

    with engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(raw_messages)
                              .where(raw_messages.c.account_id == account)).scalar_one()
        counted = conn.execute(select(func.count()).select_from(events).where(
            events.c.account_id == account, events.c.type != "send")).scalar_one()
    rate, cpu_rate = acked / elapsed, acked / used  # CPU: this process's, i.e. the receiver's (the clients run apart)
    bare_rate, bare_cpu_rate = bare_acked / bare_s, bare_acked / bare_cpu
    engine_rate, engine_cpu_rate = n / engine_s, n / engine_cpu
    one_rate, one_cpu_rate = n / one_s, n / one_cpu
    print(f"SMTP receiver, {CLIENTS} clients in a process of their own, {acked:,} corpus bounces answered 250 "
          f"({len(corpus)} of {len(files)} files: the others have lines over SMTP's limit), {stored:,} stored, "
          f"{counted:,} events counted, {groups:,} transactions (load {os.getloadavg()[0]:.1f}): "
          f"{rate:,.0f} messages/s by the clock, {cpu_rate:,.0f} per CPU second of the receiver (target 500/s)")
    print(f"  reference, a bare aiosmtpd server that discards each message, same clients: {bare_rate:,.0f}/s, "
          f"{bare_cpu_rate:,.0f} per CPU second; ratio {rate / bare_rate:.2f}x by the clock, "
          f"{cpu_rate / bare_cpu_rate:.2f}x by CPU time")
    print(f"  reference, the bounce engine alone in-process (bounces.parse, {parsed:,} with records): "
          f"{engine_rate:,.0f}/s, {engine_cpu_rate:,.0f} per CPU second; ratio {rate / engine_rate:.2f}x by the clock, "
          f"{cpu_rate / engine_cpu_rate:.2f}x by CPU time")
    print(f"  reference, ingest_message one transaction per message, no SMTP (the receiver's old path): "
          f"{one_rate:,.0f}/s, {one_cpu_rate:,.0f} per CPU second; ratio {rate / one_rate:.2f}x by the clock, "
          f"{cpu_rate / one_cpu_rate:.2f}x by CPU time")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def postfix_log(emails: list[str], refs: list[SendRef], rng: random.Random) -> list[str]:
    lines = []
    for i, e in enumerate(emails):
        qid = f"{0x10000000 + i:X}A"
        sec = i // 50
        t = f"Mar  1 {10 + sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}"
        mid = headers(SECRET, refs[i % len(refs)], "sender.example")["Message-ID"] if i < len(refs) else \
            f"<{i}.bench@sender.example>"
        lines.append(f"{t} mx postfix/smtpd[1{i % 900}]: {qid}: client=app.example[192.0.2.9]")
        lines.append(f"{t} mx postfix/cleanup[2{i % 900}]: {qid}: message-id={mid}")
        lines.append(f"{t} mx postfix/qmgr[300]: {qid}: from=<news@sender.example>, size=4096, nrcpt=1 (queue active)")
        r = rng.random()
        relay = f"relay=mx.remote{i % 97}.example[203.0.113.{i % 250}]:25, delay=0.9, delays=0.1/0/0.3/0.5"
        if r < 0.05:
            lines.append(f"{t} mx postfix/smtp[4{i % 900}]: {qid}: to=<{e}>, {relay}, dsn=5.1.1, status=bounced "
                         f"(host mx.remote{i % 97}.example[203.0.113.{i % 250}] said: 550 5.1.1 <{e}>: Recipient "
                         f"address rejected: User unknown in virtual mailbox table (in reply to RCPT TO command))")
        elif r < 0.10:
            lines.append(f"{t} mx postfix/smtp[4{i % 900}]: {qid}: to=<{e}>, {relay}, dsn=4.2.2, status=deferred "
                         f"(host mx.remote{i % 97}.example[203.0.113.{i % 250}] said: 452 4.2.2 Mailbox full, try "
                         f"again later (in reply to RCPT TO command))")
        else:
            lines.append(f"{t} mx postfix/smtp[4{i % 900}]: {qid}: to=<{e}>, {relay}, dsn=2.0.0, status=sent "
                         f"(250 2.0.0 Ok: queued as 4Nq1FG0Rz8zJrP3)")
        lines.append(f"{t} mx postfix/qmgr[300]: {qid}: removed")
    return lines


def log_bench(tmp: Path) -> None:
    n = 10_000
    engine, account, _, refs, emails = setup(tmp / "logs.db", "logs", n)
    lines = postfix_log(emails, refs, random.Random(13))
    path = tmp / "mail.log"
    path.write_text("\n".join(lines) + "\n")

    # The reference is short: its best of three, by the clock and by this process's CPU time (on a
    # machine shared with other work the clock counts their time too; the CPU time counts only ours).
    ref_wall = ref_cpu = float("inf")
    for _ in range(3):
        start, cpu = time.perf_counter(), time.process_time()
        matched = 0
        with path.open("rb") as f:
            for raw in f:
                matched += _POSTFIX.match(raw.decode("utf-8", "replace")) is not None
        ref_wall = min(ref_wall, time.perf_counter() - start)
        ref_cpu = min(ref_cpu, time.process_time() - cpu)

    reader = LogFile(engine, SECRET, account, str(path), "bench-log")
    start, cpu = time.perf_counter(), time.process_time()
    totals = reader.run()
    elapsed, used = time.perf_counter() - start, time.process_time() - cpu
    rate, cpu_rate = totals.lines / elapsed, totals.lines / used
    ref_rate, ref_cpu_rate = len(lines) / ref_wall, len(lines) / ref_cpu
    print(f"Postfix log ingestion: {totals.lines:,} lines ({totals.bounces:,} bounces, {totals.deferrals:,} "
          f"deferrals, {totals.deliveries:,} deliveries, {totals.recorded:,} events recorded): {rate:,.0f} lines/s "
          f"by the clock, {cpu_rate:,.0f} lines per CPU second (target 50,000/s)")
    print(f"  reference, the same lines only matched against the Postfix line pattern: {ref_rate:,.0f} lines/s, "
          f"{ref_cpu_rate:,.0f} per CPU second; ratio {rate / ref_rate:.2f}x by the clock, "
          f"{cpu_rate / ref_cpu_rate:.2f}x by CPU time")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="mailtally-bench-intake-") as d:
        tmp = Path(d)
        smtp_bench(tmp)
        log_bench(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
