"""Small readers shared by every format: addresses, DSN status codes, SMTP reply codes, commands."""

from __future__ import annotations

import re

# Bounded quantifiers everywhere: these run on untrusted text.
_ADDR = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]{1,128}@[\w-]{1,63}(?:\.[\w-]{1,63}){0,10}", re.A)
_ADDR_U = re.compile(r"[^\s<>()\[\]\",;:@]{1,128}@[\w-]{1,63}(?:\.[\w-]{1,63}){0,10}")
# A quoted local part (RFC 5321 Quoted-string): `"neko..nyaan"@example.org` keeps its quotes.
_ADDR_QUOTED = re.compile(r'"[^"\s<>@\\]{1,126}"@[\w-]{1,63}(?:\.[\w-]{1,63}){1,10}')
_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d]|\.\d)")
_REPLY = re.compile(r"(?<![\d.-])([245][0-7][0-9])(?:[ -]|$)")
# Where a reply names its command. Written in lower case and compiled twice: with re.I for any
# text, and without it for ASCII text lowered first (the same matches, found about twice as fast).
_COMMAND_RE = (
    r"\b(?:after|in reply to|response to|during|to)\s+(?:the\s+)?(?:end of\s+)?"
    r"(rcpt to|mail from|rcpt|mail|data|helo|ehlo|starttls|auth|bdat|quit|xforw|connect|"
    r"initial connection)\b"
)
_CMD_AFTER_RE = r"\b(rcpt to|mail from|data|ehlo|helo)[: ]{1,3}(?:command|response)\b"
# "[RCPT_TO]" tags, and qmail's "does not like recipient" (its words for a refusal at RCPT).
_RCPT_HINT_RE = r"\brcpt\b|\brcpt_to\b|does not like recipient|unknown recipient|recipientnotfound|resolver\.adr\."
_COMMAND = re.compile(_COMMAND_RE, re.I)
_CMD_AFTER = re.compile(_CMD_AFTER_RE, re.I)
_RCPT_HINT = re.compile(_RCPT_HINT_RE, re.I)
_COMMAND_LC = re.compile(_COMMAND_RE)
_CMD_AFTER_LC = re.compile(_CMD_AFTER_RE)
_RCPT_HINT_LC = re.compile(_RCPT_HINT_RE)
_CMD_LINE = re.compile(r"^[ \t]*>>>[ \t]*(RCPT|MAIL|DATA|HELO|EHLO|STARTTLS|AUTH|BDAT)\b", re.I | re.M)

_CMD_NORMAL = {"RCPT TO": "RCPT", "MAIL FROM": "MAIL", "CONNECT": "CONN", "INITIAL CONNECTION": "CONN"}


def clean_address(value: str) -> str:
    """`"Name" <local@domain>`, `rfc822; local@domain` or `<local@domain>:` to `local@domain`."""
    v = value.strip()
    if ";" in v and v.split(";", 1)[0].strip().lower() in ("rfc822", "rfc-822", "x-rfc822", "utf-8", "smtp"):
        v = v.split(";", 1)[1].strip()
    if v.lower().startswith("mailto:"):
        v = v[7:]
    if '"@' in v:
        q = _ADDR_QUOTED.search(v)
        if q is not None:
            return q.group(0)
    m = _ADDR_U.search(v) if "@" in v else None
    if m is None:
        return ""
    a = m.group(0).strip("'\"`.<>")
    if a.startswith("+") or a.count("@") != 1:
        return ""
    local, _, domain = a.rpartition("@")
    if not domain.isascii():
        # "a@example.jp您好": text in a language written without spaces runs on after the address. A
        # top-level label that starts in ASCII is ASCII to its end (IDN TLDs travel as xn--).
        head, dot, tld = domain.rpartition(".")
        ascii_end = next((i for i, c in enumerate(tld) if not c.isascii()), len(tld))
        if dot and 0 < ascii_end < len(tld):
            domain = head + dot + tld[:ascii_end]
            a = local + "@" + domain
    if not local or ("." not in domain and domain.lower() != "localhost"):
        return ""
    return a


def find_address(text: str) -> str:
    """The first plausible address in a line of text, cleaned."""
    for m in _ADDR.finditer(text):
        a = clean_address(m.group(0))
        if a:
            return a
    return ""


def find_addresses(text: str) -> list[str]:
    out: list[str] = []
    for m in _ADDR.finditer(text):
        a = clean_address(m.group(0))
        if a and a not in out:
            out.append(a)
    return out


def find_status(text: str) -> str:
    """The most specific DSN status code in the text (one that is not x.0.0 when there is one)."""
    best = ""
    for m in _STATUS.finditer(text):
        code = m.group(0)
        if int(m.group(2)) > 7:
            continue
        if not best:
            best = code
        if not code.endswith(".0.0"):
            return code
    return best


def find_reply_code(text: str) -> str:
    m = _REPLY.search(text)
    return m.group(1) if m else ""


def find_command_line(text: str) -> str:
    """The command of a transcript line (`>>> DATA`), the surest sign of where the dialogue failed."""
    m = _CMD_LINE.search(text)
    return m.group(1).upper() if m else ""


def find_command(text: str) -> str:
    if ">>>" in text:
        m = _CMD_LINE.search(text)
        if m:
            return m.group(1).upper()
    m = _named_command(text)
    if m:
        c = " ".join(m.group(1).upper().split())
        return _CMD_NORMAL.get(c, c)
    if _rcpt_hint(text):
        return "RCPT"
    return ""


# For ASCII text: lower-cased, so without re.I, and `in` checks skip patterns whose words are absent.
def _named_command(text: str) -> re.Match[str] | None:
    if not text.isascii():
        return _COMMAND.search(text) or _CMD_AFTER.search(text)
    low = text.lower()
    m = _COMMAND_LC.search(low)
    if m is None and ("command" in low or "response" in low):
        m = _CMD_AFTER_LC.search(low)
    return m


def _rcpt_hint(text: str) -> bool:
    if not text.isascii():
        return _RCPT_HINT.search(text) is not None
    low = text.lower()
    return ("rcpt" in low or "recipient" in low or "resolver.adr." in low) and _RCPT_HINT_LC.search(low) is not None


def squash(text: str, limit: int = 2000) -> str:
    """One line, single spaces, bounded length: how diagnostics are stored and matched."""
    return " ".join(text[: limit * 4].split())[:limit]
