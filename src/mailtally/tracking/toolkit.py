"""The sender's toolkit: the message to send to each recipient of an activity.

Every ``http(s)`` link becomes a signed click URL (each distinct URL registered once in the
activity's links), an open pixel goes before ``</body>``, a hidden honeypot link after
``<body>``, ``{{unsubscribe_url}}`` and ``{{forward_url}}`` are filled, and the headers name
the send (VERP Return-Path, ``X-Mailtally-Id``) and offer RFC 8058 one-click unsubscribe.

The body is cut into literal text and slots once; each recipient costs only their tokens.
"""

from __future__ import annotations

import html as htmllib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, Engine, select

from .. import verp
from ..events import Event
from ..store import catalog, hits
from ..store.accounts import instance_secret
from ..store.db import now_ms, writing
from ..store.schema import contacts
from ..store.tracking_keys import load_keyring
from ..store.writer import ItemError, write_events
from ..vocab import EventType
from .tokens import HitRef, KeyRing, Kind
from .verdict import HONEYPOT_URL_ID

_A_TAG = re.compile(r"<a\b[^>]*>", re.IGNORECASE)
_HREF = re.compile(r"""(\bhref\s*=\s*)(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.IGNORECASE)
_OFF = re.compile(r"""\bdata-mailtally\s*=\s*["']?off\b""", re.IGNORECASE)
_HTTP = re.compile(r"^https?://", re.IGNORECASE)
_TEXT_URL = re.compile(r"https?://[^\s<>\"'()]+", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"\{\{\s*(unsubscribe_url|forward_url)\s*\}\}")
_BODY_OPEN = re.compile(r"<body\b[^>]*>", re.IGNORECASE)
_BODY_CLOSE = re.compile(r"</body\s*>", re.IGNORECASE)
PIXEL_TAG = ('<img src="{url}" width="1" height="1" alt="" '
             'style="display:block;width:1px;height:1px;border:0;margin:0;padding:0">')
HONEYPOT_TAG = ('<a href="{url}" style="display:none!important;mso-hide:all" aria-hidden="true" '
                'tabindex="-1"></a>')
HONEYPOT_TARGET = "/t/x"  # where the honeypot link leads: a page saying there is nothing there


class RenderError(ValueError):
    """The request cannot be rendered (no body, unknown recipients); nothing was recorded."""

    def __init__(self, message: str, errors: list[ItemError] | None = None):
        super().__init__(message)
        self.errors = errors or []


# A compiled body: literal text between slots. A slot is ("c", url), ("o",), ("u",), ("f",), ("h",).
Part = str | tuple[str, ...]


def _compile_html(html: str) -> list[Part]:
    parts: list[Part] = []
    pos = 0

    for tag in _A_TAG.finditer(html):
        if _OFF.search(tag.group(0)):
            continue
        href = _HREF.search(tag.group(0))
        if href is None:
            continue
        raw = next(g for g in href.groups()[1:] if g is not None)
        url = htmllib.unescape(raw).strip()
        if not _HTTP.match(url):
            continue
        start = tag.start() + href.start()
        _placeholders(html[pos:start], parts)
        parts.append(href.group(1) + '"')
        parts.append(("c", url))
        parts.append('"')
        pos = tag.start() + href.end()
    _placeholders(html[pos:], parts)
    return _with_pixel_and_honeypot(parts)


def _with_pixel_and_honeypot(parts: list[Part]) -> list[Part]:
    out: list[Part] = []
    opened = closed = False
    for p in parts:
        if isinstance(p, str) and not opened and (m := _BODY_OPEN.search(p)):
            out += [p[:m.end()], ("h",), p[m.end():]]
            opened = True
            continue
        if isinstance(p, str) and not closed and (m := _BODY_CLOSE.search(p)):
            out += [p[:m.start()], ("o",), p[m.start():]]
            closed = True
            continue
        out.append(p)
    if not opened:
        out.insert(0, ("h",))
    if not closed:
        out.append(("o",))
    return out


def _compile_text(text: str) -> list[Part]:
    parts: list[Part] = []
    pos = 0
    for m in _TEXT_URL.finditer(text):
        url = m.group(0).rstrip(".,;:!?")
        _placeholders(text[pos:m.start()], parts)
        parts.append(("c", url))
        pos = m.start() + len(url)
    _placeholders(text[pos:], parts)
    return parts


def _placeholders(text: str, parts: list[Part]) -> None:
    pos = 0
    for m in _PLACEHOLDER.finditer(text):
        parts.append(text[pos:m.start()])
        parts.append(("u",) if m.group(1) == "unsubscribe_url" else ("f",))
        pos = m.end()
    parts.append(text[pos:])


def _urls(parts: list[Part]) -> list[str]:
    return [p[1] for p in parts if isinstance(p, tuple) and p[0] == "c"]


@dataclass(frozen=True, slots=True)
class Recipient:
    email: str | None = None
    contact_id: str | None = None


@dataclass(slots=True)
class Message:
    """What to send to one recipient."""

    contact_id: str
    email: str
    html: str | None
    text: str | None
    headers: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"contact_id": self.contact_id, "email": self.email, "html": self.html, "text": self.text,
                "headers": self.headers}


