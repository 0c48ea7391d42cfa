"""The demo account: several campaigns with realistic engagement and bounces of every code.

Idempotent: created once; its token is derived from the signing secret, so every run
prints the same token without ever storing it. It has every scope but admin.
"""

from __future__ import annotations

import hashlib
import hmac
import random

from sqlalchemy import Connection, Engine, insert, select, update

from .events import Event
from .store import catalog
from .store.accounts import TOKEN_PREFIX, create_account, hash_token, signing_secret
from .store.db import now_ms, writing
from .store.hits import counting
from .store.schema import accounts, api_tokens
from .store.writer import write_events
from .tracking.device import read_agent
from .tracking.verdict import Hit, Rules, judge
from .vocab import REASON_TO_CODE, EventType, MachineCounting, Reason, Scope, counts_for_vendors, is_hard

DEMO_ACCOUNT = "demo"
DEMO_LOGIN = "demo@demo.example.com"
DAY = 86_400_000

FIRST = ["Ava", "Ben", "Chloe", "Dan", "Eve", "Finn", "Grace", "Hugo", "Isla", "Jack", "Kim", "Leo",
         "Maya", "Noah", "Olga", "Paul", "Quinn", "Rosa", "Sam", "Tara", "Uma", "Vic", "Wes", "Zoe"]
LAST = ["Brown", "Chen", "Dodge", "Evans", "Garcia", "Hughes", "Ito", "Jones", "Khan", "Lopez",
        "Meyer", "Novak", "Okafor", "Patel", "Rossi", "Smith", "Tanaka", "Weber"]
DOMAINS = ["example.com", "example.net", "example.org", "mail.example.com", "corp.example.net"]
CAMPAIGNS = [("Spring Newsletter", 2200), ("Product Launch", 1800), ("Webinar Invite", 1500),
             ("Holiday Sale", 2500)]

# (reason, SMTP status, reply code, diagnostic) — one or more per bounce code.
BOUNCES = [
    (Reason.USERUNKNOWN, "5.1.1", "550", "550 5.1.1 <{e}>: Recipient address rejected: User unknown"),
    (Reason.HOSTUNKNOWN, "5.1.2", "550", "Host or domain name not found. Name service error for name={d}"),
    (Reason.SUSPEND, "5.2.1", "550", "550 5.2.1 The email account that you tried to reach is disabled"),
    (Reason.MAILBOXFULL, "5.2.2", "552", "552 5.2.2 <{e}>: Mailbox full, quota exceeded"),
    (Reason.VACATION, "", "", "Auto-Submitted: auto-replied; I am out of the office until Monday"),
    (Reason.BLOCKED, "5.7.1", "554", "554 5.7.1 Service unavailable; client host blocked using zen.spamhaus.org"),
    (Reason.SPAMDETECTED, "5.7.1", "550", "550 5.7.1 Message rejected as spam by Content Filtering"),
    (Reason.EXPIRED, "4.4.7", "", "Delivery expired (message too old): connection timed out"),
    (Reason.MESGTOOBIG, "5.3.4", "552", "552 5.3.4 Message size exceeds fixed limit"),
]
BOUNCE_WEIGHTS = [30, 6, 5, 10, 6, 8, 5, 8, 3]
# What fetches a reader's pixel and follows their links, as the tracking endpoints see it: (User-Agent,
# client address, weight). People on phones, computers and tablets; Apple's and Gmail's image proxies
# (machine opens, counted as opens by default); the device and verdict are read from these as for a real hit.
READERS = [
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
     "198.51.100.{}", 26),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile "
     "Safari/537.36", "198.51.100.{}", 14),
    ("Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17029; Pro)", "203.0.113.{}", 14),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)", "203.0.113.{}", 8),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:115.0) Gecko/20100101 Thunderbird/115.10.1", "203.0.113.{}", 3),
    ("Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
     "198.51.100.{}", 6),
    ("Mozilla/5.0", "17.58.100.{}", 18),  # Apple Mail Privacy Protection's prefetch
    ("Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)", "66.249.84.{}", 11),
]
# A mail filter that follows every link within seconds of delivery (Microsoft's scanner network):
# machine clicks, which the vendor surfaces leave out by default.
SCANNER = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 "
           "Safari/537.36", "40.107.{}.{}")
