"""Amazon SES notifications delivered by mail (SNS e-mail subscriptions): JSON, not a DSN.

Bounces and complaints become their records; a "Delivery" notification becomes a finding
with reason `delivered`, which `parse` reports only when asked to.
"""

from __future__ import annotations

import json
from typing import Any

from mailtally.bounces.finding import Finding
from mailtally.bounces.message import Mail
from mailtally.bounces.smtp import clean_address, find_reply_code, find_status
from mailtally.vocab import Reason


def matches(mail: Mail) -> bool:
    return "notificationType" in mail.text  # also inside an SNS envelope, where its quotes are escaped


def _json(text: str) -> dict[str, Any] | None:
    start = text.find("{")
    end = text.rfind("}")
    if start < 0 or end <= start:
        return None
    blob = text[start : end + 1]
    try:
        data = json.loads(blob)
    except ValueError:
        # Mail bodies fold long lines; SES JSON survives with its line breaks removed.
        try:
            data = json.loads(blob.replace("\n", ""))
        except ValueError:
            return None
    if isinstance(data, dict) and isinstance(data.get("Message"), str):  # wrapped in an SNS envelope
        try:
            data = json.loads(data["Message"])
        except ValueError:
            return None
    return data if isinstance(data, dict) else None


def probe(mail: Mail) -> list[Finding]:
    data = _json(mail.text)
    if data is None:
        return []
    kind = str(data.get("notificationType") or data.get("eventType") or "")
    out: list[Finding] = []
    if kind == "Bounce":
        b = data.get("bounce") or {}
        for r in b.get("bouncedRecipients") or []:
            diag = str(r.get("diagnosticCode") or "")
            f = Finding(
                recipient=clean_address(str(r.get("emailAddress") or "")),
                action=str(r.get("action") or "failed"),
                status=str(r.get("status") or "") or find_status(diag),
                diagnostic=diag.split(";", 1)[-1].strip(),
                diagnostic_type="SMTP",
                reporting_mta=str(b.get("reportingMTA") or "").split(";")[-1].strip(),
                date=str(b.get("timestamp") or ""),
            )
            f.reply_code = find_reply_code(f.diagnostic)
            if b.get("bounceSubType") == "Suppressed":
                f.reason = Reason.SUPPRESSED
            out.append(f)
    elif kind == "Complaint":
        c = data.get("complaint") or {}
        for r in c.get("complainedRecipients") or []:
            out.append(
                Finding(
                    recipient=clean_address(str(r.get("emailAddress") or "")),
                    reason=Reason.FEEDBACK,
                    feedback_type=str(c.get("complaintFeedbackType") or "abuse"),
                    date=str(c.get("timestamp") or ""),
                )
            )
    elif kind == "Delivery":
        d = data.get("delivery") or {}
        response = str(d.get("smtpResponse") or "")
        for r in d.get("recipients") or []:
            out.append(
                Finding(
                    recipient=clean_address(str(r or "")),
                    reason=Reason.DELIVERED,
                    action="delivered",
                    status=find_status(response),
                    reply_code=find_reply_code(response),
                    diagnostic=response,
                    reporting_mta=str(d.get("reportingMTA") or "").split(";")[-1].strip(),
                    date=str(d.get("timestamp") or ""),
                )
            )
    return [f for f in out if f.recipient]
