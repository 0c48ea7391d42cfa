"""Turn raw bytes into a `Mail`: the bounce's headers, its report text, its DSN fields, its original.

Format readers scan text, not MIME trees, because real bounces mislabel their parts: a DSN
sent as text/plain, an original message pasted inline. So the MIME tree is flattened once
here, with bounded size and depth, and every reader works on the same strings.

The MIME splitting is our own few string operations rather than the `email` package's
feed parser: bounces need only headers, boundaries and transfer decoding, and the feed
parser (line-by-line, a fresh regex per boundary) cost more than all the rest of the engine.
Bytes are read as Latin-1, which maps every byte to one character and back, so nothing is
lost before each part is decoded with its own charset.
"""

from __future__ import annotations

import binascii
import re
from email.header import decode_header

MAX_BYTES = 4 * 1024 * 1024  # a bounce's useful part is at its top; originals can be huge
MAX_DEPTH = 8
MAX_PARTS = 64
MAX_HEADER_BLOCK = 256 * 1024

ORIGINAL_TYPES = frozenset(
    {"message/rfc822", "text/rfc822-headers", "message/rfc822-headers", "message/global",
     "message/global-headers", "message/partial"}
)
DSN_TYPES = frozenset({"message/delivery-status", "message/global-delivery-status"})

_PARAM = re.compile(r";\s*([A-Za-z0-9*_.-]{1,40})\s*=\s*(\"[^\"]{0,400}\"|[^;\s]{1,400})")
_TAG = re.compile(r"<[^<>]{0,2000}>")
_BR = re.compile(r"<\s*(?:br|/p|/div|/tr|/li|/h\d)\s*/?>", re.I)
_ENTITIES = {"&nbsp;": " ", "&lt;": "<", "&gt;": ">", "&amp;": "&", "&quot;": '"', "&#39;": "'"}
_ENTITY = re.compile(r"&(?:nbsp|lt|gt|amp|quot|#39);")
_HTML_SKIP = re.compile(r"<(style|script|head)\b.{0,200000}?</\1\s*>", re.I | re.S)


_SURROGATE = re.compile("[\ud800-\udfff]")


