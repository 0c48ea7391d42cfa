"""Provider webhook throughput: SendGrid-style signed batches of 1,000 events over HTTP.

Each batch is a JSON array of SendGrid events (delivered, open, some clicks) carrying the
sender's ``mailtally_id``, signed with ECDSA as SendGrid signs it, posted one after another to a
real ``mailtally serve`` on SQLite. Target (BRIEF.md): >= 20,000 events/s. References, measured
in the same run on copies of the same database:

1. the same events as NDJSON batches of 1,000 through ``POST /v1/events`` on a second server;
2. the webhook path in-process (verify, parse, find the sends, write, commit; no HTTP), with
   the writer's share timed apart: ``write_events`` and the commit alone on the very Events the
   webhook path hands it, the floor this path cannot go under without a faster writer;
3. the webhooks again with ``serve --workers 2`` and four requests in flight, as SendGrid posts
   (``BENCH_WORKERS``, ``BENCH_IN_FLIGHT``):
   one request's verifying and parsing then overlaps another's write;
4. 10,000 bounces and deferrals without our id, each diagnostic naming its recipient (found by
   the recipient's latest send; the engine's verdict remembered per distinct diagnostic).

Each over HTTP both by the clock and per CPU second of the server process (on a shared, loaded
machine the clock also counts other programs' turns). Prints figures; asserts nothing.
"""
from __future__ import annotations

import base64
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mailtally.events import Event
from mailtally.store import catalog, migrate
from mailtally.store import webhooks as store
from mailtally.store.accounts import create_account, create_token
from mailtally.store.db import open_engine, writing
from mailtally.store.writer import write_events
from mailtally.verp import SendRef, token
from mailtally.vocab import EventType, Scope

N_CONTACTS = int(os.environ.get("BENCH_CONTACTS", "30000"))
BATCH = 1000
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))  # the concurrent run's server processes
IN_FLIGHT = int(os.environ.get("BENCH_IN_FLIGHT", "4"))  # and its requests at a time
SECRET = "bench-secret"
T0 = 1_709_280_000


def setup(url: str, public_key: str) -> tuple[int, str, str, list[tuple[str, str, str]], str]:
    """An account, one activity sent to every contact, and a SendGrid endpoint."""
    engine = open_engine(url)
    migrate.upgrade(engine)
    with writing(engine) as conn:
        account = create_account(conn, f"bench-{uuid.uuid4().hex[:6]}")
        api_token = create_token(conn, account, frozenset(s.value for s in Scope))
        campaign = catalog.create_campaign(conn, account, "bench")
        activity = catalog.create_activity(conn, account, campaign.id)
        catalog.put_links(conn, account, activity.id, [{"url_id": "1", "url": "https://shop.example/sale",
                                                        "link_tag": None}])
        emails = [f"u{i}@bench.example" for i in range(N_CONTACTS)]
        ids = catalog.contacts_for_emails(conn, account, emails)
        for i in range(0, N_CONTACTS, 10_000):
            write_events(conn, account, [Event(EventType.SEND, activity.id, T0 * 1000, ids[e])
                                         for e in emails[i : i + 10_000]])
        nums = dict(conn.exec_driver_sql("SELECT id, num_id FROM contacts WHERE account_id = ?", (account,)).all())
        endpoint = store.create_endpoint(conn, account, "sendgrid", public_key, {})
    engine.dispose()
    people = [(e, ids[e], token(SECRET.encode(), SendRef(account, activity.num_id, int(nums[ids[e]]))))
              for e in emails]
    return account, activity.id, endpoint.id, people, api_token


def sendgrid_events(people: list[tuple[str, str, str]], rng: random.Random) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, (email, _, mt_id) in enumerate(people):
        common = {"email": email, "smtp-id": f"<{mt_id}@bench.example>", "category": ["bench"],
                  "sg_message_id": f"bench.{i}.filter0001", "mailtally_id": mt_id}
        out.append({**common, "event": "delivered", "timestamp": T0 + 10, "sg_event_id": f"d{i}",
                    "response": "250 OK", "ip": "168.1.1.1"})
        out.append({**common, "event": "open", "timestamp": T0 + 60, "sg_event_id": f"o{i}",
                    "useragent": "Mozilla/5.0", "ip": "192.0.2.1", "sg_machine_open": rng.random() < 0.3})
        if rng.random() < 0.2:
            out.append({**common, "event": "click", "timestamp": T0 + 90, "sg_event_id": f"c{i}",
                        "useragent": "Mozilla/5.0", "url": "https://shop.example/sale"})
    return out


