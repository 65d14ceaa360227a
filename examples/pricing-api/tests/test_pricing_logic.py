"""Unit tests of the pricing rules (pure functions, no I/O)."""

import pytest

from pricing_logic import calc, round_money, to_usd


@pytest.mark.parametrize(
    "price, discount, total",
    [
        (10.0, 0.8, 12.5),
        (100.0, 0.5, 200.0),
        (19.99, 0.95, 21.042105263157895),
        (3.0, 0.6, 5.0),
    ],
)
def test_calc_divides_price_by_discount_factor(price, discount, total):
    assert calc(price, discount) == pytest.approx(total)


def test_calc_factor_one_keeps_price():
    assert calc(42.0, 1.0) == 42.0


def test_calc_zero_price_is_free():
    assert calc(0.0, 0.75) == 0.0


def test_calc_accepts_integers():
    assert calc(9, 3) == 3


def test_round_money_rounds_to_cents():
    assert round_money(12.499) == 12.5
    assert round_money(21.042105263157895) == 21.04
    assert round_money(3) == 3.0


def test_to_usd_uses_the_rate_table():
    assert to_usd(10.0, "EUR") == pytest.approx(10.8)
    assert to_usd(5, "USD") == 5.0
