"""The generic layers' judgement, one example of our own per kind of miss found on mail the engine
was not tuned on (corpus/bounces-more). Messages are read with every format module turned off,
so these pass on the generic layers alone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mailtally.bounces import classify, lhost, parse
from mailtally.vocab import Reason


@pytest.fixture(autouse=True)
def generic_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(lhost, "ENABLED", False)
    yield


def _dsn(recipient: str, status: str, diagnostic: str, text: str = "", dtype: str = "smtp") -> bytes:
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.sender.example>\n"
        "To: bounces@sender.example\n"
        "Subject: Undelivered Mail Returned to Sender\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
        f"--b\nContent-Type: text/plain\n\n{text or 'Your message could not be delivered.'}\n\n"
        "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.sender.example\n\n"
        f"Final-Recipient: rfc822; {recipient}\nAction: failed\nStatus: {status}\n"
        f"Diagnostic-Code: {dtype}; {diagnostic}\n\n--b--\n"
    ).encode()


def _reasons(raw: bytes) -> list[tuple[str, Reason]]:
    return [(r.recipient, r.reason) for r in parse(raw)]


# Auto-replies without RFC 3834 headers: known by their subject, in several languages, or by a
# bulk Precedence from a person together with a thank-you subject or an away body.
@pytest.mark.parametrize(
    ("subject", "headers", "body"),
    [
        ("AUTO: Jane Roe is out of the office (back 4 May)", "", "I am out of the office until 4 May."),
        ("[Automatyczna odpowiedź] Re: spring offer", "Precedence: junk\n", "Dziękuję za wiadomość."),
        ("Risposta automatica: offerta", "", "Sono in ferie fino al 10."),
        ("Thanks for your message", "Precedence: bulk\n", "We will reply as soon as we can."),
    ],
)
def test_auto_replies_known_by_subject_or_precedence(subject: str, headers: str, body: str) -> None:
    raw = (
        f"From: Jane Roe <jane@person.example>\nTo: bounces+x@sender.example\nSubject: {subject}\n{headers}"
        f"Content-Type: text/plain; charset=utf-8\n\n{body}\n"
    ).encode()
    assert _reasons(raw) == [("jane@person.example", Reason.VACATION)]


def test_a_newsletter_with_bulk_precedence_is_no_auto_reply() -> None:
    raw = (
        b"From: News <news@shop.example>\nTo: bounces+x@sender.example\nSubject: Thanks for your order\n"
        b"Precedence: bulk\nList-Unsubscribe: <mailto:u@shop.example>\n\nOur spring offers.\n"
    )
    assert parse(raw) == []


# User-unknown wording we did not know, under a status that says nothing (5.0.0).
@pytest.mark.parametrize(
    "diagnostic",
    [
        "550 User [gone@receiver.example] does not exist",
        "550 ** No mail box available for this user **",
        "550 BAD_RECIPIENT - see http://mail.receiver.example/why",
        "553 sorry, badrcptto (#5.7.1)",
        "550 Invalid final delivery userid: gone@receiver.example",
    ],
)
def test_user_unknown_wording_under_a_generic_status(diagnostic: str) -> None:
    assert classify("5.0.0", "", diagnostic, command="RCPT") is Reason.USERUNKNOWN
    raw = _dsn("gone@receiver.example", "5.0.0", diagnostic + " (in reply to RCPT TO command)")
    assert _reasons(raw) == [("gone@receiver.example", Reason.USERUNKNOWN)]


# A 5.7.x status is a catch-all: clear text outweighs it.
def test_generic_security_status_never_beats_clear_text() -> None:
    assert classify("5.7.1", "550", "550 5.7.1 No mailbox found", command="RCPT") is Reason.USERUNKNOWN
    assert classify("5.7.1", "550", "550 5.7.1 Your message breaches our URIBL policy", command="DATA") \
        is Reason.SPAMDETECTED
    assert classify("5.7.1", "554", "554 5.7.1 Mail appears to be unsolicited - score 61 over the limit 50",
                    command="DATA") is Reason.SPAMDETECTED
    assert classify("5.7.1", "550", "550 5.7.1 Mass mailer detected, message refused", command="DATA") \
        is Reason.SPAMDETECTED
    # An antispam refusal that mentions SPF, HELO and PTR as advice is a spam verdict ...
    assert classify("5.7.1", "554", "554 5.7.1 Your message failed our antispam checks; make sure your spf, "
                    "helo and ptr are configured correctly", command="DATA") is Reason.SPAMDETECTED
    # ... while a failed SPF check itself stays an authentication failure.
    assert classify("5.7.1", "550", "550 5.7.1 SPF check failed for sender.example", command="MAIL") \
        is Reason.AUTHFAILURE
    # The security status alone still says what it says.
    assert classify("5.7.1", "550", "550 5.7.1 Access denied", command="RCPT") is Reason.SECURITYERROR


def test_a_named_spam_signature_is_spam_not_a_virus() -> None:
    text = "554 email rejected due to security policies - MCSpamSignature.sa.9.9"
    assert classify("5.0.0", "554", text, command="DATA", remote_mta="eu-smtp-inbound-1.mimecast.com") \
        is Reason.SPAMDETECTED


# Free text with no useful status: an MTA's own local delivery saying "unknown user".
def test_local_delivery_unknown_user_is_not_a_filter() -> None:
    raw = _dsn("gone@receiver.example", "5.0.0", 'unknown user: "gone"', dtype="X-Postfix")
    assert _reasons(raw) == [("gone@receiver.example", Reason.USERUNKNOWN)]


# Mailbox-full variants.
def test_bilingual_too_many_messages_is_mailbox_full() -> None:
    text = ("550 <full@receiver.example> Benutzer hat zuviele Mails auf dem Server. / "
            "User has too many messages on the server.")
    assert classify("5.0.0", "550", text, command="RCPT") is Reason.MAILBOXFULL


def test_status_and_text_that_agree_outweigh_words_in_quoted_headers() -> None:
    raw = (
        b"From: Mail Delivery Subsystem <MAILER-DAEMON@relay.receiver.example>\n"
        b"To: bounces@sender.example\nSubject: Returned mail: see transcript for details\n\n"
        b"   ----- The following addresses had permanent fatal errors -----\n"
        b"<full@receiver.example>\n    (reason: 552 5.2.2 Over quota)\n\n"
        b"   ----- Transcript of session follows -----\n"
        b">>> DATA\n<<< 552 5.2.2 Over quota\n"
        b"   ----- Message header follows -----\n"
        b"Subject: spring offer\nX-Scanner: attachments suppressed\n"
    )
    assert _reasons(raw) == [("full@receiver.example", Reason.MAILBOXFULL)]


def test_local_recipient_without_domain_takes_the_text_that_names_it() -> None:
    raw = _dsn("full@receiver.example", "5.0.0", "", text="Failed to deliver to '<full@receiver.example>'\n"
               "LOCAL module(account full) reports:\n account is full (quota exceeded)")
    raw = raw.replace(b"Final-Recipient: rfc822; full@receiver.example",
                      b"Original-Recipient: rfc822;<full@receiver.example>\nFinal-Recipient: LOCAL;<full>")
    raw = raw.replace(b"Diagnostic-Code: smtp; \n", b"")
    assert _reasons(raw) == [("full@receiver.example", Reason.MAILBOXFULL)]


# "Not an active address" is the address; an inactive account is a suspended one.
def test_not_an_active_address_versus_an_inactive_account() -> None:
    assert classify("5.0.0", "550", "550 gone@receiver.example is not an active address at this host",
                    command="RCPT") is Reason.USERUNKNOWN
    assert classify("5.0.0", "550", "550 account is inactive", command="RCPT") is Reason.SUSPEND
    # A mailbox-disabled status beside text that says only "unavailable" is a disabled mailbox.
    assert classify("5.2.1", "550", "550 5.2.1 Mailbox not available", command="RCPT") is Reason.SUSPEND


def test_an_address_that_is_not_valid_is_reported_as_written() -> None:
    raw = _dsn("someone@#receiver.example", "5.1.2", "550 Host unknown")
    assert _reasons(raw) == [("someone@#receiver.example", Reason.HOSTUNKNOWN)]


# Rules that moved out of the format modules into the generic layers.
def test_transcript_command_line_names_the_stage() -> None:
    raw = (
        b"From: Mail Delivery Subsystem <MAILER-DAEMON@relay.sender.example>\n"
        b"To: bounces@sender.example\nSubject: Returned mail: User unknown\n\n"
        b"   ----- Transcript of session follows -----\n"
        b"While talking to mx.receiver.example:\n"
        b">>> RCPT To:<gone@receiver.example>\n"
        b"<<< 550 <gone@receiver.example>, User Unknown\n"
        b"   ----- Unsent message follows -----\n"
        b"To: gone@receiver.example\nSubject: spring offer\n"
    )
    [rec] = parse(raw)
    assert (rec.recipient, rec.command, rec.reason) == ("gone@receiver.example", "RCPT", Reason.USERUNKNOWN)


def test_rcpt_tags_and_qmail_wording_name_the_stage() -> None:
    assert classify("5.2.1", "550", "550 5.2.1 <gone@receiver.example>... User Unknown [RCPT_TO]") \
        is Reason.USERUNKNOWN
    assert classify("5.2.1", "550", "192.0.2.1 does not like recipient. Remote host said: 550 5.2.1 "
                    "<gone@receiver.example>... User Unknown") is Reason.USERUNKNOWN


def test_a_group_that_refuses_the_poster() -> None:
    text = "The group you tried to contact (news) may not exist, or you may not have permission to post."
    assert classify(diagnostic=text, recipient="news@googlegroups.com") is Reason.REJECTED


def test_no_mail_exchanger_means_the_domain_takes_no_mail() -> None:
    assert classify("5.4.4", "", "Sorry, I couldn't find a mail exchanger or IP address. (#5.4.4)") \
        is Reason.NOTACCEPT


def test_network_and_routing_wording() -> None:
    assert classify("4.4.1", "", "Sorry, I wasn't able to establish an SMTP connection. (#4.4.1) I'm not going "
                    "to try again; this message has been in the queue too long.") is Reason.NETWORKERROR
    assert classify("", "", "Unrouteable address") is Reason.HOSTUNKNOWN


def test_a_content_status_with_a_vague_refusal_is_a_content_error() -> None:
    assert classify("5.6.1", "500", "500 5.6.1 Message content rejected") is Reason.CONTENTERROR
    assert classify("5.6.1", "554", "554 5.6.1 Message content rejected as spam", command="DATA") \
        is Reason.SPAMDETECTED


def test_a_directory_lookup_is_about_the_address() -> None:
    assert classify(diagnostic="User jane (jane@receiver.example) not listed in Domino Directory") \
        is Reason.USERUNKNOWN


def test_a_notice_naming_no_recipient_takes_the_originals_to() -> None:
    raw = (
        b"From: NDR Administrator <sysadmin@gw.receiver.example>\nTo: bounces@sender.example\n"
        b"Subject: Undeliverable Message\n\nMessage could not be delivered.\n"
        b"Error: the recipient's mailbox is full\n\nOriginal Message:\n"
        b"From: Shop <news@sender.example>\nTo: 5550100@receiver.example\nSubject: offer\n\nHello\n"
    )
    assert _reasons(raw) == [("5550100@receiver.example", Reason.MAILBOXFULL)]


def test_a_class_only_status_yields_to_the_code_the_answer_names() -> None:
    raw = _dsn("gone@receiver.example", "5.0.0",
               "550 5.1.1 <gone@receiver.example>: Recipient address rejected: User unknown")
    [rec] = parse(raw)
    assert (rec.status, rec.reason) == ("5.1.1", Reason.USERUNKNOWN)


def test_delivery_to_a_program_that_failed_is_a_mailer_error() -> None:
    raw = _dsn("jane@receiver.example", "5.0.0", "")
    raw = raw.replace(b"Diagnostic-Code: smtp; \n", b"").replace(
        b"Final-Recipient: rfc822; jane@receiver.example",
        b"Final-Recipient: rfc822; jane@receiver.example\nX-Actual-Recipient: rfc822; |/usr/bin/procmail -f- #jane")
    assert _reasons(raw) == [("jane@receiver.example", Reason.MAILERERROR)]


# Recipients found by the shape of the notice, with no format module: the cases below are each a
# way real notices name (or hide) the address that failed.
def test_an_address_run_on_into_text_without_spaces_ends_at_its_domain() -> None:
    from mailtally.bounces.smtp import clean_address

    assert clean_address("jane@receiver.example.jp您好") == "jane@receiver.example.jp"
    assert clean_address("jane@例え.jp") == "jane@例え.jp"  # a Unicode domain stays whole


def test_the_notices_own_addressee_is_not_the_failed_recipient() -> None:
    raw = (
        "From: Mail Delivery Subsystem <mailer-daemon@mx.sender.example>\nTo: ann@sender.example\n"
        "Subject: Delivery Status Notification (Failure)\nX-Failed-Recipients: list@groups.receiver.example\n"
        "Content-Type: text/plain; charset=utf-8\n\nann@sender.example您好\n\n您的郵件無法送達。\n"
    ).encode()
    assert [r.recipient for r in parse(raw)] == ["list@groups.receiver.example"]


def test_an_address_as_written_then_as_read() -> None:
    raw = (
        b"From: Mail Delivery System <mailer-daemon@mx.sender.example>\nTo: ann@sender.example\n"
        b"Subject: Mail failure - malformed recipient address\n\n"
        b"A message that you sent contained one or more recipient addresses that were\nincorrectly constructed:\n\n"
        b"  bob@receiver.example <jane@receiver.example>: malformed address: <jane@receiver.example> may not "
        b"follow bob@receiver.example\n\n------ This is a copy of your message, including all the headers. ------\n\n"
        b"To: bob@receiver.example <jane@receiver.example>\nSubject: hi\n\nhi\n"
    )
    assert _reasons(raw) == [("jane@receiver.example", Reason.SYNTAXERROR)]


def test_an_envelope_echo_under_the_address_takes_the_error_above_it() -> None:
    raw = (
        b"From: post_master@receiver.example\nTo: ann@sender.example\nSubject: Re: offer\n\n"
        b"Error: Invalid user address\n\nError message below:\n550 - Requested action not taken: no such user here\n\n"
        b"Message details:\n  Subject: offer\n  MAIL FROM: ann@sender.example\n  RCPT TO: gone@receiver.example\n"
        b"  Size (in bytes): 222\n"
    )
    [rec] = parse(raw)
    assert (rec.recipient, rec.reply_code, rec.reason) == ("gone@receiver.example", "550", Reason.USERUNKNOWN)


def test_a_notice_from_no_daemon_that_returns_the_failed_message() -> None:
    raw = (
        b"From: no-reply@carrier.example\nTo: ann@sender.example\nSubject: Mail\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\n'
        b"Your mail sent on: Thu, 29 Apr 2013 00:00:00 +0900\n     Could not be delivered to: <jane@carrier.example>\n"
        b"     As their mailbox is full.\n\n--b\nContent-Type: message/rfc822\n\n"
        b"From: Ann <ann@sender.example>\nTo: <jane@carrier.example>\nSubject: hi\n\nhi\n--b--\n"
    )
    assert _reasons(raw) == [("jane@carrier.example", Reason.MAILBOXFULL)]


def test_the_same_words_without_a_returned_message_are_no_bounce() -> None:
    raw = (
        b"From: no-reply@carrier.example\nTo: ann@sender.example\nSubject: Mail\n\n"
        b"Your parcel could not be delivered to: <jane@carrier.example>\n"
    )
    assert parse(raw) == []


def test_a_failed_list_names_each_recipient_in_its_own_shape() -> None:
    raw = (
        b"From: mailer-daemon@mail.sender.example\nTo: ann@sender.example\n"
        b"Subject: Mail Delivery Status Notification (Delay)\n\nTHIS IS A WARNING MESSAGE ONLY.\n\n"
        b"----- The following addresses had fatal errors -----\n"
        b"[Status: Error, Address: <jane@receiver.example>, ResponseCode 421, , Host not reachable.]\n\n"
        b"Message will be retried for 4 more day(s)\n\n----- Transcript of session follows -----\n\n"
        b"Received:from mail.sender.example by mx.sender.example\nTo:<jane@receiver.example>\n"
        b"Message-ID:<1@sender.example>\n"
    )
    assert [r.recipient for r in parse(raw)] == ["jane@receiver.example"]


def test_a_delivery_report_with_no_recipient_fields() -> None:
    raw = (
        b"From: MAILER-DAEMON@mx.sender.example (Mail Delivery System)\nTo: ann@sender.example\n"
        b"Subject: Undelivered Mail Returned to Sender\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
        b"--b\nContent-Type: text/plain\n\nThe mail system\n\n\t--- Delivery report unavailable ---\n\n"
        b"--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.sender.example\n"
        b"Arrival-Date: Mon, 16 Dec 2019 14:12:15 +0100\n\n"
        b"--b\nContent-Type: message/rfc822\n\nFrom: <ann@sender.example>\nTo: jane@receiver.example\n"
        b"Subject: hi\n\nhi\n--b--\n"
    )
    assert _reasons(raw) == [("jane@receiver.example", Reason.UNDEFINED)]


def test_a_mailing_list_refusing_a_post_from_a_non_member() -> None:
    raw = (
        b"From: offers-admin@lists.receiver.example\nTo: ann@sender.example\n"
        b"Subject: You ann@sender.example are not member (offers ML)\n\n"
        b"You are not a member of this mailing list <offers@lists.receiver.example>.\n\n"
        b"Send 'guide' to offers-ctl@lists.receiver.example.\n"
    )
    assert _reasons(raw) == [("offers@lists.receiver.example", Reason.REJECTED)]
    list_post = raw.replace(b"From: offers-admin@", b"From: ann@").replace(b"offers-admin", b"ann")
    assert parse(list_post) == []
    loop = raw.replace(b"You are not a member of this mailing list", b"Duplicated Message-ID in")
    assert _reasons(loop) == [("offers@lists.receiver.example", Reason.SYSTEMERROR)]


# Reasons the text names more precisely than the status beside it.
def test_an_exchange_code_in_the_text_outweighs_the_status() -> None:
    raw = _dsn("jane@receiver.example", "5.2.3",
               "550 5.2.3 RESOLVER.RST.RecipSizeLimit; message too large for this recipient")
    assert _reasons(raw) == [("jane@receiver.example", Reason.MESGTOOBIG)]
    assert classify("5.2.3", "552", "552 5.2.3 Message length exceeds limit set by recipient") is Reason.EXCEEDLIMIT


def test_iso_2022_jp_is_read_where_no_charset_is_declared() -> None:
    diagnostic = "ユーザー Neko (jane@receiver.example) は Domino ディレクトリには見つかりません。"
    raw = _dsn("jane@receiver.example", "5.0.0", diagnostic.encode("iso-2022-jp").decode("ascii"), dtype="X-Notes")
    [rec] = parse(raw)
    assert (rec.diagnostic, rec.reason) == (diagnostic, Reason.USERUNKNOWN)


def test_euc_jp_declared_as_iso_2022_jp() -> None:
    body = "次のあて先へのメッセージはエラーのため送信できませんでした。\n\n" \
        "Your message was not delivered within 0 days and 1 hours.\nRemote host is not responding.\n\n" \
        "The following recipients did not receive this message:\n\n<jane@carrier.example>\n"
    raw = (
        b"From: Postmaster@carrier.example\nTo: ann@sender.example\nSubject: Mail System Error - Returned Mail\n"
        b'Content-Type: text/plain; charset="ISO-2022-JP"\n\n' + body.encode("euc-jp")
    )
    [rec] = parse(raw)
    assert rec.diagnostic.startswith("次のあて先へ")
    assert (rec.recipient, rec.reason) == ("jane@carrier.example", Reason.EXPIRED)


# Free-text notices of old webmail, ISP and university servers: the address inside a sentence.
@pytest.mark.parametrize(
    ("subject", "body", "want"),
    [
        ("Returned mail", "Your message to jane@isp.example could not be delivered because the recipient's "
         "mailbox is full.\n", Reason.MAILBOXFULL),
        ("Message delivery has failed", "Message from ann@sender.example was not delivered to jane@isp.example.\n"
         "Reason: mailbox is over quota\n", Reason.MAILBOXFULL),
        ("Undeliverable Mail", "The following message to <jane@isp.example> was undeliverable.\nThe reason for the "
         "problem:\n5.1.0 - Unknown address error 550-'jane@isp.example... No such user'\n", Reason.USERUNKNOWN),
        ("Delivery has failed", "Your message cannot be delivered to the following recipients:\n\n  Recipient "
         "address: jane@isp.example\n  Diagnostic code: smtp;550 5.1.1 unknown or illegal alias: jane@isp.example\n",
         Reason.USERUNKNOWN),
        ("Permanent Delivery Failure", "--- Session Transcript ---\n Sat 2006-09-02 10:00:00: Attempting SMTP "
         "connection to [mx.isp.example]\n Sat 2006-09-02 10:00:01: <-- 550 5.1.1 <jane@isp.example>... User "
         "unknown\n--- End Transcript ---\n", Reason.USERUNKNOWN),
    ],
)
def test_free_text_notices(subject: str, body: str, want: Reason) -> None:
    raw = f"From: postmaster@isp.example\nTo: ann@sender.example\nSubject: {subject}\n\n{body}".encode()
    assert _reasons(raw) == [("jane@isp.example", want)]


def test_a_reply_refusing_the_sender_names_no_recipient() -> None:
    raw = (
        b"From: postmaster@isp.example\nTo: ann@sender.example\nSubject: Permanent Delivery Failure\n\n"
        b" 10:00:01: <-- 553 5.1.8 <ann@sender.example>... Domain of sender address does not exist\n"
        b" 10:00:01: <-- 550 5.7.1 <bounce@mailer.example>: sender rejected\n"
    )
    assert parse(raw) == []
