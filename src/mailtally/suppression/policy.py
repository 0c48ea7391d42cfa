"""The per-account suppression policy: which events put an address on the suppression list.

Pure: given one event and the contact's recent history, say whether (and until when) to
suppress. ``store.reactions`` calls it inside the events' transaction; ``store.suppressions``
keeps the list. The defaults, and why:

- hard bounces (B, S) suppress at once, for good: the address does not exist or is closed;
- soft bounces (F, D, X) suppress after ``soft_count`` (3) within ``soft_window_days`` (30)
  days: one full mailbox or timeout is routine, three in a month with no delivery, open or
  click in between (which resets the count) means the mailbox is not coming back;
- blocks (Z) do nothing (``blocks = ignore``): they are usually about the sender's reputation
  or content, not the address, and suppressing them would hide a deliverability problem;
- complaints and opt-outs suppress at once, for good: mailing them again is what gets a
  sender blocked, and unsubscribes are a legal duty;
- vacation auto-replies never suppress: the mail was delivered;
- soft (and block) suppressions expire after ``soft_expiry_days`` (90), so an address that
  was only temporarily broken gets mail again; 0 means never.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ..vocab import HARD_CODES, BlockPolicy, BounceCode, EventType, Reason, SuppressionReason

DAY_MS = 86_400_000
SOFT_CODES = frozenset({BounceCode.MAILBOX_FULL, BounceCode.UNDELIVERABLE, BounceCode.OTHER})
# Events that show the address works again: the soft-bounce count starts over after them.
RESETS = frozenset({EventType.DELIVERY, EventType.OPEN, EventType.CLICK})


class PolicyError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class Policy:
    hard_bounces: bool = True
    soft_count: int = 3
    soft_window_days: int = 30
    blocks: BlockPolicy = BlockPolicy.IGNORE
    complaints: bool = True
    optouts: bool = True
    soft_expiry_days: int = 90

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["blocks"] = self.blocks.value
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base: Policy | None = None) -> Policy:
        """``base`` with the fields ``data`` names changed; unknown fields and bad values are errors."""
        values = (base or cls()).to_dict()
        for key, value in data.items():
            if key not in values:
                raise PolicyError(key, "is not a policy field")
            if key in ("hard_bounces", "complaints", "optouts"):
                if not isinstance(value, bool):
                    raise PolicyError(key, "must be true or false")
            elif key == "blocks":
                if value not in {b.value for b in BlockPolicy}:
                    raise PolicyError(key, f"must be one of {', '.join(b.value for b in BlockPolicy)}")
            else:
                if isinstance(value, bool) or not isinstance(value, int):
                    raise PolicyError(key, "must be a whole number")
                low = 1 if key in ("soft_count", "soft_window_days") else 0
                if not low <= value <= 3650:
                    raise PolicyError(key, f"must be between {low} and 3650")
            values[key] = value
        values["blocks"] = BlockPolicy(values["blocks"])
        return cls(**values)


@dataclass(frozen=True, slots=True)
class Fact:
    """One logged event of a contact, as the policy sees it."""

    type: EventType
    occurred_at: int
    bounce_code: BounceCode | None = None
    reason: Reason | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    reason: SuppressionReason
    expires_at: int | None  # None: until removed


def counts_as_soft(policy: Policy, fact: Fact) -> bool:
    """A bounce that counts towards the soft threshold (the ones that need the history)."""
    if fact.type is not EventType.BOUNCE or fact.bounce_code is None:
        return False
    return fact.bounce_code in SOFT_CODES or (fact.bounce_code is BounceCode.BLOCKED
                                              and policy.blocks is BlockPolicy.SOFT)


def decide(policy: Policy, fact: Fact, history: Iterable[Fact] = ()) -> Verdict | None:
    """Whether ``fact`` suppresses its address. ``history``: the contact's logged events (of
    every activity) around it; those outside the soft window before ``fact`` are ignored."""
    kind, code = fact.type, fact.bounce_code
    if kind is EventType.ABUSE:
        return Verdict(SuppressionReason.COMPLAINT, None) if policy.complaints else None
    if kind is EventType.OPTOUT:
        return Verdict(SuppressionReason.OPTOUT, None) if policy.optouts else None
    if kind is not EventType.BOUNCE or code is None or fact.reason is Reason.SUPPRESSED:
        return None  # a suppressed send's bounce records the suppression; it does not make one
    soft_until = fact.occurred_at + policy.soft_expiry_days * DAY_MS if policy.soft_expiry_days else None
    if code in HARD_CODES:
        return Verdict(SuppressionReason.HARD_BOUNCE, None) if policy.hard_bounces else None
    if code is BounceCode.BLOCKED and policy.blocks is BlockPolicy.HARD:
        return Verdict(SuppressionReason.BLOCK, soft_until)
    if not counts_as_soft(policy, fact):
        return None
    t = fact.occurred_at
    since = t - policy.soft_window_days * DAY_MS
    facts = [f for f in history if since < f.occurred_at <= t]
    if fact not in facts:
        facts.append(fact)
    reset = max((f.occurred_at for f in facts if f.type in RESETS), default=since)
    n = sum(1 for f in facts if f.occurred_at > reset and counts_as_soft(policy, f))
    if n < policy.soft_count:
        return None
    reason = SuppressionReason.BLOCK if code is BounceCode.BLOCKED else SuppressionReason.SOFT_BOUNCE
    return Verdict(reason, soft_until)
