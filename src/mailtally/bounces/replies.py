"""An SMTP reply seen without a bounce message: at send time, or quoted in an MTA's log.

A sender that talks SMTP itself sees ``550 5.1.1 <a@b>: Recipient address rejected: User
unknown`` at once; Postfix logs ``dsn=5.1.1, status=bounced (host ... said: 550 ...)``. The
reply is taken apart here and judged by `bounces.classify`, the same judgement `parse`
applies to bounce messages, so a reply gets the reason its bounce message would have got.
Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailtally.bounces.reason import classify
from mailtally.bounces.smtp import find_command, find_reply_code, find_status, squash
from mailtally.vocab import Reason


@dataclass(frozen=True, slots=True)
class Reply:
    """An SMTP reply taken apart: ``550``, ``5.1.1``, the text after them, the command if named."""

    reply_code: str
    status: str
    diagnostic: str
    command: str = ""


def split_reply(text: str) -> Reply:
    """Reply code, enhanced status and text of a reply (a multi-line reply's lines joined).

    ``550-5.1.1 first line\\r\\n550 5.1.1 second`` and ``550 5.1.1 text`` both give
    ("550", "5.1.1", ...). Prose that quotes a reply ("host x said: 550 ...") keeps its text whole.
    """
    one = squash(text.replace("\x00", ""), 4000)
    code = find_reply_code(one[:4])
    if not code:
        return Reply(find_reply_code(one), find_status(one), one, find_command(one))
    status = find_status(one[:40])
    # A multi-line reply repeats its code (and status) on each line: keep the words only once.
    words = [part for part in one.split(" ")
             if not (part in (code, f"{code}-") or (status and part in (status, f"{code}-{status}")))]
    return Reply(code, status, " ".join(words), find_command(one))


def reply_reason(reply: Reply, recipient: str = "", remote_mta: str = "") -> Reason:
    """The bounce reason of a reply; `Reason.DELIVERED` for a 2xx one."""
    if reply.status.startswith("2.") or (not reply.status and reply.reply_code.startswith("2")):
        return Reason.DELIVERED
    return classify(reply.status, reply.reply_code, reply.diagnostic, command=reply.command, recipient=recipient,
                    remote_mta=remote_mta)


def classify_reply(text: str, recipient: str = "") -> tuple[Reply, Reason]:
    """``mailtally bounces classify "550 ..."``: the reply's parts and its reason."""
    reply = split_reply(text)
    return reply, reply_reason(reply, recipient)