def bounce_events(people: list[tuple[str, str, str]], n: int) -> list[dict[str, Any]]:
    """Bounces and deferrals with no ``mailtally_id`` (found by the recipient's latest send), each
    diagnostic naming its recipient, as mail servers write them."""
    out: list[dict[str, Any]] = []
    for i, (email, _, _) in enumerate(people[:n]):
        if i % 2:
            out.append({"email": email, "event": "bounce", "timestamp": T0 + 120, "sg_event_id": f"b{i}",
                        "type": "bounce", "status": "5.1.1", "reason": f"550 5.1.1 <{email}>: Recipient address "
                        "rejected: User unknown in virtual mailbox table"})
        else:
            out.append({"email": email, "event": "deferred", "timestamp": T0 + 120, "sg_event_id": f"f{i}",
                        "attempt": "1", "response": f"451 4.7.1 <{email}>: Recipient address rejected: Greylisted, "
                        "see http://postgrey.schweikert.ch/help/example.html"})
    return out


def native_events(activity: str, people: list[tuple[str, str, str]], events: list[dict[str, Any]]) -> list[bytes]:
    """The same events as ``POST /v1/events`` NDJSON, batch for batch."""
    contact = {email: cid for email, cid, _ in people}
    kinds = {"delivered": "delivery", "open": "open", "click": "click"}
    bodies = []
    for i in range(0, len(events), BATCH):
        bodies.append(b"\n".join(orjson.dumps({
            "type": kinds[e["event"]], "activity_id": activity, "contact_id": contact[e["email"]],
            "occurred_at": e["timestamp"] * 1000, "url_id": "1" if e["event"] == "click" else None,
            "idempotency_key": e["sg_event_id"],
        }) for e in events[i : i + BATCH]))
    return bodies


