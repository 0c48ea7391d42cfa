"""The sources config file: every key checked when it is read."""

from __future__ import annotations

import pytest

from mailtally.servers.config import ConfigError, parse


def test_mailbox_idle_renewal_bounded() -> None:
    box = {"url": "imap://u@h/INBOX", "account": "shop"}
    assert parse({"mailbox": [box]}).mailboxes[0].idle_renew_seconds == 540
    assert parse({"mailbox": [{**box, "idle_renew_seconds": 600}]}).mailboxes[0].idle_renew_seconds == 600
    for bad in (0, 601, -1):
        with pytest.raises(ConfigError, match="idle_renew_seconds"):
            parse({"mailbox": [{**box, "idle_renew_seconds": bad}]})
    with pytest.raises(ConfigError, match="poll_seconds"):
        parse({"mailbox": [{**box, "poll_seconds": 0}]})
    with pytest.raises(ConfigError, match="must be a number"):
        parse({"mailbox": [{**box, "idle_renew_seconds": "often"}]})
