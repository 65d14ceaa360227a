"""Pricing rules of pricing-api: pure functions, no I/O.

calc(p, d) is the case study's function: the total is price / discount factor.
selfheal's demo, fixtures and tests point at pricing_logic.py line 14.
"""


def round_money(x):
    return round(float(x), 2)


# Total for price p at discount factor d (0 < d <= 1 in practice).
# Keep calc on line 14: recorded stack traces name pricing_logic.py:14.
def calc(p, d): return p / d


# Exchange rates to US dollars of the currencies the shop quotes in.
RATES_TO_USD = {"USD": 1.0, "EUR": 1.08, "GBP": 1.27, "JPY": 0.0067}


def to_usd(amount, currency):
    """`amount` in `currency`, in US dollars."""
    return amount * RATES_TO_USD[currency]
