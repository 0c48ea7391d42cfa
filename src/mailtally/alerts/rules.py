"""Alert rules: when an activity's bounce, hard-bounce, complaint or opt-out rate is too high.

Pure: a rule and an activity's counters in, the rate out when the rule fires. Rates are over
sends, in percent, and only once the activity has ``min_sends`` sends (a handful of sends make
any rate meaningless). The defaults, and why:

- ``bounce_rate`` over 5% (of bounces other than vacation replies), from 100 sends: Amazon SES
  puts an account under review at about 5%;
- ``hard_bounce_rate`` over 2% (B and S), from 100 sends: a list that old or bought shows
  here first, and mailbox providers read it as a sign of poor list hygiene;
- ``complaint_rate`` over 0.1%, from 1,000 sends: Gmail's bulk-sender guidance is to stay
  under 0.1% and never reach 0.3%; fewer sends would fire on a single complaint;
- ``optout_rate`` over 1%, from 200 sends: well above the usual fraction of a percent, so it
  fires on a campaign that went to the wrong list or the wrong content.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ..vocab import AlertKind


class RuleError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class Rule:
    threshold: float  # percent
    min_sends: int
    enabled: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT_RULES: dict[AlertKind, Rule] = {
    AlertKind.BOUNCE_RATE: Rule(5.0, 100),
    AlertKind.HARD_BOUNCE_RATE: Rule(2.0, 100),
    AlertKind.COMPLAINT_RATE: Rule(0.1, 1000),
    AlertKind.OPTOUT_RATE: Rule(1.0, 200),
}


def rules_from(data: Mapping[str, Any] | None, base: Mapping[AlertKind, Rule] | None = None) -> dict[AlertKind, Rule]:
    """``base`` (the defaults) with the rules ``data`` names changed; bad values are errors."""
    rules = dict(base or DEFAULT_RULES)
    for key, value in (data or {}).items():
        if key not in {k.value for k in AlertKind}:
            raise RuleError(key, f"is not an alert kind ({', '.join(k.value for k in AlertKind)})")
        if not isinstance(value, Mapping):
            raise RuleError(key, "must be an object with threshold, min_sends and enabled")
        kind = AlertKind(key)
        merged = {**rules[kind].to_dict(), **value}
        unknown = set(merged) - {"threshold", "min_sends", "enabled"}
        if unknown:
            raise RuleError(f"{key}.{sorted(unknown)[0]}", "is not a rule field")
        t, n, on = merged["threshold"], merged["min_sends"], merged["enabled"]
        if isinstance(t, bool) or not isinstance(t, int | float) or not 0 < t <= 100:
            raise RuleError(f"{key}.threshold", "must be a percentage above 0 and at most 100")
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 10**9:
            raise RuleError(f"{key}.min_sends", "must be a whole number from 1")
        if not isinstance(on, bool):
            raise RuleError(f"{key}.enabled", "must be true or false")
        rules[kind] = Rule(float(t), n, on)
    return rules


def measure(kind: AlertKind, counters: Mapping[str, int]) -> tuple[int, int]:
    """(how many, sends) for a kind, from an activity's counters."""
    sends = int(counters.get("sends", 0))
    if kind is AlertKind.BOUNCE_RATE:
        n = int(counters.get("bounces", 0)) - int(counters.get("bounces_v", 0))
    elif kind is AlertKind.HARD_BOUNCE_RATE:
        n = int(counters.get("bounces_b", 0)) + int(counters.get("bounces_s", 0))
    elif kind is AlertKind.COMPLAINT_RATE:
        n = int(counters.get("abuse", 0))
    else:
        n = int(counters.get("optouts", 0))
    return n, sends


def fires(kind: AlertKind, rule: Rule, counters: Mapping[str, int]) -> float | None:
    """The rate (percent) when the rule fires on these counters, else None."""
    if not rule.enabled:
        return None
    n, sends = measure(kind, counters)
    if sends < rule.min_sends or sends == 0:
        return None
    rate = 100.0 * n / sends
    return rate if rate > rule.threshold else None
