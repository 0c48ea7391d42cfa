"""RFC 3834 automatic responses (vacation, out-of-office): the mail was delivered, a person is away."""

from __future__ import annotations

import re

from mailtally.bounces.finding import Finding
from mailtally.bounces.message import Mail
from mailtally.bounces.smtp import find_address, squash
from mailtally.vocab import Reason

_AUTO_SUBJECT = re.compile(
    r"^(?:auto(?:matic)?[ -]?(?:reply|response|respons|antwort|answer)|out of (?:the )?office|"
    r"away (?:from|until)|vacation|abwesenheit|r[ée]ponse automatique|absence|自動応答|自動返信)",
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
    if h.get("X-MS-Exchange-Inbox-Rules-Loop") and _AUTO_SUBJECT.search(subject):
        return True
    return bool(_AUTO_SUBJECT.search(subject))


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