def no_surrogates(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD. Some codecs (UTF-7, UTF-16, ...)
    decode malformed input to lone surrogates, which no UTF-8 output (JSON, a database) takes."""
    if _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Bytes to text, trusting a declared charset when Python knows it, UTF-8 then Latin-1 otherwise."""
    if b"\x1b$" in data and (not charset or charset.strip().strip('"').lower() in ("us-ascii", "ascii")):
        # ISO-2022-JP names itself by its escape sequences, and Japanese systems write it into parts
        # that declare no charset (a delivery-status part's Diagnostic-Code).
        try:
            return data.decode("iso-2022-jp")
        except UnicodeDecodeError:
            pass
    if charset:
        cs = charset.strip().strip('"').lower()
        if cs in ("us-ascii", "ascii", "utf-8", "utf8"):
            return data.decode("utf-8", "replace")
        if cs == "iso-2022-jp" and not data.isascii():
            # A 7-bit charset declared over 8-bit bytes: Japanese systems that say ISO-2022-JP and
            # write EUC-JP or Shift_JIS. The one that decodes cleanly is the one written.
            for guess in ("euc-jp", "cp932", "utf-8"):
                try:
                    return data.decode(guess)
                except UnicodeDecodeError:
                    continue
        try:
            return no_surrogates(data.decode(cs, "replace"))
        except (LookupError, ValueError):
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _latin1_to_text(s: str) -> str:
    """A header read as Latin-1 back to text: raw 8-bit headers are nearly always UTF-8."""
    if s.isascii():
        return s
    try:
        return s.encode("latin-1").decode("utf-8")
    except (UnicodeDecodeError, UnicodeEncodeError):
        return s


def decode_header_value(value: str | None) -> str:
    """RFC 2047 encoded words to text; never raises on broken encodings."""
    if not value:
        return ""
    value = _latin1_to_text(str(value))
    if "=?" not in value:
        return " ".join(value.split())
    try:
        out = []
        for chunk, cs in decode_header(value):
            out.append(decode_bytes(chunk, cs) if isinstance(chunk, bytes) else chunk)
        return " ".join("".join(out).split())
    except Exception:
        return " ".join(value.split())


def html_to_text(html: str) -> str:
    html = _HTML_SKIP.sub(" ", html)
    html = _BR.sub("\n", html)
    html = _TAG.sub("", html)
    return _ENTITY.sub(lambda m: _ENTITIES[m.group(0)], html)


class Headers:
    """A header block: ordered (name, value) pairs, unfolded, looked up case-insensitively."""

    __slots__ = ("first", "items")

    def __init__(self, block: str) -> None:
        items: list[tuple[str, str]] = []
        for line in block[:MAX_HEADER_BLOCK].split("\n"):
            if not line:
                continue
            if line[0] in " \t":
                if items:
                    name, value = items[-1]
                    items[-1] = (name, value + " " + line.strip())
                continue
            name, sep, value = line.partition(":")
            name = name.rstrip()
            # A field name is 1-76 printable ASCII characters but space and ":" (RFC 5322); it holds no
            # ":", split off at the first. String tests, not a regex: this runs for every header line.
            if sep and 0 < len(name) <= 76 and name.isascii() and name.isprintable() and " " not in name:
                items.append((name, value.strip()))
        self.items = items
        first: dict[str, str] = {}
        for name, value in items:
            first.setdefault(name.lower(), value)
        self.first = first

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.first.get(name.lower(), default)

    def get_all(self, name: str) -> list[str]:
        n = name.lower()
        return [v for k, v in self.items if k.lower() == n]


def split_message(s: str) -> tuple[str, str]:
    """(header block, body) of a message held as a string with LF line ends."""
    if s.startswith("From ") and "\n" in s:
        s = s.split("\n", 1)[1]  # an mbox separator line, not a header
    if s.startswith("\n"):
        return "", s[1:]
    i = s.find("\n\n")
    if i < 0:
        return s, ""
    return s[:i], s[i + 2 :]


def content_type(headers: Headers) -> tuple[str, dict[str, str]]:
    raw = headers.get("content-type") or ""
    ctype = raw.split(";", 1)[0].strip().lower() or "text/plain"
    if "/" not in ctype:
        ctype = "text/plain"
    params: dict[str, str] = {}
    for m in _PARAM.finditer(raw):
        params.setdefault(m.group(1).lower(), m.group(2).strip('"'))
    return ctype, params


def transfer_decode(body: str, headers: Headers) -> bytes:
    cte = (headers.get("content-transfer-encoding") or "").strip().lower()
    if cte == "base64":
        try:
            return binascii.a2b_base64(body.encode("latin-1"))
        except (binascii.Error, ValueError):
            data = "".join(body.split())
            data = data[: len(data) - len(data) % 4]
            try:
                return binascii.a2b_base64(data.encode("latin-1"))
            except (binascii.Error, ValueError):
                return body.encode("latin-1", "replace")
    if cte == "quoted-printable":
        return binascii.a2b_qp(body.encode("latin-1", "replace"))
    return body.encode("latin-1", "replace")


def leaf_text(body: str, headers: Headers, params: dict[str, str]) -> str:
    return decode_bytes(transfer_decode(body, headers), params.get("charset"))


def split_multipart(body: str, boundary: str) -> list[str] | None:
    """The parts between `--boundary` lines; None when the boundary never appears (broken MIME)."""
    delim = "--" + boundary
    text = "\n" + body
    start = text.find("\n" + delim)
    if start < 0:
        return None
    parts: list[str] = []
    pos = start
    while len(parts) < MAX_PARTS:
        line_end = text.find("\n", pos + 1)
        if line_end < 0:
            break
        if text.startswith(delim + "--", pos + 1):
            break
        nxt = text.find("\n" + delim, line_end)
        if nxt < 0:
            parts.append(text[line_end + 1 :])
            break
        parts.append(text[line_end + 1 : nxt])
        pos = nxt
    return parts


def render_original(s: str) -> str:
    """An attached message, bounded: its header block and the start of its body."""
    head, body = split_message(s.lstrip("\n"))
    return head + "\n\n" + body[:4000]


class Mail:
    """A flattened bounce: top headers, report text, DSN text, the original (if returned)."""

    __slots__ = ("_count", "dsn", "feedback", "from_", "headers", "html", "nested", "original", "subject", "text")

    def __init__(self, raw: bytes) -> None:
        if len(raw) > MAX_BYTES:
            raw = raw[:MAX_BYTES]
        s = raw.decode("latin-1")
        if "\r" in s:
            s = s.replace("\r\n", "\n").replace("\r", "\n")
        head, body = split_message(s)
        self.headers = Headers(head)
        self.subject = decode_header_value(self.headers.get("subject"))
        self.from_ = decode_header_value(self.headers.get("from"))
        texts: list[str] = []
        htmls: list[str] = []
        dsn: list[str] = []
        self.feedback = ""
        self.original: str | None = None
        self.nested: list[str] = []
        self._count = 0
        self._flatten(self.headers, body, 0, texts, htmls, dsn)
        self.text = "\n".join(texts)
        self.html = "\n".join(htmls)
        if not self.text.strip() and self.html:
            self.text = self.html
        self.dsn = "\n\n".join(dsn)

    def _flatten(
        self, headers: Headers, body: str, depth: int, texts: list[str], htmls: list[str], dsn: list[str]
    ) -> None:
        self._count += 1
        if depth > MAX_DEPTH or self._count > MAX_PARTS:
            return
        ctype, params = content_type(headers)
        if ctype in ORIGINAL_TYPES and depth > 0:
            inner = leaf_text(body, headers, params) if headers.get("content-transfer-encoding") else body
            if self.original is None:
                self.original = render_original(inner)
            if ctype != "text/rfc822-headers" and len(self.nested) < 4:
                self.nested.append(inner)
            return
        if ctype in DSN_TYPES or ctype == "message/feedback-report":
            block = leaf_text(body, headers, params)
            if ctype == "message/feedback-report":
                self.feedback += block + "\n"
            else:
                dsn.append(block)
            return
        if ctype.startswith("multipart/"):
            boundary = params.get("boundary", "")
            parts = split_multipart(body, boundary) if boundary else None
            if parts is None:
                texts.append(body)  # broken MIME: keep the text, readers still find their way
                return
            for part in parts:
                h, b = split_message(part)
                self._flatten(Headers(h), b, depth + 1, texts, htmls, dsn)
            return
        if ctype.startswith("text/") or depth == 0:
            if (headers.get("content-disposition") or "").lower().startswith("attachment") and depth > 1:
                return
            text = leaf_text(body, headers, params)
            if ctype == "text/html":
                htmls.append(html_to_text(text))
            else:
                texts.append(text)
