"""`bounces.classify`: one remote answer judged from its status, reply code and text together."""

from __future__ import annotations

from mailtally.bounces import classify, parse
from mailtally.vocab import Reason


def test_specific_status_and_text_agree() -> None:
    assert classify("5.1.1", "550", "550 5.1.1 <a@example.org>: Recipient address rejected: User unknown",
                    command="RCPT") is Reason.USERUNKNOWN
    assert classify("4.2.2", "452", "452 4.2.2 Mailbox full") is Reason.MAILBOXFULL


def test_codes_are_read_from_the_text_when_not_given() -> None:
    assert classify(diagnostic="552 5.2.2 Over quota") is Reason.MAILBOXFULL
    assert classify(diagnostic="421 4.7.0 Too many connections from your host") is Reason.TOOMANYCONN


def test_success_is_not_a_failure() -> None:
    assert classify("2.0.0", "250", "250 2.0.0 Ok: queued as 4F1B2") is Reason.DELIVERED


DSN = b"""From: MAILER-DAEMON@mx.sender.example
To: bounces@sender.example
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b1"

--b1
Content-Type: text/plain

Your message could not be delivered.

--b1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.sender.example

Original-Recipient: rfc822; list-member@old.example
Final-Recipient: rfc822; forwarded-to@new.example
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <forwarded-to@new.example>: Recipient address rejected: User unknown

--b1--
"""


def test_original_recipient_beside_the_final_one() -> None:
    [rec] = parse(DSN)
    assert rec.recipient == "forwarded-to@new.example"
    assert rec.original_recipient == "list-member@old.example"
    assert rec.to_dict()["original_recipient"] == "list-member@old.example"
    same = DSN.replace(b"list-member@old.example", b"forwarded-to@new.example")
    assert parse(same)[0].original_recipient == ""