SCANNED_DOMAIN = "corp.example.net"


def demo_token(secret: str) -> str:
    return TOKEN_PREFIX + "demo_" + hmac.new(secret.encode(), b"demo-token", hashlib.sha256).hexdigest()[:40]


# Every scope but admin: the demo token is derived from the secret, so it must not open more
# than the demo account's own data.
DEMO_SCOPES = ",".join(sorted(s.value for s in Scope if s is not Scope.ADMIN))


def demo_password(secret: str) -> str:
    return hmac.new(secret.encode(), b"demo-password", hashlib.sha256).hexdigest()[:16]


def ensure_demo_user(engine: Engine, *, secret: str | None = None) -> tuple[str, str]:
    """The demo account's dashboard login and password, creating the user the first time."""
    from .store.users import create_user, get_user

    with writing(engine) as conn:
        password = demo_password(signing_secret(conn, secret))
        account = conn.execute(select(accounts.c.id).where(accounts.c.name == DEMO_ACCOUNT)).scalar_one()
        if get_user(conn, int(account), DEMO_LOGIN) is None:
            create_user(conn, DEMO_ACCOUNT, DEMO_LOGIN, password)
    return DEMO_LOGIN, password


def ensure_demo(engine: Engine, *, progress: bool = False, secret: str | None = None) -> tuple[str, bool]:
    """The demo account's token, creating the account and its data the first time.

    ``secret`` is the configured signing secret (None: the one kept in the database).
    """
    with writing(engine) as conn:
        token = demo_token(signing_secret(conn, secret))
        exists = conn.execute(select(accounts.c.id).where(accounts.c.name == DEMO_ACCOUNT)).scalar()
        if exists is not None:
            # The token follows the secret, and demo tokens made before lose the admin scope.
            conn.execute(update(api_tokens).where(api_tokens.c.account_id == exists, api_tokens.c.name == "demo")
                         .values(token_hash=hash_token(token), scopes=DEMO_SCOPES))
            return token, False
        account = create_account(conn, DEMO_ACCOUNT)
        conn.execute(insert(api_tokens).values(
            account_id=account, token_hash=hash_token(token), name="demo",
            scopes=DEMO_SCOPES, created_at=now_ms()))
        events = _build(conn, account)
    _write(engine, account, events, progress)
    return token, True


def _hit(rng: random.Random, kind: EventType, activity_id: str, contact_id: str, at: int, sent: int, ua: str,
         ip: str, policy: tuple[MachineCounting, MachineCounting], url_id: str | None = None) -> Event:
    """An open or click as the tracking endpoints record it: device and verdict read from the hit."""
    is_click = kind is EventType.CLICK
    since = (at - sent) / 1000
    verdict, why = judge(Hit(is_click, ua, ip, "GET", since, url_id), RULES)
    return Event(kind, activity_id, at, contact_id, device_type=read_agent(ua).device, url_id=url_id,
                 user_agent=ua, ip=ip, since_send_s=int(since), verdict=verdict, verdict_why=why,
                 counted=counts_for_vendors(verdict, why, policy[1] if is_click else policy[0]),
                 hit_id=rng.getrandbits(63))


RULES = Rules()


