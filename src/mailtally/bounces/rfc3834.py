"""RFC 3834 automatic responses (vacation, out-of-office): the mail was delivered, a person is away."""

from __future__ import annotations

import re

from mailtally.bounces.finding import Finding
from mailtally.bounces.message import Mail
from mailtally.bounces.smtp import find_address, squash
from mailtally.vocab import Reason

# Subjects auto-responders write, in several languages: "Automatic reply:", "AUTO: ... is out of
# the office", "[Automatyczna odpowiedź]", "Réponse automatique", "Risposta automatica" ...
_AUTO_SUBJECT = re.compile(
    r"^(?:auto(?:matic)?[ -]?(?:reply|response|respons|antwort|answer)|auto:|out of (?:the )?office|"
    r"away (?:from|until)|vacation|abwesenheit|absence|自動応答|自動返信)|"
    r"\b(?:auto(?:matic|matische|matisch|matyczna|matica|matico|mática|mático|matique|matisk|maattinen)?"
    r"[ -]?(?:reply|response|antwort|answer|odpowied[źz]|risposta|respuesta|r[ée]ponse|resposta|svar|antwoord|"
    r"vastaus))\b|"
    r"\b(?:odpowied[źz] automatyczna|r[ée]ponse automatique|risposta automatica|respuesta autom[áa]tica|"
    r"resposta autom[áa]tica|out of (?:the )?office|abwesenheitsnotiz|fuera de la oficina|poza biurem|"
    r"afwezigheid|on (?:annual )?leave|on holiday|on vacation)\b",
    re.I,
)
# Weaker signs, enough only together with a bulk Precedence (RFC 3834 section 3.1.8 asks
# responders to send one) from a person's address: a thank-you subject, an away or will-reply body.
_WEAK_SUBJECT = re.compile(r"\b(?:thank(?:s| you) for (?:your|the) (?:e-?mail|message|mail|enquiry|inquiry))", re.I)
_WEAK_BODY = re.compile(
    r"\b(?:(?:will|shall) (?:reply|respond|answer|get back to you)|(?:i am|i'm) (?:currently )?(?:away|out)|"
    r"out of (?:the )?office|on (?:annual )?leave|limited access to (?:my )?e-?mail|"
    r"automat(?:ic|ed) (?:reply|response))",
    re.I,
)
# An auto-submitted message about a failed delivery is a bounce, never an away message.
_NOT_AWAY = re.compile(
    r"bounce|undeliver|undelivered|failure|failed|delivery status|returned|mail delivery|rejected|"
    r"not delivered|delivery notification|nondeliver|non-deliver|warning",
    re.I,
)
_DAEMON = re.compile(r"mailer-daemon|postmaster", re.I)


def is_auto_reply(mail: Mail) -> bool:
    h = mail.headers
    subject = mail.subject.strip()
    if _NOT_AWAY.search(subject) or _DAEMON.search(mail.from_):
        return False
    auto = (h.get("Auto-Submitted") or "").strip().lower()
    if auto.startswith("auto-replied"):
        return True
    if h.get("X-Autoreply") or h.get("X-Autorespond") or h.get("X-Autoresponder"):
        return True
    if (h.get("Precedence") or "").strip().lower() == "auto_reply":
        return True
    if _AUTO_SUBJECT.search(subject):
        return True
    precedence = (h.get("Precedence") or "").strip().lower()
    if precedence in ("bulk", "junk", "list") and not h.get("List-Id") and not h.get("List-Unsubscribe"):
        return bool(_WEAK_SUBJECT.search(subject) or _WEAK_BODY.search(mail.text[:4000]))
    return False


def parse(mail: Mail) -> list[Finding]:
    if not is_auto_reply(mail):
        return []
    who = find_address(mail.from_) or find_address(mail.headers.get("Reply-To", "") or "")
    body = mail.text.strip()
    if (mail.headers.get("X-Apple-Unsubscribe") or "").strip().lower() == "true":
        # Apple Mail's one-click "Unsubscribe" answers the List-Unsubscribe mailto: an opt-out, not an away message.
        return [
            Finding(
                recipient=who,
                reason=Reason.FEEDBACK,
                feedback_type="opt-out",
                diagnostic=squash(body, 500),
                date=mail.headers.get("Date") or "",
            )
        ]
    return [
        Finding(
            recipient=who,
            reason=Reason.VACATION,
            diagnostic=squash(body, 500),
            date=mail.headers.get("Date") or "",
        )
    ]
