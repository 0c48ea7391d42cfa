"""SMTP replies seen at send time (and quoted in logs) get the reason their bounce message would have got."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mailtally.bounces import classify
from mailtally.bounces.replies import classify_reply, split_reply
from mailtally.vocab import Reason


@pytest.mark.parametrize(("reply", "reason"), [
    ("550 5.1.1 <a@b.example>: Recipient address rejected: User unknown in local recipient table",
     Reason.USERUNKNOWN),
    ("552 5.2.2 <a@b.example>: mailbox full", Reason.MAILBOXFULL),
    ("550-5.7.1 [192.0.2.1] Our system has detected that this message is\r\n"
     "550-5.7.1 likely unsolicited mail.", Reason.SPAMDETECTED),
    ("554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org", Reason.BLOCKED),
    ("552 5.3.4 Message size exceeds fixed limit", Reason.MESGTOOBIG),
    ("250 2.0.0 Ok: queued as 4Nq1FG", Reason.DELIVERED),
])
def test_replies(reply: str, reason: Reason) -> None:
    assert classify_reply(reply)[1] is reason


def test_a_reply_taken_apart() -> None:
    r = split_reply("550-5.1.1 The email account that you tried to reach does not exist.\r\n"
                    "550 5.1.1 Please try double-checking the recipient's email address")
    assert (r.reply_code, r.status) == ("550", "5.1.1")
    assert r.diagnostic == ("The email account that you tried to reach does not exist. "
                            "Please try double-checking the recipient's email address")
    quoted = split_reply("host mx.x[203.0.113.5] said: 550 5.1.1 unknown user (in reply to RCPT TO command)")
    assert (quoted.reply_code, quoted.status, quoted.command) == ("550", "5.1.1", "RCPT")


def test_parts_without_reply_text() -> None:
    assert classify(status="5.1.1") is Reason.USERUNKNOWN
    assert classify(status="5.2.2", diagnostic="over quota") is Reason.MAILBOXFULL
    assert classify(status="4.4.1", diagnostic="connect to mx.example[192.0.2.1]:25: Connection timed out") \
        is Reason.EXPIRED


def test_cli() -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mailtally", "bounces", "classify", *args],
                              capture_output=True, text=True, timeout=60)

    p = run("550 5.1.1 <a@b.example>: Recipient address rejected: User unknown")
    assert p.returncode == 0 and p.stdout.split("\t")[:4] == ["userunknown", "B", "550", "5.1.1\n"]
    p = run("--json", "452 4.2.2 mailbox full")
    assert p.returncode == 0 and json.loads(p.stdout)["reason"] == "mailboxfull"
    p = run("250 ok")
    assert p.returncode == 1 and p.stdout.startswith("delivered")
