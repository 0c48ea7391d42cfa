"""userunknown: the recipient's mailbox does not exist at the destination."""

from __future__ import annotations

import re

from mailtally.bounces.reason._phrases import matcher
from mailtally.vocab import Reason

REASON = Reason.USERUNKNOWN
# DSN status codes that say this by themselves.
STATUSES: frozenset[str] = frozenset({"5.1.0", "5.1.1", "5.1.3"})
# Matched against the lower-cased, single-line diagnostic text.
PATTERN: re.Pattern[str] | None = re.compile(
    "|".join(
        (
            r"user ?unknown",
            r"unknown (?:user|recipient|local[- ]part|mailbox|address(?! error)|e-?mail address)",
            r"no such (?:user|mailbox|recipient|address|account|person)",
            r"recipient (?:address )?(?:unknown|not found|does not exist|invalid)",
            r"invalid (?:recipient|mailbox|user)",
            r"recipient address rejected: (?:user unknown|undeliverable address|unknown|invalid|access d"
            r"enied|user does not exist)",
            r"(?:user|mailbox|account|address|recipient|e-?mail(?: address)?) (?:does not|doesn't|doesnt"
            r"|do not) exist",
            r"(?:user|mail[ -]?box|account|recipient|address) (?:not found|unknown|not known|not exist)",
            r"not a valid (?:user|mailbox|recipient)",
            r"is not a known user",
            r"no mail[ -]?box (?:here|by that name|for|found|available)",
            r"(?<!sender )(?:user|rcpt|recipient|mail[ -]?box|address) [\[<(]?[^\s\[\]<>()]{1,200}@"
            r"[^\s\[\]<>()]{1,200}[\]>)]? (?:does not|doesn't|do not) exist",
            r"bad[ _-]?(?:recipient|rcpt|mailbox|user)",
            r"invalid (?:[^\s]{1,30} ){0,3}(?:user ?name|user ?id)",
            r"(?:user|recipient|address)\b.{0,120}\bnot listed in (?:the )?(?:[\w&]{1,30} ){0,4}"
            r"(?:directory|address book)",
            r"not an active (?:e-?mail )?address",
            r"this user doesn't have a .{1,60}account",
            r"addressee unknown",
            r"unknown or illegal alias",
            r"bad destination mailbox",
            r"no account by that name",
            r"the email account that you tried to reach does not exist",
            r"resolver\.adr\.recip(?:ient)?notfound",
            r"recipnotfound",
            r"destinataire invalide",
            r"invalid recipient",
            r"adresse d au moins un destinataire invalide",
            r"mailbox (?:is )?(?:unavailable|not available)(?! due)",
            r"user not exist",
            r"doesn't have an? .{1,40}account",
            r"sorry, no mailbox",
            r"address (?:is )?(?:invalid|not valid)\b",
            r"unknown address(?! error)",  # Amazon SES's "Unknown address error" prefixes any SMTP error
            r"no valid recipients",
            r"said: 550[ -]5\.1\.1",
            r"user does not exist",
            r"<[^>]{1,200}>\s*\.\.\.\s*user unknown",
            r"vdeliver: invalid or unknown virtual user",
            r"this address no longer accepts mail",
            r"email address could not be found",
            r"is not a valid (?:e-?mail|address|recipient)",
            r"no such local user",
            r"unknown recipient",
            r"rcpt to .{0,80}(?:unknown|invalid)",
            r"user (?:is )?(?:unknown|invalid)",
            r"mailbox not found",
            r"the recipient does not exist",
            r"requested action not taken: mailbox unavailable",
            r"no such user here",
            r"user reject",
            r"undeliverable address",
            r"not our user",
            r"recipient not in (?:the )?(?:valid|route) list",
            r"does not have an account",
            r"account .{0,40}does not exist",
            r"unknown account",
            r"invalid address",
            r"recipient address rejected\.(?:$| \(in reply to rcpt to command\))",
            r"ディレクトリ(?:には見つかりません|のリストにありません)",  # not found in (not listed in) the directory
        )
    )
)

# Speed: every alternative above contains one of these, and a few `in` tests cost far less than
# the regex's scan, which tries each position because not every alternative starts with a literal.
# tests/bounces/test_properties.py checks that they stay complete.
NEEDLES: tuple[str, ...] = (
    " exist", "address ", "bad", "does not have an account", "doesn't have a", "invalid",
    "is not a known user", "no account by that name", "no mail", "no such ", "no valid recipients",
    "not a valid ", "not an active", "not available", "not listed in", "not found", "not known", "not our user",
    "rcpt to ", "recipient ",
    "recipnotfound", "resolver.adr.recip", "said: 550", "sorry, no mailbox", "unavailable", "undeliverable address",
    "unknown", "user reject", "ディレクトリ",
)


match = matcher(PATTERN, NEEDLES)

# A directory lookup that found no entry: about the address, never how a content filter words it.
DIRECTORY = re.compile(
    r"not listed in (?:the )?(?:[\w&]{1,30} ){0,4}(?:directory|address book)|"
    r"ディレクトリ(?:には見つかりません|のリストにありません)"
)

# Wording that says only that the mailbox cannot take mail now: it fits a disabled mailbox as
# well as a missing one, so it never outweighs a status code that names something else.
WEAK = re.compile(
    r"mailbox (?:is )?(?:unavailable|not available)(?! due)|requested action not taken: mailbox unavailable"
)


def strong_match(text: str) -> bool:
    """The phrases say so in words more specific than "mailbox unavailable"."""
    if not match(text):
        return False
    if WEAK.search(text) is None:
        return True
    return match(WEAK.sub(" ", text))


def true(tmp: Reason | None, text: str, command: str) -> bool:
    """A 5.1.1-like status says it unless the text says something else; otherwise the phrase
    counts only as the answer to RCPT."""
    from mailtally.bounces.reason import blocked, hasmoved, mailboxfull, norelaying, notaccept, rejected

    if tmp is Reason.SUSPEND or command == "MAIL":
        return False  # a refusal at MAIL FROM is about the sender, not the recipient
    if tmp is REASON:
        return not any(m.match(text) for m in (norelaying, blocked, mailboxfull, hasmoved, rejected, notaccept))
    # Said to RCPT, or by the reporting MTA's own delivery (LOCAL: no SMTP stage, so no content
    # filter), the phrase is about the address: specific wording outweighs a status code, vague
    # wording ("mailbox unavailable") only a vague one. Said to another command, or where the
    # report does not say to which, it is how many carriers word a content or sender filter
    # (Sisimai's judgement, which the labelled corpus follows): filtered decides.
    if command not in ("RCPT", "LOCAL"):
        return command == "" and DIRECTORY.search(text) is not None
    if tmp is None or tmp in GENERIC_STATUS_REASONS:
        return match(text)
    return strong_match(text)


# What a status code says when it says little: the class-level codes and the security catch-alls.
GENERIC_STATUS_REASONS = frozenset(
    {Reason.UNDEFINED, Reason.ONHOLD, Reason.SECURITYERROR, Reason.SYSTEMERROR, Reason.NOTACCEPT, Reason.FILTERED,
     Reason.SYNTAXERROR, Reason.MAILERERROR}
)
