"""Small writes between big ones (issue 9, item 6): bounce messages posted one at a time to
``mailtally serve --workers 2`` on SQLite, alone and then while another client streams event
batches as fast as the server takes them. Prints the bounce rate and latencies of each phase and
the ratio of the second to the first; asserts nothing.

Before the write gate, bounces alone ran at 332/s and fell to 1-1.5/s (median 1-3 s) under
event traffic: the busy handler let the batches keep SQLite's lock.
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import orjson
from ingest import BATCH, Setup, realistic, wait_until_serving

PHASE_SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
PORT = 18771

DSN = """Return-Path: <>
From: MAILER-DAEMON@mx.remote.example
To: bounces@sender.example.com
Subject: Undelivered Mail Returned to Sender
Message-Id: <{n}.bench@mx.remote.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

<u{n}@bench.example>: host mx said: 550 5.1.1 User unknown

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.remote.example

Final-Recipient: rfc822; u{n}@bench.example
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 User unknown

--B--
"""


def bounces_for(client: httpx.Client, seconds: float, start: int) -> list[float]:
    """Post bounces one after another for ``seconds``; the latency of each."""
    latencies: list[float] = []
    end = time.monotonic() + seconds
    n = start
    while time.monotonic() < end:
        t = time.perf_counter()
        client.post("/v1/bounces", content=DSN.format(n=n).encode(),
                    headers={"Content-Type": "message/rfc822"}).raise_for_status()
        latencies.append(time.perf_counter() - t)
        n += 1
    return latencies


def summary(label: str, latencies: list[float], seconds: float) -> float:
    rate = len(latencies) / seconds
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    print(f"{label:<42}{rate:>8,.0f} bounces/s   median {statistics.median(latencies) * 1000:6.1f} ms"
          f"   p99 {q[98] * 1000:7.1f} ms", flush=True)
    return rate


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'contention.db'}"
        s = Setup(url)
        events = realistic(s.activity, s.contacts, random.Random(3))
        bodies = [b"\n".join(orjson.dumps({
            "type": e.type.value, "activity_id": e.activity_id, "contact_id": e.contact_id,
            "occurred_at": e.occurred_at, "device_type": e.device_type.value if e.device_type else None,
            "url_id": e.url_id, "bounce_code": e.bounce_code.value if e.bounce_code else None,
        }) for e in events[i:i + BATCH]) for i in range(0, len(events), BATCH)]
        s.engine.dispose()
        env = {**os.environ, "MAILTALLY_DATABASE_URL": url}
        proc = subprocess.Popen([sys.executable, "-m", "mailtally", "serve", "--workers", "2", "--port", str(PORT)],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        headers = {"Authorization": f"Bearer {s.token}"}
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{PORT}", timeout=120, headers=headers) as c:
                wait_until_serving(c, proc)
                alone = summary("bounces alone", bounces_for(c, PHASE_SECONDS, 0), PHASE_SECONDS)

                stop = threading.Event()
                streamed = [0]

                def stream() -> None:
                    with httpx.Client(base_url=c.base_url, timeout=120, headers={
                            **headers, "Content-Type": "application/x-ndjson"}) as ev:
                        i = 0
                        while not stop.is_set():
                            r = ev.post("/v1/events", content=bodies[i % len(bodies)])
                            if r.status_code != 200:
                                raise RuntimeError(f"an event batch was refused: {r.status_code} {r.text[:300]}")
                            streamed[0] += BATCH
                            i += 1

                streamer = threading.Thread(target=stream)
                streamer.start()
                time.sleep(1)  # the batches are flowing
                t = time.monotonic()
                busy = summary(f"bounces while {BATCH:,}-event batches stream",
                               bounces_for(c, PHASE_SECONDS, 1_000_000), PHASE_SECONDS)
                stop.set()
                streamer.join()
                print(f"{'event batches meanwhile':<42}{streamed[0] / (time.monotonic() - t):>8,.0f} events/s")
                print(f"under event traffic the bounces ran at {busy / alone:.2f}x their rate alone")
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
