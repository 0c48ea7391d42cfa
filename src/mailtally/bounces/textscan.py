"""Reading human-written bounce text: where the report ends, which lines name a recipient.

Most mail systems that do not send RFC 3464 fields write the same shape: a preamble, then
per recipient an address line followed by the error lines, then a marker before the
returned original. `scan` reads that shape; format modules give their own markers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from mailtally.bounces.finding import Finding
from mailtally.bounces.smtp import (
    clean_address,
    find_command,
    find_command_line,
    find_reply_code,
    find_status,
    squash,
)

# Lines after which the returned original message starts, across mail systems.
ORIGINAL_MARKERS = re.compile(
    r"^[ \t]{0,40}(?:(?:-{2,80}|={2,80}|\*{2,80}|_{2,80})[ \t]{0,40})?(?:"
    r"this is a copy of (?:the|your) message|below this line is a copy of the message|unsent message follows|"
    r"below is a copy of the original message|"
    r"original message(?: header)?s?(?: follows?)?|the original message (?:was(?! received)|is|headers)|"
    r"message headers? follows?|returned message|unsent message below|"
    r"headers? of (?:the )?(?:original|returned) message|undelivered message (?:follows|headers)|"
    r"original message headers|a copy of the original message|start of (?:returned|original) message|"
    r"the headers of your message|content-type: message/rfc822|copy of (?:the )?(?:original )?message|"
    r"included is a copy of the message header|received: ?from"
    r")",
    re.I | re.M,
)

# Speed: every marker above holds one of these; the search starts at the line of the first one
# found, or is skipped when there is none. Only for ASCII text, where lower-casing it is exactly
# what re.I matches. tests/bounces/test_properties.py checks that they stay complete.
ORIGINAL_NEEDLES: tuple[str, ...] = (
    "content-type: message/rfc822", "copy of", "header", "original message", "received:", "returned message",
    "start of ", "undelivered message", "unsent message",
)

_RCPT_ALONE = re.compile(r"^[ \t]*<?([^\s<>@]{1,128}@[^\s<>@]{1,255}?)>?:?[ \t]*$")
# "<a@b>: error", and Exim's "as written <a@b>: error" (the address as the sender wrote it, then
# the one it was read as); no ":" before the "<", which would make it a header ("To: Ann <a@b>").
_RCPT_COLON = re.compile(
    r"^[ \t]*(?:<([^\s<>@]{1,128}@[^\s<>@]{1,255})>:?|[^<>:\n]{1,200}[ \t]<([^\s<>@]{1,128}@[^\s<>@]{1,255})>:)"
    r"[ \t]*(.*)$"
)
# "Could not be delivered to: <a@b>", ">>> a@b <a@b>", "Unknown user: a@b", "RCPT TO: a@b",
# "There was an error delivering your mail to <a@b>.", "a@b on Thu, 29 Apr 2010 ...".
_RCPT_PREFIXED = re.compile(
    r"^[ \t]*(?:>>>[ \t]*(?:rcpt to:[ \t]*)?|[^<>@\n]{0,60}?(?:could not be delivered to|unable "
    r"to deliver(?: message| mail)? to|"
    r"delivering your (?:mail|message) to|delivery to|unknown user|rcpt to|invalid recipient|failed recipient|"
    r"delivery has failed to|not delivered to|undeliverable to|failed to deliver to|"
    r"recipient(?: address| name| e-?mail(?: address)?)?|(?:your|the following|this) (?:message|mail) to|"
    r"recipients? returned (?:permanent|temporary) errors?)[ \t]*:?[ \t]*)"
    r"['\"]?<?([^\s<>@()\[\]\"']{1,128}@[A-Za-z0-9][A-Za-z0-9.-]{0,253})>?['\"]?[.:,;]?[ \t]*(.{0,400})$",
    re.I,
)
# "Message from ann@x was not delivered to a@b.": the failure, then the address, anywhere in the line.
_RCPT_AFTER_FAILURE = re.compile(
    r"(?:(?:was|were|could) not (?:be )?delivered|undeliverable|(?:could not|unable to|failed to) deliver"
    r"(?: (?:your |the )?(?:message|mail))?) to:?[ \t]+['\"]?<?"
    r"([^\s<>@()\[\]\"']{1,128}@[A-Za-z0-9][A-Za-z0-9.-]{0,253})>?['\"]?[.:,;]?[ \t]*(.{0,400})$",
    re.I,
)
# "a@b: 550 5.1.1 ...", "  * a@b", "- a@b", "a@b [User unknown]", "a@b Invalid Address, ERROR_CODE :550"
_RCPT_LEAD = re.compile(
    r"^[ \t]*(?:[*-][ \t]+)?<?([^\s<>@()]{1,128}@[A-Za-z0-9][A-Za-z0-9.-]{0,253})>?"
    r"(?::[ \t]+(.{1,400})|[ \t]+([\[(A-Za-z0-9].{0,400})|[ \t]*)$"
)
# Sendmail's own shape: "550 5.1.1 <a@b>... User unknown", "<a@b>... Deferred", "a@b... Host unknown".
_RCPT_SENDMAIL = re.compile(
    r"^[ \t]*(?:[245]\d\d[ -](?:[245]\.\d{1,3}\.\d{1,3}[ \t]+)?)?<?([^\s<>@()]{1,128}@[^\s<>@()]{1,255}?)>?"
    r"[ \t]{0,4}\.\.\.[ \t]*(.{0,400})$"
)
# "User mailbox exceeds allowed size: a@b", "Delivery failed 20 attempts: a@b": a phrase, then the address.
_RCPT_TRAILING = re.compile(
    r"^[ \t]*([A-Za-z][^@<>:\n]{0,118}[ \t][^@<>:\n]{1,60}):[ \t]*"
    r"<?([^\s<>@()]{1,128}@[A-Za-z0-9][A-Za-z0-9.-]{0,253})>?\.?[ \t]*$"
)
_NOT_A_FAILURE = re.compile(r"(?:from|sender|reply-to|by|cc|bcc|return-path|sent|mailing list|address)[ \t]*$", re.I)
_RCPT_ON_DATE = re.compile(r"^[ \t]*([^\s<>@]{1,128}@[A-Za-z0-9.-]{1,255}) on (?:mon|tue|wed|thu|fri|sat|sun)", re.I)


# The last answer of `cut_original`: the engine cuts the same `mail.text` twice (a reader, then the
# search for the original's headers), and the marker search is one of its costlier scans.
_last_cut: tuple[str, re.Pattern[str], tuple[str, str]] | None = None


def cut_original(text: str, markers: re.Pattern[str] = ORIGINAL_MARKERS) -> tuple[str, str]:
    """(report, original): the text before the first original-message marker, and after it."""
    global _last_cut
    last = _last_cut
    if last is not None and last[0] is text and last[1] is markers:
        return last[2]
    m = _search_markers(text) if markers is ORIGINAL_MARKERS else markers.search(text)
    cut = (text, "") if m is None else (text[: m.start()], text[m.end() :])
    _last_cut = (text, markers, cut)
    return cut


def _search_markers(text: str) -> re.Match[str] | None:
    """`ORIGINAL_MARKERS.search(text)`, which otherwise tries every line of long texts that have no marker."""
    if not text.isascii():
        return ORIGINAL_MARKERS.search(text)
    low = text.lower()
    first = -1
    for needle in ORIGINAL_NEEDLES:
        i = low.find(needle)
        if i >= 0 and (first < 0 or i < first):
            first = i
    if first < 0:
        return None
    # A marker lies on one line (`^` anchors it at the start), which holds a needle: none starts
    # before the line of the first needle.
    return ORIGINAL_MARKERS.search(text, text.rfind("\n", 0, first) + 1)


def recipient_line(line: str) -> tuple[str, str] | None:
    """(address, rest) when the line names a recipient the way bounce texts do."""
    if "@" not in line or len(line) > 400:
        return None
    m = _RCPT_ALONE.match(line)
    if m:
        a = clean_address(m.group(1))
        return (a, "") if a else None
    m = _RCPT_COLON.match(line)
    if m:
        a = clean_address(m.group(1) or m.group(2))
        return (a, m.group(3)) if a else None
    m = _RCPT_PREFIXED.match(line)
    if m:
        a = clean_address(m.group(1))
        rest = m.group(2)
        if rest.startswith("<") and rest.rstrip().endswith(">") and "@" in rest:
            rest = ""  # ">>> a@b <a@b>": the same address twice
        if not line.lstrip().startswith(">>>"):
            rest = line.strip()  # "Unknown user: a@b" is itself the diagnostic
        return (a, rest) if a else None
    m = _RCPT_SENDMAIL.match(line)
    if m:
        a = clean_address(m.group(1))
        return (a, line.strip()) if a else None
    m = _RCPT_ON_DATE.match(line)
    if m:
        a = clean_address(m.group(1))
        return (a, "") if a else None
    m = _RCPT_LEAD.match(line)
    if m:
        a = clean_address(m.group(1))
        return (a, m.group(2) or m.group(3) or "") if a else None
    m = _RCPT_TRAILING.match(line)
    if m and not _NOT_A_FAILURE.search(m.group(1)):
        a = clean_address(m.group(2))
        return (a, line.strip()) if a else None
    m = _RCPT_AFTER_FAILURE.search(line)
    if m:
        a = clean_address(m.group(1))
        return (a, line.strip()) if a else None
    return None


def complete(f: Finding, lines: Iterable[str]) -> Finding:
    """Fill diagnostic, status, reply code and command from the error lines of a recipient."""
    lines = list(lines)
    diag = squash(" ".join(s.strip() for s in lines if s.strip()))
    if not f.command and lines:
        # ">>> DATA" is a command only at the start of a line: look before the lines are joined.
        f.command = find_command_line("\n".join(lines[:200]))
    if diag and not f.diagnostic:
        f.diagnostic = diag
    d = f.diagnostic
    if not f.status:
        f.status = find_status(d)
    if not f.reply_code:
        f.reply_code = find_reply_code(d)
    if not f.command:
        f.command = find_command(d)
    return f


def scan(
    report: str,
    *,
    start: re.Pattern[str] | None = None,
    stop: re.Pattern[str] | None = None,
    rcpt: re.Pattern[str] | None = None,
) -> list[Finding]:
    """Findings from `report`: each recipient line opens a finding, the lines after it are its error.

    `start`: a pattern the error section begins after (None: from the top); `stop`: a pattern
    that ends the section early; `rcpt`: a format's own recipient-line pattern (group 1 the
    address, an optional group 2 the rest of the line), tried before the generic shapes.
    Error lines that come before the first recipient serve recipients that have none of their own.
    """
    if start is not None:
        m = start.search(report)
        if m is None:
            return []
        report = report[m.end() :]
    if stop is not None:
        m = stop.search(report)
        if m is not None:
            report = report[: m.start()]
    found: list[Finding] = []
    lines: list[str] = []
    preamble: list[str] = []
    current: Finding | None = None
    in_list = False  # under a "The following addresses had fatal errors" heading
    entry_indent = 400  # how far its first entry is indented
    for line in report.split("\n"):
        r = None
        if rcpt is not None and "@" in line:
            m = rcpt.search(line)
            if m:
                a = clean_address(m.group(1))
                if a:
                    r = (a, (m.group(2) or "") if m.re.groups > 1 else "")
        if r is None:
            r = recipient_line(line)
        if in_list:
            bare = line.lstrip("> \t")
            if bare.startswith(("---", "===", "***")) or (current is not None and not bare) or _HEADERISH.match(bare):
                in_list = False  # the next section ("----- Transcript of session follows -----"), or its end
            elif r is None and "@" in line and len(line) - len(line.lstrip()) <= entry_indent:
                # Lines indented under an entry are its own ("(expanded from: <a@b>)"), not another.
                r = _listed(line)
            if r is not None:
                entry_indent = min(entry_indent, len(line) - len(line.lstrip()))
        elif r is None and _FAILED_LIST.search(line) is not None:
            in_list = True
            entry_indent = 400
        if r is not None and current is not None and r[0].lower() == current.recipient.lower():
            lines.append(line)  # the same recipient again: the server's reply naming it is its error text
            continue
        if r is not None:
            if current is not None:
                complete(current, lines)
            # ">>> RCPT To:<a@b>" opens a transcript's error lines: the command they answer.
            current = Finding(recipient=r[0], command=find_command_line(line) if ">>>" in line else "")
            found.append(current)
            lines = [r[1]] if r[1] else []
            continue
        if current is not None:
            lines.append(line)
        elif len(preamble) < 40:
            preamble.append(line)
    if current is not None:
        complete(current, lines)
    preamble_errs = None
    for f in found:
        if f.diagnostic and _ERROR_CODE.search(f.diagnostic) is not None:
            continue
        if preamble_errs is None:
            preamble_errs = _ERROR_CODE.search("\n".join(preamble)) is not None
        if not f.diagnostic:
            complete(f, preamble)
        elif preamble_errs:
            # "Error message below: 550 ... / Message details: RCPT TO: a@b, Size: 222": the lines under
            # the address only echo the envelope; the error above them is the recipient's.
            f.diagnostic = f.status = f.reply_code = ""
            complete(f, preamble)
    return found


# Headings of a list of failed recipients, each line of which names one in its own way.
_FAILED_LIST = re.compile(
    r"following (?:addresses|recipients?) (?:had (?:permanent |fatal |transient )*errors|failed|could not be "
    r"delivered)",
    re.I,
)
_HEADERISH = re.compile(r"[A-Za-z][A-Za-z0-9-]{1,40}:[ \t]")  # "Return-Path: <a@b>": a header, not an entry
_ANGLED = re.compile(r"<([^\s<>@]{1,128}@[A-Za-z0-9][A-Za-z0-9.-]{0,253})>")


def _listed(line: str) -> tuple[str, str] | None:
    """A line of a failed-recipient list that names one address in angle brackets, in any shape
    ("[Status: Error, Address: <a@b>, ResponseCode 421, Host not reachable.]"): the line is its error."""
    found = _ANGLED.findall(line)
    if len(found) != 1:
        return None
    a = clean_address(found[0])
    return (a, line.strip()) if a else None


# An SMTP failure's reply code or DSN status: what makes lines an error rather than an envelope echo.
_ERROR_CODE = re.compile(r"(?<![\d.])(?:[45][0-7]\d(?:[ -]|$)|[45]\.\d{1,3}\.\d{1,3}(?!\d))", re.M)
