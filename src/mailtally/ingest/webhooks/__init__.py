"""Provider webhooks: one module per provider verifies a request and parses it into
``ProviderEvent``s (``base``); ``recording`` turns those into Events of the sends they belong to."""

from __future__ import annotations

from types import ModuleType

from ...vocab import WebhookProvider
from . import brevo, mailgun, postmark, resend, sendgrid, ses, sparkpost

# Each module has ``options(secret, given) -> dict`` (checked when an endpoint is created) and
# ``receive(HookRequest) -> Delivery`` (verify, then parse; raises Refused or Malformed).
PROVIDERS: dict[str, ModuleType] = {
    WebhookProvider.SES.value: ses,
    WebhookProvider.SENDGRID.value: sendgrid,
    WebhookProvider.MAILGUN.value: mailgun,
    WebhookProvider.POSTMARK.value: postmark,
    WebhookProvider.SPARKPOST.value: sparkpost,
    WebhookProvider.BREVO.value: brevo,
    WebhookProvider.RESEND.value: resend,
}
