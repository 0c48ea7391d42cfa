"""Small, hand-written bounce messages for ingestion tests."""

from __future__ import annotations


def dsn(recipient: str, *, to: str = "bounces@sender.example.com", status: str = "5.1.1",
        diagnostic: str = "smtp; 550 5.1.1 <{r}>: Recipient address rejected: User unknown in local recipient table",
        original_headers: str = "", message_id: str = "<abc123@sender.example.com>") -> bytes:
    diag = diagnostic.format(r=recipient)
    return f"""Return-Path: <>
Received: from mx.remote.example (mx.remote.example [192.0.2.25]) by mail.sender.example.com
Date: Fri, 01 Mar 2024 10:05:00 +0000
From: MAILER-DAEMON@mx.remote.example (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: {to}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="BOUNDARY"
Message-Id: <20240301100500.1@mx.remote.example>

--BOUNDARY
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.remote.example.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<{recipient}>: host mx.remote.example[192.0.2.25] said: {diag}

--BOUNDARY
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.remote.example
Arrival-Date: Fri,  1 Mar 2024 10:04:58 +0000 (UTC)

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: failed
Status: {status}
Remote-MTA: dns; mx.remote.example
Diagnostic-Code: {diag}

--BOUNDARY
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

Return-Path: <news@sender.example.com>
From: News <news@sender.example.com>
To: {recipient}
Subject: Spring news
Message-ID: {message_id}
{original_headers}
--BOUNDARY--
""".replace("\n", "\r\n").encode()


def vacation(sender: str, to: str = "news@sender.example.com") -> bytes:
    return f"""From: {sender}
To: {to}
Subject: Out of office: Spring news
Date: Fri, 01 Mar 2024 11:00:00 +0000
Auto-Submitted: auto-replied
Precedence: bulk
Message-ID: <ooo-1@remote.example>

I am out of the office until March 10 with limited access to email.
""".encode()


def complaint(recipient: str, feedback_type: str = "abuse") -> bytes:
    return f"""From: feedback@fbl.example.net
To: fbl@sender.example.com
Subject: FW: Spring news
Date: Fri, 01 Mar 2024 12:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="ARF"

--ARF
Content-Type: text/plain; charset="US-ASCII"

This is an email abuse report for an email message received from IP 192.0.2.1.

--ARF
Content-Type: message/feedback-report

Feedback-Type: {feedback_type}
User-Agent: SomeGenerator/1.0
Version: 1
Original-Mail-From: <news@sender.example.com>
Original-Rcpt-To: <{recipient}>
Arrival-Date: Fri, 01 Mar 2024 11:58:00 +0000
Source-IP: 192.0.2.1

--ARF
Content-Type: message/rfc822

From: News <news@sender.example.com>
To: {recipient}
Subject: Spring news
Message-ID: <arf-orig@sender.example.com>

Hello.
--ARF--
""".replace("\n", "\r\n").encode()


ORDINARY = b"""From: friend@example.org
To: me@example.com
Subject: lunch?
Date: Fri, 01 Mar 2024 12:00:00 +0000

Are you free on Tuesday?
"""