def _build(conn: Connection, account: int) -> list[Event]:
    rng = random.Random(20261123)
    now = now_ms()
    policy = counting(conn, account)
    readers = [(ua, ip) for ua, ip, _ in READERS]
    reader_weights = [w for _, _, w in READERS]
    people = []
    for i in range(3000):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        email = f"{first}.{last}{i}@{rng.choice(DOMAINS)}".lower()
        row = catalog.create_contact(conn, account, {
            "email": email, "first_name": first, "last_name": last,
            "company_name": rng.choice(["Acme", "Globex", "Initech", "Umbrella", None]),
            "city": rng.choice(["Boston", "Denver", "Austin", "Seattle"]), "country": "US",
            "custom_fields": {"plan": rng.choice(["free", "pro", "team"])},
        })
        people.append((row.id, email))
    events: list[Event] = []
    # Addresses the suppression list stops (a hard bounce, an opt-out, a complaint): a sender that
    # heeds it mails them no more, so later campaigns leave them out.
    stopped: set[str] = set()
    for n, (name, size) in enumerate(CAMPAIGNS):
        # Nine days apart, the newest six days ago: recent enough for 7-day report windows.
        start = now - ((len(CAMPAIGNS) - 1 - n) * 9 + 6) * DAY
        campaign = catalog.create_campaign(conn, account, name, "Newsletter", created_at=start - DAY)
        activity = catalog.create_activity(conn, account, campaign.id, "primary_email", f"{name}: news for you",
                                           "Demo Co", "news@demo.example.com")
        urls = [("1", "https://demo.example.com/"), ("2", "https://demo.example.com/offer"),
                ("3", "https://demo.example.com/blog")]
        catalog.put_links(conn, account, activity.id, [{"url_id": u, "url": url} for u, url in urls])
        for contact_id, email in rng.sample([p for p in people if p[0] not in stopped], size):
            t = start + rng.randrange(0, 3_600_000)
            events.append(Event(EventType.SEND, activity.id, t, contact_id))
            if rng.random() < 0.07:
                reason, status, reply, diag = rng.choices(BOUNCES, BOUNCE_WEIGHTS)[0]
                code = REASON_TO_CODE[reason]
                events.append(Event(EventType.BOUNCE, activity.id, t + rng.randrange(1000, 3_600_000), contact_id,
                                    reason=reason, bounce_code=code, hard=is_hard(code), dsn_status=status or None,
                                    reply_code=reply or None, diagnostic=diag.format(e=email, d=email.split("@")[1]),
                                    remote_mta="mx." + email.split("@")[1]))
                if is_hard(code):
                    stopped.add(contact_id)
                continue
            if email.endswith("@" + SCANNED_DOMAIN) and rng.random() < 0.3:
                ua, ip = SCANNER[0], SCANNER[1].format(rng.randrange(256), rng.randrange(1, 255))
                for k, (url_id, _) in enumerate(urls):
                    events.append(_hit(rng, EventType.CLICK, activity.id, contact_id, t + 4_000 + k * 300, t, ua, ip,
                                       policy, url_id))
            if rng.random() < 0.45:
                ua, ip = rng.choices(readers, reader_weights)[0]
                ip = ip.format(rng.randrange(1, 255))
                t_open = t + rng.randrange(60_000, 5 * DAY)
                for k in range(rng.choice([1, 1, 1, 2, 3])):
                    events.append(_hit(rng, EventType.OPEN, activity.id, contact_id, t_open + k * 3_600_000, t, ua, ip,
                                       policy))
                if rng.random() < 0.3:
                    url_id = rng.choice(urls)[0]
                    if read_agent(ua).machine is not None:  # the person behind a proxy clicks from their own device
                        ua, ip = readers[0][0], readers[0][1].format(rng.randrange(1, 255))
                    events.append(_hit(rng, EventType.CLICK, activity.id, contact_id, t_open + 30_000, t, ua, ip,
                                       policy, url_id))
                if rng.random() < 0.03:
                    events.append(Event(EventType.FORWARD, activity.id, t_open + 60_000, contact_id))
            if rng.random() < 0.015:
                stopped.add(contact_id)
                events.append(Event(EventType.OPTOUT, activity.id, t + rng.randrange(60_000, 2 * DAY), contact_id,
                                    optout_source="Unsubscribe link", optout_reason=rng.choice(
                                        ["Too many emails", "No longer interested", None])))
            elif rng.random() < 0.003:
                stopped.add(contact_id)
                events.append(Event(EventType.ABUSE, activity.id, t + rng.randrange(60_000, DAY), contact_id))
    return events


def _write(engine: Engine, account: int, events: list[Event], progress: bool) -> None:
    from rich.progress import track

    batches = [events[i : i + 5000] for i in range(0, len(events), 5000)]
    for batch in track(batches, description="creating demo data", transient=True, disable=not progress):
        with writing(engine) as conn:
            write_events(conn, account, batch)
