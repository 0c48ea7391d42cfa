"""The URLs recipients hit: ``/t/o|c|u|f/{token}``. No API token: the signed token is the
only credential, and anything else in the request is untrusted.

- ``/t/o/{token}`` the open pixel: always the image, ``Cache-Control: no-store``.
- ``/t/c/{token}`` a click: a redirect to the URL registered for the link, or a plain 404.
- ``/t/u/{token}`` unsubscribe: GET shows a page and changes nothing (scanners fetch every
  link); POST (the page's button, or RFC 8058 one-click) records the opt-out, no redirect.
- ``/t/f/{token}`` forward: a page with a form; its POST keeps the friend's address.

Served by a plain ASGI layer in front of the API: the pixel and the redirect are the hottest
paths in the product and skip the framework's routing and dependency machinery.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

import anyio
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Engine

from ..config import Settings
from ..ingest.tracking import HitRecorder, PendingHit, RollUp, record_forward, record_optout
from ..serving import freeze_heap
from ..store import catalog, hit_journal
from ..store.db import gate_of, now_ms
from ..store.group_commit import GroupCommitter
from ..store.hits import link_url
from ..store.tracking_keys import load_keyring
from ..timefmt import iso_ms
from ..tracking.device import load_rules
from ..tracking.tokens import HitRef, Kind
from ..tracking.verdict import DEFAULT_SCANNER_NETWORKS, HONEYPOT_URL_ID, Rules, parse_networks
from ..vocab import Health, IpStorage, OptoutSource

log = logging.getLogger("mailtally.tracking")
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
MAX_FORM_BYTES = 64 * 1024
OPTOUT_REASONS = ("Too many emails", "Not relevant to me", "I never signed up", "Other")
EMAIL = re.compile(r"^[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;]+$")
_NO_STORE = [(b"cache-control", b"no-store, no-cache, must-revalidate, private"), (b"pragma", b"no-cache"),
             (b"expires", b"0")]
_PAGE_HEADERS = [(b"content-type", b"text/html; charset=utf-8"), (b"cache-control", b"no-store"),
                 (b"referrer-policy", b"no-referrer"), (b"x-content-type-options", b"nosniff"),
                 (b"x-frame-options", b"DENY")]
_PIXEL_HEADERS = [(b"content-type", b"image/gif"), (b"content-length", str(len(PIXEL)).encode()), *_NO_STORE]
_REDIRECT_HEADERS = [(b"referrer-policy", b"no-referrer"), *_NO_STORE, (b"content-length", b"0")]


def safe_target(url: str | None) -> str | None:
    """A registered URL fit for a Location header: http(s) only, with spaces, control and
    non-ASCII characters percent-encoded (so nothing stored can split the header)."""
    if url is None or not re.match(r"(?i)https?://", url):
        return None
    return quote(url.strip(), safe=":/?#[]@!$&'()*+,;=%~")


def scanner_networks(setting: str) -> Rules:
    """``default``, ``none``, or CIDRs added to the default list (``none,CIDR,...`` for only yours)."""
    items = [s.strip() for s in setting.split(",") if s.strip()]
    base = () if "none" in items else DEFAULT_SCANNER_NETWORKS
    extra = [s for s in items if s not in ("default", "none")]
    return parse_networks([*base, *extra])  # type: ignore[return-value]


def recorder_for(engine: Engine, settings: Settings) -> HitRecorder:
    """The hit recorder with the instance's verdict rules and IP setting."""
    rules = Rules(too_soon_seconds=settings.too_soon_seconds,
                  scanner_networks=scanner_networks(settings.scanner_networks))  # type: ignore[arg-type]
    return HitRecorder(engine, rules, IpStorage(settings.tracking_ip))


@contextmanager
def rolling_up(engine: Engine, settings: Settings) -> Iterator[None]:
    """``serve --workers N`` on a SQLite file: its own process writes the workers' journaled
    hits into the log (``ingest.tracking.RollUp``). It serves no requests, so the roll-up's
    Python work shares no interpreter with a worker's event loop; while it runs, the workers'
    roller threads wait, and one of them takes over if it stops."""
    if gate_of(engine) is None:
        yield
        return
    load_rules()  # else built inside the first roll-up: ~0.6 s
    rollup = RollUp(recorder_for(engine, settings), str(engine.url.database), journal=False,
                    max_behind=settings.tracking_max_behind_seconds)
    # The process's start-up heap left out of the collector's full walks, as in the workers
    # (``serving.settle_heap``): walked every few thousand hits, they took 8% of the roller's time.
    freeze_heap()
    try:
        yield
    finally:
        rollup.close()


