"""Mimecast (*.mimecast.com): each documented answer is a reply code with a fixed phrase."""

from __future__ import annotations

from mailtally.vocab import Reason

HOSTS: tuple[str, ...] = (".mimecast.com",)
DOMAINS: frozenset[str] = frozenset()

# (reply code, phrase, reason), from Mimecast's published SMTP error-code list.
_RULES: tuple[tuple[str, str, Reason], ...] = (
    ("550", "spf sender invalid - envelope rejected", Reason.AUTHFAILURE),
    ("550", "dkim sender invalid - envelope rejected", Reason.AUTHFAILURE),
    ("550", "dmarc sender invalid - envelope rejected", Reason.AUTHFAILURE),
    ("451", "internal resources are temporarily unavailable", Reason.BADREPUTATION),
    ("550", "local ct ip reputation - (reject)", Reason.BADREPUTATION),
    ("421", "sender address blocked", Reason.BLOCKED),
    ("451", "recipient temporarily unavailable", Reason.BLOCKED),
    ("451", "ip temporarily blacklisted", Reason.BLOCKED),
    ("550", "journal messages past the expiration", Reason.EXPIRED),
    ("554", "maximum email size exceeded", Reason.MESGTOOBIG),
    ("451", "the incorrect hostname used for inbounds", Reason.NETWORKERROR),
    ("550", "the incorrect hostname used for inbounds", Reason.NETWORKERROR),
    ("554", "mail loop detected", Reason.NETWORKERROR),
    ("451", "open relay not allowed", Reason.NORELAYING),
    ("451", "open relay is not allowed", Reason.NORELAYING),
    ("451", "account inbounds disabled", Reason.NOTACCEPT),
    ("451", "account outbounds disabled", Reason.ONHOLD),
    ("451", "hostname is not authorized", Reason.ONHOLD),
    ("550", "journal message past expiration", Reason.ONHOLD),
    ("550", "anti-spoofing policy - inbound not allowed", Reason.POLICYVIOLATION),
    ("550", "rejected by header-based anti-spoofing policy", Reason.POLICYVIOLATION),
    ("550", "message bounced due to content examination policy", Reason.POLICYVIOLATION),
    ("554", "host network not allowed", Reason.POLICYVIOLATION),
    ("554", "host network, not allowed", Reason.POLICYVIOLATION),
    ("550", "administrative prohibition envelope blocked", Reason.REJECTED),
    ("550", "envelope blocked - user entry", Reason.REJECTED),
    ("550", "envelope blocked - user domain entry", Reason.REJECTED),
    ("550", "rejected by header-based manually blocked senders", Reason.REJECTED),
    ("550", "rejected by header-based blocked senders", Reason.REJECTED),
    ("550", "envelope rejected - block policy for envelope from address", Reason.REJECTED),
    ("535", "incorrect authentication data", Reason.SECURITYERROR),
    ("550", "submitter failed to authenticate", Reason.SECURITYERROR),
    ("553", "this route requires encryption (tls)", Reason.SECURITYERROR),
    ("553", "this route requires tls version 1.2 or greater", Reason.SECURITYERROR),
    ("553", "this route requires high-strength ciphers", Reason.SECURITYERROR),
    ("554", "configuration is invalid for this certificate", Reason.SECURITYERROR),
    ("451", "unable to process connection at this time", Reason.SYSTEMERROR),
    ("451", "message ended early", Reason.SYSTEMERROR),
    ("451", "unable to process command", Reason.SYSTEMERROR),
    ("451", "unable to process an email at this time", Reason.SYSTEMERROR),
    ("451", "account service is temporarily unavailable", Reason.TOOMANYCONN),
    ("452", "too many recipients", Reason.TOOMANYCONN),
    ("550", "exceeding outbound thread limit", Reason.TOOMANYCONN),
    ("501", "invalid address", Reason.USERUNKNOWN),
    ("503", "user unknown", Reason.USERUNKNOWN),
    ("550", "invalid recipient", Reason.USERUNKNOWN),
    # A virus signature or a spam score over the limit: Mimecast says which only in the signature's name.
    ("554", "email rejected due to security policies", Reason.VIRUSDETECTED),
)


def find(text: str, status: str, reply: str, command: str) -> Reason | None:
    if not reply:
        return None
    for code, phrase, reason in _RULES:
        if code == reply and phrase in text:
            if reason is Reason.VIRUSDETECTED and "spam" in text:
                return Reason.SPAMDETECTED  # the signature it names says which: "MCSpamSignature"
            return reason
    return None
