"""Hand-written examples in the repo: one per reason module and per format module, asserted exactly."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailtally.bounces import UNDISCLOSED_RECIPIENT, BounceRecord, parse
from mailtally.vocab import BounceCode, Reason, bounce_code_for

EXAMPLES = Path(__file__).resolve().parent / "examples"
REASON_FILES = sorted(EXAMPLES.glob("reason-*.eml"))


def _one(name: str) -> BounceRecord:
    records = parse((EXAMPLES / name).read_bytes())
    assert len(records) == 1, records
    return records[0]


@pytest.mark.parametrize("path", REASON_FILES, ids=[p.stem for p in REASON_FILES])
def test_reason_example(path: Path) -> None:
    reason = Reason(path.stem.removeprefix("reason-"))
    (rec,) = parse(path.read_bytes())
    assert rec.reason is reason
    assert rec.bounce_code == bounce_code_for(reason)


def test_every_reason_module_has_an_example() -> None:
    from mailtally.bounces import reason as reason_pkg

    modules = {p.stem for p in Path(reason_pkg.__file__).parent.glob("*.py") if not p.stem.startswith("_")}
    examples = {p.stem.removeprefix("reason-") for p in REASON_FILES} | {"delivered"}
    assert modules <= examples, modules - examples


def test_dsn_example_carries_every_field() -> None:
    rec = _one("reason-userunknown.eml")
    assert rec.recipient == "userunknown@receiver.example"
    assert rec.bounce_code is BounceCode.NONEXISTENT and rec.hard_bounce
    assert rec.status == "5.1.1" and rec.reply_code == "550"
    assert rec.action == "failed"
    assert rec.remote_mta == "mx.receiver.example" and rec.reporting_mta == "mx.sender.example"
    assert rec.timestamp == datetime(2024, 1, 2, 9, 59, 58, tzinfo=UTC)
    assert rec.original_message_id == "<campaign-42.contact-7@sender.example>"
    assert rec.original_subject == "January news"
    assert rec.original_headers == {"X-Mailtally-Activity": "act-42"}
    d = rec.to_dict()
    assert d["reason"] == "userunknown" and d["bounce_code"] == "B" and d["timestamp"].startswith("2024-01-02T09:59:58")


def test_records_are_immutable_values() -> None:
    import pickle

    raw = (EXAMPLES / "reason-userunknown.eml").read_bytes()
    rec, again = _one("reason-userunknown.eml"), parse(raw)[0]
    assert rec == again and rec is not again and rec != parse((EXAMPLES / "reason-mailboxfull.eml").read_bytes())[0]
    assert pickle.loads(pickle.dumps(rec)) == rec
    assert repr(rec).startswith("BounceRecord(recipient='userunknown@receiver.example', reason=")
    with pytest.raises(AttributeError):
        rec.recipient = "other@receiver.example"


def test_feedback_is_not_a_bounce() -> None:
    rec = _one("reason-feedback.eml")
    assert rec.recipient == "complainer@isp.example"
    assert rec.reason is Reason.FEEDBACK and rec.bounce_code is None and not rec.hard_bounce
    assert rec.feedback_type == "abuse"
    assert rec.original_headers["X-Mailtally-Activity"] == "act-42"


def test_complaint_naming_no_recipient_gets_the_placeholder() -> None:
    raw = (EXAMPLES / "reason-feedback.eml").read_bytes()
    raw = raw.replace(b"Original-Rcpt-To: <complainer@isp.example>\n", b"")
    raw = raw.replace(b"To: complainer@isp.example", b"To: <Undisclosed Recipients>")
    (rec,) = parse(raw)
    assert rec.recipient == UNDISCLOSED_RECIPIENT == "undisclosed-recipient-in-headers@libsisimai.org.invalid"
    assert rec.reason is Reason.FEEDBACK and rec.bounce_code is None and rec.feedback_type == "abuse"


def test_auto_reply_naming_nobody_gets_no_placeholder() -> None:
    raw = (EXAMPLES / "reason-vacation.eml").read_bytes()
    raw = b"\n".join(ln for ln in raw.split(b"\n") if not ln.startswith(b"From:"))
    assert parse(raw) == []


def test_vacation_names_the_away_recipient() -> None:
    rec = _one("reason-vacation.eml")
    assert rec.recipient == "pat@receiver.example"
    assert rec.bounce_code is BounceCode.VACATION


def test_amazonses_json_notification() -> None:
    rec = _one("lhost-amazonses-bounce.eml")
    assert (rec.recipient, rec.reason, rec.status) == ("gone@receiver.example", Reason.USERUNKNOWN, "5.1.1")


def test_googlegroups_refusal() -> None:
    rec = _one("lhost-googlegroups-rejected.eml")
    assert (rec.recipient, rec.reason) == ("club@googlegroups.com", Reason.REJECTED)


@pytest.mark.parametrize("name", ["delivered-dsn.eml", "lhost-amazonses-delivery.eml", "not-a-bounce.eml"])
def test_not_bounces_yield_nothing(name: str) -> None:
    assert parse((EXAMPLES / name).read_bytes()) == []


def _delivered(name: str) -> list[tuple[str, Reason, BounceCode | None, bool, str, str]]:
    return [
        (r.recipient, r.reason, r.bounce_code, r.hard_bounce, r.status, r.action)
        for r in parse((EXAMPLES / name).read_bytes(), delivered=True)
    ]


def test_delivered_dsn_on_request() -> None:
    assert _delivered("delivered-dsn.eml") == [
        ("ok@receiver.example", Reason.DELIVERED, None, False, "2.0.0", "delivered"),
        ("list@lists.receiver.example", Reason.DELIVERED, None, False, "2.0.0", "relayed"),
    ]


def test_delivered_without_status_is_not_a_bounce() -> None:
    raw = (EXAMPLES / "delivered-dsn.eml").read_bytes().replace(b"Status: 2.0.0\n", b"")
    raw = raw.replace(b"smtp; 250 2.0.0 ", b"smtp; 250 ")
    assert parse(raw) == []
    assert [r.reason for r in parse(raw, delivered=True)] == [Reason.DELIVERED, Reason.DELIVERED]


def test_mixed_dsn_reports_the_failure_and_on_request_the_delivery() -> None:
    raw = (EXAMPLES / "delivered-mixed.eml").read_bytes()
    assert [(r.recipient, r.reason) for r in parse(raw)] == [("gone@receiver.example", Reason.USERUNKNOWN)]
    assert _delivered("delivered-mixed.eml") == [
        ("ok@receiver.example", Reason.DELIVERED, None, False, "2.0.0", "delivered"),
        ("gone@receiver.example", Reason.USERUNKNOWN, BounceCode.NONEXISTENT, True, "5.1.1", "failed"),
    ]


def test_amazonses_delivery_notification_on_request() -> None:
    (rec,) = parse((EXAMPLES / "lhost-amazonses-delivery.eml").read_bytes(), delivered=True)
    assert (rec.recipient, rec.reason, rec.bounce_code, rec.hard_bounce) == (
        "ok@receiver.example", Reason.DELIVERED, None, False
    )
    assert (rec.status, rec.reply_code, rec.reporting_mta) == ("2.6.0", "250", "a1-2.smtp-out.amazonses.com")
    assert rec.timestamp == datetime(2024, 1, 2, 9, 59, 3, 512000, tzinfo=UTC)


def test_crlf_and_cr_line_ends_read_the_same() -> None:
    raw = (EXAMPLES / "reason-mailboxfull.eml").read_bytes()
    want = parse(raw)
    assert parse(raw.replace(b"\n", b"\r\n")) == want
    assert parse(raw.replace(b"\n", b"\r")) == want


def _rows(name: str) -> list[tuple[str, Reason, str, str, str]]:
    return [(r.recipient, r.reason, r.status, r.reply_code, r.command) for r in parse((EXAMPLES / name).read_bytes())]


def test_zoho_invalid_address_line() -> None:
    assert _rows("lhost-zoho-userunknown.eml") == [
        ("gone@receiver.example", Reason.USERUNKNOWN, "5.1.1", "550", "")
    ]


def test_zoho_delay_warning_is_expired() -> None:
    assert _rows("lhost-zoho-delay.eml") == [("slow@receiver.example", Reason.EXPIRED, "", "421", "")]


def test_kddi_mailbox_full() -> None:
    assert _rows("lhost-kddi-mailboxfull.eml") == [("full@au.example", Reason.MAILBOXFULL, "", "", "")]


def test_apachejames_message_details() -> None:
    assert _rows("lhost-apachejames-userunknown.eml") == [
        ("nobody@gateway.example", Reason.USERUNKNOWN, "", "550", "RCPT")
    ]


def test_verizon_mms_gateway() -> None:
    assert _rows("lhost-verizon-mobile.eml") == [("5550100@mms.carrier.example", Reason.USERUNKNOWN, "", "", "")]


def test_x6_rejected_recipient() -> None:
    assert _rows("lhost-x6-userunknown.eml") == [
        ("gone@receiver.example", Reason.USERUNKNOWN, "5.1.1", "550", "RCPT")
    ]


def test_fml_refuses_non_member() -> None:
    assert _rows("lhost-fml-notmember.eml") == [("club@lists.example", Reason.REJECTED, "", "", "")]


def test_v5sendmail_transcript_belongs_to_the_next_recipient() -> None:
    recs = parse((EXAMPLES / "lhost-v5sendmail-transcript.eml").read_bytes())
    assert [(r.recipient, r.reason, r.reply_code, r.command) for r in recs] == [
        ("gone@receiver.example", Reason.USERUNKNOWN, "550", "RCPT"),
        ("lost@nowhere.example", Reason.HOSTUNKNOWN, "550", ""),
    ]
    assert recs[0].diagnostic == "550 Requested mailbox not found. No such user here."


def test_postfix_smtpd_transcript() -> None:
    assert _rows("lhost-postfix-smtpd-transcript.eml") == [
        ("someone@receiver.example", Reason.SYSTEMERROR, "4.3.0", "451", "DATA")
    ]


def test_google_rhost_reads_its_own_wording() -> None:
    # "unusual rate of unsolicited mail" names the sending IP: blocked, not spam or rate limiting.
    rec = _one("rhost-google-blocked.eml")
    assert (rec.recipient, rec.reason, rec.remote_mta) == (
        "ratelimited@gmail.com",
        Reason.BLOCKED,
        "gmail-smtp-in.l.google.com",
    )


# One hand-written answer per provider module in bounces/rhost/, each worded the way that
# provider documents it and chosen so that the generic phrase lists alone would read it otherwise
# (or not at all): the provider's own code or wording must decide.
RHOST_EXAMPLES = [
    ("rhost-microsoft-speeding.eml", "news@contoso.example", Reason.SPEEDING),
    ("rhost-yahoo-rejected.eml", "reader@yahoo.com", Reason.REJECTED),
    ("rhost-apple-speeding.eml", "busy@icloud.com", Reason.SPEEDING),
    ("rhost-franceptt-suspend.eml", "ancien@laposte.net", Reason.SUSPEND),
    ("rhost-godaddy-speeding.eml", "owner@smallshop.example", Reason.SPEEDING),
    ("rhost-kddi-filtered.eml", "friend@ezweb.ne.jp", Reason.FILTERED),
    ("rhost-mimecast-rejected.eml", "ops@acme.example", Reason.REJECTED),
    ("rhost-nttdocomo-rejected.eml", "keitai@docomo.ne.jp", Reason.REJECTED),
    ("rhost-cox-authfailure.eml", "neighbor@cox.net", Reason.AUTHFAILURE),
    ("rhost-spectrum-policyviolation.eml", "viewer@charter.net", Reason.POLICYVIOLATION),
    ("rhost-tencent-spamdetected.eml", "pengyou@qq.com", Reason.SPAMDETECTED),
    ("rhost-iua-suspend.eml", "sleepy@i.ua", Reason.SUSPEND),
    ("rhost-zoho-rejected.eml", "desk@zoho.com", Reason.REJECTED),
    ("rhost-messagelabs-badreputation.eml", "it@bigcorp.example", Reason.BADREPUTATION),
    ("rhost-aol-notaccept.eml", "friend@nomx.example", Reason.NOTACCEPT),
    ("rhost-googlegroups-rejected.eml", "makers@googlegroups.com", Reason.REJECTED),
]


@pytest.mark.parametrize(("name", "recipient", "reason"), RHOST_EXAMPLES, ids=[c[0] for c in RHOST_EXAMPLES])
def test_rhost_provider_example(name: str, recipient: str, reason: Reason) -> None:
    rec = _one(name)
    assert (rec.recipient, rec.reason) == (recipient, reason)
    assert rec.bounce_code == bounce_code_for(reason)


def test_every_rhost_module_has_an_example() -> None:
    from mailtally.bounces import rhost as rhost_pkg

    modules = {p.stem for p in Path(rhost_pkg.__file__).parent.glob("*.py") if not p.stem.startswith("_")}
    examples = {n.removeprefix("rhost-").split("-")[0] for n in (c[0] for c in RHOST_EXAMPLES)} | {"google"}
    assert modules <= examples, modules - examples


def test_apple_mail_unsubscribe_is_an_opt_out() -> None:
    rec = _one("rfc3834-apple-unsubscribe.eml")
    assert (rec.recipient, rec.reason, rec.feedback_type) == ("reader@icloud.com", Reason.FEEDBACK, "opt-out")
    assert rec.bounce_code is None


def test_gmail_relay_state_names_the_stage() -> None:
    from mailtally.bounces.rhost import decide

    text = (
        "technical details of permanent failure: google tried to deliver your message, but it was rejected by the "
        "recipient domain. the error that the other server returned was: 554 554 5.7.0 header error (state 18)."
    )
    assert decide("", "receiver.example", "", text, "5.7.0", "554") is Reason.FILTERED
    # A precise status code from the remote server says more than Gmail's stage number.
    assert decide("", "receiver.example", "", text.replace("5.7.0", "5.7.1"), "5.7.1", "554") is None


def test_bounce_forwarded_inline_is_read_unquoted() -> None:
    assert _rows("fallback-forwarded-inline.eml") == [
        ("gone@receiver.example", Reason.USERUNKNOWN, "5.1.1", "550", "RCPT")
    ]


def test_qmail_names_the_smtp_step() -> None:
    assert _rows("lhost-qmail-rcpt.eml") == [
        ("gone@receiver.example", Reason.USERUNKNOWN, "5.2.1", "550", "RCPT"),
        ("nowhere@nomx.example", Reason.NOTACCEPT, "5.4.4", "", ""),
    ]


def test_powermta_bounce_category() -> None:
    assert _rows("lhost-powermta-category.eml") == [("quota@receiver.example", Reason.MAILBOXFULL, "5.0.0", "552", "")]


def test_mcafee_unknown_user() -> None:
    assert _rows("lhost-mcafee-unknown.eml") == [("nobody@receiver.example", Reason.USERUNKNOWN, "", "550", "")]


def test_imailserver_own_error_line() -> None:
    assert _rows("lhost-imailserver-mailboxfull.eml") == [
        ("stuffed@imail.receiver.example", Reason.MAILBOXFULL, "", "", "")
    ]


def test_domino_directory() -> None:
    assert _rows("lhost-domino-directory.eml") == [("someone@notes.receiver.example", Reason.USERUNKNOWN, "", "", "")]


def test_yahoo_step_bracket() -> None:
    assert _rows("lhost-yahoo-rcpt.eml") == [("left@receiver.example", Reason.USERUNKNOWN, "5.2.1", "550", "RCPT")]


def test_receivingses_template() -> None:
    assert _rows("lhost-receivingses-template.eml") == [("big@receiver.example", Reason.MESGTOOBIG, "5.3.4", "552", "")]


def test_exim_step_and_own_messages() -> None:
    assert _rows("lhost-exim-steps.eml") == [
        ("gone@receiver.example", Reason.USERUNKNOWN, "", "550", "RCPT"),
        ("lost@nowhere.example", Reason.HOSTUNKNOWN, "", "", ""),
        ("slow@busy.example", Reason.EXPIRED, "", "", ""),
    ]


def test_opensmtpd_own_messages() -> None:
    assert _rows("lhost-opensmtpd-delayed.eml") == [
        ("nomx@receiver.example", Reason.NOTACCEPT, "", "", ""),
        ("full@receiver.example", Reason.MAILBOXFULL, "5.2.2", "552", ""),
    ]


def test_ezweb_notice_says_the_reason() -> None:
    assert _rows("lhost-ezweb-notice.eml") == [("slowphone@ezweb.ne.jp", Reason.EXPIRED, "", "", "")]
    (rec,) = parse((EXAMPLES / "lhost-ezweb-notice.eml").read_bytes())
    assert rec.diagnostic.startswith("Your message was not delivered within 2 days")


def test_exchange_resolver_code() -> None:
    assert _rows("lhost-exchange-resolver.eml") == [("bigfiles@corp.example", Reason.MESGTOOBIG, "5.2.3", "550", "")]


def test_x3_without_technical_details_is_undefined() -> None:
    assert _rows("lhost-x3-nodetail.eml") == [("quiet@receiver.example", Reason.UNDEFINED, "", "", "")]


# One recipient per phrase rule that follows Sisimai 5's reading (hand-written, one DSN).
SISIMAI5_PHRASES = [
    ("gone-domain", Reason.HOSTUNKNOWN),  # "553 <host> does not exist"
    ("longline", Reason.MESGTOOBIG),  # "Line limit exceeded"
    ("locked", Reason.SUSPEND),  # " temporary locked", even with 5.7.1
    ("noptr", Reason.BLOCKED),  # "missing reverse DNS" alone is not requireptr
    ("dnsfail", Reason.NETWORKERROR),  # "Host not found, try again" is a DNS failure, not a missing host
    ("rcpt", Reason.USERUNKNOWN),  # Postfix's bare "Recipient address rejected." at RCPT
    ("unverified", Reason.NORELAYING),  # Amazon SES: "Email address is not verified."
    ("duphdr", Reason.CONTENTERROR),  # "Duplicate header 'DKIM-Signature'" is not a DKIM verdict
    ("denied", Reason.SECURITYERROR),  # SES's "Unknown address error" prefix is not an unknown user
    ("policy", Reason.SECURITYERROR),  # a bare "Policy violation" with 5.7.0
    ("o365", Reason.NETWORKERROR),  # Microsoft's 5.4.312 "DNS query failed"
]


def test_sisimai5_phrases() -> None:
    got = {r.recipient.partition("@")[0]: r.reason for r in parse((EXAMPLES / "phrases-sisimai5.eml").read_bytes())}
    assert got == dict(SISIMAI5_PHRASES)