def free_port() -> int:
    """A fixed port may be another process's on a shared machine: its answers would be measured."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(url: str, port: int, workers: int = 1) -> subprocess.Popen[bytes]:
    env = {**os.environ, "MAILTALLY_DATABASE_URL": url, "MAILTALLY_SECRET": SECRET}
    proc = subprocess.Popen([sys.executable, "-m", "mailtally", "serve", "--port", str(port),
                             "--workers", str(workers)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
            return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("mailtally serve did not start")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time so far of a process and its children (the workers) (Linux /proc)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def run(url: str, posts: list[tuple[str, bytes, dict[str, str]]], workers: int = 1,
        concurrency: int = 1) -> tuple[float, float]:
    """Post the requests to a fresh server, ``concurrency`` at a time; the clock's and the server's CPU seconds."""
    port = free_port()
    proc = serve(url, port, workers)
    clients = [httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) for _ in range(concurrency)]
    try:
        for client in clients:  # connections open before the clock starts
            client.get("/healthz")

        def post_share(k: int) -> None:
            for path, body, headers in posts[k::concurrency]:
                r = clients[k].post(path, content=body, headers=headers)
                r.raise_for_status()

        cpu, t = cpu_seconds(proc.pid), time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(post_share, range(concurrency)))
        return time.perf_counter() - t, cpu_seconds(proc.pid) - cpu
    finally:
        for client in clients:
            client.close()
        proc.terminate()
        proc.wait(10)


def in_process(url: str, endpoint_id: str, posts: list[tuple[str, bytes, dict[str, str]]]) -> dict[str, float]:
    """The route's work without HTTP, one transaction a request, as ``api/hooks.py`` does it (the
    collector paused alike): seconds by the clock and of CPU, in all and in the writer alone
    (``write_events`` and the commit)."""
    from mailtally.api.hooks import gc_paused
    from mailtally.config import Settings
    from mailtally.ingest.webhooks import recording, sendgrid
    from mailtally.ingest.webhooks.base import HookRequest

    engine = open_engine(url)
    settings = Settings()
    real_write = recording.write_events
    writer = [0.0, 0.0]

    def timed_write(*args: Any, **kwargs: Any) -> Any:
        t, c = time.perf_counter(), time.thread_time()
        try:
            return real_write(*args, **kwargs)
        finally:
            writer[0] += time.perf_counter() - t
            writer[1] += time.thread_time() - c

    recording.write_events = timed_write  # type: ignore[assignment]
    try:
        t, cpu = time.perf_counter(), time.thread_time()
        for _, body, headers in posts:
            with gc_paused():
                with engine.connect() as conn:
                    endpoint = store.endpoint_by_id(conn, endpoint_id)
                assert endpoint is not None
                req = HookRequest(endpoint, body, {k.lower(): v for k, v in headers.items()}, settings, time.time())
                delivery = sendgrid.receive(req)
                assert delivery.replay_token is not None
                with writing(engine) as conn:
                    store.remember_token(conn, endpoint, delivery.replay_token, delivery.replay_window_ms)
                    recording.record(conn, endpoint.account_id, SECRET.encode(), "sendgrid", delivery.events)
                    c0, c1 = time.perf_counter(), time.thread_time()
                writer[0] += time.perf_counter() - c0  # the commit, at the block's end
                writer[1] += time.thread_time() - c1
                del delivery, req
        return {"clock": time.perf_counter() - t, "cpu": time.thread_time() - cpu,
                "writer_clock": writer[0], "writer_cpu": writer[1]}
    finally:
        recording.write_events = real_write  # type: ignore[assignment]
        engine.dispose()


def main() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    public = base64.b64encode(key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
    with tempfile.TemporaryDirectory() as tmp:
        dbs = [Path(tmp) / name for name in ("hooks.db", "native.db", "inproc.db", "hooks2.db", "bounces.db")]
        urls = [f"sqlite:///{db}" for db in dbs]
        _, activity, endpoint_id, people, api_token = setup(urls[0], public)
        for db in dbs[1:]:  # the same account, sends, endpoint and token in each
            shutil.copy(dbs[0], db)
        events = sendgrid_events(people, random.Random(1))

        ts = str(int(time.time()))

        def signed_batches(events: list[dict[str, Any]]) -> list[tuple[str, bytes, dict[str, str]]]:
            out = []
            for i in range(0, len(events), BATCH):
                body = orjson.dumps(events[i : i + BATCH])
                sig = base64.b64encode(key.sign(ts.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()
                out.append((f"/hooks/sendgrid/{endpoint_id}", body, {
                    "Content-Type": "application/json", "X-Twilio-Email-Event-Webhook-Signature": sig,
                    "X-Twilio-Email-Event-Webhook-Timestamp": ts}))
            return out

        signed = signed_batches(events)
        bounces = bounce_events(people, min(10_000, len(people)))
        auth = {"Authorization": f"Bearer {api_token}", "Content-Type": "application/x-ndjson"}
        native = [("/v1/events", body, auth) for body in native_events(activity, people, events)]

        hook_s, hook_cpu = run(urls[0], signed)
        ref_s, ref_cpu = run(urls[1], native)
        local = in_process(urls[2], endpoint_id, signed)
        par_s, par_cpu = run(urls[3], signed, workers=WORKERS, concurrency=IN_FLIGHT)
        bounce_s, bounce_cpu = run(urls[4], signed_batches(bounces))
    n = len(events)
    hook, ref = n / hook_s, n / ref_s
    print(f"webhooks  : {n:,} SendGrid events, signed batches of {BATCH:,} over HTTP -> {hook:,.0f} events/s "
          f"by the clock, {n / hook_cpu:,.0f} per server CPU second  (target >= 20,000)")
    print(f"reference : the same events as NDJSON batches of {BATCH:,} through POST /v1/events -> "
          f"{ref:,.0f} events/s by the clock, {n / ref_cpu:,.0f} per server CPU second")
    print(f"in-process: the webhook path without HTTP -> {n / local['clock']:,.0f} events/s by the clock, "
          f"{n / local['cpu']:,.0f} per CPU second; the writer alone (write_events + commit on the same "
          f"Events) -> {n / local['writer_clock']:,.0f} by the clock, {n / local['writer_cpu']:,.0f} per CPU second "
          f"({local['writer_cpu'] / local['cpu']:.0%} of the path's CPU)")
    print(f"webhooks  : the same, serve --workers {WORKERS} and {IN_FLIGHT} requests at a time (as SendGrid posts) -> "
          f"{n / par_s:,.0f} events/s by the clock, {n / par_cpu:,.0f} per server CPU second")
    print(f"webhooks  : {len(bounces):,} bounces and deferrals without our id, each diagnostic naming its "
          f"recipient -> {len(bounces) / bounce_s:,.0f} events/s by the clock, "
          f"{len(bounces) / bounce_cpu:,.0f} per server CPU second")
    print(f"ratio     : webhooks / POST /v1/events = {hook / ref:.2f} by the clock, {ref_cpu / hook_cpu:.2f} by CPU; "
          f"in-process path / writer alone = {local['writer_cpu'] / local['cpu']:.2f} by CPU")


if __name__ == "__main__":
    main()