@dataclass(slots=True)
class Prepared:
    """A body compiled for one activity, ready to render for any of its recipients."""

    account: int
    activity_id: str
    activity_num: int
    base_url: str
    domain: str
    secret: bytes
    ring: KeyRing
    html: list[Part] | None
    text: list[Part] | None
    url_ids: dict[str, str]

    def url(self, kind: Kind, contact_num: int, url_id: str | None = None) -> str:
        token = self.ring.sign(HitRef(kind, self.account, self.activity_num, contact_num, url_id))
        return f"{self.base_url}/t/{kind.value}/{token}"

    def render(self, contact_id: str, contact_num: int, email: str) -> Message:
        slots: dict[Part, str] = {}

        def fill(parts: list[Part] | None) -> str | None:
            if parts is None:
                return None
            out = []
            for p in parts:
                if isinstance(p, str):
                    out.append(p)
                    continue
                value = slots.get(p)
                if value is None:
                    kind = p[0]
                    if kind == "c":
                        value = self.url(Kind.CLICK, contact_num, self.url_ids[p[1]])
                    elif kind == "h":
                        value = HONEYPOT_TAG.format(url=self.url(Kind.CLICK, contact_num, HONEYPOT_URL_ID))
                    elif kind == "o":
                        value = PIXEL_TAG.format(url=self.url(Kind.OPEN, contact_num))
                    else:
                        value = self.url(Kind.UNSUBSCRIBE if kind == "u" else Kind.FORWARD, contact_num)
                    slots[p] = value
                out.append(value)
            return "".join(out)

        html, text = fill(self.html), fill(self.text)
        ref = verp.SendRef(self.account, self.activity_num, contact_num)
        unsubscribe = slots.get(("u",)) or self.url(Kind.UNSUBSCRIBE, contact_num)
        headers = {
            "Return-Path": f"<{verp.return_path(self.secret, ref, self.domain)}>",
            "List-Unsubscribe": f"<{unsubscribe}>, <mailto:{verp.unsubscribe_address(self.secret, ref, self.domain)}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            **verp.headers(self.secret, ref, self.domain),
        }
        return Message(contact_id, email, html, text, headers)


def mail_domain(base_url: str, bounce_domain: str | None = None) -> str:
    return bounce_domain or urlsplit(base_url).hostname or "localhost"


def prepare(conn: Connection, account: int, activity_id: str, html: str | None, text: str | None, *,
            base_url: str, secret: bytes, bounce_domain: str | None = None) -> Prepared:
    """Compile the bodies and register their links; call inside a write transaction."""
    if html is None and text is None:
        raise RenderError("give html, text or both")
    activity = catalog.get_activity(conn, account, activity_id)
    if activity is None:
        raise RenderError(f"no campaign activity {activity_id}")
    base = base_url.rstrip("/")
    html_parts = _compile_html(html) if html is not None else None
    text_parts = _compile_text(text) if text is not None else None
    urls = list(dict.fromkeys([*_urls(html_parts or []), *_urls(text_parts or [])]))
    url_ids = hits.register_urls(conn, account, activity.id, urls, {HONEYPOT_URL_ID: base + HONEYPOT_TARGET})
    return Prepared(account, activity.id, int(activity.num_id), base, mail_domain(base, bounce_domain), secret,
                    load_keyring(conn, secret), html_parts, text_parts, url_ids)


def resolve_recipients(conn: Connection, account: int, recipients: Sequence[Recipient]
                       ) -> list[tuple[str, int, str]]:
    """(contact id, number, address) of each recipient, in order; addresses not yet contacts
    become contacts. An unknown contact id rejects the whole request."""
    ids = sorted({r.contact_id for r in recipients if r.contact_id})
    by_id: dict[str, tuple[str, int, str]] = {}
    for chunk in range(0, len(ids), 500):
        for row in conn.execute(select(contacts.c.id, contacts.c.num_id, contacts.c.email).where(
                contacts.c.account_id == account, contacts.c.id.in_(ids[chunk:chunk + 500]))):
            by_id[row.id] = (row.id, int(row.num_id), row.email)
    errors = [ItemError(i, "contact_id", f"no contact {r.contact_id}")
              for i, r in enumerate(recipients) if r.contact_id and r.contact_id not in by_id]
    if errors:
        raise RenderError(f"{len(errors)} of {len(recipients)} recipients are unknown; nothing was recorded", errors)
    by_email = catalog.contact_refs_for_emails(
        conn, account, [r.email for r in recipients if not r.contact_id and r.email])
    out = []
    for r in recipients:
        if r.contact_id:
            out.append(by_id[r.contact_id])
        else:
            email = (r.email or "").lower()
            cid, num = by_email[email]
            out.append((cid, num, email))
    return out


def render_messages(engine: Engine, account: int, activity_id: str, recipients: Iterable[Recipient], *,
                    html: str | None = None, text: str | None = None, base_url: str,
                    secret: bytes | None = None, record_send: bool = False, bounce_domain: str | None = None,
                    sent_at: int | None = None) -> Iterator[Message]:
    """The messages for ``recipients``, in order: for senders that run in-process.

    Links, contacts and (with ``record_send``) the send events are written in one transaction
    before the first message is yielded; a bad request raises ``RenderError`` and writes nothing.
    """
    wanted = list(recipients)
    with writing(engine) as conn:
        key = secret if secret is not None else instance_secret(conn).encode()
        prepared = prepare(conn, account, activity_id, html, text, base_url=base_url, secret=key,
                           bounce_domain=bounce_domain)
        people = resolve_recipients(conn, account, wanted)
        if record_send:
            at = sent_at if sent_at is not None else now_ms()
            sends = [Event(EventType.SEND, prepared.activity_id, at, contact_id=cid)
                     for cid, _, _ in dict.fromkeys(people)]
            for i in range(0, len(sends), 10_000):
                write_events(conn, account, sends[i:i + 10_000])
    for cid, num, email in people:
        yield prepared.render(cid, num, email)
