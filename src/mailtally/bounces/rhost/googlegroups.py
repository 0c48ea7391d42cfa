"""Google Groups (recipients @googlegroups.com): the group refused a post.

Google's notice ("the group you tried to contact may not exist, or you may not have permission
to post", in the poster's language) carries no status code: whichever it was, the group refused
this sender, a rejection of the sender rather than an unknown address.
"""

from __future__ import annotations

from mailtally.vocab import Reason

HOSTS: tuple[str, ...] = ()
DOMAINS: frozenset[str] = frozenset({"googlegroups.com"})


def find(text: str, status: str, reply: str, command: str) -> Reason | None:
    return Reason.REJECTED if not status and not reply else None
