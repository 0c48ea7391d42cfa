"""Percents in integers (store.stats.percent) read exactly as Decimal's ROUND_HALF_UP did."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from hypothesis import given
from hypothesis import strategies as st

from mailtally.store.stats import percent


def _decimal(part: int, whole: int) -> float:
    if whole <= 0:
        return 0.0
    return float((Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


@given(st.integers(-10**6, 10**9), st.integers(-5, 10**9))
def test_percent_is_decimal_half_up(part: int, whole: int) -> None:
    assert percent(part, whole) == _decimal(part, whole)


def test_percent_small_counts_and_the_golden_numbers() -> None:
    for whole in range(1, 300):
        for part in range(-2, whole + 2):
            assert percent(part, whole) == _decimal(part, whole)
    assert (percent(6, 15), percent(6, 9), percent(2, 6), percent(1, 9)) == (40.0, 66.7, 33.3, 11.1)


def test_percent_of_decimal_counts_is_a_float() -> None:
    """PostgreSQL's SUM of a bigint is numeric: the dashboard's CSV must still read 40.0."""
    value = percent(Decimal(6), Decimal(15))  # type: ignore[arg-type]
    assert type(value) is float and str(value) == "40.0"