def health_of(engine: Engine, settings: Settings) -> tuple[Health, dict[str, Any] | None]:
    """Whether answered hits reach the log in time, and what waits for the roller, as ``/healthz``
    and ``mailtally tracking status`` show it (None but on a SQLite file: elsewhere a hit is in
    the log when it is answered)."""
    if gate_of(engine) is None:
        return Health.OK, None
    with engine.connect() as conn:
        waits = hit_journal.backlog(conn, str(engine.url.database))
    now = now_ms()
    waited = waits.waited(now)
    return waits.health(now, settings.tracking_max_behind_seconds), {
        "waiting_bytes": waits.waiting_bytes,
        "oldest_waiting_seconds": round(waited, 1) if waited is not None else None,
        "max_behind_seconds": settings.tracking_max_behind_seconds,
        "roll_up_failing_since": iso_ms(waits.failing.since) if waits.failing else None,
        "roll_up_error": waits.failing.error if waits.failing else None}


_NEWER_KEYS = 16  # how far above our newest key a token's key id may be looked for


class Tracker:
    """Everything the endpoints need, made once per process."""

    def __init__(self, settings: Settings, engine: Engine, secret: bytes):
        self.settings = settings
        self.engine = engine
        self.secret = secret
        self.recorder = recorder_for(engine, settings)
        # On a SQLite file each hit is journaled, and one process writes every process's into
        # the log in big groups (ingest.tracking.RollUp); elsewhere (PostgreSQL) the hits are
        # committed in groups by the committer's thread, each request answered once its group is.
        self.rollup: RollUp | None = None
        self.committer: GroupCommitter[PendingHit] | None = None
        if gate_of(engine) is not None:
            self.rollup = RollUp(self.recorder, str(engine.url.database),
                                 max_behind=settings.tracking_max_behind_seconds)
        else:
            self.committer = GroupCommitter(self.recorder, settings.group_commit_ms / 1000)
        with engine.connect() as conn:
            self.ring = load_keyring(conn, secret)
        self._looked_for: dict[int, float] = {}  # unknown key id -> when we last reloaded for it
        self._urls: dict[tuple[int, int, str], tuple[float, bytes | None]] = {}
        self.pages = Environment(loader=FileSystemLoader(Path(__file__).parent.parent / "tracking" / "templates"),
                                 autoescape=select_autoescape(default=True))

    async def record(self, hit: PendingHit) -> None:
        """Return once ``hit`` is durable: journaled on a SQLite file, else committed."""
        if self.rollup is not None:
            self.rollup.record(hit)
        else:
            assert self.committer is not None  # one of the two, made with the tracker
            await self.committer.submit(hit)

    def catch_up(self) -> None:
        """Every hit answered so far in the log and the counters: reports call this before they
        read (nothing to do but on a SQLite file)."""
        if self.rollup is not None:
            self.rollup.catch_up()

    def forget_policy(self, account: int) -> None:
        """The account's counting policy changed: read it again."""
        (self.rollup or self.recorder).forget_policy(account)

    def close(self) -> None:
        """On shutdown, after the last request: the hits still journaled written to the log."""
        if self.rollup is not None:
            self.rollup.close()
        if self.committer is not None:
            self.committer.close()
        self.recorder.close()

    def verify(self, token: str, kind: Kind) -> HitRef | None:
        ref, kid = self.ring.check(token, kind)
        # A key rotated in by another process: reload. Key ids only grow, one at a time, so a
        # forged token can make us look for a few ids just above ours, each at most once a second.
        if ref is None and kid is not None and self.ring.current < kid <= self.ring.current + _NEWER_KEYS:
            now = time.monotonic()
            if now - self._looked_for.get(kid, float("-inf")) > 1.0:
                self._looked_for[kid] = now
                with self.engine.connect() as conn:
                    self.ring = load_keyring(conn, self.secret)
                ref = self.ring.verify(token, kind)
        return ref

    def location_for(self, ref: HitRef) -> bytes | None:
        """The registered URL of a click's link as its Location header's value (kept encoded:
        the redirect is the hot path)."""
        key = (ref.account_id, ref.activity_num, ref.url_id or "")
        now = time.monotonic()
        hit = self._urls.get(key)
        if hit is not None and now < hit[0]:
            return hit[1]
        with self.engine.connect() as conn:
            url = safe_target(link_url(conn, ref.account_id, ref.activity_num, ref.url_id or ""))
        if len(self._urls) > 100_000:
            self._urls.clear()
        location = None if url is None else url.encode()
        self._urls[key] = (now + (60.0 if url else 5.0), location)
        return location

    def page(self, name: str, **context: Any) -> bytes:
        return self.pages.get_template(name).render(**context).encode()


