"""Benchmark of the dashboard's pages on the 1M-send activity of ``bench/reports.py``.

Builds that activity once (the same SQLite file as ``bench/reports.py``, reused), signs in as a
dashboard user and renders every page in-process through the ASGI app (routing, session check,
queries, template, response body): the server's side of a request, without the network.
Beside each page's p50/p99 it prints the ratio to a reference measured in the same run: the
v3 activity stats API call, the cheapest report there is, through the same client.

Target (issue 16): every page p99 < 100 ms. Beside the clock's p50 and p99 it prints the p99 of the
CPU time each request took (the server's own work, without waiting for a core on a shared machine).

    .venv/bin/python bench/dashboard.py [--db /tmp/x.db] [--sends 1000000] [--iterations 100] [--unsettled]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).parent))
from reports import build, percentiles

from mailtally.api.app import create_app
from mailtally.config import Settings
from mailtally.serving import settle_heap
from mailtally.store import migrate
from mailtally.store.accounts import create_token
from mailtally.store.db import open_engine, writing
from mailtally.store.schema import activities, contacts, events, recipients
from mailtally.store.users import create_user, get_user
from mailtally.vocab import Scope

LOGIN, PASSWORD = "bench@bench.example.com", "bench dashboard password"
TARGET_MS = 100.0


async def timed(client: httpx.AsyncClient, path: str, n: int, warmup: int = 3) -> tuple[float, float, float]:
    """(p50, p99) by the clock and p99 of the process's CPU time, in ms, over ``n`` renders.

    The CPU time is the server's own work for the request (every thread of this process: the
    page handler runs on the thread pool), without the waits of a machine shared with others."""
    for _ in range(warmup):
        r = await client.get(path)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
    samples, cpu = [], []
    for _ in range(n):
        t, c = time.perf_counter(), time.process_time()
        r = await client.get(path)
        samples.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        assert r.status_code == 200
    p50, p99 = percentiles(samples)
    return p50, p99, percentiles(cpu)[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", default="/tmp/mailtally-bench-reports.db")
    ap.add_argument("--sends", type=int, default=1_000_000)
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--unsettled", action="store_true",
                    help="skip the heap settling a server worker does at start (shows the collector's spikes)")
    args = ap.parse_args()

    url = f"sqlite:///{args.db}"
    engine = open_engine(url)
    migrate.upgrade(engine)
    account, _campaign, activity_id = build(engine, args.sends)
    with writing(engine) as conn:
        token = create_token(conn, account, frozenset({Scope.CAMPAIGN_DATA.value}), name="bench-dashboard")
        if get_user(conn, account, LOGIN) is None:
            create_user(conn, "bench-reports", LOGIN, PASSWORD)
        num = conn.execute(select(activities.c.num_id).where(activities.c.account_id == account,
                                                             activities.c.id == activity_id)).scalar_one()
        # Positions half-way down the longest lists, for pages deep in them.
        mid = args.sends // 2
        sent = conn.execute(select(recipients.c.sent_at, recipients.c.contact_num)
                            .where(recipients.c.account_id == account, recipients.c.activity_num == num)
                            .order_by(recipients.c.sent_at.desc(), recipients.c.contact_num.desc())
                            .offset(mid).limit(1)).one()
        n_bounces = conn.execute(select(events.c.idem).where(
            events.c.account_id == account, events.c.activity_num == num, events.c.type == "bounce")
            .order_by(events.c.occurred_at.desc(), events.c.idem.desc()).offset(10_000).limit(1)).scalar()
        bounce_at = conn.execute(select(events.c.occurred_at).where(
            events.c.account_id == account, events.c.activity_num == num, events.c.idem == n_bounces)).scalar()
        contact = conn.execute(select(contacts.c.id).where(contacts.c.account_id == account)
                               .order_by(contacts.c.num_id).offset(mid).limit(1)).scalar_one()

    asyncio.run(measure(url, args, activity_id, token, sent, (bounce_at, n_bounces), contact))


async def measure(url: str, args: argparse.Namespace, activity_id: str, token: str, sent: Any,
                  deep_bounce: tuple[int, int], contact: str) -> None:
    bounce_at, n_bounces = deep_bounce
    # The outbox worker off: it is no part of a page (and polls the database meanwhile).
    app = create_app(Settings(database_url=url, webhook_worker=False), run_migrations=False)
    if not args.unsettled:
        settle_heap()  # as each server worker does once its app is built (mailtally.serving.worker_app)
    # In-process, on one event loop: what the server does for a request (the sync page handlers
    # run on its thread pool as under uvicorn), without a socket or a client thread in the way.
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        form = await client.get("/ui/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
        signed = await client.post("/ui/login", data={"csrf": csrf, "email": LOGIN, "password": PASSWORD})
        assert signed.status_code == 303, signed.text[:300]

        n = args.iterations
        ref_path = f"/v3/reports/stats/email_campaign_activities/{activity_id}"
        client.headers["Authorization"] = f"Bearer {token}"
        ref = await timed(client, ref_path, n * 3)
        del client.headers["Authorization"]
        a = f"/ui/activities/{activity_id}"
        pages = [
            ("campaigns", "/ui/campaigns"),
            ("campaigns, searched and sorted by open rate", "/ui/campaigns?q=million&sort=open_rate&dir=desc"),
            ("activity (cards, chart, codes, reasons, links, devices)", a),
            ("contacts: sent, first page", f"{a}/contacts?list=sends"),
            ("contacts: sent, page at 50%", f"{a}/contacts?list=sends&after={sent.sent_at}.{sent.contact_num}"),
            ("contacts: delivered", f"{a}/contacts?list=delivered"),
            ("contacts: unique opens", f"{a}/contacts?list=opens"),
            ("contacts: did not open", f"{a}/contacts?list=did_not_open"),
            ("contacts: unique clicks", f"{a}/contacts?list=clicks"),
            ("contacts: clicked link 1", f"{a}/contacts?list=link&url_id=1"),
            ("contacts: opens on mobile", f"{a}/contacts?list=opens_device&device=mobile"),
            ("contacts: forwards", f"{a}/contacts?list=forwards"),
            ("contacts: opt-outs", f"{a}/contacts?list=optouts"),
            ("contacts: complaints", f"{a}/contacts?list=abuse"),
            ("contacts: bounced", f"{a}/contacts?list=bounces"),
            ("contacts: bounced, code Z", f"{a}/contacts?list=bounces&code=Z"),
            ("contacts: bounced, reason (as listed)", f"{a}/contacts?list=bounces&reason=blocked"),
            ("contact timeline", f"/ui/contacts/{contact}"),
            ("contacts search", "/ui/contacts?q=c05"),
            ("bounces", "/ui/bounces"),
            ("bounces, page 10,000 deep", f"/ui/bounces?after={bounce_at}.{n_bounces}"),
            ("bounces by code B", "/ui/bounces?code=B"),
            ("bounces by reason and date", "/ui/bounces?reason=blocked&from=2024-05-01&to=2024-05-02"),
            ("bounces by domain (every one matches)", "/ui/bounces?domain=bench.example.com"),
            ("bounces by a rare domain (none matches)", "/ui/bounces?domain=nowhere.example"),
            ("one bounce (re-classify)", f"/ui/bounces/{activity_id}/{bounce_at}.{n_bounces}"),
            ("unmatched bounces", "/ui/bounces/unmatched"),
            ("suppressions (figures by reason, first page)", "/ui/suppressions"),
            ("suppressions, searched", "/ui/suppressions?q=c05"),
            ("suppressions, by reason", "/ui/suppressions?reason=hard_bounce"),
            ("API tokens", "/ui/settings/tokens"),
            ("alerts (rules, alerts fired)", "/ui/settings/alerts"),
            ("outgoing webhooks", "/ui/settings/webhooks"),
            ("provider webhook endpoints", "/ui/settings/endpoints"),
        ]
        print(f"\ndashboard pages in-process on {args.sends:,} sends, {n} renders each "
              f"(target p99 < {TARGET_MS:g} ms); reference: v3 activity stats p50 {ref[0]:.2f} ms, "
              f"p99 {ref[1]:.2f} ms, CPU p99 {ref[2]:.2f} ms; load average {os.getloadavg()[0]:.1f}"
              f"{'; heap NOT settled (--unsettled)' if args.unsettled else ''}")
        print(f"  {'page':<56} {'p50':>10}   {'p99':>10}   {'CPU p99':>10}   (p99, CPU p99 / the reference's)")
        worst = worst_cpu = 0.0
        for label, path in pages:
            p50, p99, cpu99 = await timed(client, path, n)
            worst, worst_cpu = max(worst, p99), max(worst_cpu, cpu99)
            ok = "ok" if p99 < TARGET_MS else "MISSED"
            print(f"  {label:<56} {p50:7.2f} ms   {p99:7.2f} ms   {cpu99:7.2f} ms   "
                  f"({p99 / ref[1]:5.1f}x, {cpu99 / ref[2]:5.1f}x: {ok})")
        verdict = "ok" if worst < TARGET_MS else "MISSED"
        print(f"\nslowest page p99 {worst:.2f} ms, {worst / ref[1]:.1f}x the reference "
              f"(target < {TARGET_MS:g} ms: {verdict}); slowest CPU p99 {worst_cpu:.2f} ms, "
              f"{worst_cpu / ref[2]:.1f}x the reference's ({'ok' if worst_cpu < TARGET_MS else 'MISSED'})")


if __name__ == "__main__":
    main()
