"""Microsoft (Exchange Online / Microsoft 365, Outlook.com, on-premises Exchange).

Exchange words each enhanced status code in a fixed way (Microsoft documents the NDR codes), so a
rule is the status code, or a class and a range of its last number (5.7.606-649), together with
a phrase of the documented text. Outlook.com (hotmail.com) adds two answers of its own.
"""

from __future__ import annotations

from mailtally.vocab import Reason

HOSTS: tuple[str, ...] = (
    ".prod.outlook.com", ".protection.outlook.com", ".onmicrosoft.com", ".exchangelabs.com", ".hotmail.com",
)
DOMAINS: frozenset[str] = frozenset({"outlook.com", "hotmail.com", "live.com", "msn.com"})

R = Reason
# (status, or "x.y." class with lo..hi for the last number; phrase; reason)
_RULES: tuple[tuple[str, int, int, str, Reason], ...] = (
    ("4.7.26", 0, 0, "must pass either spf or dkim validation", R.AUTHFAILURE),
    ("4.7.323", 0, 0, "tlsa-invalid", R.AUTHFAILURE),
    ("5.7.323", 0, 0, "tlsa-invalid", R.AUTHFAILURE),
    ("4.7.324", 0, 0, "dnssec-invalid", R.AUTHFAILURE),
    ("5.7.324", 0, 0, "dnssec-invalid", R.AUTHFAILURE),
    ("4.7.325", 0, 0, "certificate-host-mismatch", R.AUTHFAILURE),
    ("5.7.325", 0, 0, "certificate-host-mismatch", R.AUTHFAILURE),
    ("5.7.23", 0, 0, "sender policy framework violation", R.AUTHFAILURE),
    ("5.7.322", 0, 0, "certificate-expired", R.AUTHFAILURE),
    ("5.7.509", 0, 0, "does not pass dmarc verification", R.AUTHFAILURE),
    ("4.7.650", 0, 0, "rate limited due to ip reputation", R.BADREPUTATION),
    ("4.4.2", 0, 0, "connection dropped", R.BLOCKED),
    ("4.7.", 850, 899, "access denied, please try again later", R.BLOCKED),
    ("5.7.25", 0, 0, "must have a reverse dns record", R.BLOCKED),
    ("5.7.506", 0, 0, "access denied, bad helo", R.BLOCKED),
    ("5.7.507", 0, 0, "access denied, rejected by recipient", R.BLOCKED),
    ("5.7.510", 0, 0, "does not accept email over ipv6", R.BLOCKED),
    ("5.7.511", 0, 0, "access denied, banned sender", R.BLOCKED),
    ("5.7.513", 0, 0, "using customer block list", R.BLOCKED),
    ("5.7.", 606, 649, "access denied, banned sending ip", R.BLOCKED),
    ("4.7.", 500, 699, "access denied, please try again later", R.BLOCKED),
    ("5.5.4", 0, 0, "invalid domain name", R.BLOCKED),
    ("5.7.51", 0, 0, "restrictdomainstoipaddresses or restrictdomainstocertificate", R.BLOCKED),
    ("5.7.1", 0, 0, "part of their network is on our block list (s3150)", R.BLOCKED),
    ("5.3.0", 0, 0, "too many related errors", R.CONTENTERROR),
    ("5.6.11", 0, 0, "invalid characters", R.CONTENTERROR),
    ("5.4.11", 0, 0, "agent generated message depth exceeded", R.CONTENTERROR),
    ("5.5.6", 0, 0, "invalid message content", R.CONTENTERROR),
    ("5.2.3", 0, 0, "message too large for this recipient", R.EXCEEDLIMIT),
    ("4.4.1", 0, 0, "connection timed out", R.EXPIRED),
    ("4.4.7", 0, 0, "message delayed", R.EXPIRED),
    ("4.4.7", 0, 0, "message expired", R.EXPIRED),
    ("5.4.300", 0, 0, "message expired", R.EXPIRED),
    ("5.2.2", 0, 0, "mailbox full", R.MAILBOXFULL),
    ("5.2.2", 0, 0, "submission quota exceeded", R.SPEEDING),
    ("5.3.4", 0, 0, "message size exceeds fixed maximum message size", R.MESGTOOBIG),
    ("5.3.4", 0, 0, "message too big for system", R.MESGTOOBIG),
    ("5.4.4", 0, 0, "nonexistent domain", R.NETWORKERROR),
    ("5.4.6", 0, 0, "possible mail loop", R.NETWORKERROR),
    ("4.4.316", 0, 0, "connection refused", R.NETWORKERROR),
    ("4.4.312", 0, 0, "dns query failed", R.NETWORKERROR),
    ("5.4.312", 0, 0, "dns query failed", R.NETWORKERROR),
    ("5.4.4", 0, 0, "invalid arguments", R.NETWORKERROR),
    ("5.4.6", 0, 0, "routing loop detected", R.NETWORKERROR),
    ("5.4.14", 0, 0, "routing loop detected", R.NETWORKERROR),
    ("5.7.1", 0, 0, "unable to relay", R.NORELAYING),
    ("5.4.1", 0, 0, "relay access denied", R.NORELAYING),
    ("5.7.64", 0, 0, "relay access denied", R.NORELAYING),
    ("5.4.310", 0, 0, "does not exist", R.NORELAYING),
    ("4.3.2", 0, 0, "system not accepting network messages", R.NOTACCEPT),
    ("5.3.2", 0, 0, "missing or bad storedriver mdb properties", R.NOTACCEPT),
    ("5.0.350", 0, 0, "x-dg-ref header is too long", R.POLICYVIOLATION),
    ("5.0.350", 0, 0, "policy violation detected (as345)", R.POLICYVIOLATION),
    ("5.7.", 900, 999, "delivery not authorized, message refused", R.POLICYVIOLATION),
    ("5.1.7", 0, 0, "invalid address", R.REJECTED),
    ("5.1.7", 0, 0, "unknown sender address", R.REJECTED),
    ("5.1.0", 0, 0, "sender denied", R.REJECTED),
    ("5.1.8", 0, 0, "access denied, bad outbound sender", R.REJECTED),
    ("5.7.1", 0, 0, "delivery not authorized", R.REJECTED),
    ("5.7.12", 0, 0, "sender was not authenticated by organization", R.REJECTED),
    ("5.7.124", 0, 0, "sender not in allowed-senders list", R.REJECTED),
    ("5.7.133", 0, 0, "sender not authenticated for group", R.REJECTED),
    ("5.7.134", 0, 0, "sender was not authenticated for mailbox", R.REJECTED),
    ("5.7.13", 0, 0, "sender was not authenticated for public folder", R.REJECTED),
    ("5.7.135", 0, 0, "sender was not authenticated for public folder", R.REJECTED),
    ("5.7.136", 0, 0, "sender was not authenticated", R.REJECTED),
    ("5.7.", 501, 503, "access denied, spam abuse detected", R.REJECTED),
    ("5.7.", 501, 503, "access denied, banned sender", R.REJECTED),
    ("5.7.512", 0, 0, "message must be rfc 5322 section 3.6.2 compliant", R.REJECTED),
    ("5.7.750", 0, 0, "client blocked from sending from unregistered domains", R.REJECTED),
    ("5.7.3", 0, 0, "cannot achieve exchange server authentication", R.SECURITYERROR),
    ("5.7.3", 0, 0, "not authorized", R.SECURITYERROR),
    ("4.4.317", 0, 0, "starttls is required to send mail", R.SECURITYERROR),
    ("5.4.317", 0, 0, "starttls is required to send mail", R.SECURITYERROR),
    ("4.7.321", 0, 0, "starttls-not-supported", R.SECURITYERROR),
    ("5.7.321", 0, 0, "starttls-not-supported", R.SECURITYERROR),
    ("5.7.1", 0, 0, "client was not authenticated", R.SECURITYERROR),
    ("5.7.57", 0, 0, "client was not authenticated to send anonymous mail", R.SECURITYERROR),
    ("5.2.1", 0, 0, "content filter agent quarantined this message", R.SPAMDETECTED),
    ("4.3.2", 0, 0, "recipient thread limit exceeded", R.SPEEDING),
    ("5.1.90", 0, 0, "reached your daily limit for message recipients", R.SPEEDING),
    ("5.2.121", 0, 0, "per hour message receive limit from specific sender exceeded", R.SPEEDING),
    ("5.2.122", 0, 0, "per hour message receive limit exceeded", R.SPEEDING),
    ("5.7.508", 0, 0, "has exceeded permitted limits within", R.SPEEDING),
    ("5.7.", 700, 749, "access denied, tenant has exceeded threshold", R.SPEEDING),
    ("5.7.", 700, 749, "access denied, traffic not accepted from this ip", R.SPEEDING),
    ("5.7.504", 0, 0, "recipient address rejected: access denied", R.SUSPEND),
    ("5.7.505", 0, 0, "access denied, banned recipient", R.SUSPEND),
    ("5.2.1", 0, 0, "mailbox cannot be accessed", R.SUSPEND),
    ("5.3.3", 0, 0, "unrecognized command", R.SYNTAXERROR),
    ("5.5.2", 0, 0, "send hello first", R.SYNTAXERROR),
    ("4.3.2", 0, 0, "service not available", R.SYSTEMERROR),
    ("4.3.2", 0, 0, "service not active", R.SYSTEMERROR),
    ("5.3.5", 0, 0, "system incorrectly configured", R.SYSTEMERROR),
    ("5.0.0", 0, 0, "helo / ehlo requires domain address", R.SYSTEMERROR),
    ("5.1.4", 0, 0, "destination mailbox address ambiguous", R.SYSTEMERROR),
    ("5.2.4", 0, 0, "mailing list expansion problem", R.SYSTEMERROR),
    ("5.2.14", 0, 0, "misconfigured forwarding address", R.SYSTEMERROR),
    ("4.4.318", 0, 0, "(suspiciousremoteservererror)", R.SYSTEMERROR),
    ("5.4.318", 0, 0, "(suspiciousremoteservererror)", R.SYSTEMERROR),
    ("4.7.500", 0, 0, "server busy. please try again later from", R.SYSTEMERROR),
    ("4.7.700", 0, 0, "pfa agent busy, please try again", R.SYSTEMERROR),
    ("4.3.1", 0, 0, "insufficient system resources", R.SYSTEMFULL),
    ("5.5.3", 0, 0, "too many recipients", R.TOOMANYCONN),
    ("4.5.3", 0, 0, "too many recipients", R.TOOMANYCONN),
    ("5.2.122", 0, 0, "the recipient has exceeded their limit for", R.TOOMANYCONN),
    ("5.1.1", 0, 0, "resolver.adr.exrecipnotfound", R.USERUNKNOWN),
    ("5.1.1", 0, 0, "user unknown", R.USERUNKNOWN),
    ("5.1.3", 0, 0, "invalid recipient address", R.USERUNKNOWN),
    ("5.1.", 4, 5, "recipient address reserved by rfc 2606", R.USERUNKNOWN),
    ("5.1.6", 0, 0, "recipient addresses in single label domains not accepted", R.USERUNKNOWN),
    ("5.1.1", 0, 0, "bad destination mailbox address", R.USERUNKNOWN),
    ("5.1.10", 0, 0, "recipient not found", R.USERUNKNOWN),
    ("5.4.1", 0, 0, "recipient address rejected: access denied", R.USERUNKNOWN),
    ("5.5.0", 0, 0, "requested action not taken: mailbox unavailable", R.USERUNKNOWN),
    ("5.1.2", 0, 0, "invalid x.400 address", R.USERUNKNOWN),
)
# Outlook.com's own answers, whatever the status code.
_ANY_STATUS: tuple[tuple[str, Reason], ...] = (
    ("the mail could not be delivered to the recipient because the domain is not reachable", R.HOSTUNKNOWN),
    ("requested action not taken: mailbox unavailable", R.USERUNKNOWN),
)


def _status_fits(status: str, want: str, lo: int, hi: int) -> bool:
    if lo == hi:
        return status == want
    if not status.startswith(want):
        return False
    last = status.rpartition(".")[2]
    return last.isdigit() and lo <= int(last) <= hi


def find(text: str, status: str, reply: str, command: str) -> Reason | None:
    if status:
        for want, lo, hi, phrase, reason in _RULES:
            if phrase in text and _status_fits(status, want, lo, hi):
                return reason
    for phrase, reason in _ANY_STATUS:
        if phrase in text:
            return reason
    return None