Scope = dict[str, Any]


async def _respond(send: Any, status: int, headers: list[tuple[bytes, bytes]], body: bytes = b"",
                   head: bool = False) -> None:
    if not any(k == b"content-length" for k, _ in headers):
        headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


async def _read_body(receive: Any, limit: int) -> bytes | None:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def parse_form(content_type: str, body: bytes) -> dict[str, str]:
    """Fields of an urlencoded or multipart/form-data body (RFC 8058 allows both)."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "multipart/form-data":
        head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        out: dict[str, str] = {}
        if msg.is_multipart():
            for part in msg.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True)
                if isinstance(name, str):
                    text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
                    out.setdefault(name, text.strip())
        return out
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return {}
    return {k: v[0].strip() for k, v in parse_qs(text, keep_blank_values=True).items()}


def _header(scope: Scope, name: bytes) -> str:
    for k, v in scope["headers"]:
        if k == name:
            return str(v.decode("latin-1"))
    return ""


_HIT_PATHS = ("/t/o/", "/t/c/")


def is_hit(scope: Scope) -> bool:
    """A pixel load or a click (GET or HEAD): answered before the app's middleware stack, which
    has nothing to do for them (no body, no credentials, no dialect), at a tenth of their cost."""
    return scope["type"] == "http" and scope["method"] in ("GET", "HEAD") and scope["path"].startswith(_HIT_PATHS)


async def answer_hit(tracker: Tracker, scope: Scope, send: Any) -> None:
    """Answer a request ``is_hit`` chose: ``/t/o/{token}`` or ``/t/c/{token}``, by GET or HEAD."""
    path = scope["path"]
    token = path[5:]
    if "/" in token:
        await _page(send, 404, tracker.page("notfound.html"), scope["method"] == "HEAD")
    elif path[3] == "o":
        await pixel(tracker, scope, send, token)
    else:
        await click(tracker, scope, send, token)


async def _page(send: Any, status: int, body: bytes, head: bool = False,
                extra: list[tuple[bytes, bytes]] | None = None) -> None:
    await _respond(send, status, [*_PAGE_HEADERS, *(extra or [])], body, head)


def _hit(scope: Scope, ref: HitRef) -> PendingHit:
    client = scope.get("client")
    return PendingHit(ref, now_ms(), _header(scope, b"user-agent"), client[0] if client else None, scope["method"])


async def pixel(tracker: Tracker, scope: Scope, send: Any, token: str) -> None:
    method = scope["method"]
    if method not in ("GET", "HEAD"):
        await _respond(send, 405, [(b"allow", b"GET, HEAD"), *_PIXEL_HEADERS[1:]], PIXEL)
        return
    status = 200
    ref = tracker.verify(token, Kind.OPEN)
    if ref is not None:
        try:
            await tracker.record(_hit(scope, ref))
        except Exception:
            status = 503  # not recorded: say so, still with the image
    # The headers as they stand (Content-Length included): nothing to add on the hot path.
    await send({"type": "http.response.start", "status": status, "headers": _PIXEL_HEADERS})
    await send({"type": "http.response.body", "body": b"" if method == "HEAD" else PIXEL})


async def click(tracker: Tracker, scope: Scope, send: Any, token: str) -> None:
    method = scope["method"]
    head = method == "HEAD"
    if method not in ("GET", "HEAD"):
        await _page(send, 405, tracker.page("bad_request.html", message="Open this link in a browser."),
                    extra=[(b"allow", b"GET, HEAD")])
        return
    ref = tracker.verify(token, Kind.CLICK)
    location = tracker.location_for(ref) if ref is not None else None
    if ref is None or location is None:
        await _page(send, 404, tracker.page("notfound.html"), head)
        return
    if ref.url_id == HONEYPOT_URL_ID:
        location = b"/t/x"
    try:
        await tracker.record(_hit(scope, ref))
    except Exception:
        await _page(send, 503, tracker.page("bad_request.html", message="Please try again in a moment."),
                    head, [(b"retry-after", b"1")])
        return
    await send({"type": "http.response.start", "status": 302, "headers": [(b"location", location), *_REDIRECT_HEADERS]})
    await send({"type": "http.response.body", "body": b""})


class TrackingRoutes:
    """ASGI middleware answering ``/t/...`` itself and passing everything else on."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith("/t/"):
            await self.app(scope, receive, send)
            return
        tracker: Tracker = scope["app"].state.tracker
        parts = path.split("/")
        method = scope["method"]
        if len(parts) == 3 and parts[2] == "x":
            await _page(send, 200, tracker.page("nothing.html"), method == "HEAD")
            return
        if len(parts) != 4 or parts[2] not in ("o", "c", "u", "f"):
            await _page(send, 404, tracker.page("notfound.html"), method == "HEAD")
            return
        kind, token = Kind(parts[2]), parts[3]
        if kind is Kind.OPEN:
            await pixel(tracker, scope, send, token)
        elif kind is Kind.CLICK:
            await click(tracker, scope, send, token)
        elif kind is Kind.UNSUBSCRIBE:
            await self.unsubscribe(tracker, scope, receive, send, token)
        else:
            await self.forward(tracker, scope, receive, send, token)

    def _activity(self, tracker: Tracker, ref: HitRef) -> Any:
        with tracker.engine.connect() as conn:
            return catalog.get_activity(conn, ref.account_id, ref.activity_num)

    async def unsubscribe(self, tracker: Tracker, scope: Scope, receive: Any, send: Any, token: str) -> None:
        method = scope["method"]
        ref = tracker.verify(token, Kind.UNSUBSCRIBE)
        activity = self._activity(tracker, ref) if ref is not None else None
        if ref is None or activity is None:
            await _page(send, 404, tracker.page("notfound.html"), method == "HEAD")
            return
        if method in ("GET", "HEAD"):
            await _page(send, 200, tracker.page(
                "unsubscribe.html", action=scope["path"], subject=activity.subject,
                sender=activity.from_name or activity.from_email, reasons=OPTOUT_REASONS), method == "HEAD")
            return
        if method != "POST":
            await _page(send, 405, tracker.page("bad_request.html", message="Use the button on the page."),
                        extra=[(b"allow", b"GET, HEAD, POST")])
            return
        body = await _read_body(receive, MAX_FORM_BYTES)
        if body is None:
            await _page(send, 413, tracker.page("bad_request.html", message="That form was too large."))
            return
        form = parse_form(_header(scope, b"content-type"), body)
        if form.get("List-Unsubscribe") == "One-Click":
            source, reason = OptoutSource.ONE_CLICK, None
        elif form.get("confirm") == "yes":
            source, reason = OptoutSource.PAGE, form.get("reason") or None
        else:
            await _page(send, 400, tracker.page(
                "bad_request.html", message="Nothing was changed: use the Unsubscribe button on the page."))
            return
        await anyio.to_thread.run_sync(record_optout, tracker.engine, ref, source, reason, now_ms())
        await _page(send, 200, tracker.page("unsubscribed.html"))

    async def forward(self, tracker: Tracker, scope: Scope, receive: Any, send: Any, token: str) -> None:
        method = scope["method"]
        ref = tracker.verify(token, Kind.FORWARD)
        activity = self._activity(tracker, ref) if ref is not None else None
        if ref is None or activity is None:
            await _page(send, 404, tracker.page("notfound.html"), method == "HEAD")
            return
        page = {"action": scope["path"], "subject": activity.subject}
        if method in ("GET", "HEAD"):
            await _page(send, 200, tracker.page("forward.html", **page), method == "HEAD")
            return
        if method != "POST":
            await _page(send, 405, tracker.page("bad_request.html", message="Use the form on the page."),
                        extra=[(b"allow", b"GET, HEAD, POST")])
            return
        body = await _read_body(receive, MAX_FORM_BYTES)
        if body is None:
            await _page(send, 413, tracker.page("bad_request.html", message="That form was too large."))
            return
        friend = parse_form(_header(scope, b"content-type"), body).get("friend_email", "")
        if len(friend) > 320 or not EMAIL.match(friend) or "\x00" in friend:
            await _page(send, 400, tracker.page(
                "forward.html", **page, friend=friend[:320], error="That does not look like an email address."))
            return
        await anyio.to_thread.run_sync(record_forward, tracker.engine, ref, friend, now_ms())
        await _page(send, 200, tracker.page("forwarded.html"))
