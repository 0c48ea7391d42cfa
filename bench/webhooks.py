"""Provider webhook throughput: SendGrid-style signed batches of 1,000 events over HTTP.

Each batch is a JSON array of SendGrid events (delivered, open, some clicks) carrying the
sender's ``mailtally_id``, signed with ECDSA as SendGrid signs it, posted to a real
``mailtally serve`` on SQLite. The reference, measured in the same run on an identical
database: the same events as NDJSON batches of 1,000 through ``POST /v1/events``. Target
(BRIEF.md): >= 20,000 events/s. Prints figures; asserts nothing.
"""

from __future__ import annotations

import base64
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
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


def serve(url: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "MAILTALLY_DATABASE_URL": url, "MAILTALLY_SECRET": SECRET}
    proc = subprocess.Popen([sys.executable, "-m", "mailtally", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
            return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("mailtally serve did not start")


def run(url: str, port: int, posts: list[tuple[str, bytes, dict[str, str]]]) -> float:
    proc = serve(url, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            t = time.perf_counter()
            for path, body, headers in posts:
                r = client.post(path, content=body, headers=headers)
                r.raise_for_status()
            return time.perf_counter() - t
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    public = base64.b64encode(key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
    with tempfile.TemporaryDirectory() as tmp:
        hook_db, ref_db = f"sqlite:///{Path(tmp) / 'hooks.db'}", f"sqlite:///{Path(tmp) / 'native.db'}"
        _, _, endpoint_id, people, _ = setup(hook_db, public)
        _, ref_activity, _, ref_people, api_token = setup(ref_db, public)
        events = sendgrid_events(people, random.Random(1))
        ref_events = sendgrid_events(ref_people, random.Random(1))

        ts = str(int(time.time()))
        signed = []
        for i in range(0, len(events), BATCH):
            body = orjson.dumps(events[i : i + BATCH])
            sig = base64.b64encode(key.sign(ts.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()
            signed.append((f"/hooks/sendgrid/{endpoint_id}", body, {
                "Content-Type": "application/json", "X-Twilio-Email-Event-Webhook-Signature": sig,
                "X-Twilio-Email-Event-Webhook-Timestamp": ts}))
        auth = {"Authorization": f"Bearer {api_token}", "Content-Type": "application/x-ndjson"}
        native = [("/v1/events", body, auth) for body in native_events(ref_activity, ref_people, ref_events)]

        hook_s = run(hook_db, 18766, signed)
        ref_s = run(ref_db, 18767, native)
    hook_rate, ref_rate = len(events) / hook_s, len(ref_events) / ref_s
    print(f"webhooks: {len(events):,} SendGrid events, signed batches of {BATCH:,} over HTTP -> "
          f"{hook_rate:,.0f} events/s  (target >= 20,000)")
    print(f"reference: the same events as NDJSON batches of {BATCH:,} through POST /v1/events -> "
          f"{ref_rate:,.0f} events/s")
    print(f"ratio   : webhooks / POST /v1/events = {hook_rate / ref_rate:.2f}")


if __name__ == "__main__":
    main()
